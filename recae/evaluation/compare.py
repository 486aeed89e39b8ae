"""Is one model better than another on these users? Paired per-user statistics.

All models of a benchmark are evaluated on the same test users in the same
order, so their per-user metric values pair up. Against the best model on each
metric, every other model gets:

- a paired t-test on the per-user differences (assumes their *mean* is
  approximately normal — by the central limit theorem, fine for hundreds of
  users; it tests the difference in means, which is what the table reports);
- a Wilcoxon signed-rank test (no normality assumption, but it tests whether
  differences are symmetric around zero, i.e. the median difference, and it
  drops users whose difference is exactly zero, which is common for sparse
  metrics such as Recall@20);
- Holm's step-down correction of each test's p-values across the
  comparisons on one metric (controls the family-wise error rate at ``alpha``);
- a percentile-bootstrap 95% interval of each model's mean and of each
  difference (resampling users, so the pairing is kept).

A difference is marked significant when both Holm-adjusted p-values are below
``alpha``. None of this accounts for the randomness of the split or of
training: it says whether the difference holds for these test users, not for
another seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recae.errors import DataError, UsageError
from recae.evaluation.inputs import check_probability, check_seed
from recae.evaluation.metrics import EvaluationResult
from recae.evaluation.stats import bootstrap_ci, holm, paired_tests

__all__ = ["DEFAULT_METRICS", "LOWER_IS_BETTER", "compare", "format_comparison", "lower_is_better"]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg_at_100", "recall_at_20", "ndcg_at_20")
#: Metrics where less is better: the average popularity of what is recommended
#: (``arp_at_K``) measures popularity bias. Every other metric ranks highest first.
LOWER_IS_BETTER: tuple[str, ...] = ("arp_at_",)


def lower_is_better(metric: str) -> bool:
    """Whether the best model on ``metric`` is the one with the lowest mean."""
    return metric.startswith(LOWER_IS_BETTER)


def compare(
    results: Mapping[str, EvaluationResult],
    metrics: Sequence[str] = DEFAULT_METRICS,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (metric, model): mean, its bootstrap CI, and the paired comparison with the best
    (the highest mean; the lowest for :data:`LOWER_IS_BETTER` metrics).

    Parameters
    ----------
    results : mapping of model name → EvaluationResult
        Evaluations of the same users (equal ``n_users``).
    metrics : metric keys present in every ``per_user``.
    alpha : family-wise error rate for the significance mark, in (0, 1).
    n_boot, seed : bootstrap resamples (≥ 1) and their seed (≥ 0).

    Returns
    -------
    DataFrame with columns ``metric, model, rank, mean, ci_low, ci_high, diff,
    diff_ci_low, diff_ci_high, t_pvalue, wilcoxon_pvalue, t_pvalue_holm,
    wilcoxon_pvalue_holm, significant, n_users`` — the best model's row has
    ``rank`` 1 and NaN tests.

    Raises
    ------
    UsageError
        No results, a metric some result lacks, ``alpha`` outside (0, 1), a
        bad ``n_boot`` or ``seed``.
    DataError
        The results cover different numbers of users.
    """
    _check_results(results, metrics)
    alpha = check_probability(alpha, "alpha")
    seed = check_seed(seed)
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        values = {n: np.asarray(r.per_user[metric], dtype=np.float64) for n, r in results.items()}
        rows.extend(_compare_on(metric, values, alpha, n_boot, seed))
    return pd.DataFrame(rows)


def _check_results(results: Mapping[str, EvaluationResult], metrics: Sequence[str]) -> None:
    if not results:
        raise UsageError("no results to compare: give at least one model's evaluation")
    sizes = {name: r.n_users for name, r in results.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in sizes.items())
        raise DataError(f"models were evaluated on different numbers of users ({shown})")
    for name, r in results.items():
        missing = [m for m in metrics if m not in r.per_user]
        if missing:
            raise UsageError(
                f"metric {missing[0]!r} was not evaluated for model {name!r}; "
                f"it has {', '.join(r.per_user) or 'none'}"
            )


def _compare_on(
    metric: str, values: dict[str, np.ndarray], alpha: float, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """The rows of one metric, best model first; ``values[model]`` has shape (n_users,)."""
    means = {n: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for n, v in values.items()}
    sign = 1.0 if lower_is_better(metric) else -1.0  # sorted ascending: the best first, NaN last
    order = sorted(values, key=lambda n: np.nan_to_num(sign * means[n], nan=np.inf))
    best = order[0]
    block = []
    for rank, name in enumerate(order, start=1):
        mean, lo, hi = bootstrap_ci(values[name], n_boot=n_boot, rng=seed)
        row = {
            "metric": metric, "model": name, "rank": rank, "mean": mean, "ci_low": lo, "ci_high": hi,
            "diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
            "t_pvalue": np.nan, "wilcoxon_pvalue": np.nan,
            "n_users": int(np.isfinite(values[name]).sum()),
        }
        if name != best:
            test = paired_tests(values[name], values[best], n_boot=n_boot, rng=seed)
            row.update(
                diff=test["mean_diff"], diff_ci_low=test["ci_low"], diff_ci_high=test["ci_high"],
                t_pvalue=test["t_pvalue"], wilcoxon_pvalue=test["wilcoxon_pvalue"],
            )
        block.append(row)
    for test in ("t_pvalue", "wilcoxon_pvalue"):
        adjusted = holm([r[test] for r in block[1:]]) if len(block) > 1 else []
        block[0][f"{test}_holm"] = np.nan
        for r, p in zip(block[1:], adjusted):
            r[f"{test}_holm"] = float(p)
    for r in block:
        r["significant"] = bool(r["t_pvalue_holm"] < alpha and r["wilcoxon_pvalue_holm"] < alpha)
    return block


def format_comparison(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of one metric, formatted for printing: mean [CI], Δ vs best [CI], Holm p-values, mark."""
    sub = table[table["metric"] == metric]
    out = pd.DataFrame(
        {
            "model": sub["model"],
            metric: [f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in zip(sub["mean"], sub["ci_low"], sub["ci_high"])],
            "Δ vs best": [
                "best" if np.isnan(d) else f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
                for d, lo, hi in zip(sub["diff"], sub["diff_ci_low"], sub["diff_ci_high"])
            ],
            "p t (Holm)": [_p(p) for p in sub["t_pvalue_holm"]],
            "p Wilcoxon (Holm)": [_p(p) for p in sub["wilcoxon_pvalue_holm"]],
            "": ["" if np.isnan(d) else ("*" if s else "n.s.") for d, s in zip(sub["diff"], sub["significant"])],
        }
    )
    return out.reset_index(drop=True)


def _p(p: float) -> str:
    if np.isnan(p):
        return ""
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"
