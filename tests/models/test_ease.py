"""EASE against a dense numpy solve, and its memory budget."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import MemoryBudgetError, UsageError
from recae.models import EASE
from tests.models.contract import ModelContract


class TestEASEContract(ModelContract):
    model_class = EASE
    fast_params = {"l2": 10.0}
    bad_params = [{"l2": -1.0}, {"l2": 0.0}, {"max_memory": 0}]


def test_ease_matches_dense_closed_form() -> None:
    rng = np.random.default_rng(1)
    X = sp.random(80, 40, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    l2 = 7.5
    model = EASE(l2=l2).fit(X)

    D = X.toarray().astype(np.float64)
    P = np.linalg.inv(D.T @ D + l2 * np.eye(40))
    B = np.eye(40) - P / np.diag(P)[None, :]  # B = I − P · diag(1/diag(P))
    np.testing.assert_array_equal(np.diag(model.weights_), 0.0)
    np.testing.assert_allclose(model.weights_, B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(X[:7]), D[:7] @ B, rtol=1e-4, atol=1e-5)


def test_ease_refuses_over_memory_budget(blocks) -> None:
    X, _ = blocks
    estimate = EASE.memory_estimate(X.shape[1])
    assert estimate == int(4 * 1.25 * X.shape[1] ** 2)  # one float32 matrix and a quarter of one
    with pytest.raises(MemoryBudgetError) as err:
        EASE(max_memory=estimate / 2).fit(X)
    message = str(err.value)
    assert f"{estimate / 1e9:.3g} GB" in message
    assert f"{estimate / 2e9:.3g} GB" in message
    assert f"n_items={X.shape[1]}" in message
    EASE(max_memory=estimate).fit(X)  # exactly at the budget is allowed


def test_check_resources_refuses_bad_parameters_before_a_benchmark_starts() -> None:
    with pytest.raises(UsageError, match="l2 must be a finite number > 0, got 0"):
        EASE(l2=0).check_resources(10, 10)
