"""Evaluation protocols: how interactions become train / validation / test matrices.

Two protocols:

``strong_generalization`` (Liang et al. 2018, the Mult-VAE paper)
    Users are shuffled with a seed and split into train, validation and test
    users. Models train on the training users' rows only. Items never seen
    among training users are dropped everywhere. Each validation and test
    user's items are split at random into fold-in (80%, the model's input) and
    held-out (20%, the targets), exactly as the reference code does: users
    with fewer than ``min_items_to_split`` items (after the item filter), or
    too few for ``int(test_prop · n) ≥ 1``, would get no targets there, so
    they are left out of the held-out sets and counted. Models are selected
    on validation NDCG@100.

``given_split``
    A fixed train/test split (e.g. ``ml-1m-lcfn``): each user's train row is
    the model's input, the test row its targets; all items not in the train row
    are ranked. Validation is carved from the train rows (a seeded fraction of
    each user's train items), never from the test targets. After selection
    the model may be refit on the full train rows (``Split.refit_train``).

Every split is checked for leakage (:meth:`Split.check`) and fingerprinted
(:meth:`Split.fingerprint`), so runs on the same split can be found together;
:class:`~recae.evaluation.split.Split` lives in :mod:`recae.evaluation.split`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.data import Interactions
from recae.errors import DataError
from recae.evaluation.inputs import check_heldout_users, check_probability, check_seed
from recae.evaluation.split import GIVEN, ROWWISE, STRONG, Split

__all__ = ["GIVEN", "ROWWISE", "STRONG", "Split", "given_split", "strong_generalization"]


def _holdout_rows(
    X: sp.csr_matrix, prop: float, rng: np.random.Generator, min_items: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each row's items at random into (kept, held out).

    As in the reference code, a row with ``n ≥ min_items`` items holds out
    ``int(prop · n)`` of them, sampled without replacement; shorter rows hold
    out nothing.
    """
    X = X.tocsr()
    keep_mask = np.ones(X.nnz, dtype=bool)
    for u in range(X.shape[0]):
        lo, hi = X.indptr[u], X.indptr[u + 1]
        n = hi - lo
        if n >= min_items:
            out = rng.choice(n, size=int(prop * n), replace=False)
            keep_mask[lo + out] = False
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))

    def part(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((X.data[mask], (rows[mask], X.indices[mask])), shape=X.shape, dtype=np.float32)
        m.sort_indices()
        return m

    return part(keep_mask), part(~keep_mask)


def _resolve_count(n_heldout: int | float, n_users: int) -> int:
    """A count of held-out users from a count (≥ 1) or a fraction of all users (< 1)."""
    n_heldout = check_heldout_users(n_heldout)
    if isinstance(n_heldout, float):
        return max(1, round(n_heldout * n_users))
    return n_heldout


def strong_generalization(
    data: Interactions,
    heldout_users: int | float = 0.1,
    test_prop: float = 0.2,
    seed: int = 98765,
    min_items_to_split: int = 5,
) -> Split:
    """Split users into train / validation / test users (Liang et al. 2018).

    Parameters
    ----------
    data : Interactions
        Binarized, filtered interactions (n_users × n_items).
    heldout_users : int or float
        Number of validation users and, separately, of test users; a float in
        (0, 0.5) is a fraction of all users. The paper holds out 10,000 users
        each on ML-20M; on smaller data sets a fraction keeps training users.
    test_prop : float
        Fraction of each held-out user's items that become targets (paper 0.2).
    seed : int
        Seeds the user permutation and the per-user holdout (the reference
        code uses 98765).
    min_items_to_split : int
        Held-out users need at least this many items (after the item filter),
        and at least one target, to be split; shorter ones are left out of the
        held-out sets and counted in ``info`` (reference code: 5).

    Returns
    -------
    Split
        Checked for leakage.
    """

    check_probability(test_prop, "test_prop")
    check_seed(seed)
    n_users = data.n_users
    n_heldout = _resolve_count(heldout_users, n_users)
    if 2 * n_heldout >= n_users:
        raise DataError(
            f"{data.source or 'data set'}: {n_users} users after preprocessing cannot give "
            f"{n_heldout} validation and {n_heldout} test users and still leave training users"
        )
    rng = np.random.default_rng(seed)
    train_idx, val_idx, test_idx = _partition_users(n_users, n_heldout, rng)

    X = data.matrix
    items = np.flatnonzero(np.diff(X[train_idx].tocsc().indptr) > 0)  # items seen in training
    dropped_items = X.shape[1] - len(items)
    X = X[:, items].tocsr()
    # Validation users draw their holdout from rng before test users do.
    val_in, val_out, val_enough = _fold_in_and_out(X[val_idx], test_prop, rng, min_items_to_split)
    test_in, test_out, test_enough = _fold_in_and_out(X[test_idx], test_prop, rng, min_items_to_split)
    split = Split(
        protocol=STRONG,
        train=X[train_idx].tocsr(),
        val_in=val_in,
        val_out=val_out,
        test_in=test_in,
        test_out=test_out,
        item_ids=data.item_ids[items],
        train_users=data.user_ids[train_idx],
        val_users=data.user_ids[val_idx[val_enough]],
        test_users=data.user_ids[test_idx[test_enough]],
        info={
            "seed": seed,
            "heldout_users": n_heldout,
            "test_prop": test_prop,
            "min_items_to_split": min_items_to_split,
            "dropped_items_unseen_in_train": dropped_items,
            "dropped_val_users_too_short": int((~val_enough).sum()),
            "dropped_test_users_too_short": int((~test_enough).sum()),
        },
    )
    split.check()
    return split


def _partition_users(
    n_users: int, n_heldout: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the training, validation and test users, each sorted.

    One permutation decides membership: its last ``n_heldout`` users are test
    users, the ``n_heldout`` before them validation users, the rest training users.
    """
    order = rng.permutation(n_users)
    train_idx = order[: n_users - 2 * n_heldout]
    val_idx = order[n_users - 2 * n_heldout : n_users - n_heldout]
    test_idx = order[n_users - n_heldout :]
    # Keep users in their original order within each part (as the reference
    # code's sorted unique ids do); the permutation only decides membership.
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def _fold_in_and_out(
    rows: sp.csr_matrix, prop: float, rng: np.random.Generator, min_items: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Held-out users' rows split into (fold-in, targets), and which rows were long enough.

    Rows with fewer than ``min_items`` items, or so few that ``int(prop · n)``
    is 0, would get no targets: they are left out of both matrices; the bool
    mask (n_rows,) marks the rows kept.
    """
    n = np.diff(rows.indptr)
    # int(prop · n) ≥ 1 always holds for the paper's prop = 0.2 and min_items = 5.
    enough = (n >= min_items) & ((prop * n).astype(np.int64) >= 1)
    X_in, X_out = _holdout_rows(rows[enough], prop, rng, min_items)
    return X_in, X_out, enough


def given_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    val_prop: float = 0.2,
    seed: int = 98765,
    min_items_to_split: int = 5,
    source: str = "",
    protocol: str = GIVEN,
    info: dict | None = None,
) -> Split:
    """Build the given-split protocol from train and test (user, item) frames.

    The weak-generalization and temporal protocols
    (:mod:`recae.evaluation.temporal`) make their train and test frames and
    build their split here, under their own ``protocol`` name, with ``info``
    (their parameters) added to the split's.

    Parameters
    ----------
    train, test : DataFrame with ``user`` and ``item`` columns
        Each user's train rows are the input; the test rows the targets.
    val_prop : float
        Fraction of each user's train items held out as validation targets
        (users with ≥ ``min_items_to_split`` train items); the rest of the
        train row is the validation input and the training matrix.
    seed : int
        Seeds the validation holdout.

    Returns
    -------
    Split
        ``train`` (train rows minus the validation holdout), ``val_in`` (the
        same rows) / ``val_out`` (the holdout) for users with a holdout,
        ``test_in`` (full train rows) / ``test_out`` (test rows) for users
        with test items, and ``refit_train`` (full train rows). Test items
        never seen in training, test rows of users with no train row, and
        test items already in the user's train row are dropped, with counts
        in ``info`` and a warning.
    """

    check_probability(val_prop, "val_prop")
    check_seed(seed)
    users, items, full = _index_train(train.drop_duplicates(["user", "item"]))
    target, counts = _given_targets(test.drop_duplicates(["user", "item"]), users, items, full)
    dropped = {k: v for k, v in counts.items() if v}
    if dropped:
        warnings.warn(f"{source or 'given split'}: dropped test pairs: {dropped}", stacklevel=2)

    rng = np.random.default_rng(seed)
    fit_rows, holdout = _holdout_rows(full, val_prop, rng, min_items_to_split)
    has_val = np.diff(holdout.indptr) > 0
    has_test = np.diff(target.indptr) > 0
    split = Split(
        protocol=protocol,
        train=fit_rows,
        val_in=fit_rows[has_val],
        val_out=holdout[has_val],
        test_in=full[has_test],
        test_out=target[has_test],
        item_ids=items,
        train_users=users,
        val_users=users[has_val],
        test_users=users[has_test],
        refit_train=full,
        info={
            "seed": seed,
            "val_prop": val_prop,
            "min_items_to_split": min_items_to_split,
            "users_without_test_items": int((~has_test).sum()),
            **counts,
            **(info or {}),
        },
    )
    split.check()
    return split


def _index_train(train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Sorted unique users and items of the (deduplicated) train pairs, and their
    binary CSR matrix of shape (n_users, n_items)."""
    users = np.unique(train["user"].to_numpy())
    items = np.unique(train["item"].to_numpy())
    u_tr = np.searchsorted(users, train["user"].to_numpy())
    i_tr = np.searchsorted(items, train["item"].to_numpy())
    full = sp.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (u_tr, i_tr)), shape=(len(users), len(items))
    )
    full.sort_indices()
    return users, items, full


def _given_targets(
    test: pd.DataFrame, users: np.ndarray, items: np.ndarray, full: sp.csr_matrix
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """The test pairs as targets over the train rows and columns (shape of ``full``).

    Pairs of unknown users or items, and pairs already in the user's train row,
    are dropped; the counts of each come back under ``dropped_test_pairs_*``.
    """
    t_users, t_items = test["user"].to_numpy(), test["item"].to_numpy()
    known_user = np.isin(t_users, users)
    known_item = np.isin(t_items, items)
    keep = known_user & known_item
    u_te = np.searchsorted(users, t_users[keep])
    i_te = np.searchsorted(items, t_items[keep])
    target = sp.csr_matrix((np.ones(len(u_te), dtype=np.float32), (u_te, i_te)), shape=full.shape)
    target.sum_duplicates()
    overlap = target.multiply(full)
    n_overlap = overlap.nnz
    if n_overlap:
        target = (target - overlap).tocsr()
        target.eliminate_zeros()
    target.sort_indices()
    counts = {
        "dropped_test_pairs_unknown_user": int((~known_user).sum()),
        "dropped_test_pairs_unknown_item": int((known_user & ~known_item).sum()),
        "dropped_test_pairs_in_train_row": int(n_overlap),
    }
    return target, counts
