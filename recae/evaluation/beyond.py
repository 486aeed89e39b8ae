"""Beyond-accuracy metrics of top lists: novelty, popularity bias, long tail, exposure, diversity.

For one user's list ``L`` cut at ``K`` (padding ``-1`` left out), with
``pop_i`` the number of training users who have item ``i`` and ``U`` the
number of training users:

- ``novelty_at_K``: mean self-information of the list's items,
  ``mean_{i∈L} −log2((pop_i + 1) / (U + 1))`` (add-one smoothed, so an item no
  training user has is finite);
- ``arp_at_K``: average recommendation popularity, ``mean_{i∈L} pop_i``
  (Abdollahpouri et al. 2019);
- ``long_tail_at_K``: the share of ``L`` outside the short head, the short head
  being the most popular 20% of the items (Pareto's split; ties by item index);
- ``ild_at_K``: intra-list diversity, the mean cosine distance ``1 − cos(v_i, v_j)``
  over the list's distinct pairs, ``v`` the model's item vectors (NaN for a
  model without them, or a list of one item).

Over all users' lists (one value each, with the coverage):

- ``gini_at_K``: the Gini index of item exposure, the number of lists each item
  is in within the first ``K`` (every catalogue item counted, 0 when never
  shown): 0 when every item is shown equally, near 1 when a few take it all;
- ``aggregate_diversity_at_K``: the number of distinct items shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recae.errors import UsageError

#: Per-user beyond-accuracy metrics (each gets intervals and paired tests).
PER_USER = ("novelty", "arp", "long_tail", "ild")
#: Metrics over all lists (one value per run, beside the coverage).
AGGREGATE = ("gini", "aggregate_diversity")
#: Every name ``--metrics`` takes.
BEYOND_METRICS = PER_USER + AGGREGATE
#: The short head: this share of the items, the most popular ones.
SHORT_HEAD_SHARE = 0.2


def check_beyond_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` if each is one of :data:`BEYOND_METRICS`, else ``UsageError`` naming the first other."""
    for name in names:
        if name not in BEYOND_METRICS:
            raise UsageError(f"unknown metric {name!r} for --metrics; known: {', '.join(BEYOND_METRICS)}")
    return tuple(dict.fromkeys(names))


def short_head(popularity: np.ndarray) -> np.ndarray:
    """A boolean mask of the most popular :data:`SHORT_HEAD_SHARE` of the items."""
    n = len(popularity)
    order = np.argsort(-np.asarray(popularity), kind="stable")
    head = np.zeros(n, dtype=bool)
    head[order[: int(np.ceil(SHORT_HEAD_SHARE * n))]] = True
    return head


def per_user_beyond(
    top: np.ndarray, ks: Sequence[int], names: Sequence[str], popularity: np.ndarray, n_train_users: int,
    item_vectors: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``{f"{name}_at_{K}": (n_users,) float64}`` for the per-user ``names`` (see the module docstring)."""
    popularity = np.asarray(popularity, dtype=np.float64)
    info = -np.log2((popularity + 1.0) / (n_train_users + 1.0))
    tail = ~short_head(popularity)
    unit = None
    if item_vectors is not None and "ild" in names:
        v = np.asarray(item_vectors, dtype=np.float64)
        unit = v / np.where((norm := np.linalg.norm(v, axis=1)) > 0, norm, 1.0)[:, None]
    out: dict[str, np.ndarray] = {}
    for k in ks:
        items = top[:, :k]
        valid = items >= 0
        safe = np.where(valid, items, 0)
        count = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, values in (("novelty", info), ("arp", popularity), ("long_tail", tail.astype(np.float64))):
                if name in names:
                    out[f"{name}_at_{k}"] = np.where(valid, values[safe], 0.0).sum(axis=1) / count
        if "ild" in names:
            out[f"ild_at_{k}"] = _ild(safe, valid, unit)
    return out


def _ild(items: np.ndarray, valid: np.ndarray, unit: np.ndarray | None) -> np.ndarray:
    """Mean pairwise cosine distance within each list (NaN without vectors or with < 2 items)."""
    out = np.full(items.shape[0], np.nan)
    if unit is None:
        return out
    V = unit[items] * valid[:, :, None]  # (n, K, d), padding as zero vectors
    sims = np.einsum("nkd,nld->nkl", V, V)
    m = valid.sum(axis=1)
    pairs = m * (m - 1)
    off_diagonal = sims.sum(axis=(1, 2)) - np.einsum("nkk->n", sims)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(pairs > 0, 1.0 - off_diagonal / pairs, np.nan)
    return out


def exposure(top: np.ndarray, k: int, n_items: int) -> np.ndarray:
    """How many lists each item is in within their first ``k`` entries: int64 (n_items,)."""
    items = top[:, :k]
    return np.bincount(items[items >= 0], minlength=n_items)


def aggregate_beyond(exposures: dict[int, np.ndarray], names: Sequence[str]) -> dict[str, float]:
    """``gini_at_K`` and ``aggregate_diversity_at_K`` from each K's exposure counts."""
    out: dict[str, float] = {}
    for k, counts in exposures.items():
        if "gini" in names:
            out[f"gini_at_{k}"] = gini(counts)
        if "aggregate_diversity" in names:
            out[f"aggregate_diversity_at_{k}"] = float(np.count_nonzero(counts))
    return out


def gini(counts: np.ndarray) -> float:
    """The Gini index of non-negative ``counts``: ``Σ_i (2i − n − 1) x_(i) / (n Σ x)``, x sorted
    ascending, i from 1; NaN when all are zero."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * total))


__all__ = [
    "AGGREGATE", "BEYOND_METRICS", "PER_USER", "SHORT_HEAD_SHARE", "aggregate_beyond",
    "check_beyond_metrics", "exposure", "gini", "per_user_beyond", "short_head",
]
