"""The comparison with the best model: ranks, paired tests, Holm, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from recae.errors import DataError, RecaeError, UsageError
from recae.evaluation.compare import compare, format_comparison
from recae.evaluation.metrics import EvaluationResult


def _result(values: np.ndarray) -> EvaluationResult:
    return EvaluationResult(per_user={"ndcg_at_100": values}, coverage={}, n_users=len(values), n_skipped=int(np.isnan(values).sum()))


def test_a_planted_difference_is_significant_and_a_tie_is_not():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    results = {
        "good": _result(np.clip(base + 0.1, 0, 1)),
        "same": _result(base.copy()),
        "same-ish": _result(np.clip(base + rng.normal(0, 0.01, 400) + 0.1, 0, 1)),
    }
    table = compare(results, metrics=("ndcg_at_100",), n_boot=500)
    assert list(table["model"])[0] in ("good", "same-ish")
    same = table.set_index("model").loc["same"]
    assert same["significant"] and same["diff"] < 0 and same["diff_ci_high"] < 0
    other = table.set_index("model").loc[[m for m in ("good", "same-ish") if m != table["model"].iloc[0]][0]]
    assert other["rank"] == 2 and other["diff_ci_low"] <= 0 <= other["diff_ci_high"]
    assert not other["significant"]


def test_holm_adjusts_across_comparisons_and_the_best_row_is_blank():
    rng = np.random.default_rng(1)
    base = rng.random(200)
    results = {f"m{i}": _result(np.clip(base - 0.02 * i + rng.normal(0, 0.05, 200), 0, 1)) for i in range(4)}
    table = compare(results, metrics=("ndcg_at_100",), n_boot=200)
    best = table.iloc[0]
    assert best["rank"] == 1 and np.isnan(best["t_pvalue_holm"]) and not best["significant"]
    rest = table.iloc[1:]
    assert (rest["t_pvalue_holm"] >= rest["t_pvalue"]).all()
    assert (rest["wilcoxon_pvalue_holm"] >= rest["wilcoxon_pvalue"]).all()
    # intervals contain their means
    assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()
    text = format_comparison(table, "ndcg_at_100").to_string()
    assert "best" in text


def test_users_without_targets_are_left_out_of_the_pairs():
    a = np.array([0.5, np.nan, 0.2, 0.9, 0.4, 0.3])
    b = np.array([0.4, np.nan, 0.1, 0.8, 0.3, 0.35])
    table = compare({"a": _result(a), "b": _result(b)}, metrics=("ndcg_at_100",), n_boot=100)
    assert (table["n_users"] == 5).all()


def test_models_on_different_users_are_refused():
    with pytest.raises(DataError, match=r"different numbers of users \(a: 3, b: 4\)"):
        compare({"a": _result(np.ones(3)), "b": _result(np.ones(4))}, metrics=("ndcg_at_100",))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"results": {}}, UsageError, "no results to compare"),
        ({"metrics": ("recall_at_20",)}, UsageError, r"metric 'recall_at_20' was not evaluated for model 'a'; it has ndcg_at_100"),
        ({"alpha": 1.5}, UsageError, "alpha must lie strictly between 0 and 1, got 1.5"),
        ({"alpha": "high"}, UsageError, "alpha must be a number, got 'high'"),
        ({"n_boot": 0}, UsageError, "n_boot must be ≥ 1, got 0"),
        ({"seed": -1}, UsageError, "seed must be an integer ≥ 0, got -1"),
        ({"seed": 1.5}, UsageError, "seed must be an integer ≥ 0, got 1.5"),
    ],
)
def test_bad_input_raises_a_one_line_recae_error(kwargs, error, match):
    good = {"a": _result(np.linspace(0, 1, 5)), "b": _result(np.linspace(0, 0.5, 5))}
    kwargs = {"results": good, "metrics": ("ndcg_at_100",), "n_boot": 10} | kwargs
    with pytest.raises(error, match=match) as caught:
        compare(**kwargs)
    assert isinstance(caught.value, RecaeError)
    assert "\n" not in str(caught.value)


def test_on_average_popularity_the_lowest_is_the_best():
    rng = np.random.default_rng(0)
    base = rng.random(300) * 100
    results = {name: EvaluationResult(per_user={"arp_at_20": base + shift, "ndcg_at_20": np.full(300, shift)},
                                      coverage={}, n_users=300, n_skipped=0)
               for name, shift in (("popular", 30.0), ("niche", 0.0), ("mid", 10.0))}
    table = compare(results, metrics=("arp_at_20", "ndcg_at_20"), n_boot=200)
    arp = table[table["metric"] == "arp_at_20"].set_index("model")
    assert list(arp.sort_values("rank").index) == ["niche", "mid", "popular"]
    assert arp.loc["popular", "diff"] == pytest.approx(30.0) and arp.loc["popular", "significant"]
    ndcg = table[table["metric"] == "ndcg_at_20"].set_index("model")
    assert list(ndcg.sort_values("rank").index) == ["popular", "mid", "niche"]  # higher is better there
