"""Tests of recae.evaluation.metrics (per-user metrics, coverage, evaluate) against values
worked out by hand.

Discounts used below: 1/log2(2) = 1, 1/log2(3) = 0.63093, 1/log2(4) = 0.5,
1/log2(5) = 0.43068. Ideal DCGs: IDCG(1) = 1, IDCG(2) = 1.63093,
IDCG(3) = 2.13093, IDCG(4) = 2.56161.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recae.errors import DataError, UsageError
from recae.evaluation.metrics import (
    METRICS,
    EvaluationResult,
    coverage,
    evaluate,
    per_user_metrics,
)
from recae.evaluation.ranking import topk
from recae.evaluation.stats import MetricSummary, summarize

N_ITEMS = 8


def csr(rows: list[list[int]], n_items: int = N_ITEMS) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for u, items in enumerate(rows):
        dense[u, items] = 1.0
    return sp.csr_matrix(dense)


# Four users, eight items, lists of length 4, cut-offs 2 and 4.
TOP = np.array(
    [
        [3, 1, 5, 0],  # user 0: targets {0, 1, 7}: hits at ranks 2 and 4
        [2, 6, -1, -1],  # user 1: targets {2, 7}: hit at rank 1; padding (-1 must not match item 7)
        [0, 1, 2, 3],  # user 2: no targets → NaN, skipped
        [4, 5, 6, 7],  # user 3: targets {0..5} (|T| = 6 > K): hits at ranks 1 and 2
    ]
)
TARGETS = csr([[0, 1, 7], [2, 7], [], [0, 1, 2, 3, 4, 5]])

NAN = math.nan
EXPECTED = {
    # user 0: hits@2 = 1, |T| = 3     user 1: hits@2 = 1, |T| = 2     user 3: hits@2 = 2, |T| = 6
    "recall_at_2": [1 / 3, 1 / 2, NAN, 2 / 6],
    # K=2 < |T| for users 0 and 3, so the normalized recall differs: hits / min(2, |T|)
    "recall_norm_at_2": [1 / 2, 1 / 2, NAN, 2 / 2],
    # user 0: DCG = 1/log2(3) = 0.63093, IDCG(2) = 1.63093 → 0.38685
    # user 1: DCG = 1/log2(2) = 1, IDCG(2) = 1.63093 → 0.61315
    # user 3: DCG = 1 + 0.63093 = IDCG(2) → 1
    "ndcg_at_2": [0.38685, 0.61315, NAN, 1.0],
    "precision_at_2": [1 / 2, 1 / 2, NAN, 2 / 2],
    # AP@2 = Σ P@r·rel_r / min(2, |T|):
    # user 0: P@2·1 = 1/2 → /2 = 0.25; user 1: P@1·1 = 1 → /2 = 0.5; user 3: (1 + 1)/2 = 1
    "map_at_2": [0.25, 0.5, NAN, 1.0],
    # first hit at rank 2, 1, -, 1
    "mrr_at_2": [0.5, 1.0, NAN, 1.0],
    "hit_rate_at_2": [1.0, 1.0, NAN, 1.0],
    # K=4: user 0 hits@4 = 2, user 1 hits@4 = 1 (two padded slots), user 3 hits@4 = 2
    "recall_at_4": [2 / 3, 1 / 2, NAN, 2 / 6],
    # K=4 > |T| for users 0 and 1: recall_norm = recall there; user 3: 2 / min(4, 6) = 0.5
    "recall_norm_at_4": [2 / 3, 1 / 2, NAN, 2 / 4],
    # user 0: DCG = 0.63093 + 1/log2(5) = 1.06161, IDCG(3) = 2.13093 → 0.49819
    # user 1: DCG = 1, IDCG(2) = 1.63093 → 0.61315
    # user 3: DCG = 1.63093, IDCG(4) = 2.56161 → 0.63668
    "ndcg_at_4": [0.49819, 0.61315, NAN, 0.63668],
    # always divided by K = 4, even for user 1's padded list and user 1's |T| = 2
    "precision_at_4": [2 / 4, 1 / 4, NAN, 2 / 4],
    # user 0: (P@2 + P@4)/min(4, 3) = (1/2 + 2/4)/3 = 0.33333
    # user 1: P@1/min(4, 2) = 1/2;  user 3: (P@1 + P@2)/min(4, 6) = (1 + 1)/4 = 0.5
    "map_at_4": [1 / 3, 0.5, NAN, 0.5],
    "mrr_at_4": [0.5, 1.0, NAN, 1.0],
    "hit_rate_at_4": [1.0, 1.0, NAN, 1.0],
}


def test_per_user_metrics_by_hand():
    got = per_user_metrics(TOP, TARGETS, ks=(2, 4))
    assert list(got) == [f"{m}_at_{k}" for k in (2, 4) for m in METRICS]
    for key, expected in EXPECTED.items():
        assert got[key].dtype == np.float64 and got[key].shape == (4,)
        np.testing.assert_allclose(got[key], expected, atol=5e-6, err_msg=key)


def test_metric_subset_and_single_k():
    got = per_user_metrics(TOP, TARGETS, ks=4, metrics=["ndcg", "recall_norm"])
    assert list(got) == ["ndcg_at_4", "recall_norm_at_4"]
    np.testing.assert_allclose(got["ndcg_at_4"], EXPECTED["ndcg_at_4"], atol=5e-6)


def test_mrr_with_late_first_hit():
    # first hit at rank 3: MRR@2 = 0 (no hit in the first 2), MRR@3 = 1/3
    got = per_user_metrics(np.array([[0, 1, 2]]), csr([[2, 5]]), ks=(2, 3), metrics=["mrr"])
    np.testing.assert_allclose([got["mrr_at_2"][0], got["mrr_at_3"][0]], [0.0, 1 / 3])


def test_targets_are_binarized_and_explicit_zeros_ignored():
    # item 1 stored with rating 4.0 (relevant); item 2 stored as an explicit 0 (not a target)
    targets = sp.csr_matrix(
        (np.array([4.0, 0.0]), np.array([1, 2]), np.array([0, 2])), shape=(1, N_ITEMS)
    )
    got = per_user_metrics(np.array([[2, 1]]), targets, ks=(2,), metrics=["recall", "ndcg"])
    # |T| = 1, hit at rank 2: recall = 1/1; NDCG = (1/log2(3)) / IDCG(1) = 0.63093
    np.testing.assert_allclose(got["recall_at_2"], [1.0])
    np.testing.assert_allclose(got["ndcg_at_2"], [0.63093], atol=5e-6)


def test_summarize_skips_and_counts_users_without_targets():
    summary = summarize(per_user_metrics(TOP, TARGETS, ks=(2, 4)))
    s = summary["recall_at_2"]
    assert isinstance(s, MetricSummary)
    assert (s.n_users, s.n_skipped) == (3, 1)
    # mean over users 0, 1, 3 only: (1/3 + 1/2 + 1/3) / 3 = 0.38889
    assert s.mean == pytest.approx(0.388889, abs=1e-6)
    assert s.ci_low < s.mean < s.ci_high
    assert s.as_dict()["n_skipped"] == 1


def test_coverage_by_hand():
    got = coverage(TOP, N_ITEMS, ks=(2, 4))
    # top 2: {3,1} ∪ {2,6} ∪ {0,1} ∪ {4,5} = {0..6} → 7/8; top 4 adds item 7 → 8/8
    assert got == {"coverage_at_2": 7 / 8, "coverage_at_4": 1.0}
    # padding is not an item: {0, 1} of 5 items at both cut-offs
    assert coverage(np.array([[0, 1], [1, -1]]), 5, ks=(1, 2)) == {
        "coverage_at_1": 2 / 5,
        "coverage_at_2": 2 / 5,
    }


def test_bad_inputs():
    with pytest.raises(UsageError, match="K=5 exceeds"):
        per_user_metrics(TOP, TARGETS, ks=(5,))
    with pytest.raises(UsageError, match="unknown metric 'auc'"):
        per_user_metrics(TOP, TARGETS, ks=(2,), metrics=["auc"])
    with pytest.raises(UsageError, match="≥ 1"):
        per_user_metrics(TOP, TARGETS, ks=(0,))
    with pytest.raises(UsageError, match="cut-off K must be an integer, got 2.5"):
        per_user_metrics(TOP, TARGETS, ks=(2.5,))
    with pytest.raises(DataError, match="3 rows but the targets have 4"):
        per_user_metrics(TOP[:3], TARGETS, ks=(2,))
    with pytest.raises(DataError, match="from -2 to"):
        per_user_metrics(np.array([[-2, 0]]), csr([[0]]), ks=(2,))
    with pytest.raises(DataError, match="from 0 to 8"):
        per_user_metrics(np.array([[8, 0]]), csr([[0]]), ks=(2,))
    with pytest.raises(DataError, match="row 1 names item 3 more than once"):
        per_user_metrics(np.array([[0, 1], [3, 3]]), csr([[0], [3]]), ks=(2,))
    with pytest.raises(DataError, match="integer"):
        per_user_metrics(TOP.astype(float), TARGETS, ks=(2,))


# ------------------------------------------------------------------ properties
@st.composite
def lists_and_targets(draw):
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(2, 12))
    k = draw(st.integers(1, n_items))
    top, targets = [], []
    for _ in range(n_users):
        perm = draw(st.permutations(range(n_items)))
        n_pad = draw(st.integers(0, k))
        top.append(list(perm[: k - n_pad]) + [-1] * n_pad)
        targets.append(draw(st.lists(st.integers(0, n_items - 1), max_size=n_items, unique=True)))
    return np.array(top, dtype=np.int64).reshape(n_users, k), csr(targets, n_items), k


@settings(max_examples=200, deadline=None)
@given(lists_and_targets())
def test_metrics_bounded_and_recall_norm_at_least_recall(case):
    top, targets, k = case
    ks = sorted({1, k, max(1, k // 2)})
    got = per_user_metrics(top, targets, ks=ks)
    no_targets = np.diff(targets.indptr) == 0
    for key, values in got.items():
        assert np.isnan(values[no_targets]).all(), key
        v = values[~no_targets]
        assert ((v >= 0) & (v <= 1 + 1e-12)).all(), key
    for kk in ks:
        ok = ~no_targets
        assert (got[f"recall_norm_at_{kk}"][ok] >= got[f"recall_at_{kk}"][ok] - 1e-12).all()
        assert (got[f"precision_at_{kk}"][ok] <= got[f"hit_rate_at_{kk}"][ok]).all()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.permutations(range(n))), st.integers(0, 3))
def test_perfect_list_scores_one(perm, n_extra):
    # the list is exactly the targets (any order of the catalogue's first items): all 1
    targets = csr([list(perm)], len(perm) + n_extra)
    top = np.array([list(perm)])
    got = per_user_metrics(top, targets, ks=(len(perm),))
    for key in ("recall", "recall_norm", "ndcg", "precision", "map", "mrr", "hit_rate"):
        assert got[f"{key}_at_{len(perm)}"][0] == pytest.approx(1.0), key


# -------------------------------------------------------------------- evaluate
class FixedScoreModel:
    """Scores item i as (n_items - i): item 0 is always best. Ranks through topk."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.calls: list[int] = []

    def recommend(self, X, k, exclude_seen=True):
        self.calls.append(X.shape[0])
        scores = np.tile(np.arange(self.n_items, 0, -1, dtype=np.float32), (X.shape[0], 1))
        return topk(scores, k, exclude=X if exclude_seen else None)


