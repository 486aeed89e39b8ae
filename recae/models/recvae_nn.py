"""RecVAE's network and loss terms, apart from any training.

Shenbin, Alekseev, Tutubalina, Malykh and Nikolenko, "RecVAE: a New
Variational Autoencoder for Top-N Recommendations with Implicit Feedback",
WSDM 2020, as in the authors' code (github.com/ilya-shenbin/RecVAE,
``model.py``): an encoder of five fully connected layers of equal width with
swish activations, layer normalisation (ε = 0.1) and dense skip connections
(each layer's input is the sum of all earlier layers' outputs); a linear
decoder; and a composite prior that mixes a standard normal, the previous
epoch's posterior and a wide normal, per latent dimension. Weights keep
PyTorch's default initialisation, as the authors' code does. Nothing here
knows about data sets, configs or training schedules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recae.models.nn import SparseBatch

#: The encoder's depth and its layer norms' ε, fixed in the authors' code.
ENCODER_LAYERS = 5
LAYER_NORM_EPS = 0.1
#: The authors' composite prior: weights of N(0, I), the previous posterior and
#: the wide normal, and the wide normal's log-variance.
PRIOR_WEIGHTS = (3 / 20, 3 / 4, 1 / 10)
WIDE_LOGVAR = 10.0

_LOG_2PI = math.log(2 * math.pi)


class ItemLayer(nn.Module):
    """The encoder's first layer, h = dropout(x / ‖x‖₂) · W + b, with W one row per item: (I, out).

    A sparse batch is summed from the rows of W of each history's items
    (``embedding_bag``), which on the CPU costs half of a sparse matrix product
    with ``nn.Linear``'s (out, I) layout, whose transpose would be copied at
    every step. Initialised as ``nn.Linear`` is (uniform in ±1/√I), as the
    authors' first layer is.
    """

    def __init__(self, n_items: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_items, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        bound = 1 / math.sqrt(n_items)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor | SparseBatch, dropout: nn.Module) -> torch.Tensor:
        """x: (batch, I) histories, ``dropout`` applied to the normalised input → (batch, out)."""
        if not isinstance(x, SparseBatch):
            return dropout(F.normalize(x, dim=1)) @ self.weight + self.bias
        norms = torch.zeros(x.shape[0], dtype=x.values.dtype, device=x.values.device)
        norms.index_add_(0, x.rows, x.values.pow(2))
        values = dropout(x.values / norms.sqrt().clamp_min(1e-12)[x.rows])
        summed = F.embedding_bag(
            x.indices, self.weight, x.indptr, mode="sum", per_sample_weights=values, include_last_offset=True
        )
        return summed + self.bias


class RecVAEEncoder(nn.Module):
    """q(z|x) = N(μ, σ²): [I → hidden ×5 (swish, layer norm, dense skips) → μ, log σ²].

    Parameters
    ----------
    n_items : int
        Catalogue size I.
    hidden_dim : int
        Width of every hidden layer (authors: 600).
    latent_dim : int
        Size of the code z (authors: 200).
    dropout : float
        Probability of dropping each entry of the L2-normalised input (authors: 0.5).
    """

    def __init__(self, n_items: int, hidden_dim: int = 600, latent_dim: int = 200, dropout: float = 0.5):
        super().__init__()
        self.items = ItemLayer(n_items, hidden_dim)
        self.layers = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(ENCODER_LAYERS - 1))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim, eps=LAYER_NORM_EPS) for _ in range(ENCODER_LAYERS))
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.keep_all = nn.Identity()

    def forward(self, x: torch.Tensor | SparseBatch, dropout: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, I) histories → μ, log σ²: (batch, latent).

        ``dropout=False`` skips input dropout even in training mode: the
        authors evaluate the previous posterior and train the decoder that way.
        """
        h = self.norms[0](F.silu(self.items(x, self.dropout if dropout else self.keep_all)))
        total = h  # the sum of all earlier layers' outputs
        for layer, norm in zip(self.layers, self.norms[1:]):
            h = norm(F.silu(layer(h) + total))
            total = total + h
        # in the weights' precision under autocast too: the sample, the prior and the KL need it
        dtype = self.mu.weight.dtype
        return self.mu(h).to(dtype), self.logvar(h).to(dtype)


class RecVAENet(nn.Module):
    """RecVAE's encoder and its linear decoder p(x|z) = softmax(W z + b).

    Parameters as for :class:`RecVAEEncoder`. In training mode the code is
    sampled (z = μ + ε·σ, ε ~ N(0, I)); in eval mode z = μ.
    """

    def __init__(self, n_items: int, hidden_dim: int = 600, latent_dim: int = 200, dropout: float = 0.5):
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, hidden_dim, latent_dim, dropout)
        self.decoder = nn.Linear(latent_dim, n_items)

    def forward(
        self, x: torch.Tensor | SparseBatch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (batch, I) → logits (batch, I), and z, μ, log σ² (batch, latent)."""
        mu, logvar = self.encoder(x)
        z = sample(mu, logvar) if self.training else mu
        return self.decoder(z), z, mu, logvar


def sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One draw z = μ + ε·exp(½ log σ²), ε ~ N(0, I), of the shape of ``mu``."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float, logvar: torch.Tensor | float) -> torch.Tensor:
    """log N(z; μ, exp(log σ²)) element-wise, the shape of ``z``."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (logvar + _LOG_2PI + (z - mu).pow(2) / logvar.exp())


def composite_prior(
    z: torch.Tensor,
    post_mu: torch.Tensor,
    post_logvar: torch.Tensor,
    weights: Sequence[float] = PRIOR_WEIGHTS,
    wide_logvar: float = WIDE_LOGVAR,
) -> torch.Tensor:
    """log p(z) of the composite prior, per latent dimension: (batch, latent).

    p(z_d) = w₁·N(z_d; 0, 1) + w₂·N(z_d; μ_old, σ²_old) + w₃·N(z_d; 0, e^wide_logvar),
    with (μ_old, log σ²_old) the previous posterior of the same user and the
    weights divided by their sum (the authors' 3/20, 3/4, 1/10 already sum to 1).
    """
    log_w = torch.log(torch.tensor(weights, dtype=z.dtype, device=z.device))
    log_w = log_w - torch.logsumexp(log_w, 0)
    parts = torch.stack(
        [log_normal(z, 0.0, 0.0), log_normal(z, post_mu, post_logvar), log_normal(z, 0.0, wide_logvar)],
        dim=-1,
    )
    return torch.logsumexp(parts + log_w, dim=-1)


def weighted_kl(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, log_prior: torch.Tensor, kl_weight: torch.Tensor
) -> torch.Tensor:
    """The KL term estimated from one sample z per user, weighted per user, averaged over the batch.

    mean_u kl_weight_u · Σ_d [log q(z_ud | x_u) − log p(z_ud)], with q = N(μ, σ²),
    ``log_prior`` = log p(z) per dimension (e.g. :func:`composite_prior`), all
    (batch, latent), and ``kl_weight`` (batch,). The authors' estimate: under
    a mixture prior the KL has no closed form.
    """
    return ((log_normal(z, mu, logvar) - log_prior).sum(dim=1) * kl_weight).mean()


def history_sizes(x: torch.Tensor | SparseBatch) -> torch.Tensor:
    """|x_u| = Σ_i x_ui for each history in the batch: (batch,)."""
    if not isinstance(x, SparseBatch):
        return x.sum(dim=1)
    sizes = torch.zeros(x.shape[0], dtype=x.values.dtype, device=x.values.device)
    return sizes.index_add_(0, x.rows, x.values)
