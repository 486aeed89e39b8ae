"""BPR: its fold-in on a planted pattern, per history, and against ``implicit``'s user factors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking

from recae.errors import UsageError
from recae.models import BPR
from tests.models.conftest import BLOCK, N_BLOCKS
from tests.models.contract import ModelContract


class TestBPRContract(ModelContract):
    model_class = BPR
    fast_params = {"factors": 16, "iterations": 200, "learning_rate": 0.05, "num_threads": 1}
    bad_params = [
        {"learning_rate": 0.0},
        {"num_threads": -1},
        {"fold_in_samples": 0},
        {"random_state": "x"},
    ]


@pytest.fixture(scope="module")
def bpr(blocks) -> BPR:
    X, _ = blocks
    return BPR(factors=16, learning_rate=0.05, iterations=40, random_state=0).fit(X)


def test_bpr_fold_in_ranks_a_new_users_block_first(bpr) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for b in range(N_BLOCKS):
        row = np.zeros(N_BLOCKS * BLOCK, dtype=np.float32)
        row[b * BLOCK + rng.choice(BLOCK, 8, replace=False)] = 1.0
        rows.append(row)
    new_users = sp.csr_matrix(np.array(rows))
    items, _ = bpr.recommend(new_users, k=8)
    np.testing.assert_array_equal(
        items // BLOCK, np.arange(N_BLOCKS)[:, None] * np.ones((1, 8), int)
    )


def test_bpr_scores_are_deterministic_and_per_history(bpr, blocks) -> None:
    X, _ = blocks
    batch = bpr.score(X[:6])
    alone = np.vstack([bpr.score(X[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(batch, alone, rtol=1e-6, atol=1e-6)
    again = BPR(**bpr.get_params()).fit(X)
    np.testing.assert_array_equal(again.item_factors_, bpr.item_factors_)
    np.testing.assert_array_equal(again.score(X[:6]), batch)
    # an empty history scores the item biases
    empty = bpr.score(sp.csr_matrix((1, X.shape[1]), dtype=np.float32))
    np.testing.assert_array_equal(empty[0], bpr.item_factors_[:, -1])


def test_bpr_fold_in_agrees_with_implicits_user_factors(bpr, blocks) -> None:
    """Folding in training users ranks roughly as the factors ``implicit`` learned for them."""
    X, _ = blocks
    ref = BayesianPersonalizedRanking(
        factors=16, learning_rate=0.05, iterations=40, random_state=0, num_threads=1
    )
    ref.fit(X, show_progress=False)
    np.testing.assert_array_equal(bpr.item_factors_, ref.item_factors)
    own = ref.user_factors @ ref.item_factors.T
    folded = bpr.score(X)
    corr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(own, folded, strict=True)])
    assert corr > 0.95  # measured 0.97


def test_fold_in_settings_changed_after_fit_are_checked_when_scoring(blocks) -> None:
    X, _ = blocks
    model = BPR(factors=8, iterations=5, fold_in_steps=20).fit(X)
    model.set_params(fold_in_lr=0.0)
    with pytest.raises(UsageError, match="fold_in_lr must be a finite number > 0, got 0.0"):
        model.score(X[:2])
