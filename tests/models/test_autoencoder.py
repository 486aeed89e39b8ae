"""The training loop Mult-VAE and Mult-DAE share: defaults, curves, early stopping, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import ModelFitError, UsageError
from recae.evaluation.metrics import evaluate
from recae.models import MultDAE, MultVAE
from tests.conftest import planted_blocks

FAST = dict(hidden_dims=(32,), latent_dim=8, epochs=15, batch_size=40, lr=1e-2, device="cpu")


def test_paper_defaults():
    vae, dae = MultVAE(), MultDAE()
    for m in (vae, dae):
        assert tuple(m.hidden_dims) == (600,) and m.latent_dim == 200
        assert m.dropout == 0.5 and m.lr == 1e-3 and m.batch_size == 500 and m.epochs == 200
        assert m.patience is None
    assert vae.anneal_cap == 0.2 and vae.total_anneal_steps == 200_000 and vae.weight_decay == 0.0
    assert dae.weight_decay == pytest.approx(0.01 / 500)


def _val(X: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each row in half: (input, targets)."""
    rows, cols = X.nonzero()
    take = np.arange(len(rows)) % 2 == 0
    mk = lambda m: sp.csr_matrix((np.ones(m.sum(), np.float32), (rows[m], cols[m])), shape=X.shape)  # noqa: E731
    return mk(take), mk(~take)


@pytest.mark.parametrize("cls", [MultVAE, MultDAE])
def test_training_records_curves_and_restores_the_best_epoch(cls):
    X, _ = planted_blocks(n_users=120, n_items=60)
    val = _val(planted_blocks(n_users=30, n_items=60, seed=1)[0])
    records = []
    model = cls(**FAST).fit(X, validation=val, callback=records.append)
    assert len(model.history_) == FAST["epochs"] == len(records)
    keys = {"epoch", "loss", "nll", "epoch_seconds", "val/ndcg_at_100"} | ({"kl", "beta"} if cls is MultVAE else set())
    assert keys <= set(records[0])
    best = max(model.history_, key=lambda r: r["val/ndcg_at_100"])
    assert model.best_epoch_ == best["epoch"]
    # the restored weights reproduce the best epoch's validation score
    assert evaluate(model, *val, ks=(100,)).means()["ndcg_at_100"] == pytest.approx(best["val/ndcg_at_100"])


def test_patience_stops_early():
    X, _ = planted_blocks()
    val = _val(planted_blocks(n_users=30, seed=1)[0])
    model = MultDAE(**{**FAST, "epochs": 200, "patience": 3}).fit(X, validation=val)
    assert len(model.history_) < 200
    assert len(model.history_) - model.best_epoch_ == 3


def test_without_validation_all_epochs_run_and_the_last_weights_stay():
    X, _ = planted_blocks()
    model = MultVAE(**FAST).fit(X)
    assert len(model.history_) == FAST["epochs"] and model.best_epoch_ == FAST["epochs"]
    assert math.isnan(model.best_score_)


def test_fit_leaves_the_global_torch_rng_alone():
    X, _ = planted_blocks()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MultVAE(**{**FAST, "epochs": 2}).fit(X)
    assert torch.equal(torch.rand(3), expected)


def test_different_seeds_give_different_models():
    X, _ = planted_blocks()
    a = MultVAE(**{**FAST, "epochs": 2, "random_state": 1}).fit(X).score(X[:5])
    b = MultVAE(**{**FAST, "epochs": 2, "random_state": 2}).fit(X).score(X[:5])
    assert not np.allclose(a, b)


def test_a_diverging_loss_raises_and_leaves_no_half_fitted_model(monkeypatch):
    X, _ = planted_blocks()
    model = MultDAE(**FAST)
    monkeypatch.setattr(MultDAE, "_loss", lambda self, net, x, update: (torch.tensor(float("nan"), requires_grad=True), {"loss": float("nan")}))
    with pytest.raises(ModelFitError, match="loss became nan in epoch 1"):
        model.fit(X)
    assert not model.is_fitted


def test_invalid_parameters_are_named():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="dropout must be .*, got 1.5"):
        MultVAE(**{**FAST, "dropout": 1.5}).fit(X)
    with pytest.raises(UsageError, match="device='tpu'"):
        MultVAE(**{**FAST, "device": "tpu"}).fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("cls", [MultVAE, MultDAE])
def test_cuda_training_learns_the_planted_blocks_as_the_cpu_does(cls, amp):
    """Trained on the GPU, the top-5 lists are the users' own blocks, as on the CPU (the
    random draws differ between the devices, so the lists are compared by quality)."""
    X, block = planted_blocks()
    for device in ("cuda", "cpu"):
        model = cls(**{**FAST, "device": device, "amp": amp}).fit(X)
        assert next(model.module_.parameters()).device.type == device
        top, _ = model.recommend(X, 5)
        assert (top % 3 == block[:, None]).mean() > 0.95, device  # planted_blocks: item i is in block i % 3
