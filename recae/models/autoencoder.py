"""The training loop Mult-VAE and Mult-DAE share: batching, early stopping, best weights.

The networks live in :mod:`recae.models.nn`, the likelihoods in
:mod:`recae.models.likelihoods`; each model
(:mod:`~recae.models.mult_vae`, :mod:`~recae.models.mult_dae`) builds its
network and defines its loss, and this module trains it behind the
:class:`~recae.models.base.Recommender` interface. Defaults are those of Liang
et al. (WWW 2018) and the authors' reference code; every deviation is a named
parameter.

The sparse training matrix is never densified: each batch of users stays
sparse (the first layer multiplies its non-zeros, the loss reads the targets
at them), and memory is O(batch_size × n_items) beyond the network itself,
for the output layer.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recae.checks import Constraint, Interval, ListOf, check_k
from recae.errors import ModelFitError, UsageError
from recae.evaluation.metrics import evaluate
from recae.evaluation.ranking import check_allowed
from recae.models import distributed
from recae.models.base import EpochCallback, Recommender, Validation, check_matrix, iter_batches
from recae.models.checkpoint import Checkpoint, fit_key
from recae.models.device import device_topk
from recae.models.nn import SparseBatch

#: The metric early stopping selects on (the paper: validation NDCG@100).
SELECTION_METRIC = "ndcg_at_100"

#: A batch loss's parts for the epoch's record, by name: detached 0-d tensors (or plain
#: numbers, such as β). They are summed on the device and read once per epoch, so no
#: step waits for its own loss: on a GPU the next batch is built while this one runs.
LossParts = dict[str, "torch.Tensor | float"]


def resolve_device(device: str | int) -> torch.device:
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


def _to_batch(X: sp.csr_matrix, device: torch.device) -> SparseBatch:
    """One batch of rows for the network, kept sparse on every device: the first layer
    multiplies the non-zeros only and the loss reads the targets at them
    (:class:`~recae.models.nn.SparseBatch`); to a GPU it travels as its CSR arrays from
    pinned memory, and no dense batch × items input is ever built."""
    return SparseBatch.from_scipy(X, device)


@dataclass
class _Progress:
    """Where a training loop stands after ``epoch`` epochs: what a checkpoint restores."""

    epoch: int = 0
    update: int = 0  # optimiser steps taken (KL annealing counts them)
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped: bool = False  # early stopping ended the loop


class _Autoencoder(Recommender):
    """Shared training loop; subclasses build the network and define the loss.

    Subclasses list the shared parameters below in their own constructor (with
    their own defaults) and pass them to this one.
    """

    uses_validation = True
    resumable = True
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "hidden_dims": [ListOf(Interval(int, 1, None))],
        "latent_dim": [Interval(int, 1, None)],
        "dropout": [Interval(float, 0, 1, closed="left")],
        "epochs": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "weight_decay": [Interval(float, 0, None)],
        "patience": [Interval(int, 1, None), None],
        "random_state": [Interval(int, 0, None)],
        # a name torch.device understands ("cpu", "cuda:1") or a CUDA device's
        # number; resolve_device says which of them this machine has
        "device": [str, Interval(int, 0, None)],
        "eval_batch_size": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        hidden_dims: Sequence[int],
        latent_dim: int,
        dropout: float,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        patience: int | None,
        random_state: int,
        device: str,
        eval_batch_size: int,
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

    def _loss(self, net: nn.Module, x: torch.Tensor | SparseBatch, update: int) -> tuple[torch.Tensor, LossParts]:
        """Loss for one batch at optimiser step ``update``, and its parts for logging."""
        raise NotImplementedError

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        """Adam over all of ``net``'s parameters, as the reference code (torch's fused
        kernel: one pass over each parameter instead of about ten)."""
        return torch.optim.Adam(net.parameters(), lr=self.lr, fused=True)

    def _batch_loss(
        self, net: nn.Module, X: sp.csr_matrix, users: np.ndarray, update: int
    ) -> tuple[torch.Tensor, LossParts]:
        """Loss of the training users ``users`` (row numbers of ``X``) at step ``update``.

        ``_loss`` of their rows; a model whose loss needs per-user state kept
        across epochs (RecVAE's previous posterior) overrides this instead.
        """
        return self._loss(net, _to_batch(X[users], self.device_), update)

    # ------------------------------------------------------------------ training
    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        device = resolve_device(self.device)
        # Seed a private copy of torch's RNG so that fitting is repeatable and
        # leaves the caller's global random state as it was.
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.random_state)
            rng = np.random.default_rng(self.random_state)
            net = self._build(X.shape[1]).to(device)
            self.device_ = device
            self.module_ = net
            optimizer = self._optimizer(net)
            key = fit_key(self.name, self.get_params(), X) if checkpoint is not None else ""
            saved = checkpoint.load(key) if checkpoint is not None else None
            progress = self._restore(saved, net, optimizer, rng) if saved is not None else _Progress()
            while not progress.stopped and progress.epoch < self.epochs:
                improved = self._run_epoch(net, optimizer, X, rng, validation, progress)
                if callback is not None:
                    callback(progress.history[-1])
                if self.patience is not None and validation is not None:
                    progress.stopped = progress.epoch - progress.best_epoch >= self.patience
                last = progress.stopped or progress.epoch == self.epochs
                if checkpoint is not None and checkpoint.due(progress.epoch, improved, last):
                    checkpoint.save(self._checkpoint_state(key, progress, net, optimizer, rng))
        best_epoch = progress.best_epoch
        if progress.best_state is not None:
            net.load_state_dict(progress.best_state)  # the paper keeps the best epoch on validation
        else:
            best_epoch = len(progress.history)
        self.module_ = net.eval()
        self.history_ = progress.history
        self.best_epoch_ = best_epoch
        self.best_score_ = progress.best_score if progress.best_state is not None else math.nan

    def _run_epoch(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, X: sp.csr_matrix,
        rng: np.random.Generator, validation: Validation | None, progress: _Progress,
    ) -> bool:
        """Train and validate one epoch, recording it in ``progress``; whether it is a new best."""
        epoch = progress.epoch + 1
        start = time.perf_counter()
        record, progress.update = self._train_epoch(net, optimizer, X, rng, epoch, progress.update)
        record["epoch_seconds"] = time.perf_counter() - start
        improved = False
        if validation is not None:
            score = self._validation_score(net, validation)
            record[f"val/{SELECTION_METRIC}"] = score
            if score > progress.best_score:
                progress.best_score, progress.best_epoch, improved = score, epoch, True
                progress.best_state = copy.deepcopy(net.state_dict())
        progress.history.append(record)
        progress.epoch = epoch
        return improved

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint_state(
        self, key: str, progress: _Progress, net: nn.Module, optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """Everything the loop needs to continue after ``progress.epoch`` exactly as it would have."""
        cuda = self.device_.type == "cuda"
        return {
            "key": key,
            "epoch": progress.epoch,
            "update": progress.update,
            # plain numbers only: the file is read back with weights_only
            "history": [{k: v if isinstance(v, int) else float(v) for k, v in r.items()} for r in progress.history],
            "best_score": float(progress.best_score),
            "best_epoch": progress.best_epoch,
            "best_state": progress.best_state,
            "stopped": progress.stopped,
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device_) if cuda else None,
            "extra": self._training_extra(),
        }

    def _restore(
        self, saved: dict[str, Any], net: nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator
    ) -> _Progress:
        """Put the network, optimiser and random states back as ``saved`` holds them."""
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device_)
        self._restore_training_extra(saved["extra"])
        return _Progress(
            epoch=saved["epoch"], update=saved["update"], history=saved["history"],
            best_score=saved["best_score"], best_epoch=saved["best_epoch"],
            best_state=saved["best_state"], stopped=saved["stopped"],
        )

    def _training_extra(self) -> dict[str, Any]:
        """Training-time state a subclass keeps across epochs (tensors or plain values)."""
        return {}

    def _restore_training_extra(self, extra: dict[str, Any]) -> None:
        """Put back what :meth:`_training_extra` returned."""

    def _train_epoch(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        X: sp.csr_matrix,
        rng: np.random.Generator,
        epoch: int,
        update: int,
    ) -> tuple[dict[str, float], int]:
        """One pass over the shuffled users; returns the epoch's record (mean loss parts
        per user) and the optimiser step count after it. ``ModelFitError`` on a NaN loss."""
        n_users = X.shape[0]
        net.train()
        sums: LossParts = {}
        perm = rng.permutation(n_users)  # Liang et al. shuffle users every epoch
        rank, size = distributed.world()
        for rows in iter_batches(n_users, self.batch_size):
            # data-parallel: this rank's shard of the global batch, its loss weighted by
            # its share, the gradients summed over the ranks (recae.models.distributed)
            users = perm[rows][rank::size]
            optimizer.zero_grad(set_to_none=True)
            if len(users):
                with self._autocast():
                    loss, parts = self._batch_loss(net, X, users, update)
                (loss * (len(users) / (rows.stop - rows.start)) if size > 1 else loss).backward()
                for key, value in parts.items():
                    value = value.double() if isinstance(value, torch.Tensor) else value  # bfloat16 under amp
                    sums[key] = sums.get(key, 0.0) + value * len(users)
            if size > 1:
                distributed.average_gradients(net)
            optimizer.step()
            update += 1
        totals = {key: float(value) for key, value in sums.items()}  # the epoch's one wait for the device
        if size > 1:
            totals = distributed.sum_over_ranks(totals)
        record: dict[str, float] = {"epoch": epoch}
        record.update({key: value / n_users for key, value in totals.items()})
        if not math.isfinite(record["loss"]):
            raise ModelFitError(
                f"{self.name}: the training loss became {record['loss']} in epoch {epoch}; "
                f"try a smaller lr (now {self.lr})"
            )
        return record, update

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast for the training passes when the model's ``amp`` is on (the models
        that take it: Mult-VAE, Mult-DAE, RecVAE, ELSA); the weights, the optimiser state and the losses
        that autocast keeps in float32 (softmax, log-softmax, sums) stay float32.

        Scores (validation, ranking, ``score``) are computed in float32 whatever ``amp``:
        bfloat16 keeps 8 bits of mantissa, so scores rounded to it tie by the dozen near the
        top of a list, and the ranking, the metrics and the tie rule's cost would follow the
        rounding rather than the model."""
        return torch.autocast(self.device_.type, dtype=torch.bfloat16, enabled=bool(getattr(self, "amp", False)))

    def _validation_score(self, net: nn.Module, validation: Validation) -> float:
        """Validation NDCG@100 of the network as it stands, through the shared ranking path."""
        net.eval()
        result = evaluate(self, *validation, ks=(100,), batch_size=self.eval_batch_size)
        return result.means()[SELECTION_METRIC]

    def _codes(self, net: nn.Module, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch's codes and (variational models) their variances; subclasses that have codes."""
        return super()._embed(sp.csr_matrix((0, 0)))  # type: ignore[return-value]  # raises UsageError

    def _embed(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
        net = self.module_.eval()
        codes, variances = [], []
        with torch.no_grad():
            for rows in iter_batches(X.shape[0], self.eval_batch_size):
                code, var = self._codes(net, _to_batch(X[rows], self.device_))
                codes.append(code.float().cpu().numpy())
                if var is not None:
                    variances.append(var.float().cpu().numpy())
        width = self.latent_dim if hasattr(self, "latent_dim") else 0
        out = np.concatenate(codes) if codes else np.zeros((0, int(width)), dtype=np.float32)
        return out, (np.concatenate(variances) if variances else None)

    def _decode_prior(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits of codes ``z`` drawn from the prior; generative subclasses override it."""
        raise NotImplementedError

    def _sample(self, lengths: np.ndarray, seed: int) -> sp.csr_matrix:
        """Codes z ~ N(0, I), their decoder logits, then ``lengths[u]`` items without replacement
        by the Gumbel top-k trick (the k largest of logits + Gumbel noise are a draw without
        replacement from the softmax)."""
        if type(self)._decode_prior is _Autoencoder._decode_prior:
            return super()._sample(lengths, seed)
        net = self.module_.eval()
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.empty(int(indptr[-1]), dtype=np.int64)
        with torch.no_grad():
            for rows in iter_batches(len(lengths), self.eval_batch_size):
                n = rows.stop - rows.start
                z = torch.randn(n, int(self.latent_dim), generator=generator).to(self.device_)
                logits = self._decode_prior(net, z).float().cpu()
                gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=generator).clamp_min(1e-20)))
                order = torch.argsort(logits + gumbel, dim=1, descending=True).numpy()
                indices[indptr[rows.start] : indptr[rows.stop]] = first_in_order(order, lengths[rows])
        data = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(lengths), self.n_items_))

    #: Whether ``_logits`` of a batch are the model's scores (CDAE folds users in first).
    _scores_are_logits: ClassVar[bool] = True

    def recommend(
        self, X: sp.spmatrix, k: int, exclude_seen: bool = True, allowed: np.ndarray | None = None,
        batch_size: int = 1000,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`Recommender.recommend`, with the scores kept in torch on the model's
        device (:meth:`_recommend_on_device`): on an accelerator only the lists come back;
        on the CPU the top k are chosen by a multi-threaded partial selection, not numpy's."""
        if not self.is_fitted or not self._scores_are_logits:
            return super().recommend(X, k, exclude_seen, allowed, batch_size)
        return self._recommend_on_device(X, k, exclude_seen, allowed, batch_size)

    def _recommend_on_device(
        self, X: sp.spmatrix, k: int, exclude_seen: bool, allowed: np.ndarray | None, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores, masking and top-k of each batch on the model's device (any device)."""
        X = check_matrix(X, "input", self.n_items_)
        k = min(check_k(k), self.n_items_)
        if allowed is not None:
            allowed = check_allowed(allowed, self.n_items_)
        items = np.empty((X.shape[0], k), dtype=np.int64)
        scores = np.empty((X.shape[0], k), dtype=np.float32)
        net = self.module_.eval()
        with torch.no_grad():
            for rows in iter_batches(X.shape[0], batch_size):
                x = _to_batch(X[rows], self.device_)
                logits = self._logits(net, x)  # float32: see _autocast
                # the batch's items, already on the device, are the ones masked
                items[rows], scores[rows] = device_topk(logits, k, x if exclude_seen else None, allowed)
        return items, scores

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        net = self.module_
        net.eval()
        out = np.empty(X.shape, dtype=np.float32)
        with torch.no_grad():
            for rows in iter_batches(X.shape[0], self.eval_batch_size):
                out[rows] = self._logits(net, _to_batch(X[rows], self.device_)).cpu().numpy()  # float32
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

    @staticmethod
    def _shared_search_space(trial: Any) -> dict[str, Any]:
        """The architecture and optimiser ranges both autoencoders search."""
        return {
            "latent_dim": trial.suggest_categorical("latent_dim", [100, 200, 400]),
            "hidden_dims": [trial.suggest_categorical("hidden_dim", [300, 600, 1000])],
            "dropout": trial.suggest_float("dropout", 0.2, 0.7),
        }


def first_in_order(order: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The first ``lengths[i]`` entries of each row of ``order`` (a permutation of the
    columns per row), each row's in ascending order, rows concatenated: CSR indices."""
    # column order[i, j] is taken when its rank j is within the row's length;
    # nonzero() then reads each row's taken columns in ascending order
    taken = np.zeros(order.shape, dtype=bool)
    ranks = np.arange(order.shape[1])
    np.put_along_axis(taken, order, ranks < np.asarray(lengths)[:, None], axis=1)
    return np.nonzero(taken)[1]
