"""RecVAE (Shenbin et al., WSDM 2020): a VAE with a composite prior, trained in alternation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recae.checks import Constraint, Interval, ListOf
from recae.errors import UsageError
from recae.models.autoencoder import LossParts, _Autoencoder, _to_batch
from recae.models.base import EpochCallback, Validation, iter_batches
from recae.models.checkpoint import Checkpoint
from recae.models.likelihoods import multinomial_nll
from recae.models.nn import SparseBatch, to_device
from recae.models.recvae_nn import (
    PRIOR_WEIGHTS,
    WIDE_LOGVAR,
    RecVAEEncoder,
    RecVAENet,
    composite_prior,
    history_sizes,
    sample,
    weighted_kl,
)

#: The shared autoencoder parameters RecVAE does not take: its hidden layers
#: are one width repeated, and the authors use no weight decay.
_NOT_TAKEN = ("hidden_dims", "weight_decay")


class RecVAE(_Autoencoder):
    """RecVAE (Shenbin et al. 2020), as the authors' code (github.com/ilya-shenbin/RecVAE) defines it.

    Network (:mod:`recae.models.recvae_nn`): an encoder of five layers of
    width ``hidden_dim`` with swish, layer norm and dense skip connections,
    giving q(z|x) = N(μ, σ²); a linear decoder with a multinomial likelihood.
    Each outer epoch has

    1. ``encoder_epochs`` passes over the shuffled users updating the encoder
       only, on −E[log p(x|z)] + β_u·KL(q(z|x) ‖ p(z)) with input dropout
       ``dropout``; β_u = ``gamma``·|x_u| (the user's number of interactions),
       and p(z) the composite prior: N(0, I), the previous epoch's posterior
       of the same user, and N(0, e^``wide_logvar``·I), mixed per latent
       dimension with ``prior_weights``; the KL is a one-sample estimate;
    2. then the posterior is frozen as the next epoch's prior, and
       ``decoder_epochs`` passes update the decoder only, on −E[log p(x|z)]
       without dropout.

    The outer epoch with the best validation NDCG@100 is restored, and one
    outer epoch is one entry of ``history_`` (its encoder-pass means of
    ``loss``, ``nll``, ``kl``, and ``decoder_nll``). A history ``x`` scores
    the decoder's logits at z = μ(x).

    Parameters
    ----------
    hidden_dim, latent_dim : encoder width (authors 600) and code size (200).
    dropout : input dropout of the encoder passes (authors 0.5).
    gamma : γ in β_u = γ·|x_u| (authors 0.005; > 0).
    prior_weights : the weights of N(0, I), the previous posterior and the
        wide normal (authors 3/20, 3/4, 1/10), divided by their sum.
    wide_logvar : log-variance of the wide component (authors 10).
    epochs : outer epochs (authors 50).
    encoder_epochs, decoder_epochs : passes of each kind per outer epoch (authors 3 and 1).
    batch_size : users per step (authors 500).
    lr : Adam learning rate of encoder and decoder (authors 5e-4).
    patience, random_state, device, eval_batch_size : as for
        :class:`~recae.models.mult_vae.MultVAE`.
    amp : mixed precision, as for :class:`~recae.models.mult_vae.MultVAE`: the
        matrix products in bfloat16 (``torch.autocast``); the weights, Adam's
        state, μ and log σ², the prior, the KL and the softmax in float32.
        Off by default (the authors train in float32). It pays on GPUs and on
        CPUs with bfloat16 units (AVX512-BF16, AMX), where a bfloat16 product
        runs two to three times as fast as a float32 one.

    Notes
    -----
    Where this departs from the authors' code, and why:

    - The previous posterior (μ, log σ² of every training user under the
      encoder frozen after the encoder passes) is computed once per outer
      epoch and kept, instead of re-running the frozen copy of the encoder in
      every step; the decoder passes sample z from that same posterior instead
      of re-running the encoder. The encoder does not change between the two,
      so the values are those of the authors' code; it saves a third of the
      work. In the first outer epoch the "previous" posterior is that of an
      independently initialised encoder, as in the authors' code.
    - One Adam optimiser (PyTorch's fused kernel: the same update up to
      rounding, faster) holds both encoder and decoder; each pass computes
      gradients for its half only, and Adam leaves parameters without a
      gradient untouched, which is the same as the authors' two optimisers.
      No decoder weight gradient is computed in encoder passes and no encoder
      gradient in decoder passes (the authors compute and discard them).
    - Batches are kept sparse on the CPU (as for Mult-VAE), so dropout draws
      one number per interaction rather than per cell: the same distribution,
      another random stream. The first layer's weight is stored one row per
      item, (n_items, hidden), the transpose of the authors' ``fc1``, so that
      a sparse batch sums rows (``embedding_bag``); same initialisation. An
      empty history gives a zero input rather than the authors' division by zero.
    - The authors' other modes are not offered: a constant β (``--beta``),
      joint rather than alternating updates (``--not-alternating``), and
      ImplicitSLIM embedding updates (a later paper).
    """

    name = "recvae"
    _input_weight = "encoder.items.weight"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **{k: v for k, v in _Autoencoder._parameter_constraints.items() if k not in _NOT_TAKEN},
        "hidden_dim": [Interval(int, 1, None)],
        "gamma": [Interval(float, 0, None, closed="neither")],
        "prior_weights": [ListOf(Interval(float, 0, None, closed="neither"))],
        "wide_logvar": [Interval(float, None, None)],
        "encoder_epochs": [Interval(int, 1, None)],
        "decoder_epochs": [Interval(int, 1, None)],
        "amp": [bool],
    }

    # The shared constructor takes hidden_dims and weight_decay, which RecVAE
    # does not have: it stores its own settings instead of calling it.
    def __init__(
        self,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        gamma: float = 0.005,
        prior_weights: tuple[float, ...] = PRIOR_WEIGHTS,
        wide_logvar: float = WIDE_LOGVAR,
        epochs: int = 50,
        encoder_epochs: int = 3,
        decoder_epochs: int = 1,
        batch_size: int = 500,
        lr: float = 5e-4,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        eval_batch_size: int = 2000,
        amp: bool = False,
    ):
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.gamma = gamma
        self.prior_weights = prior_weights
        self.wide_logvar = wide_logvar
        self.epochs = epochs
        self.encoder_epochs = encoder_epochs
        self.decoder_epochs = decoder_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.eval_batch_size = eval_batch_size
        self.amp = amp

    def _validate_params(self, names: Iterable[str] | None = None) -> None:
        """The table's checks, and three prior weights (the table cannot count them)."""
        names = self.param_names() if names is None else list(names)
        super()._validate_params(names)
        if "prior_weights" in names and len(self.prior_weights) != 3:
            raise UsageError(
                f"{self.name}: prior_weights must be 3 weights (standard normal, previous "
                f"posterior, wide normal), got {self.prior_weights!r}"
            )

    def _build(self, n_items: int) -> nn.Module:
        return RecVAENet(n_items, int(self.hidden_dim), int(self.latent_dim), float(self.dropout))

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net.decoder(net.encoder(x)[0])

    def _codes(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu, logvar = net.encoder(x, dropout=False)  # q(z|x) = N(μ, σ²)
        return mu, logvar.exp()

    def _decode_prior(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return net.decoder(z)  # z from N(0, I), the composite prior's standard component

    def _multinomial_scores(self) -> bool:
        return True

    def item_vectors(self) -> np.ndarray:
        """The linear decoder's rows: item i's weights over the latent code (n_items × latent)."""
        self._check_fitted()
        return self.module_.decoder.weight.detach().cpu().numpy()

    def _n_items_from_state(self, state: dict[str, np.ndarray]) -> int:
        return int(np.asarray(state[self._input_weight]).shape[0])  # one row per item

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        # Adam's fused kernel: the same update up to rounding, in a quarter of
        # the time of its per-operation loop on the CPU (a fifth of a step here)
        return torch.optim.Adam(net.parameters(), lr=self.lr, fused=True)

    # ------------------------------------------------------------------ training
    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        try:
            super()._fit(X, validation, callback, checkpoint)
        finally:
            # training-time state (each user's previous posterior, the pass
            # kind), not part of the fitted model
            for attr in ("_prior", "_decoder_pass"):
                self.__dict__.pop(attr, None)

    def _training_extra(self) -> dict[str, Any]:
        # each user's posterior after the last outer epoch: the next one's prior
        mu, logvar = self._prior
        return {"prior_mu": mu.cpu(), "prior_logvar": logvar.cpu()}

    def _restore_training_extra(self, extra: dict[str, Any]) -> None:
        self._prior = (extra["prior_mu"].to(self.device_), extra["prior_logvar"].to(self.device_))

    def _train_epoch(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, X: sp.csr_matrix,
        rng: np.random.Generator, epoch: int, update: int,
    ) -> tuple[dict[str, float], int]:
        """One outer epoch: encoder passes, the prior update, decoder passes."""
        if epoch == 1:
            # the authors' frozen encoder starts as an independent random initialisation
            first = RecVAEEncoder(X.shape[1], int(self.hidden_dim), int(self.latent_dim)).to(self.device_)
            self._prior = self._posterior(first, X)
        self._decoder_pass = False
        net.decoder.requires_grad_(False)  # no decoder gradients in the encoder passes
        encoder_records = []
        for _ in range(self.encoder_epochs):
            record, update = super()._train_epoch(net, optimizer, X, rng, epoch, update)
            encoder_records.append(record)
        net.decoder.requires_grad_(True)
        self._prior = self._posterior(net.encoder, X)
        self._decoder_pass = True
        decoder_records = []
        for _ in range(self.decoder_epochs):
            record, update = super()._train_epoch(net, optimizer, X, rng, epoch, update)
            decoder_records.append(record)
        summary = {key: float(np.mean([r[key] for r in encoder_records])) for key in ("loss", "nll", "kl")}
        summary["decoder_nll"] = float(np.mean([r["loss"] for r in decoder_records]))
        return {"epoch": epoch, **summary}, update

    def _batch_loss(
        self, net: nn.Module, X: sp.csr_matrix, users: np.ndarray, update: int
    ) -> tuple[torch.Tensor, LossParts]:
        x = _to_batch(X[users], self.device_)
        index = to_device(users, self.device_, torch.int64)
        prior_mu, prior_logvar = (t[index] for t in self._prior)
        if self._decoder_pass:
            # the encoder is the one just frozen: its posterior is the prior
            nll = multinomial_nll(net.decoder(sample(prior_mu, prior_logvar)), x)
            return nll, {"loss": nll.detach()}
        logits, z, mu, logvar = net(x)
        nll = multinomial_nll(logits, x)
        log_prior = composite_prior(
            z, prior_mu, prior_logvar, [float(w) for w in self.prior_weights], float(self.wide_logvar)
        )
        kl = weighted_kl(z, mu, logvar, log_prior, self.gamma * history_sizes(x))
        loss = nll + kl
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "kl": kl.detach()}

    def _posterior(self, encoder: nn.Module, X: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ² of every row of ``X`` under ``encoder`` without dropout: (n_users, latent) each."""
        mus, logvars = [], []
        with torch.no_grad(), self._autocast():
            for rows in iter_batches(X.shape[0], self.eval_batch_size):
                mu, logvar = encoder(_to_batch(X[rows], self.device_), dropout=False)
                mus.append(mu)
                logvars.append(logvar)
        return torch.cat(mus), torch.cat(logvars)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "latent_dim": trial.suggest_categorical("latent_dim", [100, 200, 400]),
            "hidden_dim": trial.suggest_categorical("hidden_dim", [300, 600, 1000]),
            "dropout": trial.suggest_float("dropout", 0.2, 0.7),
            "gamma": trial.suggest_float("gamma", 1e-3, 2e-2, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        }
