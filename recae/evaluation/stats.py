"""Statistics over per-user metric values: intervals of the mean, paired tests, Holm.

Every function takes per-user values (float, shape ``(n_users,)``) in which NaN
marks a user without targets; NaN values are left out (in paired tests, the
pair is). ±inf is an error: it would swamp any mean.

- :func:`mean_ci`: Student-t interval of the mean;
- :func:`bootstrap_ci`: percentile-bootstrap interval of the mean, with an
  explicit seed or ``numpy.random.Generator``;
- :func:`paired_tests`: two models on the same users: mean difference with its
  bootstrap interval, paired t-test and Wilcoxon signed-rank test;
- :func:`holm`: Holm–Bonferroni adjustment of a family of p-values;
- :func:`summarize` / :class:`MetricSummary`: mean and interval of each metric.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from recae.checks import check_positive_int
from recae.errors import DataError
from recae.evaluation.inputs import check_probability

__all__ = ["MetricSummary", "bootstrap_ci", "holm", "mean_ci", "paired_tests", "summarize"]

# Bootstrap resamples are drawn in chunks of about this many indices (int32: 16 MiB).
_BOOT_INDICES = 1 << 22


# ------------------------------------------------------------ intervals and tests
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
    confidence = check_probability(confidence, "confidence")
    v, mean = _finite_and_mean(values)
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
    confidence = check_probability(confidence, "confidence")
    n_boot = check_positive_int(n_boot, "n_boot")
    v, mean = _finite_and_mean(values)
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
    t_p, w_p = _paired_pvalues(a, b, diff)
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


def _paired_pvalues(a: np.ndarray, b: np.ndarray, diff: np.ndarray) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and the Wilcoxon test of ``diff = a - b``."""
    if diff.size < 2:
        return math.nan, math.nan
    if not diff.any():
        return 1.0, 1.0  # identical on every user: scipy's statistics are 0/0 here
    with warnings.catch_warnings():
        # A constant nonzero difference gives t = ±inf (p = 0), with a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        t_p = float(stats.ttest_rel(a, b).pvalue)
        w_p = float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
    return t_p, w_p


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
        As returned by :func:`recae.evaluation.metrics.per_user_metrics`.
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


# ---------------------------------------------------------------------- checks
def _as_float_1d(values: Any, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise DataError(f"{name} must be 1-D (one value per user), got shape {v.shape}")
    return v


def _finite_and_mean(values: Any) -> tuple[np.ndarray, float]:
    """The non-NaN values as float64, shape (n,), and their mean (NaN when n = 0).

    ±inf is an error: it would swamp any mean.
    """
    v = _as_float_1d(values, "values")
    v = v[~np.isnan(v)]
    if not np.isfinite(v).all():
        raise DataError("values contain infinite values")
    return v, float(v.mean()) if v.size else math.nan
