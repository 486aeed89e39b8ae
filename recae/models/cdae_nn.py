"""CDAE's network, loss, negative sampling and fold-in, apart from any training loop.

Wu, DuBois, Zheng and Ester, "Collaborative Denoising Auto-Encoders for Top-N
Recommender Systems", WSDM 2016. One hidden layer of K units fed by the
(corrupted) history and by a user-specific input node V_u::

    z_u = h(Wᵀ x̃_u + V_u + b)        (K,)
    ŷ_u = f(W′ z_u + b′)              (I,)

W and W′ are stored one row per item, (I, K), so that a sparse history sums
rows of W (``embedding_bag``). Initialisation as in the authors' code
(github.com/jasonyaw/CDAE, ``cdae.hpp``): W, W′ and V uniform in ±4·√(6 / (I + K)),
b and b′ zero. Nothing here knows about data sets, configs or schedules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recae.models.nn import to_device

#: The mapping functions h and f the paper compares.
ACTIVATIONS = ("sigmoid", "identity")
#: The paper's two losses: logistic (cross-entropy on f = sigmoid) and square.
LOSSES = ("logistic", "square")


@dataclass(frozen=True)
class Histories:
    """A batch of histories as CSR tensors: ``indptr`` (n + 1,), ``indices`` and ``values`` (nnz,).

    Every stored entry is a positive (value 1): CDAE models binary implicit feedback.
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    n_items: int

    @classmethod
    def from_scipy(cls, X: sp.csr_matrix, device: torch.device | str = "cpu") -> Histories:
        X = sp.csr_matrix(X)
        if X.nnz and not X.data.all():  # a stored zero is no interaction
            X = X.copy()
            X.eliminate_zeros()
        if not X.has_sorted_indices:  # the negative sampler needs each row's items in order
            X = X.sorted_indices()
        device = torch.device(device)
        return cls(
            indptr=to_device(X.indptr, device, torch.int64),
            indices=to_device(X.indices, device, torch.int64),
            values=torch.ones(X.nnz, dtype=torch.float32, device=device),
            n_items=X.shape[1],
        )

    @property
    def n_users(self) -> int:
        return self.indptr.numel() - 1

    @property
    def rows(self) -> torch.Tensor:
        """The row of each stored entry: (nnz,)."""
        sizes = self.indptr[1:] - self.indptr[:-1]
        # output_size given: on a GPU, repeat_interleave would otherwise wait to learn it
        return torch.repeat_interleave(
            torch.arange(self.n_users, device=self.indptr.device), sizes, output_size=self.values.numel()
        )

    def corrupted(self, q: float) -> Histories:
        """Each entry dropped with probability ``q``, survivors scaled by 1 / (1 − q) (torch's RNG)."""
        if q == 0:
            return self
        keep = torch.rand(self.values.shape, device=self.values.device) >= q
        return Histories(self.indptr, self.indices, keep * (self.values / (1.0 - q)), self.n_items)

    def dense(self) -> torch.Tensor:
        """The binary targets y_u as a dense (n, I) tensor."""
        out = torch.zeros(self.n_users, self.n_items, device=self.values.device)
        out[self.rows, self.indices] = 1.0
        return out


def _activation(name: str, a: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(a) if name == "sigmoid" else a


class CDAENet(nn.Module):
    """The CDAE network: item weights W, b, W′, b′ and the training users' input nodes V.

    Parameters
    ----------
    n_items : int
        Catalogue size I.
    hidden_dim : int
        K, the hidden layer's size (paper: 50).
    n_users : int
        Rows of V; 0 for a network that only scores (folds in) histories.
    hidden_activation : {"sigmoid", "identity"}
        h (paper's choice: sigmoid).
    """

    def __init__(self, n_items: int, hidden_dim: int = 50, n_users: int = 0, hidden_activation: str = "sigmoid"):
        super().__init__()
        self.hidden_activation = hidden_activation
        bound = 4.0 * math.sqrt(6.0 / (n_items + hidden_dim))
        self.items_in = nn.Parameter(torch.empty(n_items, hidden_dim).uniform_(-bound, bound))  # W
        self.bias_in = nn.Parameter(torch.zeros(hidden_dim))  # b
        self.items_out = nn.Parameter(torch.empty(n_items, hidden_dim).uniform_(-bound, bound))  # W′
        self.bias_out = nn.Parameter(torch.zeros(n_items))  # b′
        self.users = nn.Parameter(torch.empty(n_users, hidden_dim).uniform_(-bound, bound))  # V

    def input_sum(self, x: Histories) -> torch.Tensor:
        """Wᵀ x + b for each history: (n, K)."""
        summed = F.embedding_bag(
            x.indices, self.items_in, x.indptr, mode="sum", per_sample_weights=x.values, include_last_offset=True
        )
        return summed + self.bias_in

    def hidden(self, input_sum: torch.Tensor, user_nodes: torch.Tensor) -> torch.Tensor:
        """z = h(Wᵀ x + b + V_u): (n, K)."""
        return _activation(self.hidden_activation, input_sum + user_nodes)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """W′ z + b′, the output before f: (n, I)."""
        return z @ self.items_out.t() + self.bias_out

    def forward(self, x: Histories, user_nodes: torch.Tensor) -> torch.Tensor:
        """Histories and their input nodes V_u (n, K) → output pre-activations (n, I)."""
        return self.logits(self.hidden(self.input_sum(x), user_nodes))

    def item_l2(self) -> torch.Tensor:
        """‖W‖² + ‖W′‖² + ‖b‖² + ‖b′‖²."""
        return sum(p.pow(2).sum() for p in (self.items_in, self.items_out, self.bias_in, self.bias_out))


def reconstruction_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, loss: str, output_activation: str
) -> torch.Tensor:
    """Σ_i c_ui · ℓ(y_ui, f(s_ui)) per user: (n,).

    ``logits`` s, binary ``targets`` y and ``weights`` c are (n, I); c counts
    each positive once and each negative as often as it was sampled (or its
    expected count). Logistic: ℓ = −y log ŷ − (1 − y) log(1 − ŷ) with ŷ = σ(s)
    (computed from s, stably); square: ℓ = (y − f(s))².
    """
    if loss == "logistic":
        terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    else:
        terms = (targets - _activation(output_activation, logits)).pow(2)
    return (terms * weights).sum(dim=1)


