"""Tests of recae.evaluation.stats: intervals of the mean, paired tests and Holm, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import recae.evaluation.stats as stats_module
from recae.errors import DataError, UsageError
from recae.evaluation.stats import bootstrap_ci, holm, mean_ci, paired_tests


def test_mean_ci_by_hand():
    # values 1, 2, 3, 4 (NaN skipped): mean 2.5, s = sqrt(5/3) = 1.29099, se = s/2 = 0.64550,
    # t_{0.975, 3} = 3.18245 → half-width 2.05426 → (0.44574, 4.55426)
    mean, lo, hi = mean_ci([1.0, 2.0, np.nan, 3.0, 4.0])
    assert mean == 2.5
    assert (lo, hi) == pytest.approx((0.44574, 4.55426), abs=1e-5)
    ref = stats.t.interval(0.95, 3, loc=2.5, scale=math.sqrt(5 / 3) / 2)
    assert (lo, hi) == pytest.approx(ref)
    # 90%: t_{0.95, 3} = 2.35336 → half-width 2.35336·0.64550 = 1.51909
    assert mean_ci([1, 2, 3, 4], confidence=0.9)[1] == pytest.approx(2.5 - 1.51909, abs=1e-5)


def test_mean_ci_degenerate():
    assert mean_ci([0.3])[0] == 0.3 and all(math.isnan(x) for x in mean_ci([0.3])[1:])
    assert all(math.isnan(x) for x in mean_ci([np.nan, np.nan]))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(UsageError, match="confidence"):
        mean_ci([1, 2], confidence=95)


def test_bootstrap_ci_contains_mean_and_is_reproducible():
    rng = np.random.default_rng(11)
    values = np.append(rng.random(500), np.nan)
    mean, lo, hi = bootstrap_ci(values, rng=7)
    assert mean == pytest.approx(np.nanmean(values))
    assert lo < mean < hi
    assert bootstrap_ci(values, rng=7) == (mean, lo, hi)
    assert bootstrap_ci(values, rng=np.random.default_rng(7)) == (mean, lo, hi)
    assert bootstrap_ci(values, rng=8) != (mean, lo, hi)
    # For 500 uniform values the percentile interval is close to the t interval.
    _, t_lo, t_hi = mean_ci(values)
    assert (hi - lo) == pytest.approx(t_hi - t_lo, rel=0.15)


def test_bootstrap_ci_chunks_cover_every_resample(monkeypatch):
    # tiny chunks: 3 resamples of 4 values per draw; the result must still use all 1000
    monkeypatch.setattr(stats_module, "_BOOT_INDICES", 12)
    mean, lo, hi = bootstrap_ci([0.0, 1.0, 2.0, 3.0], n_boot=1000, rng=0)
    assert mean == 1.5 and 0.0 <= lo < 1.5 < hi <= 3.0


def test_holm_by_hand():
    # sorted: 0.005, 0.01, 0.03, 0.04 with m = 4 → 4·0.005 = 0.02, 3·0.01 = 0.03,
    # 2·0.03 = 0.06, 1·0.04 = 0.04 → running max 0.02, 0.03, 0.06, 0.06
    p = [0.01, np.nan, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06, 0.02])
    # capped at 1: 2·0.5 = 1.0, then max(1.0, 1·0.6) = 1.0
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    assert holm([]).shape == (0,)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


def test_paired_tests_detect_a_planted_difference():
    rng = np.random.default_rng(0)
    b = rng.random(300)
    a = np.clip(b + 0.05 + rng.normal(0, 0.02, 300), 0, None)
    a[5] = np.nan  # dropped pair
    res = paired_tests(a, b, rng=1)
    assert res["n"] == 299
    assert res["t_pvalue"] < 1e-10 and res["wilcoxon_pvalue"] < 1e-10
    assert res["ci_low"] < res["mean_diff"] < res["ci_high"]
    assert 0.04 < res["ci_low"] and res["ci_high"] < 0.06
    assert res["mean_diff"] == pytest.approx(res["mean_a"] - res["mean_b"])
    assert paired_tests(a, b, rng=1) == res  # seeded → repeatable


def test_paired_tests_identical_inputs_are_not_significant():
    a = np.array([0.1, 0.4, np.nan, 0.7, 0.2])
    res = paired_tests(a, a.copy())
    assert res["n"] == 4
    assert res["t_pvalue"] == 1.0 and res["wilcoxon_pvalue"] == 1.0
    assert res["mean_diff"] == 0.0 and res["ci_low"] == 0.0 and res["ci_high"] == 0.0


def test_paired_tests_shape_mismatch():
    with pytest.raises(DataError, match=r"\(3,\).*\(2,\)"):
        paired_tests([1, 2, 3], [1, 2])


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="n_boot must be ≥ 1, got 0"):
        bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(UsageError, match="n_boot must be an integer"):
        bootstrap_ci([1.0, 2.0], n_boot=10.5)
    with pytest.raises(UsageError, match="confidence must lie strictly between 0 and 1, got 1.0"):
        paired_tests([1.0, 2.0], [1.0, 2.0], confidence=1.0)
    with pytest.raises(DataError, match="infinite"):
        mean_ci([1.0, np.inf])
