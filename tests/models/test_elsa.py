"""ELSA: the contract, its forward pass and loss against the package's and a direct formula."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from elsa import ELSA as PackageELSA
from torch.nn import functional as F

from recae.models import ELSA
from recae.models.elsa import (
    _RowNormalize,
    _sparse_products,
    elsa_forward,
    elsa_loss,
    item_factors,
    sparse_elsa_loss,
)
from recae.models.nn import SparseBatch
from tests.conftest import planted_blocks
from tests.models.contract import ModelContract

FAST = dict(factors=16, epochs=10, batch_size=30, lr=0.05, device="cpu")


class TestELSAContract(ModelContract):
    model_class = ELSA
    fast_params = FAST
    bad_params = [
        {"factors": 0},
        {"factors": -8},
        {"lr": 0.0},
        {"epochs": 0},
        {"batch_size": 0},
        {"patience": 0},
        {"amp": "yes"},
    ]
    state_kinds = "f"


class TestMixedPrecisionELSAContract(TestELSAContract):
    """The whole contract with the dense products in bfloat16 (``amp``), run on the CPU."""

    fast_params = {**FAST, "amp": True}


def test_mixed_precision_runs_the_dense_product_in_bfloat16_and_the_loss_in_float32():
    X, _ = planted_blocks(n_users=20, n_items=7, n_blocks=2, seed=3)
    net = ELSA(**FAST, amp=True)._build(7)
    batch = SparseBatch.from_scipy(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the training passes run under with amp
        Y = _sparse_products(net, batch)  # x·A·Aᵀ
        loss = sparse_elsa_loss(net, batch)
    assert Y.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    (weight,) = net.parameters()
    assert weight.grad.dtype == torch.float32 and torch.isfinite(weight.grad).all()
    # the same loss as float32 to bfloat16's precision
    assert loss.item() == pytest.approx(sparse_elsa_loss(net, batch).item(), rel=2e-2)


def test_mixed_precision_keeps_float32_factors_and_learns_what_float32_learns():
    X, block = planted_blocks(n_users=150, n_items=60, n_blocks=3, seed=0)
    full, mixed = ELSA(**FAST).fit(X), ELSA(**FAST, amp=True).fit(X)
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    assert mixed.score(X).dtype == np.float32
    for model in (full, mixed):
        top, _ = model.recommend(X, 5)
        assert (top % 3 == block[:, None]).mean() > 0.95  # planted_blocks: item i is in block i % 3


def test_the_packages_defaults():
    m = ELSA()
    assert (m.factors, m.lr, m.epochs, m.batch_size) == (256, 0.1, 5, 128)


def _net(n_items=7, factors=3, seed=0):
    torch.manual_seed(seed)
    return PackageELSA(n_items, factors, device=torch.device("cpu"))


def test_the_sparse_forward_is_the_packages_forward():
    X, _ = planted_blocks(n_users=20, n_items=7, n_blocks=2, seed=3)
    X = sp.csr_matrix(X.multiply(np.arange(1, 8, dtype=np.float32)))  # values other than 1
    net = _net()
    dense = torch.from_numpy(X.toarray())
    sparse_out = elsa_forward(net, SparseBatch.from_scipy(X))
    torch.testing.assert_close(sparse_out, net(dense), rtol=0, atol=1e-6)
    # and the gradients of the loss with respect to A agree
    for out in (sparse_out, net(dense)):
        net.zero_grad()
        elsa_loss(out, dense).backward()
        grads = [p.grad.clone() for p in net.parameters()]
        if out is sparse_out:
            first = grads
    torch.testing.assert_close(first[0], grads[0], rtol=0, atol=1e-7)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_the_sparse_loss_and_its_gradient_are_the_packages(dtype, atol):
    """One pass over Y instead of autograd through the densified x: the same loss and
    gradient, with counts other than 1 and an empty history in the batch."""
    X, _ = planted_blocks(n_users=20, n_items=7, n_blocks=2, seed=3)
    X = sp.lil_matrix(X.multiply(np.arange(1, 8, dtype=np.float32)))
    X[4, :] = 0  # an empty history
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    net = _net().to(dtype)
    dense = torch.from_numpy(X.toarray()).to(dtype)
    losses, grads = [], []
    batch = SparseBatch.from_scipy(X)
    batch = dataclasses.replace(batch, values=batch.values.to(dtype))
    for compute in (lambda: elsa_loss(net(dense), dense), lambda: sparse_elsa_loss(net, batch)):
        net.zero_grad()
        loss = compute()
        loss.backward()
        losses.append(loss.item())
        grads.append(next(net.parameters()).grad.clone())
    assert losses[1] == pytest.approx(losses[0], abs=atol)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=atol)


def test_the_row_normalisation_and_its_gradient_are_torchs():
    W = torch.randn(6, 4, dtype=torch.float64)
    W[2] = 0.0  # a row at the norm's floor
    W.requires_grad_(True)
    torch.testing.assert_close(_RowNormalize.apply(W), F.normalize(W, dim=-1), rtol=0, atol=1e-15)
    g = torch.randn(6, 4, dtype=torch.float64)
    (mine,) = torch.autograd.grad(_RowNormalize.apply(W), W, g)
    (torchs,) = torch.autograd.grad(F.normalize(W, dim=-1), W, g)
    torch.testing.assert_close(mine, torchs, rtol=0, atol=1e-9)


def test_the_forward_and_loss_by_a_direct_formula():
    net = _net(n_items=5, factors=2)
    W = next(net.parameters()).detach().numpy().astype(np.float64)
    A = W / np.linalg.norm(W, axis=1, keepdims=True)
    x = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 1, 0]], dtype=np.float64)
    out = x @ A @ A.T - x
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    expected = np.mean((unit(out) - unit(x)) ** 2)
    got_out = elsa_forward(net, torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(got_out.detach().numpy(), out, atol=1e-6)
    loss = elsa_loss(got_out, torch.tensor(x, dtype=torch.float32))
    assert abs(loss.item() - expected) < 1e-6


def test_an_item_is_never_its_own_neighbour_and_vectors_are_unit_length():
    X, _ = planted_blocks(n_users=150, n_items=60, n_blocks=3, seed=0)
    model = ELSA(**FAST).fit(X)
    V = model.item_vectors()
    assert V.shape == (60, 16)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    # one item alone scores every other item by its cosine to it, itself by 1 − 1 = 0
    one = sp.csr_matrix(([1.0], ([0], [4])), shape=(1, 60), dtype=np.float32)
    np.testing.assert_allclose(model.score(one)[0], V @ V[4] - np.eye(60)[4], atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(item_factors(model.module_).numpy(), V)


def test_validation_keeps_the_best_epoch():
    X, _ = planted_blocks(n_users=150, n_items=60, n_blocks=3, seed=0)
    V, _ = planted_blocks(n_users=30, n_items=60, n_blocks=3, seed=2)
    rng = np.random.default_rng(0)
    keep = rng.random(V.nnz) < 0.7
    V_in, V_out = V.copy(), V.copy()
    V_in.data, V_out.data = np.where(keep, V.data, 0).astype(np.float32), np.where(keep, 0, V.data).astype(np.float32)
    V_in.eliminate_zeros()
    V_out.eliminate_zeros()
    model = ELSA(**FAST).fit(X, validation=(V_in, V_out))
    scores = [h["val/ndcg_at_100"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    assert model.best_score_ == pytest.approx(max(scores))
