"""Training Mult-VAE and Mult-DAE: batching, KL annealing, early stopping, best weights.

The networks and losses live in :mod:`recae.models.nn`; this module is the
training loop around them, behind the :class:`~recae.models.base.Recommender`
interface. Defaults are those of Liang et al. (WWW 2018) and the authors'
reference code; every deviation is a named parameter.

The sparse training matrix is densified one batch of users at a time, never
whole: memory is O(batch_size × n_items) beyond the network itself.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recae.errors import ModelFitError, UsageError
from recae.models.base import EpochCallback, Recommender, Validation, iter_batches
from recae.models.nn import (
    MultDAENet,
    MultVAENet,
    SparseBatch,
    gaussian_kl,
    multinomial_nll,
    weight_l2,
)

#: The metric early stopping selects on (the paper: validation NDCG@100).
SELECTION_METRIC = "ndcg_at_100"


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when present, else CPU; any other value is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"device={device!r} is not a torch device (expected 'auto', 'cpu', 'cuda', 'cuda:0', ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={device!r} was asked for, but CUDA is not available here")
    return dev


def _to_batch(X: sp.csr_matrix, device: torch.device) -> torch.Tensor | SparseBatch:
    """One batch of rows for the network: kept sparse on the CPU (cheaper first layer),
    densified on an accelerator, where dense products are fast."""
    if device.type == "cpu":
        return SparseBatch.from_scipy(X, device)
    return torch.from_numpy(X.toarray()).to(device, non_blocking=True)


class _Autoencoder(Recommender):
    """Shared training loop; subclasses build the network and define the loss."""

    uses_validation = True

    def __init__(
        self,
        hidden_dims: Sequence[int] = (600,),
        latent_dim: int = 200,
        dropout: float = 0.5,
        epochs: int = 200,
        batch_size: int = 500,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "auto",
        eval_batch_size: int = 2000,
    ):
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.eval_batch_size = eval_batch_size

    # ------------------------------------------------------------ subclass hooks
    def _build(self, n_items: int) -> nn.Module:
        raise NotImplementedError

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss for one batch at optimiser step ``update``, and its parts for logging."""
        raise NotImplementedError

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_params(self) -> None:
        checks = {
            "latent_dim": self.latent_dim >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "patience": self.patience is None or self.patience >= 1,
            "eval_batch_size": self.eval_batch_size >= 1,
            "hidden_dims": all(int(d) >= 1 for d in self.hidden_dims),
        }
        for name, ok in checks.items():
            if not ok:
                raise UsageError(f"{self.name}: invalid {name}={getattr(self, name)!r}")

    # ------------------------------------------------------------------ training
    def _fit(self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None) -> None:
        if validation is not None:
            from recae.evaluation.metrics import evaluate

        self._check_params()
        device = resolve_device(self.device)
        n_users, n_items = X.shape
        # Seed a private copy of torch's RNG so that fitting is repeatable and
        # leaves the caller's global random state as it was.
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.random_state)
            rng = np.random.default_rng(self.random_state)
            net = self._build(n_items).to(device)
            self.device_ = device
            self.module_ = net
            optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
            history: list[dict[str, float]] = []
            best_score, best_epoch, best_state = -math.inf, 0, None
            update = 0
            for epoch in range(1, self.epochs + 1):
                start = time.perf_counter()
                net.train()
                sums: dict[str, float] = {}
                perm = rng.permutation(n_users)  # Liang et al. shuffle users every epoch
                for rows in iter_batches(n_users, self.batch_size):
                    x = _to_batch(X[perm[rows]], device)
                    loss, parts = self._loss(net, x, update)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    update += 1
                    for key, value in parts.items():
                        sums[key] = sums.get(key, 0.0) + value * (rows.stop - rows.start)
                record: dict[str, float] = {"epoch": epoch}
                record.update({key: value / n_users for key, value in sums.items()})
                if not math.isfinite(record["loss"]):
                    raise ModelFitError(
                        f"{self.name}: the training loss became {record['loss']} in epoch {epoch}; "
                        f"try a smaller lr (now {self.lr})"
                    )
                record["epoch_seconds"] = time.perf_counter() - start
                if validation is not None:
                    net.eval()
                    result = evaluate(self, *validation, ks=(100,), batch_size=self.eval_batch_size)
                    score = result.means()[SELECTION_METRIC]
                    record[f"val/{SELECTION_METRIC}"] = score
                    if score > best_score:
                        best_score, best_epoch = score, epoch
                        best_state = copy.deepcopy(net.state_dict())
                history.append(record)
                if callback is not None:
                    callback(record)
                if self.patience is not None and validation is not None and epoch - best_epoch >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)  # the paper keeps the best epoch on validation
        else:
            best_epoch = len(history)
        self.module_ = net.eval()
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.best_score_ = best_score if best_state is not None else math.nan

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        net = self.module_
        net.eval()
        out = np.empty(X.shape, dtype=np.float32)
        with torch.no_grad():
            for rows in iter_batches(X.shape[0], self.eval_batch_size):
                out[rows] = self._logits(net, _to_batch(X[rows], self.device_)).float().cpu().numpy()
        return out

    # -------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        n_items = self._n_items_from_state(state)
        self.device_ = resolve_device(self.device)
        net = self._build(n_items)
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        self.module_ = net.to(self.device_).eval()

    #: The state key of the first layer's weight, shape (hidden, n_items).
    _input_weight = ""

    def _n_items_from_state(self, state: dict[str, np.ndarray]) -> int:
        return int(np.asarray(state[self._input_weight]).shape[1])


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
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    eval_batch_size : users scored at once.
    """

    name = "mult-vae"
    _input_weight = "encoder.0.weight"

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
        device: str = "auto",
        eval_batch_size: int = 2000,
    ):
        super().__init__(
            hidden_dims=hidden_dims,
            latent_dim=latent_dim,
            dropout=dropout,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            random_state=random_state,
            device=device,
            eval_batch_size=eval_batch_size,
        )
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps

    def _check_params(self) -> None:
        super()._check_params()
        if not self.anneal_cap >= 0:
            raise UsageError(f"{self.name}: invalid anneal_cap={self.anneal_cap!r}, expected ≥ 0")
        if not self.total_anneal_steps >= 0:
            raise UsageError(f"{self.name}: invalid total_anneal_steps={self.total_anneal_steps!r}, expected ≥ 0")

    def _build(self, n_items: int) -> nn.Module:
        return MultVAENet(n_items, [int(d) for d in self.hidden_dims], int(self.latent_dim), float(self.dropout))

    def beta(self, update: int) -> float:
        """The KL weight β at optimiser step ``update`` (0-based)."""
        if self.total_anneal_steps > 0:
            return min(self.anneal_cap, update / self.total_anneal_steps)
        return self.anneal_cap

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, dict[str, float]]:
        logits, mu, logvar = net(x)
        nll = multinomial_nll(logits, x)
        kl = gaussian_kl(mu, logvar)
        beta = self.beta(update)
        loss = nll + beta * kl
        if self.weight_decay:
            loss = loss + self.weight_decay * weight_l2(net)
        return loss, {"loss": loss.item(), "nll": nll.item(), "kl": kl.item(), "beta": beta}

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x)[0]

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "latent_dim": trial.suggest_categorical("latent_dim", [100, 200, 400]),
            "hidden_dims": [trial.suggest_categorical("hidden_dim", [300, 600, 1000])],
            "dropout": trial.suggest_float("dropout", 0.2, 0.7),
            "anneal_cap": trial.suggest_float("anneal_cap", 0.05, 1.0, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        }


class MultDAE(_Autoencoder):
    """Mult-DAE (Liang et al. 2018): denoising autoencoder with a multinomial likelihood.

    Loss per batch: −log p(x | dropout(x)) + ``weight_decay``·Σ‖W‖². The default
    weight decay 2e-5 is the reference notebook's λ = 0.01 / batch_size.
    Other parameters as for :class:`MultVAE`.
    """

    name = "mult-dae"
    _input_weight = "layers.0.weight"

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
    ):
        super().__init__(
            hidden_dims=hidden_dims,
            latent_dim=latent_dim,
            dropout=dropout,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            random_state=random_state,
            device=device,
            eval_batch_size=eval_batch_size,
        )

    def _build(self, n_items: int) -> nn.Module:
        return MultDAENet(n_items, [int(d) for d in self.hidden_dims], int(self.latent_dim), float(self.dropout))

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, dict[str, float]]:
        nll = multinomial_nll(net(x), x)
        loss = nll + self.weight_decay * weight_l2(net)
        return loss, {"loss": loss.item(), "nll": nll.item()}

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "latent_dim": trial.suggest_categorical("latent_dim", [100, 200, 400]),
            "hidden_dims": [trial.suggest_categorical("hidden_dim", [300, 600, 1000])],
            "dropout": trial.suggest_float("dropout", 0.2, 0.7),
            "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-3, log=True),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        }