def test_evaluate_with_a_fake_model():
    # Fold-in rows are excluded, so the lists are the unseen items in index order:
    x_in = csr([[0], [1, 2], [0, 1, 2, 3, 4, 5], []])
    x_out = csr([[1, 7], [0], [], [3]])
    # user 0: list 1,2,3 → hit at rank 1 of |T| = 2;  user 1: list 0,3,4 → hit at rank 1
    # user 2: no targets (skipped);  user 3: list 0,1,2 → no hit in the top 3
    model = FixedScoreModel(N_ITEMS)
    result = evaluate(model, x_in, x_out, ks=(1, 3), batch_size=3)
    assert isinstance(result, EvaluationResult)
    assert model.calls == [3, 1]  # batched
    assert (result.n_users, result.n_skipped) == (4, 1)
    np.testing.assert_allclose(result.per_user["recall_at_3"], [0.5, 1.0, np.nan, 0.0])
    np.testing.assert_allclose(result.per_user["precision_at_3"], [1 / 3, 1 / 3, np.nan, 0.0])
    # user 0: IDCG over min(3, 2) = 2 items: 1 / 1.63093 = 0.61315
    np.testing.assert_allclose(result.per_user["ndcg_at_3"], [0.61315, 1.0, np.nan, 0.0], atol=5e-6)
    # top 1 items: {1, 0, 6, 0} = 3 of 8; top 3: {1,2,3,0,4,6,7} = 7 of 8
    assert result.coverage == {"coverage_at_1": 3 / 8, "coverage_at_3": 7 / 8}
    means = result.means()
    # (0.5 + 1 + 0) / 3 over the three users with targets
    assert means["recall_at_3"] == pytest.approx(0.5)
    assert means["coverage_at_3"] == 7 / 8
    assert result.summary()["recall_at_3"].n_skipped == 1
    # batch size does not change anything; the progress bar is optional
    other = evaluate(FixedScoreModel(N_ITEMS), x_in, x_out, ks=(1, 3), batch_size=100, progress=True)
    for key, values in result.per_user.items():
        np.testing.assert_array_equal(values, other.per_user[key])


