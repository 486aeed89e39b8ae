"""VASP (Vančura & Kordík, ICANN 2021): a deep VAE and a shallow item × item path, multiplied."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recae.checks import Constraint, Interval
from recae.models.autoencoder import LossParts, _Autoencoder, _to_batch
from recae.models.base import EpochCallback, Validation
from recae.models.checkpoint import Checkpoint
from recae.models.memory import check_memory_budget
from recae.models.nn import SparseBatch
from recae.models.vasp_nn import VASPNet, focal_loss, mean_kl

#: The shared autoencoder parameters VASP does not take: its hidden layers
#: are one width repeated, and the authors use no weight decay.
_NOT_TAKEN = ("hidden_dims", "weight_decay")

#: Copies of every parameter held while training: the weights, their
#: gradients, NAdam's two moments, its step's temporary (the foreach kernels
#: work on all tensors at once), and the best epoch's copy.
_COPIES_PER_PARAMETER = 6


class VASP(_Autoencoder):
    """VASP (Vančura & Kordík 2021), as the authors' code (github.com/zombak79/vasp) defines it.

    Network (:mod:`recae.models.vasp_nn`): a variational autoencoder whose
    encoder is ``encoder_layers`` layers of width ``hidden_dim`` and whose
    decoder is ``decoder_layers`` such layers (swish, layer norm, dense skip
    connections), with a second, linear decoder straight from the code; and a
    shallow path σ(x·B), B items × items with a zero diagonal (EASE's
    structure, learnt by gradient). The predicted probability of each item is
    the product of the three sigmoid outputs,
    p = σ(deep decoder) · σ(linear decoder) · σ(x·B).

    Loss per batch: the focal loss (Lin et al. 2017; α = ``focal_alpha``,
    γ = ``focal_gamma``) of p against the targets, summed over items and
    averaged over rows, plus ``kl_weight`` × KL(q(z|x) ‖ N(0, I)) averaged over
    latent dimensions and rows (the authors' scale: the usual KL divided by the
    latent size). B's diagonal is set to zero at the start and after every
    optimiser step (the authors' Keras constraint).

    Data augmentation (``augment=True``, the authors' ``prevent_identity``
    generator): each step shuffles each user's items and cuts them in two
    halves (⌊n/2⌋ and the rest); one half is the input and the other the
    target, and the other way round, so a batch of ``batch_size`` users is
    2·``batch_size`` rows and the full history is never the input in
    training. ``augment=False``: the full history is input and target. A
    history ``x`` scores log p(x) (the same order as p, without underflow).

    Parameters
    ----------
    hidden_dim, latent_dim : width of every hidden layer (authors 4096) and
        code size (2048): the authors' ML-20M notebook.
    encoder_layers, decoder_layers : depths of the two stacks (authors 7 and 5).
    dropout : dropout of the input entries in training, one mask for both
        paths (authors: none, the augmentation takes its place).
    focal_alpha, focal_gamma : the focal loss's α ∈ [0, 1] and γ ≥ 0 (authors
        0.25 and 2, Lin et al.'s values).
    kl_weight : weight of the KL term (authors 1, on their per-dimension mean).
    augment : the half-split augmentation above (authors: on).
    epochs : epochs (authors 90: 50 at lr 5e-5, then 40 at 1e-5).
    batch_size : users per step (authors 1024, i.e. 2048 rows).
    lr : NAdam learning rate (authors 5e-5).
    lr_decay, lr_decay_epoch : after epoch ``lr_decay_epoch`` the rate is
        ``lr × lr_decay`` (authors: 0.2 after epoch 50; None: no change).
    max_memory : memory budget in bytes (``None``: the memory available now);
        fitting refuses with ``MemoryBudgetError`` when :meth:`memory_estimate`
        exceeds it.
    patience, random_state, device, eval_batch_size : as for
        :class:`~recae.models.mult_vae.MultVAE`.

    Notes
    -----
    Where this departs from the authors' code, and why:

    - The two directions of a user's split are in the same step; the authors'
      generator puts them in two different batches of users. Each user's
      halves are drawn anew at every step (the authors' once per epoch; each
      user is in one step per epoch here, so it is the same).
    - The NAdam state is kept when the rate drops; the authors' notebook
      compiles the model again (a fresh optimiser) at epochs 51 and 71. NAdam
      has Keras' ε = 10⁻⁷ and momentum decay 0.004.
    - The authors' ``items_sampling`` (the model restricted to the most
      popular items, to save GPU memory on large catalogues) is not offered:
      the memory check refuses instead, naming the bytes.
    - The best epoch on validation NDCG@100 is restored, as for every
      autoencoder here; the authors' notebook saves the best weights but
      evaluates the last epoch's.
    - The first layer and the shallow path keep one row per item,
      (n_items, out) as Keras' kernels, so that a sparse batch sums rows
      (``embedding_bag``) on the CPU; targets are the histories' non-zero
      entries as 1.
    """

    name = "vasp"
    _input_weight = "shallow.weight"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **{k: v for k, v in _Autoencoder._parameter_constraints.items() if k not in _NOT_TAKEN},
        "hidden_dim": [Interval(int, 1, None)],
        "encoder_layers": [Interval(int, 1, None)],
        "decoder_layers": [Interval(int, 1, None)],
        "focal_alpha": [Interval(float, 0, 1)],
        "focal_gamma": [Interval(float, 0, None)],
        "kl_weight": [Interval(float, 0, None)],
        "augment": [bool],
        "lr_decay": [Interval(float, 0, 1, closed="right")],
        "lr_decay_epoch": [Interval(int, 1, None), None],
        "max_memory": [Interval(float, 0, None, closed="neither"), None],
    }

    # The shared constructor takes hidden_dims and weight_decay, which VASP
    # does not have: it stores its own settings instead of calling it.
    def __init__(
        self,
        hidden_dim: int = 4096,
        latent_dim: int = 2048,
        encoder_layers: int = 7,
        decoder_layers: int = 5,
        dropout: float = 0.0,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        kl_weight: float = 1.0,
        augment: bool = True,
        epochs: int = 90,
        batch_size: int = 1024,
        lr: float = 5e-5,
        lr_decay: float = 0.2,
        lr_decay_epoch: int | None = 50,
        max_memory: float | None = None,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        eval_batch_size: int = 2000,
    ):
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.dropout = dropout
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.kl_weight = kl_weight
        self.augment = augment
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.lr_decay_epoch = lr_decay_epoch
        self.max_memory = max_memory
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.eval_batch_size = eval_batch_size

    # ------------------------------------------------------------------ memory
    def parameter_counts(self, n_items: int) -> tuple[int, int]:
        """(shallow, deep): the shallow path's n_items² weights and the deep path's count."""
        i, h, z = int(n_items), int(self.hidden_dim), int(self.latent_dim)
        depth = int(self.encoder_layers) + int(self.decoder_layers)
        deep = (
            i * h + h  # the encoder's first layer
            + (depth - 2) * (h * h + h)  # the other layers of both stacks
            + depth * 2 * h  # their layer norms
            + 2 * (h * z + z)  # μ and log σ²
            + z * h + h  # the decoder's first layer
            + (h + 1) * i + (z + 1) * i  # the two output layers
        )
        return i * i, deep

    def memory_estimate(self, n_items: int) -> int:
        """Peak bytes ``fit`` needs, about: every float32 parameter held six times
        (weights, gradients, two NAdam moments and a temporary, the best epoch's copy), plus the
        larger of a training step's and a scoring batch's activations."""
        shallow, deep = self.parameter_counts(n_items)
        rows = (2 if self.augment else 1) * int(self.batch_size)
        # per training row: ~12 item-wide tensors (targets, three logits and
        # sigmoids, their product, the loss terms) and ~4 per hidden layer
        depth = int(self.encoder_layers) + int(self.decoder_layers)
        train = rows * (12 * int(n_items) + 4 * depth * int(self.hidden_dim) + 6 * int(self.latent_dim))
        score = int(self.eval_batch_size) * (6 * int(n_items) + 2 * int(self.hidden_dim))
        return 4 * (_COPIES_PER_PARAMETER * (shallow + deep) + max(train, score))

    def check_resources(self, n_users: int, n_items: int) -> None:
        """Refuse, naming the estimate, when fitting this shape would exceed the memory budget."""
        self._validate_params()
        need = self.memory_estimate(n_items)
        shallow, deep = self.parameter_counts(n_items)
        check_memory_budget(
            need,
            self.max_memory,
            f"VASP on n_items={n_items} needs about {need / 1e9:.3g} GB ({need} bytes: the "
            f"{n_items}×{n_items} shallow weight and {deep} deep-path weights as float32, each held "
            f"{_COPIES_PER_PARAMETER} times, and one batch's activations)",
        )

    # ------------------------------------------------------------------ training
    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.check_resources(*X.shape)
        super()._fit(X, validation, callback, checkpoint)

    def _build(self, n_items: int) -> nn.Module:
        return VASPNet(
            n_items, int(self.hidden_dim), int(self.latent_dim),
            int(self.encoder_layers), int(self.decoder_layers), float(self.dropout),
        )

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        # Keras' Nadam: ε = 1e-7, momentum decay 0.004 (torch's NAdam default);
        # the foreach kernels, twice as fast on the CPU as the per-tensor loop
        optimizer = torch.optim.NAdam(
            net.parameters(), lr=self.lr, eps=1e-7, momentum_decay=4e-3, foreach=True
        )
        # the authors' DiagonalToZero constraint, which Keras applies after every update
        optimizer.register_step_post_hook(lambda *_: net.zero_diagonal_())
        return optimizer

    def learning_rate(self, epoch: int) -> float:
        """The rate of epoch ``epoch`` (1-based): ``lr``, times ``lr_decay`` after ``lr_decay_epoch``."""
        if self.lr_decay_epoch is not None and epoch > self.lr_decay_epoch:
            return float(self.lr) * float(self.lr_decay)
        return float(self.lr)

    def _train_epoch(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, X: sp.csr_matrix,
        rng: np.random.Generator, epoch: int, update: int,
    ) -> tuple[dict[str, float], int]:
        lr = self.learning_rate(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        record, update = super()._train_epoch(net, optimizer, X, rng, epoch, update)
        record["lr"] = lr
        return record, update

    def _batch_loss(
        self, net: nn.Module, X: sp.csr_matrix, users: np.ndarray, update: int
    ) -> tuple[torch.Tensor, LossParts]:
        rows = X[users]
        if self.augment:
            # drawn from torch's generator, which fit seeds, like the sampling noise
            keys = torch.rand(rows.nnz, dtype=torch.float64).numpy()
            inputs, targets = split_halves(rows, keys)
        else:
            inputs, targets = rows, rows
        # the dense targets are made where the loss runs, from the sparse batch (on a GPU,
        # nnz numbers travel instead of batch × items)
        binary = sp.csr_matrix(((targets.data > 0).astype(np.float32), targets.indices, targets.indptr), shape=targets.shape)
        y = SparseBatch.from_scipy(binary, self.device_).to_dense()
        return self._pair_loss(net, _to_batch(inputs, self.device_), y)

    def _pair_loss(
        self, net: nn.Module, x: torch.Tensor | SparseBatch, y: torch.Tensor
    ) -> tuple[torch.Tensor, LossParts]:
        """Focal loss of the predicted probabilities of inputs ``x`` against targets ``y``
        (both (rows, n_items)) plus the weighted KL term, and its parts."""
        out = net(x)
        focal = focal_loss(out.probability(), y, float(self.focal_alpha), float(self.focal_gamma))
        kl = mean_kl(out.mu, out.logvar)
        loss = focal + self.kl_weight * kl
        return loss, {"loss": loss.detach(), "focal": focal.detach(), "kl": kl.detach()}

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x).log_probability()

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "hidden_dim": trial.suggest_categorical("hidden_dim", [256, 512, 1024, 2048]),
            "latent_dim": trial.suggest_categorical("latent_dim", [128, 256, 512, 1024]),
            "lr": trial.suggest_float("lr", 1e-5, 1e-3, log=True),
            "focal_gamma": trial.suggest_float("focal_gamma", 0.0, 5.0),
            "focal_alpha": trial.suggest_float("focal_alpha", 0.05, 0.95),
        }


def split_halves(X: sp.csr_matrix, keys: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each row's items cut in two by ``keys``: the inputs and targets of both directions.

    Within row u, its items ordered by their ``keys`` (one float per stored
    entry, in CSR order) are cut after the first ⌊n_u/2⌋: the first part F_u,
    the rest S_u. Returns ``(inputs, targets)``, each (2·n_rows, n_items):
    inputs [S; F] and targets [F; S], so that each half predicts the other
    (the authors' generator: ``split1_50`` → ``split2_50`` and back).
    """
    X = sp.csr_matrix(X)
    lengths = np.diff(X.indptr)
    rows = np.repeat(np.arange(X.shape[0]), lengths)
    order = np.lexsort((keys, rows))  # by row, then by key; rows are already in order
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows]
    first = rank < (lengths // 2)[rows]
    # copies: eliminate_zeros compacts the index arrays in place
    F = sp.csr_matrix((X.data * first, X.indices, X.indptr), shape=X.shape, copy=True)
    S = sp.csr_matrix((X.data * ~first, X.indices, X.indptr), shape=X.shape, copy=True)
    F.eliminate_zeros()
    S.eliminate_zeros()
    return sp.vstack([S, F], format="csr"), sp.vstack([F, S], format="csr")
