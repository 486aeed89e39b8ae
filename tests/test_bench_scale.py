"""The CPU scale benchmark's training phase (benchmarks/scale.py) on a small synthetic size."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scale  # noqa: E402

TINY = {"tiny": (300, 200, 10.0)}


def test_the_training_phase_reports_both_floors():
    row = scale.train_phase(scale.Case("tiny", hidden=32, latent=8, batch=50), TINY)
    assert row["epoch_ratio"] == pytest.approx(row["epoch_s"] / row["floor_s"])
    # every product of the network costs more than the output layer's alone
    assert row["all_products_floor_s"] > row["floor_s"] > 0
    assert row["epoch_ratio_all_products"] == pytest.approx(row["epoch_s"] / row["all_products_floor_s"])


def test_the_other_products_are_timed_on_a_batch_of_the_matrix():
    X, _, _ = scale.load_matrix("tiny", TINY)
    assert 0 < scale.other_products_seconds(X, scale.Case("tiny", hidden=32, latent=8, batch=50)) < 1


def test_the_amp_epoch_is_set_against_the_bfloat16_floor_and_the_float32_one():
    row = scale.train_phase(scale.Case("tiny", hidden=32, latent=8, batch=50, amp=True), TINY)
    assert row["epoch_ratio"] == pytest.approx(row["epoch_s"] / row["floor_s"])
    float32_floor = row["epoch_s"] / row["epoch_ratio_float32_floor"]
    assert float32_floor > 0 and float32_floor != pytest.approx(row["floor_s"], rel=1e-9)
    assert row["all_products_floor_s"] > row["floor_s"]


def test_a_row_of_the_table_carries_the_amp_epoch(monkeypatch):
    calls = []

    def fake_isolated(fn, case, sizes):  # noqa: ANN001, ANN202
        calls.append((fn.__name__, case.amp))
        return fn(replace(case, hidden=32, latent=8, batch=50, eval_batch=50), sizes)

    monkeypatch.setattr(scale, "isolated", fake_isolated)
    (row,) = scale.measure(["tiny"], TINY)
    assert calls == [("train_phase", False), ("score_phase", False), ("train_phase", True)]
    assert {f"amp_{key}" for key in scale.AMP_KEYS} <= row.keys()
    assert row["amp_epoch_s"] != row["epoch_s"]
