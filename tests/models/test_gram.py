"""The Gram matrix formed in blocks and inverted in place, in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import ModelFitError
from recae.models import EASE, EDLAE, gram
from tests.conftest import planted_blocks


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_gram_matrix_in_blocks_is_xtx_plus_the_diagonal(dtype, monkeypatch):
    X = sp.random(50, 37, density=0.2, format="csr", random_state=0, dtype=np.float32)
    diagonal = np.arange(37, dtype=np.float64)
    monkeypatch.setattr(gram, "WORKSPACE_FRACTION", 0.05)  # blocks of 1 row: every block boundary
    G = gram.dense_gram(X, dtype, diagonal)
    assert G.dtype == np.dtype(dtype) and G.flags.c_contiguous
    X64 = X.toarray().astype(np.float64)
    np.testing.assert_allclose(G, X64.T @ X64 + np.diag(diagonal), rtol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_inverse_in_place_is_the_inverse(dtype):
    rng = np.random.default_rng(0)
    M = rng.standard_normal((70, 70))
    A = (M @ M.T + 70 * np.eye(70)).astype(dtype)
    expected = np.linalg.inv(A.astype(np.float64))
    out = gram.spd_inverse_inplace(A, "test", 1.0)
    assert np.shares_memory(out, A)
    np.testing.assert_allclose(out, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-9)
    np.testing.assert_array_equal(out, out.T)


def test_a_matrix_that_is_not_positive_definite_is_named():
    with pytest.raises(ModelFitError, match="EASE: XᵀX \\+ l2·I is not positive definite .* increase l2"):
        gram.spd_inverse_inplace(-np.eye(4), "EASE", 1.0)


@pytest.mark.parametrize("model", [EASE(l2=50.0), EDLAE(l2=50.0, dropout=0.3, b=0.5)])
def test_float32_fits_give_the_float64_top_20_lists(model):
    X, _ = planted_blocks(n_users=400, n_items=300, n_blocks=6, density=0.2, noise=0.05)
    single = model.set_params(dtype="float32").fit(X).recommend(X, 20)[0]
    double = model.set_params(dtype="float64").fit(X).recommend(X, 20)[0]
    same = (np.sort(single, axis=1) == np.sort(double, axis=1)).all(axis=1)
    assert same.mean() >= 0.99


def test_the_estimate_is_one_matrix_and_its_workspace():
    assert gram.memory_estimate(40_981) == int(4 * 1.25 * 40_981**2)  # 8.4 GB, where 3 float64 took 40 GB
    assert gram.memory_estimate(1000, "float64") == int(8 * 1.25 * 1000**2 + 4 * 1000**2)
