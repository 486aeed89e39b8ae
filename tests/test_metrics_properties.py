"""Properties of the ranking metrics (recae.evaluation.metrics) over random lists and targets.

Each per-user value must agree with a direct, one-user-at-a-time reading of
the definitions in the README's metric table (:func:`reference`), lie in
[0, 1], and not depend on the order of the users or on how items are numbered;
a cut-off beyond a list's length counts the missing places as misses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recae.evaluation.metrics import METRICS, coverage, evaluate, per_user_metrics
from recae.evaluation.ranking import topk

# Modest example counts and small shapes: the whole file runs in a few seconds.
PROPERTY = settings(max_examples=60, deadline=None)


def reference(top_row: list[int], targets: set[int], k: int) -> dict[str, float]:
    """Every metric of one user at cut-off ``k``, straight from the README's table.

    ``top_row`` is the ranked list (``-1`` pads it; places beyond its end are
    misses too); ``targets`` is non-empty.
    """
    ranked = (list(top_row) + [-1] * k)[:k]
    rel = [1 if item >= 0 and item in targets else 0 for item in ranked]
    hits = sum(rel)
    n_ideal = min(k, len(targets))
    dcg = sum(r / math.log2(rank + 1) for rank, r in enumerate(rel, start=1))
    idcg = sum(1 / math.log2(rank + 1) for rank in range(1, n_ideal + 1))
    precision_at = [sum(rel[:rank]) / rank for rank in range(1, k + 1)]
    first_hit = next((rank for rank, r in enumerate(rel, start=1) if r), None)
    return {
        "recall": hits / len(targets),
        "recall_norm": hits / n_ideal,
        "ndcg": dcg / idcg,
        "precision": hits / k,
        "map": sum(p * r for p, r in zip(precision_at, rel, strict=True)) / n_ideal,
        "mrr": 0.0 if first_hit is None else 1 / first_hit,
        "hit_rate": float(hits > 0),
    }


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for u, items in enumerate(rows):
        dense[u, items] = 1.0
    return sp.csr_matrix(dense)


@st.composite
def lists_and_targets(draw):
    """``(top, targets, ks)``: lists of distinct items padded with -1 at the end, any
    targets (users without any too), and cut-offs up to the list length."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 10))
    width = draw(st.integers(1, n_items + 3))  # may exceed the catalogue: padded
    top, targets = [], []
    for _ in range(n_users):
        items = draw(st.permutations(range(n_items)))[: draw(st.integers(0, min(width, n_items)))]
        top.append(list(items) + [-1] * (width - len(items)))
        targets.append(draw(st.lists(st.integers(0, n_items - 1), max_size=n_items, unique=True)))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=3, unique=True))
    return np.array(top, dtype=np.int64).reshape(n_users, width), _csr(targets, n_items), ks


@PROPERTY
@given(lists_and_targets())
def test_every_metric_agrees_with_the_definition_and_lies_in_0_1(case):
    top, targets, ks = case
    got = per_user_metrics(top, targets, ks=ks)
    assert list(got) == [f"{name}_at_{k}" for k in ks for name in METRICS]
    for u in range(top.shape[0]):
        wanted = set(targets[u].indices.tolist())
        for k in ks:
            if not wanted:
                assert all(math.isnan(got[f"{name}_at_{k}"][u]) for name in METRICS)
                continue
            expected = reference(top[u].tolist(), wanted, k)
            for name in METRICS:
                value = got[f"{name}_at_{k}"][u]
                assert value == pytest.approx(expected[name], abs=1e-12), (name, k, u)
                assert 0.0 <= value <= 1.0, (name, k, u)


@PROPERTY
@given(lists_and_targets(), st.randoms(use_true_random=False))
def test_permuting_users_permutes_the_values(case, random):
    top, targets, ks = case
    order = list(range(top.shape[0]))
    random.shuffle(order)
    before = per_user_metrics(top, targets, ks=ks)
    after = per_user_metrics(top[order], targets[order], ks=ks)
    for key, values in before.items():
        np.testing.assert_array_equal(after[key], values[order], err_msg=key)
    assert coverage(top[order], targets.shape[1], ks) == coverage(top, targets.shape[1], ks)


@PROPERTY
@given(lists_and_targets(), st.randoms(use_true_random=False))
def test_relabelling_items_changes_nothing(case, random):
    top, targets, ks = case
    n_items = targets.shape[1]
    new_label = np.arange(n_items)
    random.shuffle(new_label)
    relabelled_top = np.where(top >= 0, new_label[np.maximum(top, 0)], -1)
    relabelled_targets = sp.csr_matrix(
        (targets.data, new_label[targets.indices], targets.indptr), shape=targets.shape
    )
    before = per_user_metrics(top, targets, ks=ks)
    after = per_user_metrics(relabelled_top, relabelled_targets, ks=ks)
    for key, values in before.items():
        np.testing.assert_array_equal(after[key], values, err_msg=key)
    assert coverage(relabelled_top, n_items, ks) == coverage(top, n_items, ks)


class _LinearModel:
    """Scores ``X @ W``; like :class:`~recae.models.base.Recommender`, caps k at the catalogue."""

    def __init__(self, W: np.ndarray) -> None:
        self.W = W

    def recommend(self, X, k, exclude_seen=True):
        scores = np.asarray(X @ self.W, dtype=np.float32)
        return topk(scores, min(k, self.W.shape[1]), exclude=X if exclude_seen else None)


@st.composite
def model_and_users(draw):
    """A model over a small catalogue, fold-in rows and targets, and cut-offs of
    which at least one exceeds the catalogue."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 8))
    rows = st.lists(st.integers(0, n_items - 1), max_size=n_items, unique=True)
    X_in = _csr([draw(rows) for _ in range(n_users)], n_items)
    X_out = _csr([draw(rows) for _ in range(n_users)], n_items)
    X_out = sp.csr_matrix(X_out - X_out.multiply(X_in))  # targets are never fold-in items
    X_out.eliminate_zeros()
    weights = st.lists(st.floats(-4, 4, width=32), min_size=n_items * n_items, max_size=n_items * n_items)
    W = np.array(draw(weights), dtype=np.float32)
    ks = draw(st.lists(st.integers(1, n_items + 5), min_size=1, max_size=3, unique=True))
    ks.append(n_items + draw(st.integers(1, 5)))
    return _LinearModel(W.reshape(n_items, n_items)), X_in, X_out, sorted(set(ks))


@PROPERTY
@given(model_and_users(), st.integers(1, 4))
def test_evaluate_with_cutoffs_beyond_the_lists_reads_the_missing_places_as_misses(case, batch_size):
    model, X_in, X_out, ks = case
    result = evaluate(model, X_in, X_out, ks=ks, batch_size=batch_size)
    lists, _ = model.recommend(X_in, max(ks))  # at most n_items long, -1 after the eligible items
    assert result.n_skipped == int((np.diff(X_out.indptr) == 0).sum())
    for u in range(X_in.shape[0]):
        wanted = set(X_out[u].indices.tolist())
        if not wanted:
            continue
        for k in ks:
            expected = reference(lists[u].tolist(), wanted, k)
            for name in METRICS:
                assert result.per_user[f"{name}_at_{k}"][u] == pytest.approx(expected[name], abs=1e-12)
    for k in ks:
        shown = {int(i) for i in lists[:, :k].ravel() if i >= 0}
        assert result.coverage[f"coverage_at_{k}"] == len(shown) / X_in.shape[1]
