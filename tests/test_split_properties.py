"""Properties of the evaluation protocols (recae.evaluation.protocols) over random data.

Whatever the interactions: no user and no interaction is in two parts, a held-out
user's input and targets are disjoint and together are their row, the same seed
gives the same split (and fingerprint), and another seed another split.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from recae.data import Interactions
from recae.evaluation.protocols import Split, given_split, strong_generalization

# Modest example counts and small shapes: the whole file runs in a few seconds.
PROPERTY = settings(max_examples=40, deadline=None)


def _pairs(X: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> set[tuple]:
    """The (raw user, raw item) pairs stored in ``X``."""
    X = sp.coo_matrix(X)
    return set(zip(users[X.row].tolist(), items[X.col].tolist(), strict=True))


def _rows_of(X: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> dict:
    """Each raw user's set of raw items in ``X``."""
    return {u: set(items[X[r].indices].tolist()) for r, u in enumerate(users.tolist())}


def _parts(split: Split) -> tuple:
    """Each part's raw user ids and matrices: training, validation, test."""
    return (
        (split.train_users, (split.train,)),
        (split.val_users, (split.val_in, split.val_out)),
        (split.test_users, (split.test_in, split.test_out)),
    )


@st.composite
def strong_cases(draw):
    """``(data, args)``: a small random binary matrix (rows may be empty) with
    shuffled raw ids, and arguments of :func:`strong_generalization` it allows."""
    n_users = draw(st.integers(3, 30))
    n_items = draw(st.integers(1, 15))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = sp.csr_matrix((rng.random((n_users, n_items)) < draw(st.floats(0.05, 0.9))).astype(np.float32))
    user_ids = rng.permutation(n_users * 3)[:n_users] + 1000
    item_ids = np.array([f"item-{i}" for i in rng.permutation(n_items * 2)[:n_items]])
    largest = (n_users - 1) // 2
    # a count, or a fraction that rounds to 1 .. largest users
    heldout = st.one_of(st.integers(1, largest), st.floats(0.5 / n_users, (largest + 0.49) / n_users))
    args = {
        "heldout_users": draw(heldout),
        "test_prop": draw(st.sampled_from([0.1, 0.2, 0.25, 0.5])),
        "min_items_to_split": draw(st.integers(1, 6)),
    }
    return Interactions(X, user_ids, item_ids, "random"), args


# Held-out users of one item get int(0.1 · 1) = 0 targets: left out and counted, like
# users with fewer than min_items_to_split items.
ONE_ITEM_USERS = (
    Interactions(sp.csr_matrix(np.ones((3, 1), dtype=np.float32)), np.arange(3), np.arange(1)),
    {"heldout_users": 1, "test_prop": 0.1, "min_items_to_split": 1},
)


@PROPERTY
@given(strong_cases(), st.integers(0, 2**32 - 1))
@example(ONE_ITEM_USERS, 0)
def test_strong_generalization_never_leaks_and_partitions_the_users(case, seed):
    data, args = case
    split = strong_generalization(data, seed=seed, **args)
    parts = [set(users.tolist()) for users, _ in _parts(split)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    dropped = split.info["dropped_val_users_too_short"] + split.info["dropped_test_users_too_short"]
    assert sum(map(len, parts)) + dropped == data.n_users
    assert set().union(*parts) <= set(data.user_ids.tolist())
    # the items are exactly those of the training users
    rows = _rows_of(data.matrix, data.user_ids, data.item_ids)
    assert set(split.item_ids.tolist()) == set().union(*(rows[u] for u in parts[0]))
    kept = set(split.item_ids.tolist())
    ids = split.item_ids
    assert _rows_of(split.train, split.train_users, ids) == {u: rows[u] & kept for u in parts[0]}
    for users, (X_in, X_out) in _parts(split)[1:]:
        fold_in, targets = _rows_of(X_in, users, ids), _rows_of(X_out, users, ids)
        for u in users.tolist():
            assert not fold_in[u] & targets[u]
            assert fold_in[u] | targets[u] == rows[u] & kept
            assert targets[u]
    # no (user, item) pair in two parts, nor in a held-out user's input and targets
    seen: set[tuple] = set()
    for users, matrices in _parts(split):
        pairs = [_pairs(X, users, ids) for X in matrices]
        for p in pairs:
            assert not p & seen
        seen.update(*pairs)


@PROPERTY
@given(strong_cases(), st.integers(0, 2**32 - 1))
@example(ONE_ITEM_USERS, 0)
def test_strong_generalization_is_repeatable_under_a_seed(case, seed):
    data, args = case
    a, b = (strong_generalization(data, seed=seed, **args) for _ in range(2))
    assert a.fingerprint() == b.fingerprint()
    for name, m in a.matrices().items():
        assert (m != b.matrices()[name]).nnz == 0, name
    for ids in ("item_ids", "train_users", "val_users", "test_users"):
        np.testing.assert_array_equal(getattr(a, ids), getattr(b, ids))


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1))
def test_strong_generalization_differs_under_another_seed(seed, offset):
    # 60 users of 10 items, 10 held out twice: two seeds agree on the parts with
    # odds far below 1e-20.
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((60, 10)) < 0.8).astype(np.float32))
    data = Interactions(X, np.arange(60), np.arange(10))
    a = strong_generalization(data, heldout_users=10, seed=seed)
    b = strong_generalization(data, heldout_users=10, seed=(seed + offset) % 2**32)
    assert a.fingerprint() != b.fingerprint()
    assert set(a.test_users.tolist()) != set(b.test_users.tolist()) or (a.test_out != b.test_out).nnz


