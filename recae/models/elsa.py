"""ELSA, the scalable linear shallow autoencoder (Vančura et al., RecSys 2022), trained with ``elsarec``.

EASE's item × item model costs n_items² memory and n_items³ time; ELSA keeps
its form (a linear autoencoder with a zero diagonal) at rank r:
``B = A·Aᵀ − I`` with A (n_items × r) row-normalised, so memory and one epoch
are O(n_items·r) and O(nnz·r + n_users·n_items·r). The network, its
initialisation and its forward pass are those of the authors' package
``elsarec`` (``elsa.ELSA``); recae trains it in its shared loop (shuffled
batches, selection of the best epoch on validation NDCG@100, checkpoints).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from elsa import ELSA as ELSANet
from torch import nn
from torch.nn import functional as F

from recae.checks import Constraint, Interval
from recae.models.autoencoder import LossParts, _Autoencoder, resolve_device
from recae.models.nn import SparseBatch, sparse_linear

#: The shared autoencoder parameters ELSA does not take: it has no hidden layers,
#: no dropout and no weight decay (the row normalisation of A is its regulariser).
_NOT_TAKEN = ("hidden_dims", "latent_dim", "dropout", "weight_decay")


#: ``F.normalize``'s floor of a norm, which ELSA's row normalisations use.
_EPS = 1e-12


def item_factors(net: nn.Module) -> torch.Tensor:
    """A = the row-normalised item embeddings (n_items × r), as ``ELSA.forward`` uses them."""
    (weight,) = net.parameters()
    return _RowNormalize.apply(weight)


class _RowNormalize(torch.autograd.Function):
    """``F.normalize(W, dim=-1)`` (W / max(‖w_i‖, ε) per row) with its gradient in two passes
    over W, where autograd's chain through the norm and the division takes about six;
    A is n_items × r, rewritten at every step."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        norms = torch.linalg.vector_norm(weight, dim=1, keepdim=True).clamp_min_(_EPS)
        out = weight / norms
        ctx.save_for_backward(out, norms)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        # rows above ε: (g − a·(g·a)) / ‖w‖; rows at the floor, where the norm is the
        # constant ε: g / ε
        out, norms = ctx.saved_tensors
        along = (grad * out).sum(dim=1, keepdim=True)
        along.masked_fill_(norms <= _EPS, 0.0)
        return (grad - out * along).div_(norms)


def elsa_forward(net: nn.Module, x: torch.Tensor | SparseBatch) -> torch.Tensor:
    """``x·A·Aᵀ − x``: ``ELSA.forward`` for a dense batch; for a sparse one the first
    product multiplies only the non-zeros (the same numbers, a third fewer dense products)."""
    if not isinstance(x, SparseBatch):
        return net(x)
    return _sparse_products(net, x) - x.to_dense()


def _sparse_products(net: nn.Module, x: SparseBatch) -> torch.Tensor:
    """``x·A·Aᵀ`` for a sparse batch, the first product over x's non-zeros only."""
    A = item_factors(net)
    return sparse_linear(x, A.T) @ A.T


