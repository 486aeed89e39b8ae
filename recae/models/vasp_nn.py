"""VASP's network and loss terms, apart from any training.

Vančura and Kordík, "Deep Variational Autoencoder with Shallow Parallel Path
for Top-N Recommendation (VASP)", ICANN 2021, as in the authors' code
(github.com/zombak79/vasp, ``VASP.ipynb``): a deep variational autoencoder
and a shallow item × item path side by side, each ending in a sigmoid, their
outputs multiplied. Layers are initialised as Keras' ``Dense`` (Glorot-uniform
weights, zero biases) and ``LayerNormalization`` (ε = 10⁻³) are, as in the
authors' code. Nothing here knows about data sets, configs or training schedules.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from recae.models.nn import SparseBatch

#: Keras' defaults, which the authors' code keeps: LayerNormalization's ε and
#: the ε by which ``binary_crossentropy`` clips probabilities.
LAYER_NORM_EPS = 1e-3
KERAS_EPS = 1e-7
#: The least value of 1 − p_t raised to the focal γ (see :func:`focal_loss`).
MODULATING_FLOOR = 1e-12


class ItemLinear(nn.Module):
    """y = x · W (+ b) with W one row per item, (n_items, out), for dense or sparse histories.

    A sparse batch sums the rows of W of each history's items, weighted by the
    values (``embedding_bag``): on the CPU the product costs O(nnz × out)
    instead of O(batch × n_items × out).
    """

    def __init__(self, n_items: int, out_dim: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_items, out_dim))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def forward(self, x: torch.Tensor | SparseBatch) -> torch.Tensor:
        """x: (batch, n_items) → (batch, out)."""
        if isinstance(x, SparseBatch):
            out = F.embedding_bag(
                x.indices, self.weight, x.indptr, mode="sum", per_sample_weights=x.values, include_last_offset=True
            )
        else:
            out = x @ self.weight
        return out if self.bias is None else out + self.bias


def _dense(d_in: int, d_out: int) -> nn.Linear:
    """A Keras ``Dense`` layer's initialisation: Glorot-uniform weight, zero bias."""
    layer = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class DenseSkipStack(nn.Module):
    """``depth`` layers of one width with swish, layer norm and dense skip connections.

    Given the first layer's pre-activation a₁: h₁ = LN(swish(a₁)), then
    h_k = LN(swish(W_k h_{k−1} + b_k + Σ_{j<k} h_j)) for k = 2 … depth; returns
    h_depth, (batch, width). The authors' encoder is such a stack of 7, their
    decoder one of 5.
    """

    def __init__(self, width: int, depth: int):
        super().__init__()
        self.layers = nn.ModuleList(_dense(width, width) for _ in range(depth - 1))
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=LAYER_NORM_EPS) for _ in range(depth))

    def forward(self, first: torch.Tensor) -> torch.Tensor:
        h = self.norms[0](F.silu(first))
        total = h  # the sum of all earlier layers' outputs
        for layer, norm in zip(self.layers, self.norms[1:]):
            h = norm(F.silu(layer(h) + total))
            total = total + h
        return h


@dataclasses.dataclass(frozen=True)
class VASPOutput:
    """The three paths' logits, each (batch, n_items), and the posterior (batch, latent) each.

    The predicted probability is σ(deep) · σ(latent) · σ(shallow): the deep
    decoder's output, the one-layer decoder straight from the code, and the
    shallow item × item path.
    """

    deep: torch.Tensor
    latent: torch.Tensor
    shallow: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor

    def probability(self) -> torch.Tensor:
        """σ(deep) · σ(latent) · σ(shallow), (batch, n_items): the authors' output."""
        return torch.sigmoid(self.deep) * torch.sigmoid(self.latent) * torch.sigmoid(self.shallow)

    def log_probability(self) -> torch.Tensor:
        """log of :meth:`probability` as a sum of log-sigmoids: the same order, no underflow."""
        return F.logsigmoid(self.deep) + F.logsigmoid(self.latent) + F.logsigmoid(self.shallow)


