"""The three likelihoods of Mult-VAE and Mult-DAE against numpy, alone and inside each model's batch loss.

Fitting under each likelihood (planted blocks recovered, a fixed seed repeats,
save/load keeps the likelihood) is the contract, run per likelihood in
test_mult_vae.py and test_mult_dae.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recae.errors import UsageError
from recae.models import MultDAE, MultVAE
from recae.models.likelihoods import LIKELIHOODS, negative_log_likelihood
from recae.models.nn import SparseBatch
from tests.conftest import planted_blocks

# A hand case: two users, five items; one count above 1 and one stored zero,
# so that no formula can lean on x being binary or on every stored entry being non-zero.
F_HAND = np.array([[0.5, -1.0, 2.0, 0.0, 1.5], [-0.3, 0.2, 0.1, -2.0, 3.0]])
X_HAND = np.array([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0, 1.0]])


def _numpy_nll(likelihood: str, f: np.ndarray, x: np.ndarray, confidence: float = 1.0) -> float:
    """−log p(x|z) of Liang et al. §2.1, written out directly, averaged over users."""
    if likelihood == "multinomial":
        log_softmax = f - np.log(np.exp(f).sum(axis=1, keepdims=True))
        per_user = -(x * log_softmax).sum(axis=1)
    elif likelihood == "gaussian":
        c = np.where(x != 0, confidence, 1.0)
        per_user = (c / 2 * (x - f) ** 2).sum(axis=1)
    else:
        sigma = 1 / (1 + np.exp(-f))
        per_user = -(x * np.log(sigma) + (1 - x) * np.log(1 - sigma)).sum(axis=1)
    return float(per_user.mean())


def test_the_hand_values_worked_out():
    # uniform logits over 4 items, two items: 2 log 4; f = 0 everywhere: Gaussian ½·|x|, logistic 4 log 2
    f, x = np.zeros((1, 4)), np.array([[1.0, 1.0, 0.0, 0.0]])
    assert _numpy_nll("multinomial", f, x) == pytest.approx(2 * np.log(4))
    assert _numpy_nll("gaussian", f, x) == pytest.approx(1.0)
    assert _numpy_nll("gaussian", f, x, confidence=3.0) == pytest.approx(3.0)
    assert _numpy_nll("logistic", f, x) == pytest.approx(4 * np.log(2))


@pytest.mark.parametrize("confidence", [1.0, 4.0])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_each_likelihood_against_numpy_dense_and_sparse(likelihood, confidence):
    expected = _numpy_nll(likelihood, F_HAND, X_HAND, confidence)
    f = torch.from_numpy(F_HAND)
    dense = negative_log_likelihood(likelihood, f, torch.from_numpy(X_HAND), confidence)
    assert dense.item() == pytest.approx(expected, abs=1e-6)
    X = sp.csr_matrix(X_HAND)
    X.data[0] = 0.0  # a stored zero counts as unobserved, as in the dense form
    x_zeroed = X.toarray()
    sparse = negative_log_likelihood(likelihood, f.float(), SparseBatch.from_scipy(X), confidence)
    assert X.nnz == 4 and x_zeroed[0, 0] == 0
    assert sparse.item() == pytest.approx(_numpy_nll(likelihood, F_HAND, x_zeroed, confidence), abs=1e-5)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_sparse_and_dense_batches_give_the_same_gradient(likelihood):
    X, _ = planted_blocks(n_users=10, n_items=30)
    f = torch.randn(10, 30, generator=torch.Generator().manual_seed(0), requires_grad=True)
    grads = []
    for x in (torch.from_numpy(X.toarray()), SparseBatch.from_scipy(X)):
        f.grad = None
        negative_log_likelihood(likelihood, f, x, confidence=3.0).backward()
        grads.append(f.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("model_class", [MultVAE, MultDAE])
def test_the_models_batch_loss_is_the_formula(model_class, likelihood, monkeypatch):
    """The model's loss of a batch of users against numpy, in float64, batches densified."""
    monkeypatch.setattr("recae.models.autoencoder._to_batch", lambda X, device: torch.from_numpy(X.toarray()))
    X, _ = planted_blocks(n_users=12, n_items=20)
    model = model_class(hidden_dims=(8,), latent_dim=4, dropout=0.0, likelihood=likelihood, confidence=2.5)
    torch.manual_seed(0)
    net = model._build(X.shape[1]).double()
    model.device_ = torch.device("cpu")
    users = np.array([7, 2, 11, 0, 5])
    x = X[users].toarray().astype(np.float64)
    torch.manual_seed(1)
    loss, parts = model._batch_loss(net, sp.csr_matrix(X, dtype=np.float64), users, update=10)
    torch.manual_seed(1)  # the same ε for the VAE's sample
    out = net(torch.from_numpy(x))
    f = (out[0] if isinstance(out, tuple) else out).detach().numpy()
    nll = _numpy_nll(likelihood, f, x, confidence=2.5)
    assert float(parts["nll"]) == pytest.approx(nll, abs=1e-6)
    if model_class is MultVAE:
        mu, logvar = (t.detach().numpy() for t in out[1:])
        kl = float((0.5 * (-logvar + np.exp(logvar) + mu**2 - 1)).sum(axis=1).mean())
        assert loss.item() == pytest.approx(nll + model.beta(10) * kl, abs=1e-6)
    else:
        l2 = sum(float((p.detach().numpy() ** 2).sum()) for n, p in net.named_parameters() if n.endswith("weight"))
        assert loss.item() == pytest.approx(nll + model.weight_decay * l2, abs=1e-6)


@pytest.mark.parametrize("model_class", [MultVAE, MultDAE])
def test_the_default_is_the_papers_multinomial_likelihood(model_class):
    model = model_class()
    assert model.likelihood == "multinomial" and model.get_params()["likelihood"] == "multinomial"
    assert model.get_params()["confidence"] == 1.0


def test_an_unknown_likelihood_names_the_allowed_ones():
    X, _ = planted_blocks(n_users=10, n_items=20)
    with pytest.raises(UsageError) as err:
        MultVAE(likelihood="poisson").fit(X)
    message = str(err.value)
    assert "\n" not in message and "'poisson'" in message
    assert all(repr(name) in message for name in LIKELIHOODS)


@pytest.mark.parametrize("model_class", [MultVAE, MultDAE])
def test_the_search_space_draws_every_likelihood_and_the_confidence_only_with_the_gaussian(model_class):
    optuna = pytest.importorskip("optuna")  # skipped where it is missing, as in the shared contract

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = set()
    for _ in range(40):
        params = model_class.search_space(study.ask())
        drawn.add(params["likelihood"])
        assert ("confidence" in params) == (params["likelihood"] == "gaussian")
        model_class(**params)  # every drawn value passes the model's checks
    assert drawn == set(LIKELIHOODS)
