"""Tests for recae.data.filters: binarize and the iterative k-core."""

from __future__ import annotations

import pandas as pd

from recae.data import binarize, kcore, read_ml100k, to_interactions
from recae.errors import UsageError
from tests.data_helpers import EXPECTED_SMALL, raises


def test_binarize_keeps_strictly_greater_and_passes_implicit_data_through():
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 3], "rating": [3.5, 4.0, 5.0]})
    assert binarize(frame)["item"].tolist() == [2, 3]
    implicit = frame.drop(columns="rating")
    assert binarize(implicit) is implicit


def test_kcore_iterates_until_stable():
    # Item 9 has one user; dropping it leaves user 2 with one item, which
    # (min_user=2) removes user 2, which leaves item 1 with one user ...
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3], "item": [1, 2, 3, 1, 9, 2, 3]})
    core = kcore(frame, min_user=2, min_item=2)
    assert core.values.tolist() == [[1, 2], [1, 3], [3, 2], [3, 3]]


def test_kcore_counts_distinct_items_and_keeps_the_latest_duplicate():
    frame = pd.DataFrame(
        {
            "user": [1, 1, 1, 2, 2],
            "item": [5, 5, 5, 5, 6],
            "rating": [1.0, 3.0, 2.0, 4.0, 4.0],
            "timestamp": [10, 30, 20, 10, 10],
        }
    )
    core = kcore(frame, min_user=2)
    assert core["user"].tolist() == [2, 2]  # user 1 rated one distinct item three times
    deduped = kcore(frame, min_user=1)
    assert deduped.loc[deduped["user"] == 1, "rating"].tolist() == [3.0]  # timestamp 30 wins


def test_kcore_rejects_negative_thresholds():
    assert "min_user=-1" in raises(UsageError, kcore, EXPECTED_SMALL, min_user=-1)


def test_ml100k_paper_preprocessing(shared_datasets):
    """Mult-VAE's rule on ML-100K: keep ratings > 3.5, then users with >= 5 items."""
    positives = binarize(read_ml100k(shared_datasets / "ml-100k/u.data"))
    assert len(positives) == 55_375
    core = kcore(positives, min_user=5)
    matrix = to_interactions(core, source="ml-100k")
    assert (matrix.n_users, matrix.n_items, matrix.nnz) == (938, 1_447, 55_361)
    assert len(core) == 55_361  # ML-100K has no duplicate (user, item) pairs


def test_binarize_judges_a_pair_by_its_last_rating():
    frame = pd.DataFrame(
        {
            "user": [1, 1, 2, 2, 3, 3],
            "item": [5, 5, 6, 6, 7, 7],
            "rating": [5.0, 1.0, 1.0, 5.0, 2.0, 4.0],
            "timestamp": [10, 20, 20, 10, 5, 9],
        }
    )
    # user 1 and user 2 rated their item high, then (by timestamp) at most 3.5
    assert binarize(frame)[["user", "item", "rating"]].values.tolist() == [[3, 7, 4.0]]
    by_position = frame.drop(columns="timestamp")
    assert binarize(by_position)["user"].tolist() == [2, 3]


def test_binarize_refuses_a_threshold_that_is_not_a_number():
    assert "nan" in raises(UsageError, binarize, EXPECTED_SMALL, float("nan"))
