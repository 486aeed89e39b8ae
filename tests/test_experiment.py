"""The benchmark end to end: results, reproducibility, JSON, what lands in MLflow, the config, and the tracker protocol."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recae import tracking
from recae.cli import build_parser, main
from recae.cli.options import config_from_args
from recae.data import Interactions
from recae.errors import UsageError
from recae.evaluation.protocols import strong_generalization
from recae.experiment.benchmark import BenchmarkConfig, run_benchmark
from recae.experiment.runs import check_measurable
from recae.experiment.tracker import NullRun, NullTracker
from recae.experiment.tuning import tune
from recae.models import REGISTRY
from recae.serving import Catalog
from recae.tracking import MlflowTracker
from tests.conftest import FAST_BENCHMARK_PARAMS, planted_blocks

FAST = {"mult-dae": {"epochs": 3, "hidden_dims": [64], "latent_dim": 16}, "ease": {"l2": 100.0}}


@pytest.fixture
def tracked(shared_datasets, mlflow_uri):
    config = BenchmarkConfig(
        dataset="ml-100k", models=("mult-dae", "ease", "popularity"), model_params=FAST,
        tracking_uri=mlflow_uri, progress=False,
    )
    return run_benchmark(config, MlflowTracker(mlflow_uri), echo=lambda _: None), mlflow_uri


def test_runs_are_nested_tagged_and_carry_curves_metrics_and_artifacts(tracked):
    result, uri = tracked
    client = tracking.client(uri)
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
    for key in ("test/recall_at_20", "test/ndcg_at_20", "test/ndcg_at_100", "test/ndcg_at_100_ci_low", "val_selected/ndcg_at_100", "fit_seconds", "fit_peak_rss_mb"):
        assert key in dae.data.metrics
    assert dae.data.metrics["test/ndcg_at_100"] == pytest.approx(result.models["mult-dae"].test_means()["ndcg_at_100"])
    artifacts = {a.path for a in client.list_artifacts(dae.info.run_id)}
    assert {"per_user_metrics.csv", "learning_curve.png", "topn_sample.csv", "config.json"} <= artifacts
    # MLflow 3 keeps logged models beside the run's artifacts, linked by the source run
    assert client.search_logged_models(
        [exp.experiment_id], filter_string=f"source_run_id = '{dae.info.run_id}' AND name = 'model'"
    )
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.md", "comparison.csv", "comparison.png", "results.json", "config.json"} <= parent_artifacts


def test_topn_sample_has_raw_ids_and_excludes_inputs(tracked, tmp_path):
    result, uri = tracked
    run_id = result.models["ease"].run_id
    path = tracking.client(uri).download_artifacts(run_id, "topn_sample.csv", str(tmp_path))
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
    a = run_benchmark(BenchmarkConfig(**config), NullTracker(), echo=lambda _: None)
    b = run_benchmark(BenchmarkConfig(**config), NullTracker(), echo=lambda _: None)
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
        assert out["models"][name]["fit_peak_rss_bytes"] > 10 * 2**20  # the interpreter and torch at least
    assert out["models"]["mult-vae"]["best_epoch"] in (1, 2)
    printed = capsys.readouterr().out
    assert "recall@20" in printed and "Holm" in printed and "peak GB" in printed


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ml-100k", "ml-latest-small"])
def test_every_model_reports_every_heldout_test_user(dataset, shared_datasets):
    """Strong generalization: no model silently drops the users it never trained on."""
    config = BenchmarkConfig(
        dataset=dataset, models=tuple(REGISTRY), model_params=FAST_BENCHMARK_PARAMS, track=False, progress=False
    )
    result = run_benchmark(config, NullTracker(), echo=lambda _: None)
    n_test = result.split_info["n_test_users"]
    assert n_test > 0
    for name, r in result.models.items():
        assert r.test.n_users == n_test and r.test.n_skipped == 0, name
        assert np.isfinite(r.test.per_user["ndcg_at_100"]).all(), name


# ------------------------------------------------------------ the config


def test_config_is_frozen_and_create_puts_options_in_canonical_form():
    config = BenchmarkConfig.create(models=["ease", "popularity"], ks=[50, 20, 20], max_memory=1e9)
    assert config.models == ("ease", "popularity") and config.ks == (20, 50, 100)
    assert config.model_params == {"ease": {"max_memory": 1e9}}  # only models that take it
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ks = (20,)  # type: ignore[misc]
    explicit = BenchmarkConfig.create(models=("ease",), model_params={"ease": {"max_memory": 5.0}}, max_memory=1e9)
    assert explicit.model_params == {"ease": {"max_memory": 5.0}}  # the model's own value wins
    on_cpu = BenchmarkConfig.create(models=("mult-vae", "ease", "recvae"), device="cpu",
                                    model_params={"recvae": {"device": "auto"}})
    assert on_cpu.model_params == {"mult-vae": {"device": "cpu"}, "recvae": {"device": "auto"}}
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="device='cuda' was asked for, but CUDA is not available here"):
            BenchmarkConfig.create(models=("mult-vae",), device="cuda")
    assert list(BenchmarkConfig().to_dict()) == [
        "dataset", "models", "model_params", "min_rating", "min_user_items", "min_item_users", "heldout_users", "protocol", "time_cut", "last_k",
        "test_prop", "val_prop", "refit", "seed", "ks", "metrics", "topn_sample_users", "columns", "max_memory", "device", "data_dir",
        "tracking_uri", "track", "progress", "tuned", "register", "config_file", "config_file_sha256",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ks": (20,)}, "BenchmarkConfig.ks is (20,), expected (20, 100)"),
        ({"models": ["ease"]}, "BenchmarkConfig.models"),
        ({"models": ("ease",), "max_memory": 1e9}, "BenchmarkConfig.model_params"),
        ({"models": ("mult-gan",)}, "unknown model 'mult-gan'"),
        ({"model_params": {"ease": {"bogus": 1}}}, "no parameter 'bogus'"),
        ({"register": "x", "track": False}, "registering a model needs tracking"),
    ],
)
def test_config_constructor_validates_and_never_rewrites(fields, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        BenchmarkConfig(**fields)


# ------------------------------------------------------------ the tracker protocol


class RecordingRun(NullRun):
    """A no-op run that remembers what was logged into it (and its nested runs)."""

    def __init__(self, name: str, tags: dict):
        self.name, self.tags = name, dict(tags)
        self.children: list[RecordingRun] = []
        self.params: dict = {}
        self.metrics: set[str] = set()
        self.artifacts: dict[str, object] = {}
        self.models: list[tuple[str, Catalog]] = []

    @contextlib.contextmanager
    def nested(self, name, tags, run_id=None):
        child = RecordingRun(name, tags)
        self.children.append(child)
        yield child

    def log_params(self, params, prefix=""):
        self.params.update({f"{prefix}{k}": v for k, v in params.items()})

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)

    def log_text(self, text, path):
        self.artifacts[path] = text

    def _keep(self, obj, path):
        self.artifacts[path] = obj

    log_dict = log_figure = log_frame = _keep

    def log_model(self, model, catalog, name="model"):
        self.models.append((name, catalog))
        return None


class RecordingTracker(NullTracker):
    def __init__(self):
        self.runs: list[tuple[str, RecordingRun]] = []

    @contextlib.contextmanager
    def run(self, experiment, name, tags, run_id=None):
        run = RecordingRun(name, tags)
        self.runs.append((experiment, run))
        yield run


def test_null_tracker_takes_every_call_and_stores_nothing():
    tracker = NullTracker()
    with tracker.run("e", "r", tags={"a": 1}) as run, run.nested("child", tags={}) as child:
        for r in (run, child):
            r.log_params({"a": 1}, prefix="x.")
            r.log_metrics({"m": 1.0}, step=1)
            r.set_tags({"t": "v"})
            r.log_text("text", "a.txt")
            r.log_dict({"a": 1}, "a.json")
            r.log_figure(None, "a.png")
            r.log_frame(pd.DataFrame(), "a.csv")
            assert r.log_model(None, None) is None and r.run_id is None
    assert tracker.find_tuning_run("ease", "ml-100k", "given", "fp") is None
    with pytest.raises(UsageError, match="registering a model needs tracking"):
        tracker.register_model("run", "name")


def test_the_protocol_carries_a_whole_benchmark(shared_datasets):
    """Everything a tracked benchmark logs goes through the tracker protocol: runs, params,
    metrics, tables, figures (savable without pyplot) and the model with its catalogue."""
    tracker = RecordingTracker()
    config = BenchmarkConfig(
        dataset="ml-100k", models=("mult-dae", "popularity"), model_params={"mult-dae": FAST["mult-dae"]}, progress=False
    )
    result = run_benchmark(config, tracker, echo=lambda _: None)
    [(experiment, parent)] = tracker.runs
    assert experiment == "ml-100k/strong-generalization" and parent.tags["recae.kind"] == "benchmark"
    assert [c.name for c in parent.children] == ["mult-dae", "popularity"]
    assert {"comparison.csv", "comparison.md", "comparison.png", "summary.csv", "results.json", "config.json"} == set(
        parent.artifacts
    )
    dae = parent.children[0]
    assert dae.tags == {**parent.tags, "model": "mult-dae", "recae.kind": "model"}
    assert {"val/ndcg_at_100", "train/loss", "test/ndcg_at_100", "val_selected/ndcg_at_100", "best_epoch"} <= dae.metrics
    assert dae.params["epochs"] == 3 and dae.params["split.protocol"] == "strong-generalization"
    assert set(dae.artifacts) == {"per_user_metrics.csv", "topn_sample.csv", "config.json", "learning_curve.png"}
    dae.artifacts["learning_curve.png"].savefig(io.BytesIO(), format="png")
    [(name, catalog)] = dae.models
    assert name == "model" and catalog.n_items == result.split_info["n_items"]
    assert result.parent_run_id is None and result.models["mult-dae"].run_id is None


NO_TRACKING_LIBRARIES = """
import sys
from recae.experiment.benchmark import BenchmarkConfig, run_benchmark
from recae.errors import UsageError
from recae.experiment.tracker import NullRun, NullTracker

