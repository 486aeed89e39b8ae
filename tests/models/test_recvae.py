"""RecVAE: the contract, its loss against a direct formula, and the alternating updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import UsageError
from recae.models import RecVAE
from recae.models.nn import SparseBatch
from recae.models.recvae_nn import (
    ENCODER_LAYERS,
    RecVAENet,
    composite_prior,
    history_sizes,
    weighted_kl,
)
from tests.conftest import planted_blocks
from tests.models.contract import ModelContract

FAST = dict(hidden_dim=32, latent_dim=8, epochs=6, batch_size=40, lr=1e-2, device="cpu")


class TestRecVAEContract(ModelContract):
    model_class = RecVAE
    fast_params = FAST
    bad_params = [
        {"gamma": 0.0},
        {"gamma": -0.005},
        {"dropout": 1.0},
        {"hidden_dim": 0},
        {"prior_weights": (0.5, 0.5)},
        {"prior_weights": (0.15, -0.75, 0.1)},
        {"wide_logvar": math.nan},
        {"encoder_epochs": 0},
        {"decoder_epochs": 0},
    ]
    state_kinds = "f"


class TestMixedPrecisionRecVAEContract(TestRecVAEContract):
    """The whole contract with bfloat16 autocast, run on the CPU."""

    fast_params = {**FAST, "amp": True}
    bad_params = [{"amp": "yes"}]


def test_mixed_precision_keeps_float32_weights_codes_and_nearly_the_float32_scores():
    X, _ = planted_blocks()
    full, mixed = RecVAE(**FAST).fit(X), RecVAE(**FAST, amp=True).fit(X)
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    mu, variance = mixed._codes(mixed.module_, SparseBatch.from_scipy(X[:5]))
    assert mu.dtype == variance.dtype == torch.float32
    a, b = full.score(X), mixed.score(X)
    assert b.dtype == np.float32 and np.isfinite(b).all()
    # bfloat16 keeps 8 bits of mantissa: the two trainings drift apart a little
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_the_authors_defaults():
    m = RecVAE()
    assert (m.hidden_dim, m.latent_dim, m.dropout, m.gamma) == (600, 200, 0.5, 0.005)
    assert tuple(m.prior_weights) == (3 / 20, 3 / 4, 1 / 10) and m.wide_logvar == 10.0
    assert (m.epochs, m.encoder_epochs, m.decoder_epochs, m.batch_size, m.lr) == (50, 3, 1, 500, 5e-4)
    assert m.amp is False  # the authors train in float32
    net = RecVAENet(100)
    assert ENCODER_LAYERS == 5 and len(net.encoder.norms) == 5
    assert tuple(net.encoder.items.weight.shape) == (100, 600)  # the first layer: one row per item
    assert [tuple(layer.weight.shape) for layer in net.encoder.layers] == [(600, 600)] * 4
    assert all(norm.eps == 0.1 for norm in net.encoder.norms)
    assert tuple(net.decoder.weight.shape) == (100, 200)


def _log_normal(z, mu, logvar):
    return -0.5 * (logvar + np.log(2 * np.pi) + (z - mu) ** 2 / np.exp(logvar))


def _numpy_loss(x, logits, z, mu, logvar, post_mu, post_logvar, gamma, weights=(3 / 20, 3 / 4, 1 / 10), wide=10.0):
    """The authors' loss written out: multinomial NLL + mean_u γ|x_u| Σ_d (log q − log p)."""
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    nll = -(log_softmax * x).sum(axis=1).mean()
    w = np.asarray(weights) / np.sum(weights)
    prior = (
        w[0] * np.exp(_log_normal(z, 0.0, 0.0))
        + w[1] * np.exp(_log_normal(z, post_mu, post_logvar))
        + w[2] * np.exp(_log_normal(z, 0.0, wide))
    )
    kl = ((_log_normal(z, mu, logvar) - np.log(prior)).sum(axis=1) * gamma * x.sum(axis=1)).mean()
    return nll, kl


def test_composite_prior_kl_matches_a_direct_formula():
    rng = np.random.default_rng(0)
    z, mu, post_mu = (rng.normal(size=(4, 3)) for _ in range(3))
    logvar, post_logvar = (rng.normal(scale=0.5, size=(4, 3)) for _ in range(2))
    x = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 2, 0, 1]], dtype=np.float64)
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    for weights, wide in [((3 / 20, 3 / 4, 1 / 10), 10.0), ((1.0, 2.0, 1.0), 4.0)]:
        log_prior = composite_prior(t(z), t(post_mu), t(post_logvar), weights, wide)
        kl = weighted_kl(t(z), t(mu), t(logvar), log_prior, 0.005 * history_sizes(t(x)))
        _, expected = _numpy_loss(x, np.zeros((4, 5)), z, mu, logvar, post_mu, post_logvar, 0.005, weights, wide)
        assert kl.item() == pytest.approx(expected, abs=1e-6)
    # β_u = γ·|x_u| from a sparse batch, as training passes it
    sizes = history_sizes(SparseBatch.from_scipy(sp.csr_matrix(x.astype(np.float32))))
    np.testing.assert_array_equal(sizes.numpy(), [3, 1, 5, 3])