def elsa_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ELSA's normalised MSE, as ``ELSA.train_step`` computes it: the mean over the batch's
    cells of (out/‖out‖ − x/‖x‖)², each row scaled to unit length."""
    return F.mse_loss(F.normalize(out, dim=-1), F.normalize(target, dim=-1))


def sparse_elsa_loss(net: nn.Module, x: SparseBatch) -> torch.Tensor:
    """``elsa_loss(elsa_forward(net, x), x)`` for a sparse batch, without a dense copy of x.

    The same numbers up to rounding (a test checks both, and their gradients):
    with o = Y − x and Y = x·A·Aᵀ, every term of the loss is a row sum that
    needs Y only through ‖Y‖², and Y and x only at x's non-zeros, so one pass
    over the batch × n_items block Y gives the loss and one more its gradient.
    Autograd through ``elsa_loss`` makes about fifteen (x densified and
    subtracted, two normalisations, the squared error, and their backward).
    """
    return _SparseNormalizedMSE.apply(_sparse_products(net, x), x.rows, x.indices, x.values)


class _SparseNormalizedMSE(torch.autograd.Function):
    """mean over cells of (o/‖o‖ − x/‖x‖)² for o = Y − x, Y dense and x sparse (its row,
    column and value of each non-zero); norms floored at ε as ``F.normalize`` does."""

    @staticmethod
    def forward(  # noqa: ANN001
        ctx, Y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        n = Y.shape[0]
        Y = Y.to(torch.promote_types(Y.dtype, values.dtype))  # under amp Y is bfloat16: the loss in float32
        y_at_x = Y[rows, cols]
        yy = torch.linalg.vector_norm(Y, dim=1).square()  # ‖Y_u‖²
        yx = torch.zeros(n, dtype=Y.dtype, device=Y.device).index_add_(0, rows, y_at_x * values)
        xx = torch.zeros(n, dtype=Y.dtype, device=Y.device).index_add_(0, rows, values * values)
        oo = (yy - 2 * yx + xx).clamp_min_(0.0)  # ‖o_u‖²
        ox = yx - xx  # o_u·x_u
        n_o = oo.sqrt().clamp_min_(_EPS)
        n_x = xx.sqrt().clamp_min_(_EPS)
        per_row = oo / n_o.square() - 2 * ox / (n_o * n_x) + xx / n_x.square()
        ctx.save_for_backward(Y, rows, cols, values, ox, n_o, n_x)
        return per_row.sum() / Y.numel()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # noqa: ANN001
        Y, rows, cols, values, ox, n_o, n_x = ctx.saved_tensors
        # ∂/∂o of a row = α·o + γ·x. Above the floor ‖o‖²/‖o‖² is constant and
        # −2 o·x/(‖o‖‖x‖) gives α = 2 o·x/(‖x‖‖o‖³), γ = −2/(‖x‖‖o‖); at the floor
        # the norm is the constant ε: α = 2/ε², γ = −2/(ε‖x‖). As o = Y − x, the
        # gradient of Y is α·Y + (γ − α)·x.
        alpha = torch.where(n_o <= _EPS, 2 / n_o.square(), 2 * ox / (n_x * n_o.pow(3)))
        gamma = -2 / (n_x * n_o)
        scale = grad / Y.numel()
        out = Y * (alpha * scale)[:, None]
        out.index_put_((rows, cols), ((gamma - alpha) * scale)[rows] * values, accumulate=True)
        return out, None, None, None


class ELSA(_Autoencoder):
    """ELSA (Vančura, Alves, Kasalický & Kordík, "Scalable Linear Shallow Autoencoder for
    Collaborative Filtering", RecSys 2022), fitted with the authors' ``elsarec`` package.

    A history ``x`` scores ``x·A·Aᵀ − x``: item j's score is the sum of the
    cosines between j's embedding and those of the history's items, the item
    itself left out (the −x plays EASE's zero diagonal). A (n_items ×
    ``factors``) is trained by NAdam on the normalised MSE between the output and
    the input, each row scaled to unit length. Memory: 4·n_items·factors bytes
    for A, four times that while training (gradient and NAdam's two moments),
    and a dense batch × n_items block.

    Parameters
    ----------
    factors : int
        r, the embedding width (the package's example: 256).
    lr : float
        NAdam's step size (``elsarec``'s default 0.1).
    epochs : int
        Passes over the users (the package's example: 5); with validation, the
        best epoch on NDCG@100 is kept.
    batch_size : int
        Users per step (the package's example: 128).
    patience, random_state, device, eval_batch_size
        As for :class:`~recae.models.mult_vae.MultVAE`.
    amp : mixed precision: a step's dense product ``(x·A)·Aᵀ`` and its two
        gradients in bfloat16 (``torch.autocast``); x·A (sparse), A, NAdam's
        state and the loss in float32, scores in float32. Off by default (the
        package trains in float32); measured on a CPU with bfloat16 units, an
        epoch in 0.7–0.8 of the time at the same quality (the README's *Scale*).

    Notes
    -----
    Departures from ``ELSA.fit``: users are shuffled every epoch (the package
    reads them in order unless asked), and a batch stays sparse: for the
    first product ``x·A`` (:func:`elsa_forward`) and in the loss, which is
    computed from ``x·A·Aᵀ`` and x's non-zeros without a dense copy of x
    (:func:`sparse_elsa_loss`); tests check both, and the gradients, against
    the package's. The loss and the optimiser are the package's.
    """

    name = "elsa"
    _input_weight = "_ELSA__W_list.0"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **{k: v for k, v in _Autoencoder._parameter_constraints.items() if k not in _NOT_TAKEN},
        "factors": [Interval(int, 1, None)],
        "amp": [bool],
    }

    def __init__(
        self,
        factors: int = 256,
        lr: float = 0.1,
        epochs: int = 5,
        batch_size: int = 128,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        eval_batch_size: int = 2000,
        amp: bool = False,
    ):
        self.factors = factors
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.eval_batch_size = eval_batch_size
        self.amp = amp

    def _build(self, n_items: int) -> nn.Module:
        # the package keeps its device and moves A there on every forward pass,
        # so it is built on the device it will train on
        return ELSANet(n_items, int(self.factors), device=resolve_device(self.device), lr=float(self.lr))

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        """NAdam, as ``ELSA.__init__`` builds it."""
        return torch.optim.NAdam(net.parameters(), lr=self.lr)

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, LossParts]:
        loss = sparse_elsa_loss(net, x) if isinstance(x, SparseBatch) else elsa_loss(elsa_forward(net, x), x)
        return loss, {"loss": loss.detach()}

    def _logits(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> torch.Tensor:
        return elsa_forward(net, x)

    def _codes(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        A = item_factors(net)
        return (sparse_linear(x, A.T) if isinstance(x, SparseBatch) else x @ A), None

    def item_vectors(self) -> np.ndarray:
        """A, the row-normalised item embeddings (n_items × factors): B = A·Aᵀ − I."""
        self._check_fitted()
        with torch.no_grad():
            return item_factors(self.module_).cpu().numpy()

    def _n_items_from_state(self, state: dict[str, np.ndarray]) -> int:
        return int(np.asarray(state[self._input_weight]).shape[0])  # one row per item

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "factors": trial.suggest_categorical("factors", [256, 512, 1024, 2048]),
            "lr": trial.suggest_float("lr", 0.01, 0.3, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
            "epochs": trial.suggest_int("epochs", 5, 30),
        }
