"""The GPU benchmark's measurements (benchmarks/gpu.py), run on the CPU where their logic is
shared, so that ``make bench BENCH_ARGS="--only gpu"`` works when a GPU machine runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from recae.data.synthetic import power_law_interactions
from recae.evaluation.protocols import strong_generalization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu  # noqa: E402


@pytest.fixture(scope="module")
def split():
    inter = power_law_interactions(n_users=300, n_items=200, mean_items_per_user=10.0, seed=0)
    return strong_generalization(inter, heldout_users=30, seed=0)


@pytest.mark.parametrize("amp", [False, True])
def test_a_training_case_reports_users_per_second_against_its_floor(split, amp):
    row = gpu.train_case(split.train, "mult-dae", batch=100, amp=amp, device="cpu")
    assert (row["users"], row["items"]) == split.train.shape
    assert row["epoch_s"] > 0 and row["floor_s"] > 0
    assert row["epoch_ratio"] == pytest.approx(row["epoch_s"] / row["floor_s"])
    assert row["train_users_per_s"] == pytest.approx(row["users"] / row["epoch_s"])


def test_a_scoring_case_ranks_every_user_and_the_held_out_ones(split, monkeypatch):
    monkeypatch.setattr(gpu, "EVAL_BATCH", 64)
    row = gpu.score_case(split.train, split.test_in, split.test_out, "cpu")
    assert row["scored_users"] == split.train.shape[0] and row["evaluate_users"] == split.test_in.shape[0]
    assert row["score_ratio"] == pytest.approx(row["score_s"] / row["score_floor_s"])


def test_the_floor_is_a_timed_product_of_the_named_shape():
    assert 0 < gpu.matmul_seconds(64, 32, 128, torch.float32, "cpu", repeat=3) < 1


@pytest.mark.parametrize(("model", "amp"), list(gpu.OTHERS))
def test_the_other_autoencoders_report_an_epoch_at_their_defaults(split, model, amp):
    row = gpu.other_case(split.train, model, amp=amp, device="cpu")
    assert row["model"] == model and row["epoch_s"] > 0
    assert row["train_users_per_s"] == pytest.approx(split.train.shape[0] / row["epoch_s"])
