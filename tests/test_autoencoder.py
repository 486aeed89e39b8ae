"""Mult-VAE / Mult-DAE: the networks, the losses, the schedule and the training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import ModelFitError, UsageError
from recae.models import MultDAE, MultVAE, Recommender
from recae.models.nn import MultDAENet, MultVAENet, gaussian_kl, multinomial_nll, weight_l2
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


def test_kl_annealing_schedule():
    vae = MultVAE(anneal_cap=0.2, total_anneal_steps=1000)
    assert vae.beta(0) == 0.0
    assert vae.beta(100) == pytest.approx(0.1)
    assert vae.beta(200) == pytest.approx(0.2)
    assert vae.beta(10_000) == pytest.approx(0.2)
    assert MultVAE(anneal_cap=0.3, total_anneal_steps=0).beta(5) == 0.3


def test_vae_scores_deterministically_in_eval_mode():
    net = MultVAENet(20, hidden_dims=(8,), latent_dim=4).eval()
    x = torch.rand(3, 20)
    assert torch.equal(net(x)[0], net(x)[0])


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
    from recae.evaluation.metrics import evaluate

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


@pytest.mark.parametrize("cls", [MultVAE, MultDAE])
def test_save_and_load_round_trip(cls, tmp_path):
    X, _ = planted_blocks()
    model = cls(**{**FAST, "epochs": 3}).fit(X)
    path = model.save(tmp_path / "m")
    loaded = Recommender.load(path)
    assert type(loaded) is cls and loaded.get_params()["latent_dim"] == FAST["latent_dim"]
    np.testing.assert_array_equal(loaded.score(X[:10]), model.score(X[:10]))
    # the state file is plain arrays: it loads with pickling disabled
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype.kind == "f" for k in npz.files)


def test_a_diverging_loss_raises_and_leaves_no_half_fitted_model(monkeypatch):
    X, _ = planted_blocks()
    model = MultDAE(**FAST)
    monkeypatch.setattr(MultDAE, "_loss", lambda self, net, x, update: (torch.tensor(float("nan"), requires_grad=True), {"loss": float("nan")}))
    with pytest.raises(ModelFitError, match="loss became nan in epoch 1"):
        model.fit(X)
    assert not model.is_fitted


def test_invalid_parameters_are_named():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="dropout=1.5"):
        MultVAE(**{**FAST, "dropout": 1.5}).fit(X)
    with pytest.raises(UsageError, match="device='tpu'"):
        MultVAE(**{**FAST, "device": "tpu"}).fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_matches_the_cpu_ranking():
    X, _ = planted_blocks()
    gpu = MultVAE(**{**FAST, "device": "cuda"}).fit(X)
    assert next(gpu.module_.parameters()).is_cuda
    cpu = MultVAE(**{**FAST, "device": "cpu"}).fit(X)
    top_gpu, _ = gpu.recommend(X[:20], 5)
    top_cpu, _ = cpu.recommend(X[:20], 5)
    assert (top_gpu == top_cpu).mean() > 0.8


@pytest.mark.parametrize("net_cls", [MultDAENet, MultVAENet])
def test_sparse_and_dense_batches_give_the_same_outputs_and_gradients(net_cls):
    from recae.models.nn import SparseBatch

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