def test_sparse_and_dense_batches_give_the_same_encoder_and_gradients():
    X, _ = planted_blocks(n_users=20, n_items=30)
    torch.manual_seed(0)
    encoder = RecVAENet(30, hidden_dim=16, latent_dim=4, dropout=0.0).encoder
    results = []
    for x in (torch.from_numpy(X.toarray()), SparseBatch.from_scipy(X)):
        encoder.zero_grad()
        mu, logvar = encoder(x)
        (mu.pow(2).sum() + logvar.exp().sum()).backward()
        results.append([mu.detach(), logvar.detach()] + [p.grad.clone() for p in encoder.parameters()])
    for dense, sparse in zip(*results):
        torch.testing.assert_close(dense, sparse, rtol=1e-4, atol=1e-5)


def test_the_encoder_pass_loss_is_the_authors_formula(monkeypatch):
    """The model's loss of a batch of users (network, per-user β, that user's prior) against numpy.

    In float64, with batches densified as on an accelerator (sparse ones give
    the same outputs: the test above).
    """
    monkeypatch.setattr("recae.models.recvae._to_batch", lambda X, device: torch.from_numpy(X.toarray()))
    X, _ = planted_blocks(n_users=12, n_items=20)
    model = RecVAE(hidden_dim=16, latent_dim=4, dropout=0.0, gamma=0.01, device="cpu")
    torch.manual_seed(0)
    net = model._build(X.shape[1]).double()
    model.device_ = torch.device("cpu")
    rng = np.random.default_rng(0)
    model._prior = (torch.from_numpy(rng.normal(size=(12, 4))), torch.from_numpy(rng.normal(size=(12, 4))))
    model._decoder_pass = False
    users = np.array([7, 2, 11, 0, 5])
    x = X[users].toarray().astype(np.float64)
    torch.manual_seed(1)
    loss, parts = model._batch_loss(net, sp.csr_matrix(X, dtype=np.float64), users, update=0)
    torch.manual_seed(1)  # the same ε for the same z
    logits, z, mu, logvar = (t.detach().numpy() for t in net(torch.from_numpy(x)))
    post_mu, post_logvar = (t[users].numpy() for t in model._prior)
    nll, kl = _numpy_loss(x, logits, z, mu, logvar, post_mu, post_logvar, gamma=0.01)
    assert float(parts["nll"]) == pytest.approx(nll, abs=1e-6)
    assert float(parts["kl"]) == pytest.approx(kl, abs=1e-6)
    assert loss.item() == pytest.approx(nll + kl, abs=1e-6)


def test_encoder_and_decoder_are_updated_in_turn(monkeypatch):
    """Encoder passes leave the decoder as it was, decoder passes leave the encoder; the prior is
    the encoder's posterior after its passes."""
    X, _ = planted_blocks()
    snapshots = []
    posterior = RecVAE._posterior

    def recording(self, encoder, X):
        snapshots.append({k: v.clone() for k, v in self.module_.state_dict().items()})
        return posterior(self, encoder, X)

    monkeypatch.setattr(RecVAE, "_posterior", recording)
    model = RecVAE(**{**FAST, "epochs": 1}).fit(X)
    start, after_encoder = snapshots  # before training (the first prior), after the encoder passes
    end = model.module_.state_dict()

    def changed(a, b, part):
        return [k for k in a if k.startswith(part) and not torch.equal(a[k], b[k])]

    assert not changed(start, after_encoder, "decoder") and changed(start, after_encoder, "encoder")
    assert not changed(after_encoder, end, "encoder") and changed(after_encoder, end, "decoder")
    assert not hasattr(model, "_prior") and not hasattr(model, "_decoder_pass")
    assert set(model.history_[0]) >= {"epoch", "loss", "nll", "kl", "decoder_nll", "epoch_seconds"}


def test_prior_weights_must_be_three():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match=r"prior_weights must be 3 weights .*got \[1.0\]"):
        RecVAE(**{**FAST, "prior_weights": [1.0]}).fit(X)