config = BenchmarkConfig(
    dataset=sys.argv[1], models=("mult-dae", "ease", "popularity"), heldout_users=5, progress=False,
    model_params={"mult-dae": {"epochs": 1, "hidden_dims": [8], "latent_dim": 4}},
)
result = run_benchmark(config, NullTracker(), echo=lambda _: None)
assert set(result.models) == {"mult-dae", "ease", "popularity"}
print(sorted({m.split(".")[0] for m in sys.modules} & {"mlflow", "optuna"}))
"""


@pytest.mark.slow
def test_a_tracked_benchmark_through_the_null_tracker_imports_neither_mlflow_nor_optuna(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["user,item,rating"] + [f"{u},{i},5" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", NO_TRACKING_LIBRARIES, str(tmp_path / "r.csv")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------- the rating threshold


def _rated_table(path: Path) -> Path:
    """60 users × 12 items rated 3 to 5 in a column named ``stars`` (found by --rating-col)."""
    rng = np.random.default_rng(0)
    rows = ["user,item,stars"] + [
        f"{u},{i},{rng.integers(3, 6)}" for u in range(60) for i in rng.choice(20, size=12, replace=False)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


THRESHOLD_LINE = "keeping ratings > 3.5 from column 'stars' (the default --min-rating; 'none' keeps all)"


@pytest.mark.parametrize("command", ["benchmark", "tune"])
@pytest.mark.parametrize("threshold", [[], ["--min-rating", "3.5"], ["--min-rating", "none"]])
def test_the_default_rating_threshold_is_named_when_the_user_chose_none(command, threshold, tmp_path):
    """benchmark and tune both say which threshold they apply to a file with ratings,
    unless --min-rating was given; the config knows which, and config.json is unchanged."""
    table = _rated_table(tmp_path / "r.csv")
    head = ["benchmark", "--models", "popularity"] if command == "benchmark" else ["tune", "--model", "ease"]
    args = build_parser().parse_args([*head, "--dataset", str(table), "--rating-col", "stars", "--no-progress", *threshold])
    config = config_from_args(args, models=("popularity",) if command == "benchmark" else ("ease",), track=False)
    lines: list[str] = []
    if command == "benchmark":
        run_benchmark(config, NullTracker(), echo=lines.append)
    else:
        tune(config, "ease", n_trials=1, tracker=NullTracker(), echo=lines.append)
    assert [line for line in lines if "keeping ratings" in line] == (
        [f"{table}: {THRESHOLD_LINE}"] if not threshold else []
    )
    assert config.default_min_rating == (not threshold)
    assert "min_rating_given" not in config.to_dict()


def test_the_threshold_line_is_printed_before_the_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _rated_table(tmp_path / "r.csv")
    args = ["benchmark", "--dataset", "r.csv", "--rating-col", "stars", "--models", "popularity"]
    assert main([*args, "--heldout-users", "5", "--no-tracking", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"r.csv: {THRESHOLD_LINE}" and "split" in out[1]


def test_a_split_without_validation_targets_is_refused_only_where_validation_selects():
    X, _ = planted_blocks(n_users=60, n_items=20, n_blocks=2, density=0.5, seed=0)
    split = strong_generalization(Interactions(X, np.arange(60), np.arange(20)), heldout_users=5)
    no_val = dataclasses.replace(split, val_out=sp.csr_matrix(split.val_out.shape, dtype=np.float32))
    check_measurable(no_val, "planted", validation=False)  # a benchmark of EASE still measures test
    with pytest.raises(UsageError, match="planted: no validation user has held-out items"):
        check_measurable(no_val, "planted", validation=True)
