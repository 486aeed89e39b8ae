"""Top-N accuracy metrics per user, and :func:`evaluate`, which ranks and scores a model.

Definitions
-----------
Relevance is binary. For one user let ``L = (l_1, …, l_K')`` be the top list
(best first, ``K' = top.shape[1]``), ``T`` the set of held-out target items
(the stored nonzeros of the user's row of ``targets``; explicit zeros are not
targets), and ``rel_r = 1`` if ``l_r ∈ T`` else 0. Padding entries ``-1`` are
never relevant. For a cut-off ``K ≤ K'``:

- ``hits@K = Σ_{r=1..K} rel_r``
- ``recall_at_K = hits@K / |T|``
- ``recall_norm_at_K = hits@K / min(K, |T|)``  (Liang et al. 2018, the Mult-VAE
  paper: 1.0 is reachable even when ``|T| > K``)
- ``ndcg_at_K = DCG@K / IDCG@K`` with ``DCG@K = Σ_{r=1..K} rel_r / log2(r + 1)``
  and ``IDCG@K = Σ_{r=1..min(K, |T|)} 1 / log2(r + 1)`` (all targets ranked first)
- ``precision_at_K = hits@K / K``: always ``K``, even when ``|T| < K`` or the
  list is padded
- ``map_at_K = (1 / min(K, |T|)) Σ_{r=1..K} P@r · rel_r`` with ``P@r = hits@r / r``
  (average precision at K; the mean over users is MAP@K)
- ``mrr_at_K = 1 / r*`` where ``r*`` is the rank of the first hit within the
  first ``K`` entries, 0 if there is none (the mean over users is MRR@K)
- ``hit_rate_at_K = 1`` if ``hits@K > 0`` else 0
- ``coverage_at_K`` = (number of distinct items in at least one user's first
  ``K`` entries) / ``n_items``: one value for all users, not a per-user metric.

Users with no targets (``|T| = 0``) get NaN for every per-user metric: they are
left out of means and intervals, and their number is reported (``n_skipped``).

Every per-user value lies in ``[0, 1]``; ``recall_norm_at_K ≥ recall_at_K``
with equality when ``|T| ≤ K``.

Means, confidence intervals, paired tests and Holm's correction live in
:mod:`recae.evaluation.stats`; they are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from recae.checks import check_positive_int
from recae.errors import DataError, UsageError
from recae.evaluation.beyond import PER_USER, aggregate_beyond, exposure, per_user_beyond
from recae.evaluation.inputs import as_csr, check_ks, check_targets, check_top, distinct
from recae.evaluation.stats import (
    MetricSummary,
    bootstrap_ci,
    holm,
    mean_ci,
    paired_tests,
    summarize,
)

__all__ = [
    "METRICS",
    "Beyond",
    "EvaluationResult",
    "MetricSummary",
    "bootstrap_ci",
    "coverage",
    "evaluate",
    "holm",
    "mean_ci",
    "paired_tests",
    "per_user_metrics",
    "summarize",
]

#: Per-user metric names, in the order their keys are produced for each K.
METRICS: tuple[str, ...] = ("recall", "recall_norm", "ndcg", "precision", "map", "mrr", "hit_rate")

@dataclass(frozen=True)
class Beyond:
    """What the beyond-accuracy metrics need: which (``names``, of
    :data:`~recae.evaluation.beyond.BEYOND_METRICS`), each item's number of training
    users, the number of training users, and the model's item vectors (None: no ILD)."""

    names: tuple[str, ...]
    popularity: np.ndarray
    n_train_users: int
    item_vectors: np.ndarray | None = None


# Per-user metrics are computed on row chunks whose membership lookup table
# (chunk rows × n_items booleans) stays near this many bytes.
_LOOKUP_BYTES = 1 << 25


class _Ranker(Protocol):
    def recommend(self, X: Any, k: int, exclude_seen: bool = ...) -> tuple[np.ndarray, np.ndarray]: ...


