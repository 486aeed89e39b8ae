"""The likelihoods p(x|z) of the autoencoders' decoders, as negative log-likelihoods.

Liang, Krishnan, Hoffman and Jebara, "Variational Autoencoders for
Collaborative Filtering", WWW 2018, §2.1, with f = f_θ(z) the decoder's output
for one user and x the user's history over I items:

- multinomial: log p(x|z) = Σ_i x_i log softmax(f)_i (the paper's choice);
- gaussian:    log p(x|z) = −Σ_i c_i/2 (x_i − f_i)², up to a constant; the
  confidence c_i is ``confidence`` where x_i ≠ 0 and 1 elsewhere, as in
  weighted matrix factorization (Hu, Koren and Volinsky 2008);
- logistic:    log p(x|z) = Σ_i x_i log σ(f_i) + (1 − x_i) log(1 − σ(f_i)).

Every function takes f, shape (batch, I), and x, dense (batch, I) or a
:class:`~recae.models.nn.SparseBatch`, and returns −log p(x|z) summed over items
and averaged over the batch. The sparse forms touch the dense f once and x's
non-zeros only; they equal the dense forms. For ranking, each likelihood's
item order is the order of f (softmax and σ are increasing), so the models
score with f itself whatever the likelihood.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from recae.checks import Constraint, Interval, Options
from recae.models.nn import SparseBatch

#: The likelihoods Mult-VAE and Mult-DAE accept, the paper's first.
LIKELIHOODS = ("multinomial", "gaussian", "logistic")

#: The constraints of the two parameters that choose the likelihood, for a
#: model's ``_parameter_constraints``.
LIKELIHOOD_CONSTRAINTS: dict[str, list[Constraint]] = {
    "likelihood": [Options(LIKELIHOODS)],
    "confidence": [Interval(float, 0, None, closed="neither")],
}


def likelihood_search_space(trial: Any) -> dict[str, Any]:
    """The likelihood, and the Gaussian's weight of observed items when it is drawn.

    The paper compares the three likelihoods; on ml-1m-lcfn with the defaults the
    Gaussian leads (README), so a tuning run searches the choice rather than fix it.
    """
    likelihood = trial.suggest_categorical("likelihood", list(LIKELIHOODS))
    if likelihood != "gaussian":
        return {"likelihood": likelihood}
    return {"likelihood": likelihood, "confidence": trial.suggest_float("confidence", 1.0, 100.0, log=True)}


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor | SparseBatch) -> torch.Tensor:
    """Multinomial negative log-likelihood −Σ_i x_i log softmax(logits)_i, averaged over the batch."""
    if isinstance(x, SparseBatch):
        return _SparseMultinomialNLL.apply(logits, x.rows, x.indices, x.values)
    return -(F.log_softmax(logits, dim=1) * x).sum(dim=1).mean()


class _SparseMultinomialNLL(torch.autograd.Function):
    """−Σ_u Σ_i x_ui log softmax(f_u)_i / n for a sparse x, with its gradient
    (|x_u|·softmax(f_u) − x_u) / n written into the buffer of log softmax itself.

    The same numbers as autograd through ``log_softmax`` and a gather, with two
    fewer passes over the n × n_items logits (the gather's zero-filled gradient
    and its copy); the output layer is the largest tensor of a training step.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # the loss in float32 under amp
    def forward(  # noqa: ANN001
        ctx, logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        with torch.autocast(logits.device.type, enabled=False):  # float32 on an accelerator too
            log_p = F.log_softmax(logits.float(), dim=1)
        ctx.save_for_backward(log_p, rows, cols, values)
        return -(log_p[rows, cols] * values).sum() / logits.shape[0]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # noqa: ANN001
        log_p, rows, cols, values = ctx.saved_tensors
        n = log_p.shape[0]
        scale = grad / n
        totals = torch.zeros(n, dtype=log_p.dtype, device=log_p.device).index_add_(0, rows, values)
        out = log_p.exp_()  # log_p is not needed again (once_differentiable): softmax in place
        out.mul_((totals * scale)[:, None])
        out.index_put_((rows, cols), -values * scale, accumulate=True)
        return out, None, None, None


def gaussian_nll(outputs: torch.Tensor, x: torch.Tensor | SparseBatch, confidence: float = 1.0) -> torch.Tensor:
    """Weighted squared error Σ_i c_i/2 (x_i − f_i)², c_i = ``confidence`` where x_i ≠ 0 else 1, averaged over the batch.

    The Gaussian's normalising constant, which does not depend on f, is left out.
    """
    if isinstance(x, SparseBatch):
        # Σ over all cells of f²/2 (the error where x = 0), corrected at x's stored entries.
        f = outputs[x.rows, x.indices]
        c = 1.0 + (confidence - 1.0) * (x.values != 0).to(f.dtype)
        at_entries = 0.5 * c * (x.values - f).pow(2) - 0.5 * f.pow(2)
        return (0.5 * outputs.pow(2).sum() + at_entries.sum()) / x.shape[0]
    c = 1.0 + (confidence - 1.0) * (x != 0).to(outputs.dtype)
    return (0.5 * c * (x - outputs).pow(2)).sum(dim=1).mean()


def logistic_nll(logits: torch.Tensor, x: torch.Tensor | SparseBatch) -> torch.Tensor:
    """−Σ_i [x_i log σ(f_i) + (1 − x_i) log(1 − σ(f_i))], averaged over the batch.

    Computed as Σ_i softplus(f_i) − x_i f_i, the same quantity without
    evaluating log σ where σ rounds to 0 or 1.
    """
    if isinstance(x, SparseBatch):
        return (F.softplus(logits).sum() - (logits[x.rows, x.indices] * x.values).sum()) / x.shape[0]
    return (F.softplus(logits) - x * logits).sum(dim=1).mean()


_Batch = torch.Tensor | SparseBatch
_NLL: dict[str, Callable[[torch.Tensor, _Batch, float], torch.Tensor]] = {
    "multinomial": lambda f, x, confidence: multinomial_nll(f, x),
    "gaussian": gaussian_nll,
    "logistic": lambda f, x, confidence: logistic_nll(f, x),
}


def negative_log_likelihood(
    likelihood: str, outputs: torch.Tensor, x: torch.Tensor | SparseBatch, confidence: float = 1.0
) -> torch.Tensor:
    """−log p(x|z) under ``likelihood`` (one of :data:`LIKELIHOODS`), averaged over the batch.

    ``confidence`` is the Gaussian's weight of non-zero entries; the other
    likelihoods ignore it.
    """
    return _NLL[likelihood](outputs, x, confidence)
