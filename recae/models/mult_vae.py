"""Mult-VAE (Liang et al., WWW 2018): a variational autoencoder with a multinomial likelihood
(or, to compare, the Gaussian or logistic one of the paper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from recae.checks import Constraint, Interval
from recae.models.autoencoder import LossParts, _Autoencoder
from recae.models.likelihoods import (
    LIKELIHOOD_CONSTRAINTS,
    likelihood_search_space,
    negative_log_likelihood,
)
from recae.models.nn import MultVAENet, SparseBatch, gaussian_kl, weight_l2


class MultVAE(_Autoencoder):
    """Mult-VAE (Liang et al. 2018): variational autoencoder with a multinomial likelihood.

    Loss per batch: −E[log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)), with β annealed
    linearly from 0 by 1/``total_anneal_steps`` per optimiser step and capped at
    ``anneal_cap`` (paper: 0.2 over 200,000 updates).

    Parameters
    ----------
    hidden_dims, latent_dim : architecture [I → 600 → 200 → 600 → I] by default.
    dropout : input dropout probability (paper 0.5).
    epochs : number of epochs (the reference code: 200); the best epoch on
        validation NDCG@100 is restored.
    batch_size : users per optimiser step (paper 500).
    lr : Adam learning rate (paper 1e-3).
    weight_decay : coefficient of Σ‖W‖² added to the loss (the reference
        notebook uses 0 for the VAE).
    anneal_cap, total_anneal_steps : the KL annealing schedule.
    patience : stop after this many epochs without improvement (None: run all
        epochs, as the paper does).
    random_state : seed for initialisation, shuffling, dropout and sampling.
    device : ``"cpu"`` (the default), ``"cuda"``, ``"cuda:1"``, or ``"auto"`` (CUDA when present).
    eval_batch_size : users scored at once.
    likelihood : ``"multinomial"`` (the paper's Mult-VAE), ``"gaussian"`` or
        ``"logistic"``, the alternatives the paper compares it with (§2.1;
        :mod:`recae.models.likelihoods`). Scores are the decoder output f for
        all three: softmax(f), f and σ(f) rank items alike.
    confidence : Gaussian likelihood only: the weight c of a user's observed
        items in Σ_i c_i/2 (x_i − f_i)², unobserved items weighing 1. The paper
        weights observed items more, after weighted matrix factorization, but
        gives no value; the default 1 is the unweighted Gaussian.
    amp : mixed precision: the training passes in bfloat16 (``torch.autocast``),
        the weights, Adam's state, softmax and the loss in float32; scores are
        computed in float32 (bfloat16 would tie them). Off by default (the
        paper trains in float32). It pays on CPUs with bfloat16 units
        (AVX512-BF16, AMX: an epoch in 0.5–0.6 of the time, the README's *Scale*)
        and on GPUs at large batches (NVIDIA's VAE-CF reference trains with AMP;
        at the paper's batch of 500 a GPU step is bound by the host); a CPU
        without such units has no fast bfloat16 product to gain from.
    """

    name = "mult-vae"
    _input_weight = "encoder.0.weight"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **_Autoencoder._parameter_constraints,
        "anneal_cap": [Interval(float, 0, None)],
        "total_anneal_steps": [Interval(int, 0, None)],
        **LIKELIHOOD_CONSTRAINTS,
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
        weight_decay: float = 0.0,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 200_000,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        eval_batch_size: int = 2000,
        likelihood: str = "multinomial",
        confidence: float = 1.0,
        amp: bool = False,
    ):
        super().__init__(
            hidden_dims, latent_dim, dropout, epochs, batch_size, lr, weight_decay,
            patience, random_state, device, eval_batch_size,
        )
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        self.likelihood = likelihood
        self.confidence = confidence
        self.amp = amp

    def _build(self, n_items: int) -> nn.Module:
        return MultVAENet(n_items, [int(d) for d in self.hidden_dims], int(self.latent_dim), float(self.dropout))

    def beta(self, update: int) -> float:
        """The KL weight β at optimiser step ``update`` (0-based)."""
        if self.total_anneal_steps > 0:
            return min(self.anneal_cap, update / self.total_anneal_steps)
        return self.anneal_cap

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, LossParts]:
        logits, mu, logvar = net(x)
        nll = negative_log_likelihood(self.likelihood, logits, x, self.confidence)
        kl = gaussian_kl(mu, logvar)
        beta = self.beta(update)
        loss = nll + beta * kl
        if self.weight_decay:
            loss = loss + self.weight_decay * weight_l2(net)
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "kl": kl.detach(), "beta": beta}

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x)[0]

    def _codes(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu, logvar = net.encode(x)  # q(z|x) = N(μ, σ²)
        return mu, logvar.exp()

    def _decode_prior(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return net.decode(z)

    def _multinomial_scores(self) -> bool:
        return self.likelihood == "multinomial"

    def item_vectors(self) -> np.ndarray:
        """The output layer's rows: item i's weights over the last hidden layer (n_items × hidden)."""
        self._check_fitted()
        return self.module_.decoder[-1].weight.detach().cpu().numpy()

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            **cls._shared_search_space(trial),
            "anneal_cap": trial.suggest_float("anneal_cap", 0.05, 1.0, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            **likelihood_search_space(trial),
        }
