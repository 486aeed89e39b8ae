"""The Mult-VAE / Mult-DAE networks and loss functions, apart from any training."""

from __future__ import annotations

import math

import pytest
import torch

from recae.models.likelihoods import multinomial_nll
from recae.models.nn import MultDAENet, MultVAENet, SparseBatch, gaussian_kl, weight_l2
from tests.conftest import planted_blocks


def test_architecture_matches_the_paper():
    dae = MultDAENet(1000)
    assert [tuple(layer.weight.shape) for layer in dae.layers] == [(600, 1000), (200, 600), (600, 200), (1000, 600)]
    vae = MultVAENet(1000)
    assert [tuple(layer.weight.shape) for layer in vae.encoder] == [(600, 1000), (400, 600)]
    assert [tuple(layer.weight.shape) for layer in vae.decoder] == [(600, 200), (1000, 600)]


def test_losses_against_hand_values():
    # uniform logits over 4 items: log softmax = −log 4; a user with 2 items → NLL = 2 log 4
    x = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert multinomial_nll(torch.zeros(1, 4), x).item() == pytest.approx(2 * math.log(4))
    # KL(N(0,1) ‖ N(0,1)) = 0; KL(N(1, e⁰) ‖ N(0,1)) per dim = ½(0 + 1 + 1 − 1) = ½
    assert gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)).item() == pytest.approx(0.0)
    assert gaussian_kl(torch.ones(2, 4), torch.zeros(2, 4)).item() == pytest.approx(2.0)
    net = MultDAENet(3, hidden_dims=(), latent_dim=2, dropout=0.0)
    expected = sum(layer.weight.pow(2).sum().item() for layer in net.layers)
    assert weight_l2(net).item() == pytest.approx(expected)


def test_vae_scores_deterministically_in_eval_mode():
    net = MultVAENet(20, hidden_dims=(8,), latent_dim=4).eval()
    x = torch.rand(3, 20)
    assert torch.equal(net(x)[0], net(x)[0])


@pytest.mark.parametrize("net_cls", [MultDAENet, MultVAENet])
def test_sparse_and_dense_batches_give_the_same_outputs_and_gradients(net_cls):
    X, _ = planted_blocks(n_users=20, n_items=30)
    torch.manual_seed(0)
    net = net_cls(30, hidden_dims=(16,), latent_dim=4, dropout=0.0).eval()
    dense, sparse = torch.from_numpy(X.toarray()), SparseBatch.from_scipy(X)
    assert torch.equal(sparse.to_dense(), dense)
    outputs = []
    for x in (dense, sparse):
        net.zero_grad()
        out = net(x)
        logits = out[0] if isinstance(out, tuple) else out
        multinomial_nll(logits, x).backward()
        outputs.append((logits.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-5, atol=1e-5)
    for g_dense, g_sparse in zip(outputs[0][1], outputs[1][1]):
        torch.testing.assert_close(g_dense, g_sparse, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("net_cls", [MultDAENet, MultVAENet])
def test_the_input_weight_lies_one_item_per_row_and_saves_as_a_linear_layer(net_cls):
    """Contiguous Wᵀ and a gradient in the same layout (no per-step copies; the fused Adam
    kernel needs contiguous memory), while the state dict keeps nn.Linear's (out × items)."""
    X, _ = planted_blocks(n_users=20, n_items=30)
    torch.manual_seed(0)
    net = net_cls(30, hidden_dims=(16,), latent_dim=4)
    first = net.layers[0] if net_cls is MultDAENet else net.encoder[0]
    assert first.items_weight.shape == (30, 16) and first.items_weight.is_contiguous()
    out = net(SparseBatch.from_scipy(X))
    multinomial_nll(out[0] if isinstance(out, tuple) else out, SparseBatch.from_scipy(X)).backward()
    assert first.items_weight.grad.is_contiguous()
    state = net.state_dict()
    prefix = "layers.0." if net_cls is MultDAENet else "encoder.0."
    assert state[prefix + "weight"].shape == (16, 30) and prefix + "items_weight" not in state
    assert torch.equal(state[prefix + "weight"], first.weight)
    # a state saved from an nn.Linear first layer (out × items) reads back the same
    other = net_cls(30, hidden_dims=(16,), latent_dim=4)
    other.load_state_dict({k: v.contiguous() for k, v in state.items()})
    assert torch.equal(other.state_dict()[prefix + "weight"], first.weight)
    assert other.load_state_dict(state).missing_keys == []


@pytest.mark.parametrize("density", [0.01, 0.5])  # fewer non-zeros than items, and more
def test_the_sparse_input_layers_gradient_is_xt_times_g_either_way(density):
    import numpy as np
    import scipy.sparse as sp

    from recae.models.nn import sparse_linear

    X = sp.random(40, 200, density=density, format="csr", random_state=0, dtype=np.float32)
    assert (X.nnz < 200) == (density < 0.1)
    W = torch.randn(8, 200, requires_grad=True)
    g = torch.randn(40, 8)
    (sparse_linear(SparseBatch.from_scipy(X), W) * g).sum().backward()
    torch.testing.assert_close(W.grad, g.T @ torch.from_numpy(X.toarray()), rtol=1e-5, atol=1e-5)
