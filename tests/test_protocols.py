"""Strong generalization and the given split: sizes, determinism, leakage checks, fingerprints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recae.data import Interactions
from recae.errors import DataError
from recae.evaluation.protocols import GIVEN, STRONG, given_split, strong_generalization


def _interactions(n_users: int = 200, n_items: int = 50, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    X = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    X[:, -1] = 0
    X[: n_users // 2, -1] = 1  # an item only some users have
    return Interactions(sp.csr_matrix(X), np.arange(100, 100 + n_users), np.arange(n_items) * 10, "synthetic")


def test_strong_generalization_partitions_users_and_holds_out_20_percent():
    data = _interactions()
    split = strong_generalization(data, heldout_users=20, test_prop=0.2, seed=1)
    assert split.protocol == STRONG
    assert split.train.shape[0] == 160 and split.val_in.shape[0] == 20 and split.test_in.shape[0] == 20
    users = [set(split.train_users), set(split.val_users), set(split.test_users)]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert set().union(*users) == set(data.user_ids.tolist())
    # each held-out user: int(0.2 · n) targets, the rest fold-in, disjoint, together the full row
    full = data.matrix[np.searchsorted(data.user_ids, split.test_users)]
    n = np.diff(full.indptr)
    assert np.array_equal(np.diff(split.test_out.indptr), (0.2 * n).astype(int))
    assert np.array_equal(np.diff(split.test_in.indptr), n - (0.2 * n).astype(int))
    assert split.test_in.multiply(split.test_out).nnz == 0


def test_items_unseen_among_training_users_are_dropped():
    data = _interactions()
    X = data.matrix.tolil()
    X[:, 0] = 0
    X[5, 0] = 1  # item 0 belongs to user 5 only
    data = dataclasses.replace(data, matrix=X.tocsr())
    split = strong_generalization(data, heldout_users=20, seed=3)
    in_train = 105 in split.train_users
    assert (0 in split.item_ids) == in_train
    assert split.info["dropped_items_unseen_in_train"] == (0 if in_train else 1)


def test_split_is_seeded_and_fingerprinted():
    data = _interactions()
    a = strong_generalization(data, heldout_users=0.1, seed=7)
    b = strong_generalization(data, heldout_users=0.1, seed=7)
    c = strong_generalization(data, heldout_users=0.1, seed=8)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 16
    assert a.info["heldout_users"] == 20


def test_too_few_users_for_the_heldout_sets_is_a_clear_error():
    with pytest.raises(DataError, match=r"200 users .* 100 validation and 100 test users"):
        strong_generalization(_interactions(), heldout_users=100)


def test_leakage_check_catches_shared_users_and_overlapping_targets():
    split = strong_generalization(_interactions(), heldout_users=20, seed=1)
    leaked = dataclasses.replace(split, test_users=np.concatenate([split.train_users[:1], split.test_users[1:]]))
    with pytest.raises(DataError, match="both train and test users"):
        leaked.check()
    overlap = dataclasses.replace(split, test_out=(split.test_out + split.test_in).tocsr())
    with pytest.raises(DataError, match="targets are also input items"):
        overlap.check()


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = [(u, i) for u in range(30) for i in rng.choice(40, size=12, replace=False)]
    test = [(u, i) for u in range(30) for i in rng.choice(40, size=3, replace=False)]
    return pd.DataFrame(train, columns=["user", "item"]), pd.DataFrame(test, columns=["user", "item"])


def test_given_split_carves_validation_from_train_rows_only():
    train, test = _frames()
    with pytest.warns(UserWarning, match="in_train_row"):
        split = given_split(train, test, val_prop=0.25, seed=0)
    assert split.protocol == GIVEN
    assert split.refit_train.nnz == len(train.drop_duplicates())
    # the fitting matrix plus the validation holdout is the full train matrix
    rows = np.searchsorted(split.train_users, split.val_users)
    rebuilt = split.train.tolil()
    rebuilt[rows] = rebuilt[rows] + split.val_out
    assert (sp.csr_matrix(rebuilt) != split.refit_train).nnz == 0
    # validation targets never touch the test targets; test input is the full train row
    test_rows = np.searchsorted(split.test_users, split.val_users)
    assert split.val_out.multiply(split.test_out[test_rows]).nnz == 0
    assert (split.test_in != split.refit_train[np.searchsorted(split.train_users, split.test_users)]).nnz == 0
    # each user with ≥ 5 train items holds out int(0.25 · n)
    assert np.all(np.diff(split.val_out.indptr) == (0.25 * np.diff(split.refit_train[rows].indptr)).astype(int))


def test_given_split_drops_unknown_items_and_users_with_counts():
    train, test = _frames()
    test = pd.concat([test, pd.DataFrame({"user": [999, 0], "item": [1, 12345]})])
    with pytest.warns(UserWarning):
        split = given_split(train, test)
    assert split.info["dropped_test_pairs_unknown_user"] == 1
    assert split.info["dropped_test_pairs_unknown_item"] == 1
    assert 999 not in split.test_users
