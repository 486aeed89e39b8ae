"""Mult-VAE and Mult-DAE as plain ``nn.Module``s, and the terms of their losses besides the likelihood.

Liang, Krishnan, Hoffman and Jebara, "Variational Autoencoders for
Collaborative Filtering", WWW 2018. Architecture and initialisation follow the
authors' reference code: an encoder [I → 600 → 200] and a decoder
[200 → 600 → I] with tanh between layers, L2-normalised input followed by
dropout, Xavier-uniform weights and N(0, 0.001²) biases. Nothing here knows
about data sets, configs or training schedules.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SparseBatch:
    """A batch of histories kept sparse, for a cheaper first layer (on every device).

    The first layer's input is ~1–5% non-zero: multiplying only the non-zeros
    (forward, and Xᵀ·grad for the weight gradient) skips two of the step's
    largest dense matrix products, and dropout draws one number per
    non-zero instead of per cell. Mathematically the same network.

    Attributes: CSR structure of the batch (``indptr``, ``indices``,
    ``values``), its shape, and ``rows``, the row of each stored value.
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    shape: tuple[int, int]
    rows: torch.Tensor

    @classmethod
    def from_scipy(cls, X: sp.csr_matrix, device: torch.device | str = "cpu") -> SparseBatch:
        X = sp.csr_matrix(X, dtype=np.float32)
        device = torch.device(device)
        indptr = to_device(X.indptr, device, torch.int64)
        if device.type == "cpu":
            rows = torch.from_numpy(np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)))
        else:  # made where it is used: nnz fewer numbers to send
            rows = torch.repeat_interleave(
                torch.arange(X.shape[0], device=device), indptr.diff(), output_size=X.nnz
            )
        return cls(
            indptr=indptr,
            indices=to_device(X.indices, device, torch.int64),
            values=to_device(X.data, device, torch.float32),
            shape=X.shape,
            rows=rows,
        )

    def to_dense(self) -> torch.Tensor:
        out = torch.zeros(self.shape, dtype=self.values.dtype, device=self.values.device)
        out[self.rows, self.indices] = self.values
        return out