def sample_negatives(x: Histories, ratio: int) -> torch.Tensor:
    """Negative counts: ``ratio`` × |y_u| items per user drawn uniformly, with replacement,
    among the items not in y_u (the authors' sampler), as an (n, I) tensor of counts."""
    n, n_items = x.n_users, x.n_items
    device = x.indptr.device
    sizes = x.indptr[1:] - x.indptr[:-1]
    free = n_items - sizes  # items each user has not got
    draws = torch.where(free > 0, sizes * ratio, torch.zeros_like(sizes))
    row = torch.repeat_interleave(torch.arange(n, device=device), draws)
    r = (torch.rand(row.shape, device=device, dtype=torch.float64) * free[row]).long()
    r = torch.minimum(r, free[row] - 1)
    # The r-th item not in y_u is r + #{j : p_j − j ≤ r} for the user's sorted
    # positives p_0 < p_1 < …; offsetting each row by row·I searches all rows at once.
    offset = torch.repeat_interleave(torch.arange(n, device=device), sizes) * n_items
    keys = offset + x.indices - (torch.arange(x.indices.numel(), device=device) - x.indptr[:-1].repeat_interleave(sizes))
    below = torch.searchsorted(keys, row * n_items + r, right=True) - x.indptr[row]
    item = r + below
    counts = torch.bincount(row * n_items + item, minlength=n * n_items)
    return counts.view(n, n_items).float()


def negative_weight(x: Histories, ratio: int | None) -> torch.Tensor:
    """The expected weight of each negative under the sampler, per user: (n, 1).

    ratio·|y_u| / (I − |y_u|) (1 when ``ratio`` is None: every negative counts once).
    """
    sizes = (x.indptr[1:] - x.indptr[:-1]).to(x.values.dtype)[:, None]
    if ratio is None:
        return torch.ones_like(sizes)
    return ratio * sizes / (x.n_items - sizes).clamp_min(1.0)


def expected_weights(x: Histories, ratio: int | None) -> torch.Tensor:
    """c_ui in expectation over the sampler: 1 on positives, :func:`negative_weight` elsewhere: (n, I)."""
    weights = negative_weight(x, ratio).expand(x.n_users, x.n_items).clone()
    weights[x.rows, x.indices] = 1.0
    return weights


def output_gradient(
    logits: torch.Tensor, x: Histories, neg_weight: torch.Tensor, loss: str, output_activation: str
) -> torch.Tensor:
    """∂/∂s of :func:`reconstruction_loss` under :func:`expected_weights`, without autograd: (n, I).

    The dense part treats every item as a negative (weight ``neg_weight``, (n, 1));
    the users' items are then overwritten. ``logits`` is consumed (overwritten).
    """
    rows, cols = x.rows, x.indices
    if loss == "logistic":  # c · (σ(s) − y)
        p = torch.sigmoid_(logits)
        at_pos = p[rows, cols] - 1.0
        grad = p.mul_(neg_weight)
    else:  # 2c · (f(s) − y) · f′(s)
        if output_activation == "sigmoid":
            p = torch.sigmoid_(logits)
            slope = p * (1.0 - p)
        else:
            p, slope = logits, torch.ones_like(logits)
        at_pos = 2.0 * (p[rows, cols] - 1.0) * slope[rows, cols]
        grad = slope.mul_(p).mul_(2.0 * neg_weight)
    grad[rows, cols] = at_pos
    return grad


def fold_in(
    net: CDAENet, x: Histories, steps: int, lr: float, l2: float, ratio: int | None, loss: str, output_activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wᵀ x + b and the input nodes V (each (n, K)) fitted to histories ``x``, item weights fixed.

    From V = 0, ``steps`` Adam steps (step size ``lr``) on
    Σ_u [Σ_i c_ui ℓ(y_ui, ŷ_ui) + λ/2 ‖V_u‖²], with c the expected weights of
    :func:`expected_weights` and the uncorrupted history as input. The loss is
    a sum over users and Adam works element-wise, so each user's V_u is the
    same alone or in any batch. Gradients are written out (no autograd graph
    over the (n, I) outputs), and no item weight is touched.
    """
    with torch.no_grad():
        input_sum = net.input_sum(x)
        nodes = torch.zeros_like(input_sum)
        if steps == 0:
            return input_sum, nodes
        neg_weight = negative_weight(x, ratio)
        w_out = net.items_out.detach()
        optimizer = torch.optim.Adam([nodes], lr=lr)
        for _ in range(steps):
            z = net.hidden(input_sum, nodes)
            grad_z = output_gradient(net.logits(z), x, neg_weight, loss, output_activation) @ w_out
            if net.hidden_activation == "sigmoid":
                grad_z.mul_(z * (1.0 - z))
            nodes.grad = grad_z.add_(nodes, alpha=l2)
            optimizer.step()
        nodes.grad = None
    return input_sum, nodes