@st.composite
def given_frames(draw):
    """Random train and test frames over shared ids; test pairs may name unknown
    users or items, repeat train pairs, or leave users without test items."""
    n_users = draw(st.integers(1, 15))
    n_items = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    train_density, test_density = draw(st.floats(0.1, 0.9)), draw(st.floats(0.0, 0.5))
    train = np.argwhere(rng.random((n_users, n_items)) < train_density)
    test = np.argwhere(rng.random((n_users + 2, n_items + 2)) < test_density)  # +2: unknown ids
    return (
        pd.DataFrame({"user": train[:, 0] + 100, "item": train[:, 1] * 7}),
        pd.DataFrame({"user": test[:, 0] + 100, "item": test[:, 1] * 7}),
    )


def _given(train: pd.DataFrame, test: pd.DataFrame, seed: int, val_prop: float, min_items: int) -> Split:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counts of dropped test pairs
        return given_split(train, test, val_prop=val_prop, seed=seed, min_items_to_split=min_items)


# A user with train items and no test item: a validation user who is no test user.
NO_TEST_ITEMS = (pd.DataFrame({"user": [100, 100], "item": [7, 14]}), pd.DataFrame({"user": [], "item": []}))


@PROPERTY
@given(given_frames(), st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.2, 0.5]), st.integers(1, 6))
@example(NO_TEST_ITEMS, 0, 0.5, 1)
def test_given_split_never_leaks_and_is_repeatable(frames, seed, val_prop, min_items):
    train, test = frames
    assume(not train.empty)
    split = _given(train, test, seed, val_prop, min_items)
    ids = split.item_ids
    full = _rows_of(split.refit_train, split.train_users, ids)
    assert full == {u: set(g["item"].tolist()) for u, g in train.groupby("user")}
    (_, (fit,)), (_, (val_in, val_out)), (_, (test_in, test_out)) = (
        (users, tuple(_rows_of(X, users, ids) for X in matrices)) for users, matrices in _parts(split)
    )
    test_pairs = set(zip(test["user"].tolist(), test["item"].tolist(), strict=True))
    for u in split.val_users.tolist():
        # validation: carved from the train row, input and targets disjoint, never a test target
        assert val_out[u] and not val_in[u] & val_out[u]
        assert val_in[u] == fit[u] and fit[u] | val_out[u] == full[u]
        assert not val_out[u] & test_out.get(u, set())
    for u in split.train_users.tolist():
        if u not in val_out:
            assert fit[u] == full[u]
    # test: the full train row in; out, every test item the train data knows that is not in that row
    known = set(ids.tolist())
    targets = {u: {i for v, i in test_pairs if v == u and i in known} - full[u] for u in full}
    assert split.test_users.tolist() == [u for u in split.train_users.tolist() if targets[u]]
    for u in split.test_users.tolist():
        assert test_in[u] == full[u] and test_out[u] == targets[u]
    again = _given(train, test, seed, val_prop, min_items)
    assert again.fingerprint() == split.fingerprint()


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1))
def test_given_split_differs_under_another_seed(seed, offset):
    # 40 users of 10 train items: the validation holdouts of two seeds agree with
    # odds of 45^-40. User 99 makes the test items known.
    pairs = [(u, i) for u in range(40) for i in range(10)] + [(99, i) for i in range(10, 13)]
    train = pd.DataFrame(pairs, columns=["user", "item"])
    test = pd.DataFrame([(u, 10 + u % 3) for u in range(40)], columns=["user", "item"])
    a = _given(train, test, seed, 0.2, 5)
    b = _given(train, test, (seed + offset) % 2**32, 0.2, 5)
    assert a.fingerprint() != b.fingerprint()
    assert (a.val_out != b.val_out).nnz
