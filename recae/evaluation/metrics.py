"""Top-N accuracy metrics per user, their aggregation, confidence intervals and paired tests.

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
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from scipy import stats

from recae.errors import DataError, UsageError

__all__ = [
    "METRICS",
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

# Per-user metrics are computed on row chunks whose membership lookup table
# (chunk rows × n_items booleans) stays near this many bytes.
_LOOKUP_BYTES = 1 << 25
# Bootstrap resamples are drawn in chunks of about this many indices (int32: 16 MiB).
_BOOT_INDICES = 1 << 22


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
    targets = _check_targets(targets)
    n_users, n_items = targets.shape
    top = _check_top(top, n_users, n_items)
    ks = _check_ks(ks, top.shape[1])
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
    n_items = _check_positive_int(n_items, "n_items")
    top = _check_top(top, None, n_items, check_duplicates=False)
    ks = _check_ks(ks, top.shape[1])
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


# ------------------------------------------------------------ interval and tests
def mean_ci(values: Iterable[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean, ignoring NaN.

    ``mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n)`` with ``s`` the sample
    standard deviation (ddof=1) of the ``n`` non-NaN values.

    Parameters
    ----------
    values : array-like of float, shape (n_users,)
        Per-user values; NaN (users without targets) are skipped.
    confidence : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (mean, low, high) : tuple of float
        ``mean`` is NaN when no value is left; ``low`` and ``high`` are NaN
        when fewer than 2 are.
    """
    confidence = _check_confidence(confidence)
    v = _finite(values, "values")
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half


