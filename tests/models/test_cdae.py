"""CDAE: the contract, its loss against a direct formula, negative sampling and the fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.models import CDAE
from recae.models.cdae_nn import (
    CDAENet,
    Histories,
    expected_weights,
    negative_weight,
    output_gradient,
    reconstruction_loss,
    sample_negatives,
)
from tests.conftest import planted_blocks
from tests.models.contract import N_BLOCKS, N_ITEMS, ModelContract

FAST = dict(hidden_dim=16, epochs=30, batch_size=40, device="cpu")


class TestCDAEContract(ModelContract):
    model_class = CDAE
    fast_params = FAST
    bad_params = [
        {"hidden_dim": 0},
        {"hidden_dim": -50},
        {"dropout": 1.0},
        {"dropout": 1.5},
        {"dropout": -0.1},
        {"negative_sampling": 0},
        {"negative_sampling": "most"},
        {"loss": "hinge"},
        {"hidden_activation": "tanh"},
        {"output_activation": "identity"},  # the logistic loss needs a probability
        {"l2": -0.01},
        {"optimizer": "sgd"},
        {"lr": 0.0},
        {"fold_in_steps": -1},
        {"fold_in_lr": 0.0},
    ]
    state_kinds = "f"


def test_the_papers_defaults():
    m = CDAE()
    assert (m.hidden_dim, m.hidden_activation, m.output_activation, m.loss) == (50, "sigmoid", "sigmoid", "logistic")
    assert (m.negative_sampling, m.dropout, m.l2, m.optimizer, m.lr) == (5, 0.5, 0.01, "adagrad", 0.1)


def test_the_square_loss_takes_an_identity_output():
    CDAE(loss="square", output_activation="identity")._validate_params()


# ------------------------------------------------------------ the loss by hand
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _hand_net() -> CDAENet:
    """I = 4 items, K = 2 hidden units, 3 training users, with set weights."""
    net = CDAENet(n_items=4, hidden_dim=2, n_users=3)
    with torch.no_grad():
        net.items_in.copy_(torch.tensor([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2], [0.3, 0.1]]))
        net.bias_in.copy_(torch.tensor([0.05, -0.1]))
        net.items_out.copy_(torch.tensor([[0.2, 0.4], [-0.3, 0.1], [0.6, -0.5], [0.0, 0.25]]))
        net.bias_out.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3]))
        net.users.copy_(torch.tensor([[0.1, 0.2], [-0.3, 0.05], [0.0, -0.1]]))
    return net


@pytest.mark.parametrize(
    "loss, hidden, output",
    [("logistic", "sigmoid", "sigmoid"), ("square", "sigmoid", "identity"), ("square", "identity", "sigmoid")],
)
def test_one_batch_loss_matches_a_direct_computation(loss, hidden, output):
    net = _hand_net()
    net.hidden_activation = hidden
    # users 2 and 0 of the training set; histories {0, 1, 3} and {2}
    y = np.array([[1, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float64)
    q = 0.5
    kept = np.array([[1, 0, 0, 1], [0, 0, 1, 0]], dtype=np.float64)  # item 1 of the first user dropped
    x_tilde = y * kept / (1 - q)
    c = np.array([[1, 1, 2, 1], [1, 0, 1, 3]], dtype=np.float64)  # positives once, negatives as sampled
    users = [2, 0]
    lam = 0.03

    X = sp.csr_matrix(y.astype(np.float32))
    x = Histories.from_scipy(X)
    x_in = Histories(x.indptr, x.indices, torch.tensor(x_tilde[y > 0], dtype=torch.float32), 4)
    model = CDAE(loss=loss, output_activation=output, hidden_activation=hidden, l2=lam)
    got, parts = model.objective(
        net, x_in, torch.tensor(users), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(c.astype(np.float32))
    )

    W, b = net.items_in.detach().double().numpy(), net.bias_in.detach().double().numpy()
    W2, b2 = net.items_out.detach().double().numpy(), net.bias_out.detach().double().numpy()
    V = net.users.detach().double().numpy()
    pre = x_tilde @ W + V[users] + b
    z = _sigmoid(pre) if hidden == "sigmoid" else pre
    s = z @ W2.T + b2
    if loss == "logistic":
        p = _sigmoid(s)
        terms = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    else:
        f = _sigmoid(s) if output == "sigmoid" else s
        terms = (y - f) ** 2
    rec = (c * terms).sum(axis=1).mean()
    penalty = lam / 2 * ((V[users] ** 2).sum() / 2 + (W**2).sum() + (W2**2).sum() + (b**2).sum() + (b2**2).sum())
    assert got.item() == pytest.approx(rec + penalty, abs=1e-6)
    assert float(parts["reconstruction"]) == pytest.approx(rec, abs=1e-6)


def test_corruption_drops_with_probability_q_and_scales_survivors():
    torch.manual_seed(0)
    X = sp.csr_matrix(np.ones((200, 100), dtype=np.float32))
    values = Histories.from_scipy(X).corrupted(0.25).values.numpy()
    assert set(np.unique(values)) == {0.0, np.float32(1 / 0.75)}
    assert (values == 0).mean() == pytest.approx(0.25, abs=0.01)


# --------------------------------------------------------- negative sampling
def test_negatives_are_ratio_times_the_positives_and_never_positive():
    X, _ = planted_blocks(n_users=50, n_items=40, density=0.4, seed=3)
    x = Histories.from_scipy(X)
    torch.manual_seed(0)
    counts = sample_negatives(x, 5).numpy()
    sizes = np.diff(X.indptr)
    np.testing.assert_array_equal(counts.sum(axis=1), 5 * sizes)
    assert (counts[X.toarray() > 0] == 0).all()


def test_negatives_are_uniform_over_the_other_items():
    y = np.zeros((1, 10), dtype=np.float32)
    y[0, [0, 3, 4, 9]] = 1
    x = Histories.from_scipy(sp.csr_matrix(y))
    torch.manual_seed(0)
    total = sum(sample_negatives(x, 2500).numpy() for _ in range(2))[0]  # 20,000 draws
    free = [1, 2, 5, 6, 7, 8]
    assert total[free].sum() == 20_000
    np.testing.assert_allclose(total[free] / 20_000, 1 / 6, atol=0.01)


def test_expected_weights_average_the_sampler():
    y = np.zeros((2, 8), dtype=np.float32)
    y[0, [1, 2]] = 1
    y[1, [0, 5, 6, 7]] = 1
    x = Histories.from_scipy(sp.csr_matrix(y))
    w = expected_weights(x, 3).numpy()
    np.testing.assert_allclose(w[0], np.where(y[0] > 0, 1.0, 3 * 2 / 6), rtol=1e-6)
    np.testing.assert_allclose(w[1], np.where(y[1] > 0, 1.0, 3 * 4 / 4), rtol=1e-6)
    np.testing.assert_array_equal(expected_weights(x, None).numpy(), np.ones((2, 8)))


# ------------------------------------------------------------------ fold-in
@pytest.mark.parametrize(
    "loss, output, ratio", [("logistic", "sigmoid", 5), ("logistic", "sigmoid", None), ("square", "identity", 2)]
)
def test_the_fold_in_gradient_is_the_losss_gradient(loss, output, ratio):
    X, _ = planted_blocks(n_users=7, n_items=30, density=0.3, seed=4)
    x = Histories.from_scipy(X)
    torch.manual_seed(0)
    net = CDAENet(30, 4).double()
    xd = Histories(x.indptr, x.indices, x.values.double(), 30)
    nodes = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    logits = net.logits(net.hidden(net.input_sum(xd).detach(), nodes))
    total = reconstruction_loss(logits, xd.dense().double(), expected_weights(xd, ratio).double(), loss, output).sum()
    (expected,) = torch.autograd.grad(total, [nodes])
    with torch.no_grad():
        z = net.hidden(net.input_sum(xd), nodes)
        grad = output_gradient(net.logits(z), xd, negative_weight(xd, ratio), loss, output) @ net.items_out
        grad *= z * (1 - z)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def planted_fit():
    X, _ = planted_blocks(n_users=150, n_items=N_ITEMS, n_blocks=N_BLOCKS, density=0.5, seed=0)
    new, blocks = planted_blocks(n_users=30, n_items=N_ITEMS, n_blocks=N_BLOCKS, density=0.3, seed=1)
    return CDAE(**FAST).fit(X), new, blocks


def _fold_in_loss(model: CDAE, X: sp.csr_matrix, nodes: np.ndarray) -> np.ndarray:
    """Each history's fold-in objective at input nodes ``nodes``: (n,)."""
    net, x = model.module_, Histories.from_scipy(X)
    with torch.no_grad():
        logits = net.logits(net.hidden(net.input_sum(x), torch.from_numpy(nodes)))
        rec = reconstruction_loss(logits, x.dense(), expected_weights(x, model._ratio), model.loss, model.output_activation)
    return rec.numpy() + 0.5 * model.l2 * (nodes**2).sum(axis=1)