class VASPNet(nn.Module):
    """The deep VAE path and the shallow path, side by side.

    Deep path: the encoder [n_items → hidden × ``encoder_layers`` (dense skip
    stack) → μ, log σ² (latent each)]; the decoder [latent → hidden ×
    ``decoder_layers`` (dense skip stack) → n_items] and, beside it, a linear
    layer latent → n_items; each ends in a sigmoid and the two are multiplied.
    Shallow path: σ(x · B) with B an n_items × n_items matrix without bias whose
    diagonal is zero (so that it cannot learn the identity), as EASE's.

    Parameters
    ----------
    n_items : int
        Catalogue size I.
    hidden_dim, latent_dim : int
        Width of every hidden layer and size of the code (authors: 4096 and 2048).
    encoder_layers, decoder_layers : int
        Depths of the two stacks (authors: 7 and 5).
    dropout : float
        Dropout of the input entries, the same mask for both paths (authors: none).

    In training mode the code is sampled (z = μ + ε·σ, ε ~ N(0, I)); in eval mode z = μ.
    """

    def __init__(
        self,
        n_items: int,
        hidden_dim: int = 4096,
        latent_dim: int = 2048,
        encoder_layers: int = 7,
        decoder_layers: int = 5,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.items = ItemLinear(n_items, hidden_dim)  # the encoder's first layer
        self.encoder = DenseSkipStack(hidden_dim, encoder_layers)
        self.mu = _dense(hidden_dim, latent_dim)
        self.logvar = _dense(hidden_dim, latent_dim)
        self.decoder_in = _dense(latent_dim, hidden_dim)
        self.decoder = DenseSkipStack(hidden_dim, decoder_layers)
        self.decoder_out = _dense(hidden_dim, n_items)
        self.latent_out = _dense(latent_dim, n_items)
        self.shallow = ItemLinear(n_items, n_items, bias=False)
        self.zero_diagonal_()

    @torch.no_grad()
    def zero_diagonal_(self) -> None:
        """Set the shallow weight's diagonal to zero (the authors' ``DiagonalToZero`` constraint)."""
        self.shallow.weight.diagonal().zero_()

    def forward(self, x: torch.Tensor | SparseBatch) -> VASPOutput:
        """x: (batch, n_items) histories → the three paths' logits and the posterior."""
        if isinstance(x, SparseBatch):
            x = dataclasses.replace(x, values=self.dropout(x.values))
        else:
            x = self.dropout(x)
        h = self.encoder(self.items(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        deep = self.decoder_out(self.decoder(self.decoder_in(z)))
        return VASPOutput(deep, self.latent_out(z), self.shallow(x), mu, logvar)


def focal_loss(prob: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal cross-entropy (Lin et al. 2017) summed over items, averaged over the batch.

    For each entry, with p the predicted probability and y ∈ {0, 1} the target:
    FL = α_t · (1 − p_t)^γ · CE, where p_t = y·p + (1 − y)·(1 − p),
    α_t = y·α + (1 − y)·(1 − α), and CE = −[y·log(p̂ + ε) + (1 − y)·log(1 − p̂ + ε)]
    with p̂ = p clipped to [ε, 1 − ε], ε = 10⁻⁷: TensorFlow Addons'
    ``sigmoid_focal_crossentropy`` over Keras' ``binary_crossentropy``, as the
    authors train with; 1 − p_t is floored at 10⁻¹² before the power (the
    authors' is not). ``prob`` and ``target`` are (batch, n_items).
    """
    clipped = prob.clamp(KERAS_EPS, 1.0 - KERAS_EPS)
    ce = -(target * torch.log(clipped + KERAS_EPS) + (1 - target) * torch.log(1 - clipped + KERAS_EPS))
    p_t = target * prob + (1 - target) * (1 - prob)
    alpha_t = target * alpha + (1 - target) * (1 - alpha)
    # floored so that γ < 1 keeps a finite gradient where a product of
    # sigmoids underflows to exactly 0 or 1; (10⁻¹²)^γ is below any other term
    modulating = (1 - p_t).clamp_min(MODULATING_FLOOR).pow(gamma)
    return (alpha_t * modulating * ce).sum(dim=1).mean()


def mean_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per latent dimension, averaged over dimensions and users.

    −½ · mean(1 + log σ² − μ² − σ²), as the authors' code adds it to the loss:
    the usual KL summed over dimensions, divided by the latent size.
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()
