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

import numpy as np
import pandas as pd

from recae.evaluation.metrics import EvaluationResult, bootstrap_ci, holm, paired_tests

DEFAULT_METRICS: tuple[str, ...] = ("ndcg_at_100", "recall_at_20", "ndcg_at_20")


def compare(
    results: Mapping[str, EvaluationResult],
    metrics: Sequence[str] = DEFAULT_METRICS,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (metric, model): mean, its bootstrap CI, and the paired comparison with the best.

    Parameters
    ----------
    results : mapping of model name → EvaluationResult
        Evaluations of the same users (equal ``n_users``).
    metrics : metric keys present in every ``per_user``.
    alpha : family-wise error rate for the significance mark.
    n_boot, seed : bootstrap resamples and their seed.

    Returns
    -------
    DataFrame with columns ``metric, model, rank, mean, ci_low, ci_high, diff,
    diff_ci_low, diff_ci_high, t_pvalue, wilcoxon_pvalue, t_pvalue_holm,
    wilcoxon_pvalue_holm, significant, n_users`` — the best model's row has
    ``rank`` 1 and NaN tests.
    """
    names = list(results)
    sizes = {results[n].n_users for n in names}
    if len(sizes) > 1:
        raise ValueError(f"models were evaluated on different numbers of users: {sorted(sizes)}")
    rows = []
    for metric in metrics:
        values = {n: np.asarray(results[n].per_user[metric], dtype=np.float64) for n in names}
        means = {n: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for n, v in values.items()}
        order = sorted(names, key=lambda n: -np.nan_to_num(means[n], nan=-np.inf))
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
        rows.extend(block)
    return pd.DataFrame(rows)


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