def test_fold_in_keeps_the_item_weights_and_lowers_each_users_loss(planted_fit):
    model, new, _ = planted_fit
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    nodes = model.fold_in(new)
    assert nodes.shape == (new.shape[0], model.hidden_dim) and np.abs(nodes).sum() > 0
    for key, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
        assert model.module_.get_parameter(key).grad is None
    at_zero = _fold_in_loss(model, new, np.zeros_like(nodes))
    assert (_fold_in_loss(model, new, nodes) < at_zero).all()


def test_no_fold_in_steps_scores_with_zero_input_nodes(planted_fit):
    model, new, _ = planted_fit
    try:
        model.set_params(fold_in_steps=0)
        assert not model.fold_in(new).any()
    finally:
        model.set_params(fold_in_steps=FAST.get("fold_in_steps", CDAE().fold_in_steps))


def test_held_out_users_get_their_blocks_items_first(planted_fit):
    """Each new user has about 14 unseen items of their block: the top 10 are theirs."""
    model, new, blocks = planted_fit
    items, _ = model.recommend(new, k=10)
    own = (items % N_BLOCKS) == blocks[:, None]
    assert own.mean() > 0.95, f"only {own.mean():.0%} of the top 10 from the user's block"


def test_the_training_users_input_nodes_are_not_kept(planted_fit):
    model, _, _ = planted_fit
    assert tuple(model.module_.users.shape) == (0, model.hidden_dim)
    assert model.history_ and model.best_epoch_ == len(model.history_)  # no validation: the last epoch


def test_any_stored_value_is_one_interaction_and_an_empty_history_scores(planted_fit):
    model, new, _ = planted_fit
    heavier = new.copy()
    heavier.data *= 3.0
    np.testing.assert_array_equal(model.score(heavier), model.score(new))
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    assert not model.fold_in(empty).any()
    assert np.isfinite(model.score(empty)).all()
