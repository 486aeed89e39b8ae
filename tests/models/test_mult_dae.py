"""Mult-DAE: the contract under each likelihood (its training loop is tested with Mult-VAE's in test_autoencoder)."""

from __future__ import annotations

from recae.models import MultDAE
from tests.models.contract import ModelContract


class TestMultDAEContract(ModelContract):
    model_class = MultDAE
    fast_params = dict(hidden_dims=(32,), latent_dim=8, epochs=30, batch_size=40, lr=1e-2, device="cpu")
    bad_params = [
        {"amp": 1},
        {"dropout": 1.5},
        {"epochs": 0},
        {"weight_decay": -1e-5},
        {"eval_batch_size": 0},
        {"likelihood": "Gaussian"},
        {"confidence": -1.0},
    ]
    state_kinds = "f"


class TestGaussianMultDAEContract(TestMultDAEContract):
    """The whole contract (planted blocks, a fixed seed, save/load) under the Gaussian likelihood."""

    fast_params = {**TestMultDAEContract.fast_params, "likelihood": "gaussian"}


class TestLogisticMultDAEContract(TestMultDAEContract):
    fast_params = {**TestMultDAEContract.fast_params, "likelihood": "logistic"}