def to_device(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A copy of ``a`` as a ``dtype`` tensor on ``device``; to a GPU from pinned memory,
    without waiting for the copy (the host goes on to build the next batch), in ``a``'s
    own type, converted there (scipy's int32 indices travel at half the bytes)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if device.type == "cuda":
        # an asynchronous copy needs pinned memory
        return t.pin_memory().to(device, non_blocking=True).to(dtype)
    return t.to(device=device, dtype=dtype, copy=True)  # never a view of the caller's array


class _SparseLinear(torch.autograd.Function):
    """y = X·Wᵀ for a sparse X (CSR, with the row, column and value of each non-zero);
    the gradient flows to W only."""

    @staticmethod
    # sparse batches live on the CPU, whose sparse products are float32 only (under amp too)
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(  # noqa: ANN001
        ctx, weight: torch.Tensor, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(rows, cols, values)
        ctx.n_items = weight.shape[1]
        with torch.autocast(weight.device.type, enabled=False):  # float32 on an accelerator too
            return torch.sparse.mm(x, weight.t())

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:  # noqa: ANN001
        # ∂/∂Wᵀ = Xᵀ·g (n_items × out). With fewer non-zeros than items (long catalogues,
        # short histories) index_add_ sums x_ui·g_u into row i of a zeroed matrix: half
        # the time of the sparse product, which writes its n_items × out result twice.
        # With more (dense histories, short catalogues) the nnz × out rows index_add_
        # would gather cost more than that, and Xᵀ as CSR times g is the cheaper one.
        rows, cols, values = ctx.saved_tensors
        n_items = ctx.n_items
        if cols.numel() < n_items:
            out = grad.new_zeros(n_items, grad.shape[1])
            out.index_add_(0, cols, grad[rows] * values[:, None])
            return out.t(), None, None, None, None
        order = torch.argsort(cols, stable=True)
        crow = torch.zeros(n_items + 1, dtype=torch.int64, device=cols.device)
        # counted by index_add_, not bincount, which waits for the device to learn the largest column
        counts = torch.zeros(n_items, dtype=torch.int64, device=cols.device).index_add_(0, cols, torch.ones_like(cols))
        torch.cumsum(counts, 0, out=crow[1:])
        XT = csr_tensor(crow, rows[order], values[order], (n_items, grad.shape[0]))
        return torch.sparse.mm(XT, grad).t(), None, None, None, None


def csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A torch CSR tensor of arrays that come from a checked scipy CSR matrix (or are built
    sorted, as ``Xᵀ`` above): torch's invariant checks are skipped, and its warning that
    CSR tensors are beta is silenced, with the one that says the checks are off (the
    operations used, CSR × dense and densifying, are long-standing and tested)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _input_layer(x: torch.Tensor | SparseBatch, layer: ItemsLinear, dropout: nn.Dropout) -> torch.Tensor:
    """layer(dropout(x / ‖x‖₂)) for a dense or a sparse batch of histories."""
    if not isinstance(x, SparseBatch):
        return layer(dropout(F.normalize(x, dim=1)))
    norms = torch.zeros(x.shape[0], dtype=x.values.dtype, device=x.values.device)
    norms.index_add_(0, x.rows, x.values.pow(2))
    values = dropout(x.values / norms.sqrt().clamp_min(1e-12)[x.rows])
    return sparse_linear(x, layer.weight, values) + layer.bias


def sparse_linear(x: SparseBatch, weight: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
    """``X·weightᵀ`` for the sparse batch ``x`` (its values replaced by ``values`` when
    given): only the non-zeros are multiplied, and the gradient flows to ``weight`` only."""
    values = x.values if values is None else values
    X = csr_tensor(x.indptr, x.indices, values, x.shape)
    return _SparseLinear.apply(weight, X, x.rows, x.indices, values)


class ItemsLinear(nn.Module):
    """The input layer ``x·Wᵀ + b`` (W: out × n_items) with W held one item per row in memory.

    Stored as ``items_weight`` = Wᵀ (n_items × out, contiguous): the sparse
    product ``X·Wᵀ`` reads it as it lies, its gradient ``Xᵀ·g`` arrives in the
    same layout, and the fused Adam step runs on contiguous memory. Held as
    ``nn.Linear`` holds it, each step would copy (and transpose) two or three
    out × n_items matrices. The state dict is ``nn.Linear``'s: ``weight``
    (out × n_items) and ``bias``, so saved models read back either way.
    """

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.items_weight = nn.Parameter(layer.weight.detach().t().contiguous())
        self.bias = layer.bias

    @property
    def weight(self) -> torch.Tensor:
        """W, out × n_items (a transposed view of ``items_weight``)."""
        return self.items_weight.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:  # type: ignore[override]
        weight = self.weight if keep_vars else self.weight.detach()
        destination[prefix + "weight"] = weight
        destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:  # type: ignore[override]
        if prefix + "weight" in state_dict:
            state_dict[prefix + "items_weight"] = state_dict.pop(prefix + "weight").t()
        super()._load_from_state_dict(state_dict, prefix, *args)


def _mlp(dims: Sequence[int]) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
    for layer in layers:
        # The reference code: Xavier (Glorot) uniform weights, biases ~ N(0, 0.001²).
        nn.init.xavier_uniform_(layer.weight)
        nn.init.normal_(layer.bias, std=0.001)
    return layers


class MultDAENet(nn.Module):
    """Denoising autoencoder [I → hidden → latent → reversed hidden → I], tanh throughout.

    Parameters
    ----------
    n_items : int
        Catalogue size I.
    hidden_dims : sequence of int
        Encoder hidden sizes (paper: ``(600,)``); the decoder mirrors them.
    latent_dim : int
        Bottleneck size (paper: 200).
    dropout : float
        Input dropout probability (paper: 0.5, i.e. keep_prob 0.5).
    """

    def __init__(self, n_items: int, hidden_dims: Sequence[int] = (600,), latent_dim: int = 200, dropout: float = 0.5):
        super().__init__()
        dims = [n_items, *hidden_dims, latent_dim, *reversed(hidden_dims), n_items]
        self.layers = _mlp(dims)
        self.layers[0] = ItemsLinear(self.layers[0])
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = len(hidden_dims)  # the index of the layer that outputs the code

    def encode(self, x: torch.Tensor | SparseBatch) -> torch.Tensor:
        """x: (batch, I) → the code (batch, latent): tanh of the bottleneck layer, what the decoder reads."""
        h = _input_layer(x, self.layers[0], self.dropout)
        for layer in self.layers[1 : self.bottleneck + 1]:
            h = layer(torch.tanh(h))
        return torch.tanh(h)

    def forward(self, x: torch.Tensor | SparseBatch) -> torch.Tensor:
        """x: (batch, I) histories → (batch, I) logits."""
        h = _input_layer(x, self.layers[0], self.dropout)
        for layer in self.layers[1:]:
            h = layer(torch.tanh(h))
        return h

    def forward_parts(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first layer's activation tanh(W x̃ + b), the code (tanh of the bottleneck) and the
        logits, in one pass (for the regularizers)."""
        first = torch.tanh(_input_layer(x, self.layers[0], self.dropout))
        h, code = first, first if self.bottleneck == 0 else None
        for i, layer in enumerate(self.layers[1:], start=1):
            a = layer(h)
            if i == len(self.layers) - 1:
                return first, code, a
            h = torch.tanh(a)
            if i == self.bottleneck:
                code = h
        raise AssertionError("a Mult-DAE network has at least two layers")


class MultVAENet(nn.Module):
    """Variational autoencoder: q(z|x) = N(μ, σ²) from [I → hidden → 2·latent], p(x|z) from [latent → hidden → I].

    Parameters as for :class:`MultDAENet`. In training the latent code is
    sampled with standard-normal noise (z = μ + ε·σ, ε ~ N(0, I)); in eval mode
    z = μ, as in the reference code.
    """

    def __init__(self, n_items: int, hidden_dims: Sequence[int] = (600,), latent_dim: int = 200, dropout: float = 0.5):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _mlp([n_items, *hidden_dims, 2 * latent_dim])
        self.encoder[0] = ItemsLinear(self.encoder[0])
        self.decoder = _mlp([latent_dim, *reversed(hidden_dims), n_items])
        self.dropout = nn.Dropout(dropout)

    def encode(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, I) → μ, log σ²: (batch, latent)."""
        h = _input_layer(x, self.encoder[0], self.dropout)
        for layer in self.encoder[1:]:
            h = layer(torch.tanh(h))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (batch, latent) → (batch, I) logits."""
        h = z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.tanh(h)
        return h

    def forward(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (batch, I) → logits (batch, I), μ and log σ² (batch, latent)."""
        mu, logvar = self.encode(x)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0)).sum(dim=1).mean()


def weight_l2(module: nn.Module) -> torch.Tensor:
    """Σ‖W‖² over the weight matrices (biases excluded, as in the reference code)."""
    return sum(p.pow(2).sum() for name, p in module.named_parameters() if name.endswith("weight"))