# ------------------------------------------------------------ per-user metrics
def per_user_metrics(
    top: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    ks: Sequence[int] | int = (20, 50, 100),
    metrics: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every requested metric at every cut-off, one value per user.

    Parameters
    ----------
    top : integer ndarray, shape (n_users, K_max)
        Item indices, best first; ``-1`` pads short lists and is never a hit.
        An item may appear at most once per row.
    targets : scipy sparse matrix, shape (n_users, n_items)
        Held-out items: the stored nonzeros of row ``u`` are user ``u``'s targets.
    ks : int or sequence of int
        Cut-offs, each in ``1..K_max``. Duplicates are dropped.
    metrics : sequence of str, optional
        A subset of :data:`METRICS`; all of them by default.

    Returns
    -------
    dict[str, float64 ndarray of shape (n_users,)]
        Keys ``f"{metric}_at_{K}"`` (e.g. ``ndcg_at_100``), for each K in the
        order given and, within it, each metric in the order given. Users
        without targets have NaN. See the module docstring for the definitions.

    Raises
    ------
    UsageError
        A cut-off is not an integer in ``1..K_max`` or a metric name is unknown.
    DataError
        The shapes disagree, ``top`` holds an index outside ``-1..n_items-1``,
        or a row names the same item twice.
    """
    targets = check_targets(targets)
    n_users, n_items = targets.shape
    top = check_top(top, n_users, n_items)
    ks = check_ks(ks, top.shape[1])
    names = _check_metric_names(metrics)
    k_max = max(ks)
    top = top[:, :k_max]

    out = {f"{name}_at_{k}": np.empty(n_users, dtype=np.float64) for k in ks for name in names}
    n_targets = np.diff(targets.indptr)
    ranks = np.arange(1, k_max + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)  # 1/log2(r+1) for r = 1..K_max
    # ideal_dcg[j] = IDCG with j+1 relevant items; indexed by min(K, |T|) - 1.
    ideal_dcg = np.cumsum(discount)

    chunk = max(1, min(n_users, _LOOKUP_BYTES // max(n_items, 1)))
    lookup = np.zeros(chunk * n_items, dtype=np.bool_)
    for start in range(0, n_users, chunk):
        rows = slice(start, min(start + chunk, n_users))
        hits = _hit_matrix(top[rows], targets[rows], lookup)
        _fill_metrics(out, rows, hits, n_targets[rows], ks, names, ranks, discount, ideal_dcg)

    no_targets = n_targets == 0
    if no_targets.any():
        for values in out.values():
            values[no_targets] = np.nan
    return out


def _hit_matrix(top: np.ndarray, targets: sp.csr_matrix, lookup: np.ndarray) -> np.ndarray:
    """``hits[u, r] = top[u, r] ∈ targets[u]`` as a bool (n, K) array.

    ``lookup`` is a zeroed scratch buffer of at least ``n * n_items`` booleans;
    it is zeroed again on return. Setting and clearing only the targets' cells
    keeps the cost O(nnz + n·K), independent of the catalogue size.
    """
    n, n_items = targets.shape
    cells = np.repeat(np.arange(n, dtype=np.int64) * n_items, np.diff(targets.indptr))
    cells += targets.indices
    lookup[cells] = True
    valid = top >= 0
    flat = np.where(valid, top + (np.arange(n, dtype=np.int64) * n_items)[:, None], 0)
    hits = lookup[flat] & valid
    lookup[cells] = False
    return hits


def _fill_metrics(
    out: dict[str, np.ndarray],
    rows: slice,
    hits: np.ndarray,
    n_targets: np.ndarray,
    ks: list[int],
    names: list[str],
    ranks: np.ndarray,
    discount: np.ndarray,
    ideal_dcg: np.ndarray,
) -> None:
    """Write each metric at each K for one chunk of users (see the module definitions)."""
    # Users without targets divide by zero here; they are overwritten with NaN later.
    safe_targets = np.maximum(n_targets, 1)
    cum_hits = np.cumsum(hits, axis=1, dtype=np.int64)  # hits@r for r = 1..K_max
    need = set(names)
    if "ndcg" in need:
        cum_dcg = np.cumsum(hits * discount, axis=1)
    if "map" in need:
        cum_ap = np.cumsum(np.where(hits, cum_hits / ranks, 0.0), axis=1)
    if "mrr" in need:
        any_hit = hits.any(axis=1)
        first = np.where(any_hit, hits.argmax(axis=1), hits.shape[1])  # 0-based rank
    for k in ks:
        h = cum_hits[:, k - 1].astype(np.float64)
        denom_norm = np.minimum(safe_targets, k)
        for name in names:
            key = f"{name}_at_{k}"
            if name == "recall":
                v = h / safe_targets
            elif name == "recall_norm":
                v = h / denom_norm
            elif name == "ndcg":
                v = cum_dcg[:, k - 1] / ideal_dcg[denom_norm - 1]
            elif name == "precision":
                v = h / k
            elif name == "map":
                v = cum_ap[:, k - 1] / denom_norm
            elif name == "mrr":
                v = np.where(first < k, 1.0 / (first + 1.0), 0.0)
            else:  # hit_rate
                v = (h > 0).astype(np.float64)
            out[key][rows] = v


# -------------------------------------------------------------------- coverage
def coverage(top: np.ndarray, n_items: int, ks: Sequence[int] | int = (20, 50, 100)) -> dict[str, float]:
    """Catalogue coverage: the fraction of items in at least one user's top K.

    Parameters
    ----------
    top : integer ndarray, shape (n_users, K_max)
        Item indices, best first; ``-1`` (padding) is ignored.
    n_items : int
        Catalogue size (the denominator).
    ks : int or sequence of int
        Cut-offs, each in ``1..K_max``.

    Returns
    -------
    dict[str, float]
        ``{"coverage_at_K": distinct items in top[:, :K] / n_items}``.
    """
    n_items = check_positive_int(n_items, "n_items")
    top = check_top(top, None, n_items, check_duplicates=False)
    ks = check_ks(ks, top.shape[1])
    first = _first_ranks(top[:, : max(ks)], n_items)
    return _coverage_from_ranks(first, n_items, ks)


def _first_ranks(top: np.ndarray, n_items: int) -> np.ndarray:
    """For each item, the best 0-based rank at which any user got it (``K`` if none)."""
    k = top.shape[1]
    first = np.full(n_items, k, dtype=np.int64)
    valid = top >= 0
    rank = np.broadcast_to(np.arange(k), top.shape)
    # One unbuffered pass serves every cut-off: an item is covered at K iff first < K.
    np.minimum.at(first, top[valid], rank[valid])
    return first


def _coverage_from_ranks(first: np.ndarray, n_items: int, ks: list[int]) -> dict[str, float]:
    return {f"coverage_at_{k}": float(np.count_nonzero(first < k) / n_items) for k in ks}


# ------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    per_user : dict[str, float64 ndarray of shape (n_users,)]
        Keys ``f"{metric}_at_{K}"``; NaN for users without targets.
    coverage : dict[str, float]
        Keys ``f"coverage_at_{K}"``, over all users' lists.
    n_users : int
        Users evaluated (rows of ``X_in``), including those skipped.
    n_skipped : int
        Users without targets (NaN in ``per_user``, left out of every mean).
    """

    per_user: dict[str, np.ndarray]
    coverage: dict[str, float]
    n_users: int
    n_skipped: int

    def summary(self, confidence: float = 0.95) -> dict[str, MetricSummary]:
        """Per-metric mean, Student-t interval and counts (see :func:`summarize`)."""
        return summarize(self.per_user, confidence)

    def means(self) -> dict[str, float]:
        """Flat ``{key: value}`` of the per-user means and the coverages, for logging."""
        # NaN, without numpy's "Mean of empty slice" warning, for a metric no user has
        # (every user skipped, or intra-list diversity of a model without item vectors)
        out = {key: float(np.nanmean(v)) if (~np.isnan(v)).any() else math.nan for key, v in self.per_user.items()}
        out.update(self.coverage)
        return out



def evaluate(
    model: _Ranker,
    X_in: sp.spmatrix | sp.sparray,
    X_out: sp.spmatrix | sp.sparray,
    ks: Sequence[int] | int = (20, 50, 100),
    batch_size: int = 1000,
    progress: bool = False,
    desc: str = "evaluate",
    beyond: Beyond | None = None,
) -> EvaluationResult:
    """Rank the full catalogue for each user and score the lists against held-out items.

    For each batch of rows, ``model.recommend(X_in[rows], k=max(ks),
    exclude_seen=True)`` gives the top lists (fold-in items are never
    recommended), which are scored against ``X_out[rows]``; coverage is
    accumulated over all users. Memory is one batch of scores plus the
    per-user results.

    Parameters
    ----------
    model : object with ``recommend(X, k, exclude_seen=...) -> (items, scores)``
        ``items`` must be an integer array of shape (len(X), k), or
        (len(X), n_items) when ``k > n_items`` (as :class:`~recae.models.base.Recommender`
        caps it); ``-1`` marks padding.
    X_in : scipy sparse matrix, shape (n_users, n_items)
        The users' input (fold-in) interactions.
    X_out : scipy sparse matrix, shape (n_users, n_items)
        Their held-out targets.
    ks : int or sequence of int
        Cut-offs, each ≥ 1. A cut-off beyond the catalogue size is allowed: the
        lists (at most ``n_items`` long) count as padded with ``-1`` up to it,
        so e.g. ``precision_at_K`` still divides by ``K``.
    batch_size : int
        Users ranked at once.
    progress : bool
        Show a tqdm progress bar.
    desc : str
        The progress bar's label.
    beyond : Beyond, optional
        Also the beyond-accuracy metrics it names (:mod:`recae.evaluation.beyond`):
        the per-user ones beside the accuracy metrics, the aggregate ones beside
        the coverage.

    Returns
    -------
    EvaluationResult
    """
    X_in = as_csr(X_in, "X_in")
    X_out = check_targets(X_out, "X_out")
    if X_in.shape != X_out.shape:
        raise DataError(
            f"X_in has shape {X_in.shape} but X_out has shape {X_out.shape}; "
            "they must have the same users and items"
        )
    n_users, n_items = X_in.shape
    if n_items == 0:
        raise DataError("cannot evaluate on a catalogue of 0 items")
    # K may exceed the catalogue (e.g. NDCG@100 on a 60-item toy set): the lists
    # are then padded with -1, which is exactly what the definitions say.
    ks = check_ks(ks, np.iinfo(np.int64).max)
    batch_size = check_positive_int(batch_size, "batch_size")
    k_max = max(ks)

    names = list(METRICS)
    per_user = {f"{n}_at_{k}": np.empty(n_users, dtype=np.float64) for k in ks for n in names}
    if beyond is not None:
        per_user.update({f"{n}_at_{k}": np.empty(n_users) for k in ks for n in beyond.names if n in PER_USER})
    exposures = {k: np.zeros(n_items, dtype=np.int64) for k in ks}
    first = np.full(n_items, k_max, dtype=np.int64)
    with tqdm(total=n_users, desc=desc, unit="user", disable=not progress) as bar:
        for start in range(0, n_users, batch_size):
            rows = slice(start, min(start + batch_size, n_users))
            items = _top_lists(model, X_in[rows], k_max, n_items)
            batch = per_user_metrics(items, X_out[rows], ks, names)
            if beyond is not None:
                batch.update(per_user_beyond(items, ks, beyond.names, beyond.popularity, beyond.n_train_users,
                                             beyond.item_vectors))
                for k in ks:
                    exposures[k] += exposure(items, k, n_items)
            for key, values in batch.items():
                per_user[key][rows] = values
            np.minimum(first, _first_ranks(items, n_items), out=first)
            bar.update(rows.stop - rows.start)
    n_skipped = int(np.count_nonzero(np.diff(X_out.indptr) == 0))
    overall = _coverage_from_ranks(first, n_items, ks)
    if beyond is not None:
        overall.update(aggregate_beyond(exposures, beyond.names))
    return EvaluationResult(
        per_user=per_user,
        coverage=overall,
        n_users=n_users,
        n_skipped=n_skipped,
    )


def _top_lists(model: _Ranker, X: sp.csr_matrix, k_max: int, n_items: int) -> np.ndarray:
    """``model``'s top ``k_max`` lists for the rows of ``X``: int array (n_rows, k_max).

    A model may cap ``k`` at the catalogue size; its shorter lists are padded
    with ``-1`` up to ``k_max``. Any other shape is an error naming the model.
    """
    items, _ = model.recommend(X, k=k_max, exclude_seen=True)
    items = np.asarray(items)
    n_rows = X.shape[0]
    widths = {k_max, min(k_max, n_items)}  # recommend may cap k at the catalogue size
    if items.ndim != 2 or items.shape[0] != n_rows or items.shape[1] not in widths:
        raise DataError(
            f"{type(model).__name__}.recommend returned items of shape {items.shape}, "
            f"expected ({n_rows}, {k_max})"
            + (f" or ({n_rows}, {n_items})" if n_items < k_max else "")
        )
    if items.shape[1] < k_max:
        pad = np.full((n_rows, k_max - items.shape[1]), -1, dtype=items.dtype)
        items = np.concatenate([items, pad], axis=1)
    return items


# ---------------------------------------------------------------------- checks
def _check_metric_names(metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    return distinct(metrics, _check_metric_name, "no metrics requested")


def _check_metric_name(name: str) -> str:
    if name not in METRICS:
        raise UsageError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    return name
