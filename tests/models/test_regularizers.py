"""The sparse and contractive penalties against autograd and direct formulas; Mult-DAE trains with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recae.errors import UsageError
from recae.models import MultDAE
from recae.models.autoencoder import _to_batch
from recae.models.regularizers import contractive_penalty, sparsity_penalty
from tests.conftest import planted_blocks


def test_the_contractive_penalty_is_the_jacobians_squared_frobenius_norm():
    torch.manual_seed(0)
    W, b, x = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    norms = [torch.autograd.functional.jacobian(lambda v: torch.tanh(W @ v + b), row).pow(2).sum() for row in x]
    expected = torch.stack(norms).mean()
    assert contractive_penalty(torch.tanh(x @ W.T + b), W).item() == pytest.approx(expected.item(), abs=1e-12)


def test_the_sparsity_penalties_against_direct_formulas():
    h = torch.tensor([[0.5, -0.5, 0.0], [1.0, -1.0, 0.2]], dtype=torch.float64)
    assert sparsity_penalty(h, "l1").item() == pytest.approx((1.0 + 2.2) / 2)
    rho = 0.1
    rho_hat = ((h.numpy() + 1) / 2).mean(axis=0)
    kl = (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    assert sparsity_penalty(h, "kl", rho).item() == pytest.approx(kl, abs=1e-12)


@pytest.mark.parametrize("settings", [{"sparsity": "l1", "sparsity_weight": 0.1}, {"sparsity": "kl", "sparsity_weight": 0.1},
                                      {"contractive_weight": 0.01}])
def test_mult_dae_adds_each_penalty_to_its_loss(settings):
    X, _ = planted_blocks()
    model = MultDAE(epochs=2, hidden_dims=[16], latent_dim=8, random_state=0, **settings).fit(X)
    net = model.module_.eval()
    x = _to_batch(X[:20], model.device_)
    first, code, logits = net.forward_parts(x)
    torch.testing.assert_close(logits, net(x))  # the same network
    torch.testing.assert_close(code, net.encode(x))
    loss, parts = model._loss(net, x, 0)
    penalty = (settings.get("sparsity_weight", 0) * sparsity_penalty(code, settings.get("sparsity", "l1"), 0.05)
               if "sparsity" in settings else settings["contractive_weight"] * contractive_penalty(first, net.layers[0].weight))
    assert loss.item() == pytest.approx(float(parts["nll"]) + model.weight_decay * sum(
        p.pow(2).sum().item() for n, p in net.named_parameters() if n.endswith("weight")) + penalty.item(), rel=1e-5)
    assert ("sparsity" in parts) == ("sparsity" in settings) and ("contractive" in parts) == ("contractive_weight" in settings)


def test_bad_regularizer_settings_are_refused():
    X, _ = planted_blocks()
    for bad, message in (({"sparsity": "l2"}, "sparsity must be"), ({"sparsity_target": 1.0}, "sparsity_target"),
                         ({"contractive_weight": -1.0}, "contractive_weight")):
        with pytest.raises(UsageError, match=message):
            MultDAE(epochs=1, **bad).fit(X)
