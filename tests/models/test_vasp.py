"""VASP: the contract, the focal loss against a direct formula, the shallow path and its memory check."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import MemoryBudgetError
from recae.models import VASP
from recae.models.nn import SparseBatch
from recae.models.vasp import split_halves
from recae.models.vasp_nn import VASPNet, focal_loss, mean_kl
from tests.conftest import planted_blocks
from tests.models.contract import ModelContract

FAST = dict(
    hidden_dim=32, latent_dim=8, encoder_layers=3, decoder_layers=2, epochs=20, batch_size=40, lr=1e-2, device="cpu"
)


class TestVASPContract(ModelContract):
    model_class = VASP
    fast_params = FAST
    bad_params = [
        {"hidden_dim": -4},
        {"latent_dim": 0},
        {"encoder_layers": 0},
        {"dropout": 1.0},
        {"focal_gamma": -1.0},
        {"focal_alpha": 1.5},
        {"kl_weight": -0.1},
        {"augment": 1},
        {"lr": 0.0},
        {"lr_decay": 0.0},
        {"lr_decay_epoch": 0},
        {"max_memory": 0},
    ]
    state_kinds = "f"


def test_the_authors_defaults():
    m = VASP()
    assert (m.hidden_dim, m.latent_dim, m.encoder_layers, m.decoder_layers) == (4096, 2048, 7, 5)
    assert (m.focal_alpha, m.focal_gamma, m.kl_weight, m.dropout, m.augment) == (0.25, 2.0, 1.0, 0.0, True)
    assert (m.epochs, m.batch_size, m.lr) == (90, 1024, 5e-5)
    assert [m.learning_rate(e) for e in (1, 50, 51, 90)] == pytest.approx([5e-5, 5e-5, 1e-5, 1e-5])
    net = VASPNet(30, hidden_dim=16, latent_dim=4)
    assert len(net.encoder.norms) == 7 and len(net.decoder.norms) == 5
    assert all(norm.eps == 1e-3 for norm in [*net.encoder.norms, *net.decoder.norms])
    assert net.shallow.bias is None and tuple(net.shallow.weight.shape) == (30, 30)


def _numpy_focal(p: np.ndarray, y: np.ndarray, alpha: float, gamma: float) -> float:
    """TensorFlow Addons' sigmoid_focal_crossentropy over Keras' binary_crossentropy, in numpy."""
    eps = 1e-7
    q = np.clip(p, eps, 1 - eps)
    ce = -(y * np.log(q + eps) + (1 - y) * np.log(1 - q + eps))
    p_t = y * p + (1 - y) * (1 - p)
    alpha_t = y * alpha + (1 - y) * (1 - alpha)
    return float((alpha_t * (1 - p_t) ** gamma * ce).sum(axis=1).mean())


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.5, 0.0), (0.9, 3.5)])
def test_focal_loss_matches_a_direct_formula(alpha, gamma):
    rng = np.random.default_rng(0)
    p = rng.random((5, 7))
    p[0, :3] = [0.0, 1.0, 1e-9]  # the clipped ends
    y = (rng.random((5, 7)) < 0.4).astype(np.float64)
    got = focal_loss(torch.from_numpy(p), torch.from_numpy(y), alpha, gamma).item()
    assert got == pytest.approx(_numpy_focal(p, y, alpha, gamma), abs=1e-6)


def test_the_step_loss_is_focal_loss_of_the_product_plus_the_mean_kl():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((6, 12)) < 0.4).astype(np.float32))
    model = VASP(hidden_dim=8, latent_dim=3, encoder_layers=2, decoder_layers=2, kl_weight=0.7, device="cpu")
    torch.manual_seed(0)
    net = model._build(12).double()
    y = torch.from_numpy(rng.random((6, 12)) < 0.5).double()
    x = torch.from_numpy(X.toarray()).double()
    torch.manual_seed(1)
    loss, parts = model._pair_loss(net, x, y)
    torch.manual_seed(1)  # the same ε for the same z
    out = net(x)
    sig = lambda t: 1 / (1 + np.exp(-t.detach().numpy()))  # noqa: E731
    p = sig(out.deep) * sig(out.latent) * sig(out.shallow)
    mu, logvar = out.mu.detach().numpy(), out.logvar.detach().numpy()
    kl = -0.5 * np.mean(1 + logvar - mu**2 - np.exp(logvar))
    focal = _numpy_focal(p, y.numpy(), 0.25, 2.0)
    assert float(parts["focal"]) == pytest.approx(focal, abs=1e-6)
    assert float(parts["kl"]) == pytest.approx(kl, abs=1e-6) == mean_kl(out.mu, out.logvar).item()
    assert loss.item() == pytest.approx(focal + 0.7 * kl, abs=1e-6)


def test_scores_are_the_log_of_the_product_of_the_three_sigmoids():
    X, _ = planted_blocks(n_users=20, n_items=30)
    model = VASP(**{**FAST, "epochs": 1}).fit(X)
    with torch.no_grad():
        out = model.module_(torch.from_numpy(X.toarray()))
    np.testing.assert_allclose(np.exp(model.score(X)), out.probability().numpy(), rtol=1e-5, atol=1e-7)


def test_sparse_and_dense_batches_give_the_same_outputs_and_gradients():
    X, _ = planted_blocks(n_users=20, n_items=30)
    torch.manual_seed(0)
    net = VASPNet(30, hidden_dim=16, latent_dim=4, encoder_layers=2, decoder_layers=2)
    results = []
    for x in (torch.from_numpy(X.toarray()), SparseBatch.from_scipy(X)):
        net.zero_grad()
        torch.manual_seed(1)  # the same sampling noise
        out = net(x)
        out.probability().sum().backward()
        results.append([out.log_probability().detach()] + [p.grad.clone() for p in net.parameters()])
    for dense, sparse in zip(*results):
        torch.testing.assert_close(dense, sparse, rtol=1e-4, atol=1e-5)


def test_the_halves_cut_each_history_in_two_and_predict_each_other():
    rng = np.random.default_rng(2)
    dense = (rng.random((9, 15)) < 0.5).astype(np.float32)
    dense[0] = 0.0  # no items
    dense[1] = 0.0
    dense[1, 4] = 1.0  # one item: the first half is empty
    X = sp.csr_matrix(dense)
    original = X.copy()
    inputs, targets = split_halves(X, rng.random(X.nnz))
    S, F = inputs[:9], inputs[9:]
    np.testing.assert_array_equal(targets[:9].toarray(), F.toarray())
    np.testing.assert_array_equal(targets[9:].toarray(), S.toarray())
    np.testing.assert_array_equal((S + F).toarray(), X.toarray())  # disjoint, and together the history
    assert S.multiply(F).nnz == 0
    np.testing.assert_array_equal(F.getnnz(axis=1), X.getnnz(axis=1) // 2)
    assert (X != original).nnz == 0  # the batch itself is left as it was


def test_the_shallow_diagonal_stays_zero_through_training():
    X, _ = planted_blocks(n_users=60, n_items=30)
    net = VASPNet(30, hidden_dim=8, latent_dim=4)
    assert not net.shallow.weight.diagonal().any()
    model = VASP(**{**FAST, "epochs": 3}).fit(X)
    weight = model.module_.shallow.weight.detach()
    assert not weight.diagonal().any()
    assert (weight - torch.diag(weight.diagonal())).abs().sum() > 0  # off the diagonal it learnt
    saved = model._get_state()["shallow.weight"]
    assert not np.diag(saved).any()


def test_the_memory_check_refuses_naming_the_bytes_before_training():
    X, _ = planted_blocks()
    model = VASP(**FAST)
    need = model.memory_estimate(X.shape[1])
    shallow, deep = model.parameter_counts(X.shape[1])
    assert shallow == X.shape[1] ** 2
    torch.manual_seed(0)
    assert deep == sum(p.numel() for p in model._build(X.shape[1]).parameters()) - shallow
    assert need > 4 * 6 * (shallow + deep)
    model.set_params(max_memory=need / 2)
    model._build = lambda n: pytest.fail("the network was built")
    with pytest.raises(MemoryBudgetError) as err:
        model.fit(X)
    message = str(err.value)
    assert "\n" not in message and f"({need} bytes" in message and f"{X.shape[1]}×{X.shape[1]}" in message
    assert "over the budget" in message and "max_memory" in message
    assert not model.is_fitted
    # the paper's network on an ML-20M-sized catalogue: refused with a budget of 8 GB
    with pytest.raises(MemoryBudgetError, match="VASP on n_items=20108 needs about"):
        VASP(max_memory=8e9).check_resources(100_000, 20_108)


def test_held_out_users_get_their_blocks_items_first():
    X, _ = planted_blocks(n_users=150, n_items=60, density=0.5)
    new, blocks = planted_blocks(n_users=30, n_items=60, density=0.3, seed=1)
    model = VASP(**FAST).fit(X)
    items, _ = model.recommend(new, k=10)
    assert ((items[:, 0] % 3) == blocks).all()
    assert ((items % 3) == blocks[:, None]).mean() > 0.9


def test_the_rate_drops_after_its_epoch_and_each_epoch_logs_it():
    X, _ = planted_blocks(n_users=30, n_items=20)
    model = VASP(**{**FAST, "epochs": 3, "lr_decay_epoch": 2, "lr_decay": 0.5}).fit(X)
    assert [r["lr"] for r in model.history_] == pytest.approx([1e-2, 1e-2, 5e-3])
    assert set(model.history_[0]) >= {"epoch", "loss", "focal", "kl", "lr", "epoch_seconds"}
    assert VASP(lr_decay_epoch=None).learning_rate(1000) == 5e-5
