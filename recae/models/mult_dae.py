"""Mult-DAE (Liang et al., WWW 2018): a denoising autoencoder with a multinomial likelihood
(or, to compare, the Gaussian or logistic one of the paper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from recae.checks import Constraint
from recae.models.autoencoder import _Autoencoder
from recae.models.likelihoods import LIKELIHOOD_CONSTRAINTS, negative_log_likelihood
from recae.models.nn import MultDAENet, SparseBatch, weight_l2


class MultDAE(_Autoencoder):
    """Mult-DAE (Liang et al. 2018): denoising autoencoder with a multinomial likelihood.

    Loss per batch: −log p(x | dropout(x)) + ``weight_decay``·Σ‖W‖². The default
    weight decay 2e-5 is the reference notebook's λ = 0.01 / batch_size.
    Other parameters, ``likelihood`` and ``confidence`` included, as for
    :class:`~recae.models.mult_vae.MultVAE`.
    """

    name = "mult-dae"
    _input_weight = "layers.0.weight"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **_Autoencoder._parameter_constraints,
        **LIKELIHOOD_CONSTRAINTS,
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
        device: str = "auto",
        eval_batch_size: int = 2000,
        likelihood: str = "multinomial",
        confidence: float = 1.0,
    ):
        super().__init__(
            hidden_dims, latent_dim, dropout, epochs, batch_size, lr, weight_decay,
            patience, random_state, device, eval_batch_size,
        )
        self.likelihood = likelihood
        self.confidence = confidence

    def _build(self, n_items: int) -> nn.Module:
        return MultDAENet(n_items, [int(d) for d in self.hidden_dims], int(self.latent_dim), float(self.dropout))

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, dict[str, float]]:
        nll = negative_log_likelihood(self.likelihood, net(x), x, self.confidence)
        loss = nll + self.weight_decay * weight_l2(net)
        return loss, {"loss": loss.item(), "nll": nll.item()}

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
        }
