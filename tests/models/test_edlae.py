"""EDLAE: the closed form against the expected loss computed from its definition, and the low rank."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import MemoryBudgetError
from recae.models import EDLAE, Recommender
from tests.conftest import planted_blocks
from tests.models.contract import ModelContract


class TestEDLAEContract(ModelContract):
    model_class = EDLAE
    fast_params = {"l2": 10.0}
    bad_params = [
        {"dropout": 0.0},
        {"dropout": 1.0},
        {"a": 0.0},
        {"b": -0.5},
        {"l2": 0.0},
        {"rank": 0},
        {"max_memory": 0},
    ]


def _expected_loss_minimiser(X: np.ndarray, p: float, a: float, b: float, l2: float) -> np.ndarray:
    """B minimising E_Δ Σ ω (x − x̃B)² + l2‖B‖², the expectation taken over every dropout mask."""
    n_items = X.shape[1]
    nu = a * p + b * (1 - p)
    B = np.empty((n_items, n_items))
    for k in range(n_items):
        lhs, rhs = l2 * np.eye(n_items), np.zeros(n_items)
        for x in X:
            for kept in itertools.product([0.0, 1.0], repeat=n_items):
                kept = np.array(kept)
                prob = np.prod(np.where(kept == 1, 1 - p, p))
                weight = (b if kept[k] else a) / nu
                x_tilde = kept * x / (1 - p)
                lhs += prob * weight * np.outer(x_tilde, x_tilde)
                rhs += prob * weight * x[k] * x_tilde
        B[:, k] = np.linalg.solve(lhs, rhs)
    return B


@pytest.mark.parametrize(("p", "a", "b", "l2"), [(0.33, 1.0, 0.0, 2.0), (0.3, 1.0, 0.4, 0.7), (0.5, 0.2, 3.0, 0.1)])
def test_closed_form_minimises_the_expected_emphasized_denoising_loss(p, a, b, l2):
    rng = np.random.default_rng(0)
    X = (rng.random((8, 5)) < 0.5).astype(np.float32)
    X[0] = 1.0
    model = EDLAE(dropout=p, a=a, b=b, l2=l2).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(model.weights_, _expected_loss_minimiser(X.astype(np.float64), p, a, b, l2), atol=1e-6)


def _gram(n_users=80, n_items=40, seed=1):
    rng = np.random.default_rng(seed)
    X = sp.random(n_users, n_items, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    D = X.toarray().astype(np.float64)
    return X, D, D.T @ D


def test_full_emphasis_is_the_authors_notebook_formula():
    """b = 0: EASE's closed form with the diagonal penalty l2 + p/(1−p)·diag(XᵀX) (``learn_EDLAE_fullrank``)."""
    X, D, G = _gram()
    p, l2 = 0.33, 7.5
    C = np.linalg.inv(G + np.diag(l2 + np.diag(G) * p / (1 - p)))
    B = -C / np.diag(C)[None, :]
    np.fill_diagonal(B, 0.0)
    model = EDLAE(dropout=p, l2=l2).fit(X)
    np.testing.assert_allclose(model.weights_, B, atol=1e-6)
    np.testing.assert_allclose(model.score(X[:7]), D[:7] @ B, atol=1e-5)


def test_no_emphasis_is_the_denoising_linear_autoencoder():
    X, _, G = _gram()
    p, l2 = 0.25, 3.0
    B = np.linalg.solve(G + np.diag(l2 + np.diag(G) * p / (1 - p)), G)
    np.testing.assert_allclose(EDLAE(dropout=p, a=2.0, b=2.0, l2=l2).fit(X).weights_, B, atol=1e-6)


@pytest.mark.parametrize("b", [0.0, 0.5])
def test_low_rank_at_full_rank_is_the_full_rank_model(b):
    X, D, _ = _gram()
    full = EDLAE(dropout=0.3, b=b, l2=5.0).fit(X)
    low = EDLAE(dropout=0.3, b=b, l2=5.0, rank=40).fit(X)
    np.testing.assert_allclose(low.encoder_ @ low.decoder_.T + np.diag(low.diagonal_), full.weights_, atol=1e-6)
    np.testing.assert_allclose(low.score(X), full.score(X), atol=1e-5)


def test_low_rank_recovers_the_planted_pattern_repeatably_and_round_trips(tmp_path):
    X, _ = planted_blocks(n_users=150, n_items=60, density=0.5)
    new, blocks = planted_blocks(n_users=30, n_items=60, density=0.3, seed=1)
    model = EDLAE(l2=10.0, rank=6).fit(X)
    assert model.encoder_.shape == model.decoder_.shape == (60, 6)
    items, _ = model.recommend(new, k=5)
    assert ((items % 3) == blocks[:, None]).mean() > 0.9
    np.testing.assert_array_equal(EDLAE(l2=10.0, rank=6).fit(X).score(new), model.score(new))
    loaded = Recommender.load(model.save(tmp_path / "low"))
    np.testing.assert_array_equal(loaded.score(new), model.score(new))


def test_full_rank_refuses_over_budget_naming_bytes_and_the_low_rank_variant():
    X, _ = planted_blocks()
    need = EDLAE.memory_estimate(X.shape[1])
    assert need == int(4 * 1.25 * X.shape[1] ** 2)  # one float32 matrix and a quarter of one
    with pytest.raises(MemoryBudgetError) as err:
        EDLAE(max_memory=need / 2).fit(X)
    message = str(err.value)
    assert "\n" not in message and f"({need} bytes" in message
    assert "low-rank variant needs about" in message and f"rank={X.shape[1]}" in message
    low = EDLAE.memory_estimate(X.shape[1], rank=5, n_users=X.shape[0])
    EDLAE(max_memory=low, rank=5).fit(X)  # the low-rank variant fits in its own estimate
    with pytest.raises(MemoryBudgetError, match=f"rank=5 .*{low} bytes"):
        EDLAE(max_memory=low / 2, rank=5).fit(X)
