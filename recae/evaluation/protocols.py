"""Evaluation protocols: how interactions become train / validation / test matrices.

Two protocols:

``strong_generalization`` (Liang et al. 2018, the Mult-VAE paper)
    Users are shuffled with a seed and split into train, validation and test
    users. Models train on the training users' rows only. Items never seen
    among training users are dropped everywhere. Each validation and test
    user's items are split at random into fold-in (80%, the model's input) and
    held-out (20%, the targets), exactly as the reference code does: users
    with fewer than ``min_items_to_split`` items (after the item filter) would
    get no targets there, so they are left out of the held-out sets and
    counted. Models are selected on validation NDCG@100.

``given_split``
    A fixed train/test split (e.g. ``ml-1m-lcfn``): each user's train row is
    the model's input, the test row its targets; all items not in the train row
    are ranked. Validation is carved from the train rows (a seeded fraction of
    each user's train items), never from the test targets. After selection
    the model may be refit on the full train rows (``Split.refit_train``).

Every split is checked for leakage (:meth:`Split.check`) and fingerprinted
(:meth:`Split.fingerprint`), so runs on the same split can be found together.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.data import Interactions
from recae.errors import DataError

STRONG = "strong-generalization"
GIVEN = "given"


@dataclass(frozen=True)
class Split:
    """The matrices of one evaluation protocol, all over the same item columns.

    Attributes
    ----------
    protocol : str
        ``"strong-generalization"`` or ``"given"``.
    train : CSR (n_train_users, n_items)
        What models are fitted on while they are selected.
    val_in, val_out : CSR (n_val_users, n_items)
        Validation users' input rows and held-out targets.
    test_in, test_out : CSR (n_test_users, n_items)
        Test users' input rows and targets.
    item_ids : array (n_items,)
        Raw item id of each column.
    train_users, val_users, test_users : arrays
        Raw user id of each row of the matching matrices.
    refit_train : CSR or None
        Given split only: the full train rows (train plus the validation
        holdout), for refitting after selection.
    info : dict
        Protocol parameters and counts (seed, fractions, dropped users/items).
    """

    protocol: str
    train: sp.csr_matrix
    val_in: sp.csr_matrix
    val_out: sp.csr_matrix
    test_in: sp.csr_matrix
    test_out: sp.csr_matrix
    item_ids: np.ndarray
    train_users: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray
    refit_train: sp.csr_matrix | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def matrices(self) -> dict[str, sp.csr_matrix]:
        out = {
            "train": self.train,
            "val_in": self.val_in,
            "val_out": self.val_out,
            "test_in": self.test_in,
            "test_out": self.test_out,
        }
        if self.refit_train is not None:
            out["refit_train"] = self.refit_train
        return out

    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the protocol, the matrices and the raw ids.

        Two splits with the same fingerprint hold the same interactions in the
        same rows and columns; MLflow runs carry it as the ``split_fingerprint`` tag.
        """
        h = hashlib.sha256(self.protocol.encode())
        for name, m in self.matrices().items():
            h.update(name.encode())
            h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.indices, dtype=np.int64).tobytes())
        for ids in (self.item_ids, self.train_users, self.val_users, self.test_users):
            h.update("\x1f".join(map(str, ids.tolist())).encode())
            h.update(b"\x1e")
        return h.hexdigest()[:16]

    def check(self) -> None:
        """Raise ``DataError`` if the split leaks or is malformed.

        Checks: every matrix has ``n_items`` columns and rows matching its user
        ids; input and target rows have the same users; no target is also an
        input item of the same user; every held-out user has at least one
        target; under strong generalization, training, validation and test
        users are disjoint; under the given split, validation targets come
        from the train rows and never from the test targets.
        """
        for name, m in self.matrices().items():
            if m.shape[1] != self.n_items:
                raise DataError(f"split: {name} has {m.shape[1]} item columns, expected {self.n_items}")
        for name, m, users in (
            ("train", self.train, self.train_users),
            ("val_in", self.val_in, self.val_users),
            ("val_out", self.val_out, self.val_users),
            ("test_in", self.test_in, self.test_users),
            ("test_out", self.test_out, self.test_users),
        ):
            if m.shape[0] != len(users):
                raise DataError(f"split: {name} has {m.shape[0]} rows but {len(users)} user ids")
        for part, X_in, X_out in (("validation", self.val_in, self.val_out), ("test", self.test_in, self.test_out)):
            overlap = X_in.multiply(X_out).nnz
            if overlap:
                raise DataError(f"split leaks: {overlap} {part} targets are also input items of the same user")
            empty = int((np.diff(X_out.indptr) == 0).sum())
            if empty:
                raise DataError(f"split: {empty} {part} users have no held-out targets")
        if self.protocol == STRONG:
            sets = {
                "train": set(self.train_users.tolist()),
                "validation": set(self.val_users.tolist()),
                "test": set(self.test_users.tolist()),
            }
            for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
                shared = sets[a] & sets[b]
                if shared:
                    raise DataError(
                        f"split leaks: {len(shared)} users are both {a} and {b} users "
                        f"(e.g. {sorted(shared, key=str)[:3]})"
                    )
        elif self.protocol == GIVEN:
            if self.refit_train is None:
                raise DataError("split: the given protocol needs refit_train (the full train rows)")
            # Validation targets must come from the train rows, never from the test rows.
            pos = {u: i for i, u in enumerate(self.test_users.tolist())}
            rows = np.array([pos.get(u, -1) for u in self.val_users.tolist()])
            if (rows < 0).any():
                raise DataError("split: validation users missing from the test-input rows")
            if self.val_out.multiply(self.test_out[rows]).nnz:
                raise DataError("split leaks: validation targets overlap the test targets")
            if (self.val_out - self.val_out.multiply(self.test_in[rows])).nnz:
                raise DataError("split leaks: validation targets that are not train items")
        else:
            raise DataError(f"split: unknown protocol {self.protocol!r}")

    def describe(self) -> dict[str, Any]:
        """Counts and parameters, flat, for logging and printing."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "n_items": self.n_items,
            "n_train_users": self.train.shape[0],
            "n_train_interactions": self.train.nnz,
            "n_val_users": self.val_in.shape[0],
            "n_test_users": self.test_in.shape[0],
            "n_test_targets": self.test_out.nnz,
        }
        out.update(self.info)
        return out


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
    if isinstance(n_heldout, float) and 0 < n_heldout < 1:
        return max(1, round(n_heldout * n_users))
    if n_heldout != int(n_heldout) or n_heldout < 1:
        raise DataError(
            f"heldout_users={n_heldout}: expected a whole number ≥ 1 or a fraction in (0, 1)"
        )
    return int(n_heldout)


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
        Held-out users need at least this many items (after the item filter)
        to be split; shorter ones are left out of the held-out sets and
        counted in ``info`` (reference code: 5).

    Returns
    -------
    Split
        Checked for leakage.
    """
    if not 0 < test_prop < 1:
        raise DataError(f"test_prop={test_prop}: expected a fraction in (0, 1)")
    n_users = data.n_users
    n_heldout = _resolve_count(heldout_users, n_users)
    if 2 * n_heldout >= n_users:
        raise DataError(
            f"{data.source or 'data set'}: {n_users} users after preprocessing cannot give "
            f"{n_heldout} validation and {n_heldout} test users and still leave training users"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_users)
    train_idx = order[: n_users - 2 * n_heldout]
    val_idx = order[n_users - 2 * n_heldout : n_users - n_heldout]
    test_idx = order[n_users - n_heldout :]
    # Keep users in their original order within each part (as the reference
    # code's sorted unique ids do); the permutation only decides membership.
    train_idx, val_idx, test_idx = np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)

    X = data.matrix
    items = np.flatnonzero(np.diff(X[train_idx].tocsc().indptr) > 0)  # items seen in training
    dropped_items = X.shape[1] - len(items)
    X = X[:, items].tocsr()

    def heldout(idx: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, int]:
        rows = X[idx]
        enough = np.diff(rows.indptr) >= min_items_to_split
        X_in, X_out = _holdout_rows(rows[enough], test_prop, rng, min_items_to_split)
        return X_in, X_out, data.user_ids[idx[enough]], int((~enough).sum())

    val_in, val_out, val_users, val_dropped = heldout(val_idx)
    test_in, test_out, test_users, test_dropped = heldout(test_idx)
    split = Split(
        protocol=STRONG,
        train=X[train_idx].tocsr(),
        val_in=val_in,
        val_out=val_out,
        test_in=test_in,
        test_out=test_out,
        item_ids=data.item_ids[items],
        train_users=data.user_ids[train_idx],
        val_users=val_users,
        test_users=test_users,
        info={
            "seed": seed,
            "heldout_users": n_heldout,
            "test_prop": test_prop,
            "min_items_to_split": min_items_to_split,
            "dropped_items_unseen_in_train": dropped_items,
            "dropped_val_users_too_short": val_dropped,
            "dropped_test_users_too_short": test_dropped,
        },
    )
    split.check()
    return split