def test_evaluate_checks_shapes_and_cutoffs():
    model = FixedScoreModel(N_ITEMS)
    with pytest.raises(DataError, match=r"X_in has shape \(2, 8\).*X_out has shape \(3, 8\)"):
        evaluate(model, csr([[0], [1]]), csr([[0], [1], [2]]))
    with pytest.raises(UsageError, match="≥ 1"):
        evaluate(model, csr([[0]]), csr([[1]]), ks=(0,))


class CappedModel(FixedScoreModel):
    """Like Recommender.recommend: k is capped at the catalogue size."""

    def recommend(self, X, k, exclude_seen=True):
        return super().recommend(X, min(k, self.n_items), exclude_seen)


def test_evaluate_cutoff_beyond_the_catalogue_pads_the_lists():
    # 8 items, K = 10: user 0 sees item 0, list = items 1..7 then padding; targets {1, 7}
    # hits at ranks 1 and 7 → recall 2/2; precision 2/10 (always K); NDCG =
    # (1 + 1/log2(8)) / IDCG(2) = (1 + 0.33333) / 1.63093 = 0.81753
    result = evaluate(CappedModel(N_ITEMS), csr([[0]]), csr([[1, 7]]), ks=(10,))
    assert result.per_user["recall_at_10"][0] == 1.0
    assert result.per_user["precision_at_10"][0] == pytest.approx(0.2)
    assert result.per_user["ndcg_at_10"][0] == pytest.approx(0.81753, abs=5e-6)
    assert result.coverage["coverage_at_10"] == 7 / 8


def test_evaluate_rejects_a_model_returning_the_wrong_shape():
    class Short:
        def recommend(self, X, k, exclude_seen=True):
            return np.zeros((X.shape[0], k - 1), dtype=np.int64), None

    with pytest.raises(DataError, match=r"Short.recommend returned items of shape \(1, 1\)"):
        evaluate(Short(), csr([[0]]), csr([[1]]), ks=(2,))
