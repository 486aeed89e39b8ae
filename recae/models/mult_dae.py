"""Mult-DAE (Liang et al., WWW 2018): a denoising autoencoder with a multinomial likelihood
(or, to compare, the Gaussian or logistic one of the paper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from recae.checks import Constraint
from recae.models.autoencoder import LossParts, _Autoencoder
from recae.models.likelihoods import (
    LIKELIHOOD_CONSTRAINTS,
    likelihood_search_space,
    negative_log_likelihood,
)
from recae.models.nn import MultDAENet, SparseBatch, weight_l2
from recae.models.regularizers import (
    REGULARIZER_CONSTRAINTS,
    contractive_penalty,
    regularizer_space,
    sparsity_penalty,
)


class MultDAE(_Autoencoder):
    """Mult-DAE (Liang et al. 2018): denoising autoencoder with a multinomial likelihood.

    Loss per batch: −log p(x | dropout(x)) + ``weight_decay``·Σ‖W‖². The default
    weight decay 2e-5 is the reference notebook's λ = 0.01 / batch_size.
    Other parameters, ``likelihood`` and ``confidence`` included, as for
    :class:`~recae.models.mult_vae.MultVAE` (``amp`` too).

    The classic autoencoder regularizers, off by default
    (:mod:`recae.models.regularizers`), each added to the batch loss:

    sparsity : {"none", "l1", "kl"}
        A sparse autoencoder's penalty on the code h (the bottleneck, tanh):
        ``l1``, ``sparsity_weight``·mean over the batch of Σ_j |h_j|; ``kl``,
        ``sparsity_weight``·Σ_j KL(ρ ‖ ρ̂_j) with ρ = ``sparsity_target`` and
        ρ̂_j the batch mean of (h_j + 1)/2, the unit's activation mapped to (0, 1).
    contractive_weight : float
        A contractive autoencoder's penalty: the weight times the batch mean of
        ‖∂a/∂x‖²_F for the first encoder layer a = tanh(W x̃ + b) (x̃ the
        normalised, dropped-out input), in closed form
        Σ_j (1 − a_j²)² Σ_i W_ji² (Rifai et al. 2011).
    """

    name = "mult-dae"
    _input_weight = "layers.0.weight"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **_Autoencoder._parameter_constraints,
        **LIKELIHOOD_CONSTRAINTS,
        **REGULARIZER_CONSTRAINTS,
        "amp": [bool],
    }

    def __init__(
        self,
        hidden_dims: Sequence[int] = (600,),
        latent_dim: int = 200,
        dropout: float = 0.5,
        epochs: int = 200,
        batch_size: int = 500,
        lr: float = 1e-3,
        weight_decay: float = 0.01 / 500,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        eval_batch_size: int = 2000,
        likelihood: str = "multinomial",
        confidence: float = 1.0,
        sparsity: str = "none",
        sparsity_weight: float = 0.0,
        sparsity_target: float = 0.05,
        contractive_weight: float = 0.0,
        amp: bool = False,
    ):
        super().__init__(
            hidden_dims, latent_dim, dropout, epochs, batch_size, lr, weight_decay,
            patience, random_state, device, eval_batch_size,
        )
        self.likelihood = likelihood
        self.confidence = confidence
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.contractive_weight = contractive_weight
        self.amp = amp

    def _build(self, n_items: int) -> nn.Module:
        return MultDAENet(n_items, [int(d) for d in self.hidden_dims], int(self.latent_dim), float(self.dropout))

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, LossParts]:
        if self.sparsity == "none" and not self.contractive_weight:
            nll = negative_log_likelihood(self.likelihood, net(x), x, self.confidence)
            loss = nll + self.weight_decay * weight_l2(net)
            return loss, {"loss": loss.detach(), "nll": nll.detach()}
        first, code, logits = net.forward_parts(x)
        nll = negative_log_likelihood(self.likelihood, logits, x, self.confidence)
        loss = nll + self.weight_decay * weight_l2(net)
        parts = {"nll": nll.detach()}
        if self.sparsity != "none":
            penalty = sparsity_penalty(code, self.sparsity, float(self.sparsity_target))
            loss = loss + self.sparsity_weight * penalty
            parts["sparsity"] = penalty.detach()
        if self.contractive_weight:
            penalty = contractive_penalty(first, net.layers[0].weight)
            loss = loss + self.contractive_weight * penalty
            parts["contractive"] = penalty.detach()
        return loss, {"loss": loss.detach(), **parts}

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x)

    def _codes(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return net.encode(x), None

    def _multinomial_scores(self) -> bool:
        return self.likelihood == "multinomial"

    def item_vectors(self) -> np.ndarray:
        """The output layer's rows: item i's weights over the last hidden layer (n_items × hidden)."""
        self._check_fitted()
        return self.module_.layers[-1].weight.detach().cpu().numpy()

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            **cls._shared_search_space(trial),
            "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-3, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            **likelihood_search_space(trial),
            **regularizer_space(trial),
        }