def given_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    val_prop: float = 0.2,
    seed: int = 98765,
    min_items_to_split: int = 5,
    source: str = "",
) -> Split:
    """Build the given-split protocol from train and test (user, item) frames.

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
    if not 0 < val_prop < 1:
        raise DataError(f"val_prop={val_prop}: expected a fraction in (0, 1)")
    train = train.drop_duplicates(["user", "item"])
    test = test.drop_duplicates(["user", "item"])
    users = np.unique(train["user"].to_numpy())
    items = np.unique(train["item"].to_numpy())
    u_tr = np.searchsorted(users, train["user"].to_numpy())
    i_tr = np.searchsorted(items, train["item"].to_numpy())
    full = sp.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (u_tr, i_tr)), shape=(len(users), len(items))
    )
    full.sort_indices()

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
    dropped = {k: v for k, v in counts.items() if v}
    if dropped:
        warnings.warn(f"{source or 'given split'}: dropped test pairs: {dropped}", stacklevel=2)

    rng = np.random.default_rng(seed)
    fit_rows, holdout = _holdout_rows(full, val_prop, rng, min_items_to_split)
    has_val = np.diff(holdout.indptr) > 0
    has_test = np.diff(target.indptr) > 0
    split = Split(
        protocol=GIVEN,
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
        },
    )
    split.check()
    return split