def bootstrap_ci(
    values: Iterable[float] | np.ndarray,
    confidence: float = 0.95,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = 0,
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap confidence interval of the mean, ignoring NaN.

    Draws ``n_boot`` resamples of the ``n`` non-NaN values with replacement and
    returns the ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of
    their means. Resamples are drawn in chunks so that memory stays bounded
    (about 16 MiB of indices at a time) whatever ``n`` and ``n_boot`` are.

    Parameters
    ----------
    values : array-like of float, shape (n_users,)
    confidence : float
        In (0, 1).
    n_boot : int
        Number of resamples, ≥ 1.
    rng : numpy Generator, int seed or None
        The source of randomness; a fixed seed repeats exactly. ``None`` draws
        fresh entropy. The global NumPy state is never touched.

    Returns
    -------
    (mean, low, high) : tuple of float
        ``mean`` is the plain mean of the values (NaN when none); ``low`` and
        ``high`` are NaN when fewer than 2 values are left.
    """
    confidence = _check_confidence(confidence)
    n_boot = _check_positive_int(n_boot, "n_boot")
    v = _finite(values, "values")
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    gen = np.random.default_rng(rng)
    n = v.size
    idx_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    chunk = max(1, _BOOT_INDICES // n)
    boot_means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = gen.integers(0, n, size=(stop - start, n), dtype=idx_dtype)
        boot_means[start:stop] = v[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot_means, [alpha / 2, 1 - alpha / 2])
    return mean, float(low), float(high)


def paired_tests(
    a: Iterable[float] | np.ndarray,
    b: Iterable[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = 0,
) -> dict[str, float | int]:
    """Compare two models' per-user values on the same users.

    Pairs where either value is NaN (users without targets) are dropped.

    Parameters
    ----------
    a, b : array-like of float, shape (n_users,)
        Per-user values of model A and model B, user ``u`` at index ``u`` in both.
    confidence : float
        Coverage of the bootstrap interval of the mean difference.
    n_boot, rng
        As in :func:`bootstrap_ci`.

    Returns
    -------
    dict
        ``n`` (int): pairs used; ``mean_a``, ``mean_b``: the means over those
        pairs; ``mean_diff``: mean of ``a - b``; ``ci_low``, ``ci_high``: its
        percentile-bootstrap interval; ``t_pvalue``: two-sided paired t-test
        (:func:`scipy.stats.ttest_rel`); ``wilcoxon_pvalue``: two-sided Wilcoxon
        signed-rank test (:func:`scipy.stats.wilcoxon`, ``zero_method="wilcox"``:
        zero differences are dropped). When every difference is 0 both p-values
        are 1.0 (no evidence of a difference); with fewer than 2 pairs they are NaN.
    """
    a = _as_float_1d(a, "a")
    b = _as_float_1d(b, "b")
    if a.shape != b.shape:
        raise DataError(
            f"paired values must cover the same users: a has shape {a.shape}, b has shape {b.shape}"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("paired values contain infinite values")
    diff = a - b
    mean_diff, low, high = bootstrap_ci(diff, confidence=confidence, n_boot=n_boot, rng=rng)
    n = int(diff.size)
    if n < 2:
        t_p = w_p = math.nan
    elif not diff.any():
        t_p = w_p = 1.0  # identical on every user: scipy's statistics are 0/0 here
    else:
        with warnings.catch_warnings():
            # A constant nonzero difference gives t = ±inf (p = 0), with a warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            t_p = float(stats.ttest_rel(a, b).pvalue)
            w_p = float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
    return {
        "n": n,
        "mean_a": float(a.mean()) if n else math.nan,
        "mean_b": float(b.mean()) if n else math.nan,
        "mean_diff": mean_diff,
        "ci_low": low,
        "ci_high": high,
        "t_pvalue": t_p,
        "wilcoxon_pvalue": w_p,
    }


def holm(pvalues: Iterable[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the input order.

    With the ``m`` non-NaN p-values sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the
    adjusted value of ``p_(i)`` is ``max_{j ≤ i} min(1, (m - j + 1) · p_(j))``:
    monotone in the sorted order and capped at 1. Rejecting where the adjusted
    value is ≤ α controls the family-wise error rate at α.

    Parameters
    ----------
    pvalues : array-like of float, shape (m_total,)
        NaN entries (tests that could not be run) stay NaN and do not count in ``m``.

    Returns
    -------
    float64 ndarray, shape (m_total,)
    """
    p = _as_float_1d(pvalues, "pvalues")
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise DataError(f"p-values must lie in [0, 1], got {p[ok][(p[ok] < 0) | (p[ok] > 1)][:5]}")
    out = np.full(p.shape, np.nan)
    m = int(ok.sum())
    if m:
        valid = p[ok]
        order = np.argsort(valid, kind="stable")
        scaled = (m - np.arange(m)) * valid[order]
        adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
        result = np.empty(m)
        result[order] = adjusted
        out[ok] = result
    return out


# -------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class MetricSummary:
    """One metric over the users of an evaluation.

    Attributes
    ----------
    mean : float
        Mean over users with targets (NaN when there are none).
    ci_low, ci_high : float
        Student-t confidence interval of the mean (NaN with fewer than 2 users).
    n_users : int
        Users that have a value (at least one target).
    n_skipped : int
        Users without a value (no targets), left out of ``mean`` and the interval.
    """

    mean: float
    ci_low: float
    ci_high: float
    n_users: int
    n_skipped: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (for JSON or logging)."""
        return asdict(self)


def summarize(per_user: dict[str, np.ndarray], confidence: float = 0.95) -> dict[str, MetricSummary]:
    """Mean and confidence interval of each per-user metric.

    Parameters
    ----------
    per_user : dict[str, ndarray of shape (n_users,)]
        As returned by :func:`per_user_metrics`.
    confidence : float
        Coverage of the Student-t interval (see :func:`mean_ci`).

    Returns
    -------
    dict[str, MetricSummary]
        Same keys and order as ``per_user``. The number of users skipped for
        having no targets is each summary's ``n_skipped`` (the same for every
        metric of one evaluation, since only those users have NaN).
    """
    out = {}
    for key, values in per_user.items():
        v = _as_float_1d(values, key)
        n_skipped = int(np.isnan(v).sum())
        mean, low, high = mean_ci(v, confidence)
        out[key] = MetricSummary(mean, low, high, v.size - n_skipped, n_skipped)
    return out


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
        out = {key: float(np.nanmean(v)) if self.n_users > self.n_skipped else math.nan
               for key, v in self.per_user.items()}
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

    Returns
    -------
    EvaluationResult
    """
    X_in = _as_csr(X_in, "X_in")
    X_out = _check_targets(X_out, "X_out")
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
    ks = _check_ks(ks, np.iinfo(np.int64).max)
    batch_size = _check_positive_int(batch_size, "batch_size")
    k_max = max(ks)
    widths = {k_max, min(k_max, n_items)}  # recommend may cap k at the catalogue size

    names = list(METRICS)
    per_user = {f"{n}_at_{k}": np.empty(n_users, dtype=np.float64) for k in ks for n in names}
    first = np.full(n_items, k_max, dtype=np.int64)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_users, desc=desc, unit="user")
    try:
        for start in range(0, n_users, batch_size):
            rows = slice(start, min(start + batch_size, n_users))
            items, _ = model.recommend(X_in[rows], k=k_max, exclude_seen=True)
            items = np.asarray(items)
            n_rows = rows.stop - rows.start
            if items.ndim != 2 or items.shape[0] != n_rows or items.shape[1] not in widths:
                raise DataError(
                    f"{type(model).__name__}.recommend returned items of shape {items.shape}, "
                    f"expected ({n_rows}, {k_max})"
                    + (f" or ({n_rows}, {n_items})" if n_items < k_max else "")
                )
            if items.shape[1] < k_max:
                pad = np.full((n_rows, k_max - items.shape[1]), -1, dtype=items.dtype)
                items = np.concatenate([items, pad], axis=1)
            batch = per_user_metrics(items, X_out[rows], ks, names)
            for key, values in batch.items():
                per_user[key][rows] = values
            np.minimum(first, _first_ranks(items, n_items), out=first)
            if bar is not None:
                bar.update(rows.stop - rows.start)
    finally:
        if bar is not None:
            bar.close()
    n_skipped = int(np.count_nonzero(np.diff(X_out.indptr) == 0))
    return EvaluationResult(
        per_user=per_user,
        coverage=_coverage_from_ranks(first, n_items, ks),
        n_users=n_users,
        n_skipped=n_skipped,
    )


