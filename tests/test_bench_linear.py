"""The linear autoencoder's benchmark phase (benchmarks/bench.py) on the quick synthetic size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402


@pytest.mark.parametrize("amp", [False, True])
def test_an_elsa_epoch_is_set_against_the_floor_of_its_three_products(amp):
    row = bench.linear_epoch_phase("quick-synthetic", amp=amp)
    assert row["amp"] is amp
    assert row["factors"] == bench._committed_params("elsa")["factors"]
    assert row["epoch_ratio"] == pytest.approx(row["epoch_s"] / row["floor_s"])
    assert row["fit_floor_s"] == pytest.approx(row["floor_s"] * row["epochs"])
    assert row["epoch_s"] > 0 and row["floor_s"] > 0
