"""Mult-VAE and Mult-DAE as plain ``nn.Module``s, and their loss functions.

Liang, Krishnan, Hoffman and Jebara, "Variational Autoencoders for
Collaborative Filtering", WWW 2018. Architecture and initialisation follow the
authors' reference code: an encoder [I → 600 → 200] and a decoder
[200 → 600 → I] with tanh between layers, L2-normalised input followed by
dropout, Xavier-uniform weights and N(0, 0.001²) biases. Nothing here knows
about data sets, configs or training schedules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


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
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, I) histories → (batch, I) logits."""
        h = self.dropout(F.normalize(x, dim=1))
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        return h


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
        self.decoder = _mlp([latent_dim, *reversed(hidden_dims), n_items])
        self.dropout = nn.Dropout(dropout)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, I) → μ, log σ²: (batch, latent)."""
        h = self.dropout(F.normalize(x, dim=1))
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1:
                h = torch.tanh(h)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (batch, latent) → (batch, I) logits."""
        h = z
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.tanh(h)
        return h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (batch, I) → logits (batch, I), μ and log σ² (batch, latent)."""
        mu, logvar = self.encode(x)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multinomial negative log-likelihood −Σ_i x_i log softmax(logits)_i, averaged over the batch."""
    return -(F.log_softmax(logits, dim=1) * x).sum(dim=1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0)).sum(dim=1).mean()


def weight_l2(module: nn.Module) -> torch.Tensor:
    """Σ‖W‖² over the weight matrices (biases excluded, as in the reference code)."""
    return sum(p.pow(2).sum() for name, p in module.named_parameters() if name.endswith("weight"))