# ---------------------------------------------------------------------- checks
def _as_csr(X: Any, name: str) -> sp.csr_matrix:
    if not sp.issparse(X):
        raise DataError(f"{name} must be a scipy sparse matrix, got {type(X).__name__}")
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (users × items), got shape {X.shape}")
    return sp.csr_matrix(X)


def _check_targets(targets: Any, name: str = "targets") -> sp.csr_matrix:
    """Canonical CSR (sorted, no duplicates, no explicit zeros); copies only when needed."""
    t = _as_csr(targets, name)
    if not t.has_canonical_format:
        t = t.copy()
        t.sum_duplicates()
    if t.nnz and not t.data.all():
        t = t.copy()
        t.eliminate_zeros()
    return t


def _check_top(
    top: Any, n_users: int | None, n_items: int, check_duplicates: bool = True
) -> np.ndarray:
    top = np.asarray(top)
    if top.ndim != 2:
        raise DataError(f"top lists must be 2-D (users × K), got shape {top.shape}")
    if not np.issubdtype(top.dtype, np.integer):
        raise DataError(f"top lists must hold integer item indices, got dtype {top.dtype}")
    if n_users is not None and top.shape[0] != n_users:
        raise DataError(
            f"top lists have {top.shape[0]} rows but the targets have {n_users}; "
            "they must be the same users"
        )
    if top.size:
        lo, hi = int(top.min()), int(top.max())
        if lo < -1 or hi >= n_items:
            raise DataError(
                f"top lists hold item indices from {lo} to {hi}; expected -1 (padding) "
                f"or 0..{n_items - 1}"
            )
        if check_duplicates and top.shape[1] > 1:
            # A repeated item would count as several hits; sorting rows of K ints is cheap.
            s = np.sort(top, axis=1)
            dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
            if dup.any():
                row, col = np.argwhere(dup)[0]
                raise DataError(f"top list of row {row} names item {s[row, col + 1]} more than once")
    return top


def _check_ks(ks: Sequence[int] | int, limit: int, what: str = "the top-list length") -> list[int]:
    if isinstance(ks, int | np.integer):
        ks = [ks]
    out: list[int] = []
    for k in ks:
        try:
            k = operator.index(k)
        except TypeError:
            raise UsageError(f"cut-offs must be integers, got {k!r}") from None
        if k < 1:
            raise UsageError(f"cut-offs must be ≥ 1, got {k}")
        if k > limit:
            raise UsageError(f"cut-off K={k} exceeds {what} ({limit})")
        if k not in out:
            out.append(k)
    if not out:
        raise UsageError("no cut-offs given (ks is empty)")
    return out


def _check_metric_names(metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for m in metrics:
        if m not in METRICS:
            raise UsageError(f"unknown metric {m!r}; known metrics: {', '.join(METRICS)}")
        if m not in names:
            names.append(m)
    if not names:
        raise UsageError("no metrics requested")
    return names


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return confidence


def _check_positive_int(value: int, name: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise UsageError(f"{name} must be an integer, got {value!r}") from None
    if value < 1:
        raise UsageError(f"{name} must be ≥ 1, got {value}")
    return value


def _as_float_1d(values: Any, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise DataError(f"{name} must be 1-D (one value per user), got shape {v.shape}")
    return v


def _finite(values: Any, name: str) -> np.ndarray:
    """The non-NaN values as float64; ±inf is an error (it would swamp any mean)."""
    v = _as_float_1d(values, name)
    v = v[~np.isnan(v)]
    if not np.isfinite(v).all():
        raise DataError(f"{name} contain infinite values")
    return v
