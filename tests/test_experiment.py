"""The benchmark end to end: results, reproducibility, JSON, and what lands in MLflow."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest

from recae.cli import main
from recae.experiment.benchmark import BenchmarkConfig, run_benchmark
from tests.conftest import FAST_BENCHMARK_PARAMS

FAST = {"mult-dae": {"epochs": 3, "hidden_dims": [64], "latent_dim": 16}, "ease": {"l2": 100.0}}


@pytest.fixture
def tracked(shared_datasets, mlflow_uri):
    config = BenchmarkConfig(
        dataset="ml-100k", models=("mult-dae", "ease", "popularity"), model_params=FAST,
        tracking_uri=mlflow_uri, progress=False,
    )
    return run_benchmark(config, echo=lambda _: None), mlflow_uri


def test_runs_are_nested_tagged_and_carry_curves_metrics_and_artifacts(tracked):
    result, uri = tracked
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ml-100k/strong-generalization")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("recae.kind") == "benchmark")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["model"] for r in children) == ["ease", "mult-dae", "popularity"]
    for run in (parent, *children):
        assert run.data.tags["split_fingerprint"] == result.fingerprint
        assert run.info.status == "FINISHED"

    dae = next(r for r in children if r.data.tags["model"] == "mult-dae")
    assert dae.data.params["dropout"] == "0.5" and dae.data.params["epochs"] == "3"
    for key in ("val/ndcg_at_100", "train/loss", "epoch_seconds"):
        assert [m.step for m in client.get_metric_history(dae.info.run_id, key)] == [1, 2, 3]
    for key in ("test/recall_at_20", "test/ndcg_at_20", "test/ndcg_at_100", "test/ndcg_at_100_ci_low", "val_selected/ndcg_at_100", "fit_seconds"):
        assert key in dae.data.metrics
    assert dae.data.metrics["test/ndcg_at_100"] == pytest.approx(result.models["mult-dae"].test_means()["ndcg_at_100"])
    artifacts = {a.path for a in client.list_artifacts(dae.info.run_id)}
    assert {"per_user_metrics.csv", "learning_curve.png", "topn_sample.csv", "config.json"} <= artifacts
    # MLflow 3 keeps logged models beside the run's artifacts, linked by the source run
    assert mlflow.search_logged_models(
        filter_string=f"source_run_id = '{dae.info.run_id}' AND name = 'model'", output_format="list"
    )
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.md", "comparison.csv", "comparison.png", "results.json", "config.json"} <= parent_artifacts


def test_topn_sample_has_raw_ids_and_excludes_inputs(tracked):
    result, uri = tracked
    run_id = result.models["ease"].run_id
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="topn_sample.csv", tracking_uri=uri)
    import pandas as pd

    top = pd.read_csv(path)
    assert list(top.columns) == ["user_id", "rank", "item_id", "score"]
    assert top.groupby("user_id").size().eq(20).all()
    assert set(top["item_id"]) <= set(range(1, 1683))  # ml-100k's raw item ids


def test_every_test_user_is_reported_by_every_model(tracked):
    result, _ = tracked
    n = {name: r.test.n_users - r.test.n_skipped for name, r in result.models.items()}
    assert len(set(n.values())) == 1 and n["ease"] == result.split_info["n_test_users"]
    assert result.comparison is not None
    assert set(result.comparison["model"]) == {"mult-dae", "ease", "popularity"}


def test_same_seed_gives_identical_metrics(shared_datasets):
    config = dict(dataset="ml-100k", models=("mult-vae",), model_params={"mult-vae": {"epochs": 2, "hidden_dims": [32], "latent_dim": 8}}, track=False, progress=False)
    a = run_benchmark(BenchmarkConfig(**config), echo=lambda _: None)
    b = run_benchmark(BenchmarkConfig(**config), echo=lambda _: None)
    assert a.fingerprint == b.fingerprint
    assert a.models["mult-vae"].test_means() == b.models["mult-vae"].test_means()


def test_json_output_and_given_split_directory(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "split"
    folder.mkdir()
    train, test = [], []
    for u in range(60):
        items = rng.choice(30, size=12, replace=False)
        train.append(" ".join(map(str, [u, *items[:9]])))
        test.append(" ".join(map(str, [u, *items[9:]])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    monkeypatch.chdir(tmp_path)
    code = main(["benchmark", "--dataset", str(folder), "--models", "mult-vae,popularity", "--param", "mult-vae.epochs=2",
                 "--json", "out.json", "--no-progress", "--no-tracking"])
    assert code == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["dataset"] == "split" and out["protocol"] == "given"
    for name in ("mult-vae", "popularity"):
        test = out["models"][name]["test"]
        assert {"recall_at_20", "ndcg_at_20", "ndcg_at_100"} <= set(test)
        assert isinstance(out["models"][name]["fit_seconds"], float)
    assert out["models"]["mult-vae"]["best_epoch"] in (1, 2)
    printed = capsys.readouterr().out
    assert "recall@20" in printed and "Holm" in printed


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ml-100k", "ml-latest-small"])
def test_every_model_reports_every_heldout_test_user(dataset, shared_datasets):
    """Strong generalization: no model silently drops the users it never trained on."""
    from recae.models import REGISTRY

    config = BenchmarkConfig(
        dataset=dataset, models=tuple(REGISTRY), model_params=FAST_BENCHMARK_PARAMS, track=False, progress=False
    )
    result = run_benchmark(config, echo=lambda _: None)
    n_test = result.split_info["n_test_users"]
    assert n_test > 0
    for name, r in result.models.items():
        assert r.test.n_users == n_test and r.test.n_skipped == 0, name
        assert np.isfinite(r.test.per_user["ndcg_at_100"]).all(), name
