"""The CPU scale benchmark's training phase (benchmarks/scale.py) on a small synthetic size."""

from __future__ import annotations

import sys
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
