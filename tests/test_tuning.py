"""``recae tune``: search on validation only, trials as nested MLflow runs, best parameters read back."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from threadpoolctl import threadpool_limits

from recae import cli, tracking
from recae.errors import ModelFitError, UsageError
from recae.evaluation.protocols import GIVEN, STRONG
from recae.experiment import runs, tuning
from recae.experiment.benchmark import BenchmarkConfig, prepare_split, run_benchmark
from recae.experiment.search_space import start_point
from recae.experiment.tracker import NullTracker
from recae.experiment.tuned import best_params, with_tuned_params
from recae.models import get_model_class
from recae.tracking import MlflowTracker, ReadOnlyTracker
from recae.tracking.registry import parse_param
from tests.conftest import planted_blocks

EASE = get_model_class("ease")


def _config(shared_datasets: Path, **kwargs) -> BenchmarkConfig:
    base = dict(dataset="ml-100k", data_dir=str(shared_datasets), progress=False)
    return BenchmarkConfig(**{**base, **kwargs})


def _quiet(_: str) -> None:
    pass


def _same(a, b) -> bool:
    return a.shape == b.shape and (a != b).nnz == 0


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """EASE's inverse is ~10x slower with two BLAS threads on a busy 2-core machine (oversubscription)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def given_dir(tmp_path: Path) -> Path:
    """A small given split (train.txt / test.txt adjacency lists) from planted blocks."""
    X, _ = planted_blocks(n_users=150, n_items=60, n_blocks=3, density=0.5, seed=3)
    rng = np.random.default_rng(0)
    folder = tmp_path / "planted-given"
    folder.mkdir()
    train, test = [], []
    for u in range(X.shape[0]):
        items = rng.permutation(X.indices[X.indptr[u] : X.indptr[u + 1]])
        n_test = max(1, len(items) // 5)
        test.append(f"{u} " + " ".join(map(str, items[:n_test])))
        train.append(f"{u} " + " ".join(map(str, items[n_test:])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    return folder


# ------------------------------------------------------------ tracking


def test_tune_tracks_trials_and_best_params_then_benchmark_uses_them(shared_datasets, mlflow_uri):
    config = _config(shared_datasets, tracking_uri=mlflow_uri)
    tracker = MlflowTracker(mlflow_uri)
    result = tuning.tune(config, "ease", n_trials=3, sampler_seed=0, tracker=tracker, echo=_quiet)

    assert [t.state for t in result.trials] == ["COMPLETE"] * 3
    values = [t.value for t in result.trials]
    assert result.best_trial.value == max(values)
    assert result.best_params == result.best_trial.params and set(result.best_params) == {"l2"}

    client = tracking.client(mlflow_uri)
    exp = client.get_experiment_by_name(f"ml-100k/{STRONG}")
    parent = client.get_run(result.parent_run_id)
    tags = parent.data.tags
    assert tags["recae.kind"] == "tune" and tags["model"] == "ease"
    assert tags["dataset"] == "ml-100k" and tags["protocol"] == STRONG
    assert tags["split_fingerprint"] == result.fingerprint
    assert parent.info.status == "FINISHED"
    assert float(parent.data.params["best.l2"]) == result.best_params["l2"]
    metrics = parent.data.metrics
    assert metrics["test/recall_at_20"] == pytest.approx(result.final.test_means()["recall_at_20"])
    assert metrics["test/ndcg_at_20"] > 0 and metrics["best_trial"] == result.best_trial.number
    assert metrics["val_selected/ndcg_at_100"] == pytest.approx(result.best_trial.value)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_params.json", "trials.csv"} <= artifacts
    saved = json.loads(Path(client.download_artifacts(parent.info.run_id, "best_params.json")).read_text())
    assert saved["params"] == result.best_params

    children = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
    )
    assert len(children) == 3
    for run in children:
        t = run.data.tags
        assert t["recae.kind"] == "tune-trial" and t["trial_state"] == "COMPLETE"
        assert t["model"] == "ease" and t["split_fingerprint"] == result.fingerprint
        trial = result.trials[int(t["trial_number"])]
        assert run.info.run_id == trial.run_id
        assert float(run.data.params["l2"]) == trial.params["l2"]
        assert run.data.metrics["val_selected/ndcg_at_100"] == pytest.approx(trial.value)
        assert run.data.metrics["fit_seconds"] > 0
        assert "test/ndcg_at_100" not in run.data.metrics  # trials never see test

    # read back with their types, and used by `benchmark --tuned`; popularity has nothing to tune
    assert best_params(tracker, "ease", "ml-100k", STRONG, result.fingerprint) == result.best_params
    # --tuned --no-tracking: nothing is written, the store's searches are still read
    read_only = ReadOnlyTracker(mlflow_uri)
    assert best_params(read_only, "ease", "ml-100k", STRONG, result.fingerprint) == result.best_params
    bench = run_benchmark(
        _config(shared_datasets, models=("ease", "popularity"), tracking_uri=mlflow_uri, tuned=True),
        tracker,
        echo=_quiet,
    )
    assert bench.models["ease"].params["l2"] == result.best_params["l2"]
    assert bench.models["ease"].test_means()["ndcg_at_100"] == pytest.approx(
        result.final.test_means()["ndcg_at_100"]
    )


def test_with_tuned_params_explicit_params_win_and_untuned_models_warn(shared_datasets, mlflow_uri):
    config = _config(shared_datasets, tracking_uri=mlflow_uri)
    tracker = MlflowTracker(mlflow_uri)
    result = tuning.tune(config, "ease", n_trials=1, tracker=tracker, echo=_quiet)
    bench = _config(
        shared_datasets, models=("ease", "item-knn"), tracking_uri=mlflow_uri, tuned=True,
        model_params={"item-knn": {"neighbors": 7}},
    )
    with pytest.warns(UserWarning, match="item-knn: no finished tuning run"):
        tuned = with_tuned_params(bench, tracker, STRONG, result.fingerprint, echo=_quiet)
    assert tuned.model_params == {"ease": result.best_params, "item-knn": {"neighbors": 7}}

    explicit = _config(
        shared_datasets, models=("ease",), tracking_uri=mlflow_uri, model_params={"ease": {"l2": 3.0}}
    )
    assert with_tuned_params(explicit, tracker, STRONG, result.fingerprint, echo=_quiet).model_params == {
        "ease": {"l2": 3.0}
    }


def test_best_params_prefers_the_split_then_the_latest_and_parses_types(mlflow_uri):
    client = tracking.client(mlflow_uri)
    experiment_id = client.create_experiment(f"ml-100k/{STRONG}")
    base = {"recae.kind": "tune", "model": "mult-vae", "dataset": "ml-100k", "protocol": STRONG}

    def parent(fp: str, params: dict, status: str = "FINISHED", **tags) -> str:
        run_id = client.create_run(experiment_id, tags={**base, "split_fingerprint": fp, **tags}).info.run_id
        for key, value in params.items():
            client.log_param(run_id, f"best.{key}", value)
        client.set_terminated(run_id, status)
        time.sleep(0.01)  # distinct start times
        return run_id

    parent("aaa", {"hidden_dims": "[300]", "latent_dim": "200", "lr": "0.001", "patience": "None"})
    newer = parent("bbb", {"hidden_dims": "[600, 200]", "lr": "0.01", "anneal_cap": "1.0"})
    parent("aaa", {"lr": "0.5"}, status="FAILED")  # newest, but not finished
    parent("aaa", {"lr": "0.7"}, **{"recae.kind": "tune-trial"})  # a trial, not a search
    tracker = MlflowTracker(mlflow_uri)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = best_params(tracker, "mult-vae", "ml-100k", STRONG, "aaa")
    assert same == {"hidden_dims": [300], "latent_dim": 200, "lr": 0.001, "patience": None}
    assert isinstance(same["latent_dim"], int) and isinstance(same["lr"], float)

    with pytest.warns(UserWarning, match=f"no tuning run on split zzz; .* run {newer}, tuned on split bbb"):
        other = best_params(tracker, "mult-vae", "ml-100k", STRONG, "zzz")
    assert other == {"hidden_dims": [600, 200], "lr": 0.01, "anneal_cap": 1.0}
    assert isinstance(other["anneal_cap"], float)

    assert best_params(tracker, "ease", "ml-100k", STRONG, "aaa") is None
    assert best_params(tracker, "mult-vae", "ml-100k", GIVEN, "aaa") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("64", 64), ("1000.0", 1000.0), ("1e-05", 1e-05), ("[600]", [600]), ("None", None),
     ("True", True), ("bm25", "bm25"), ("auto", "auto"), ("inf", float("inf"))],
)
def test_parse_param_inverts_mlflow_text(text, value):
    assert parse_param(text) == value
    assert type(parse_param(text)) is type(value)


# ------------------------------------------------------------ selection


def test_trials_see_only_validation_targets_and_test_is_evaluated_once(shared_datasets, monkeypatch):
    config = _config(shared_datasets, track=False)
    split = prepare_split(config)
    seen: list[tuple[str, str]] = []

    def recorder(source: str, real):
        def wrapped(model, X_in, X_out, *args, **kwargs):
            which = "val" if _same(X_out, split.val_out) else "test" if _same(X_out, split.test_out) else "?"
            seen.append((source, which))
            return real(model, X_in, X_out, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(tuning, "evaluate", recorder("trial", tuning.evaluate))
    monkeypatch.setattr(runs, "evaluate", recorder("final", runs.evaluate))
    result = tuning.tune(config, "ease", n_trials=3, tracker=NullTracker(), echo=_quiet)

    assert seen[:3] == [("trial", "val")] * 3  # the objective: validation only
    assert seen[3:] == [("final", "val"), ("final", "test")]  # the refit, tested once
    assert result.parent_run_id is None


def test_given_split_iterative_model_pruned_and_failed_trials(given_dir, mlflow_uri, monkeypatch):
    """Under a given split the objective uses the validation holdout carved from the train rows;
    pruned and failed trials are recorded as such and the search goes on."""
    config = BenchmarkConfig(
        dataset=str(given_dir), tracking_uri=mlflow_uri, progress=False,
        model_params={"mult-dae": {"epochs": 4, "device": "cpu", "batch_size": 50, "latent_dim": 8, "hidden_dims": [16]}},
    )
    split = prepare_split(config)
    assert split.protocol == GIVEN
    targets: list[bool] = []
    real_evaluate = tuning.evaluate

    def evaluate(model, X_in, X_out, *args, **kwargs):
        targets.append(_same(X_out, split.val_out))
        return real_evaluate(model, X_in, X_out, *args, **kwargs)

    monkeypatch.setattr(tuning, "evaluate", evaluate)
    # trial 1 is pruned at its second epoch; trial 2's fit fails
    monkeypatch.setattr(
        optuna.trial.Trial, "should_prune",
        lambda self: self.number == 1 and max(self._cached_frozen_trial.intermediate_values) >= 2,
    )
    real_fit = tuning._fit_on_validation
    calls = []

    def fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ModelFitError("the training loss became nan")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(tuning, "_fit_on_validation", fit)
    with pytest.warns(UserWarning, match="trial 2 failed: the training loss became nan"):
        result = tuning.tune(config, "mult-dae", n_trials=4, tracker=MlflowTracker(mlflow_uri), echo=_quiet)

    assert [t.state for t in result.trials] == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    assert all(targets) and len(targets) == 2  # the two complete trials, validation only
    assert result.trials[1].best_epoch == 2
    best = result.best_trial
    assert best.best_epoch is not None and 1 <= best.best_epoch <= 4
    assert result.best_params["epochs"] == 4  # fixed, not searched
    assert result.final.params["epochs"] == best.best_epoch  # refit for the selected epochs

    client = tracking.client(mlflow_uri)
    runs = {r.data.tags["trial_number"]: r for r in client.search_runs(
        [client.get_experiment_by_name(f"{given_dir.name}/{GIVEN}").experiment_id],
        "tags.`recae.kind` = 'tune-trial'",
    )}
    assert {k: (r.info.status, r.data.tags["trial_state"]) for k, r in runs.items()} == {
        "0": ("FINISHED", "COMPLETE"), "1": ("FINISHED", "PRUNED"),
        "2": ("FAILED", "FAIL"), "3": ("FINISHED", "COMPLETE"),
    }
    assert "nan" in runs["2"].data.tags["error"]
    assert runs["0"].data.metrics["best_epoch"] >= 1
    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["n_trials_pruned"] == 1 and parent.data.metrics["n_trials_fail"] == 1
    assert json.loads(parent.data.params["best.hidden_dims"]) == best.params["hidden_dims"]


def test_same_sampler_seed_draws_the_same_trials(shared_datasets):
    config = _config(shared_datasets, track=False)

    def draws(seed: int) -> list[dict]:
        result = tuning.tune(config, "ease", n_trials=3, sampler_seed=seed, tracker=NullTracker(), echo=_quiet)
        return [t.params for t in result.trials]

    first = draws(7)
    assert draws(7) == first
    assert draws(8) != first


def test_a_search_started_at_a_point_evaluates_it_first_then_draws(shared_datasets):
    config = _config(shared_datasets, track=False)
    result = tuning.tune(config, "ease", n_trials=3, sampler_seed=7, tracker=NullTracker(), echo=_quiet,
                         start={"l2": 123.0})
    assert result.trials[0].params == {"l2": 123.0}
    assert len({t.params["l2"] for t in result.trials}) == 3  # the others are drawn
    defaults = tuning.tune(config, "ease", n_trials=1, tracker=NullTracker(), echo=_quiet, start={})
    assert defaults.trials[0].params == {"l2": EASE().l2}


def test_the_start_point_is_the_defaults_with_the_given_values_under_the_searched_names():
    vae = get_model_class("mult-vae")()
    assert start_point("mult-vae", {}) == {
        "latent_dim": vae.latent_dim, "hidden_dim": vae.hidden_dims[0], "dropout": vae.dropout,
        "anneal_cap": vae.anneal_cap, "lr": vae.lr, "likelihood": vae.likelihood,
    }
    # a value that opens a conditional parameter brings its default; a list parameter its one element
    point = start_point("mult-vae", {"likelihood": "gaussian", "hidden_dims": [1000]})
    assert point["likelihood"] == "gaussian" and point["confidence"] == vae.confidence
    assert point["hidden_dim"] == 1000
    # a fixed parameter is not drawn, so it is not in the point
    assert "dropout" not in start_point("mult-vae", {}, fixed={"dropout": 0.3})


def test_a_default_outside_the_searched_range_is_left_to_the_sampler(monkeypatch):
    space = lambda cls, trial: {"l2": trial.suggest_float("l2", 1e4, 1e5, log=True)}  # noqa: E731
    monkeypatch.setattr(EASE, "search_space", classmethod(space))
    assert EASE().l2 < 1e4 and start_point("ease", {}) == {}
    assert start_point("ease", {"l2": 2e4}) == {"l2": 2e4}


@pytest.mark.parametrize(
    ("start", "fixed", "message"),
    [
        ({"likelihood": "poisson"}, {}, "--start mult-vae.likelihood='poisson': outside the searched choices"),
        ({"lr": 5.0}, {}, "--start mult-vae.lr=5.0: outside the searched range [0.0001, 0.01]"),
        ({"confidence": 3.0}, {}, "--start mult-vae.confidence: not drawn by the search"),
        ({"epochs": 3}, {}, "--start mult-vae.epochs: not drawn by the search"),
        ({"dropout": 0.3}, {"dropout": 0.5}, "--start mult-vae.dropout: not drawn by the search"),
    ],
)
def test_a_start_the_search_cannot_draw_is_refused(start, fixed, message):
    with pytest.raises(UsageError) as e:
        start_point("mult-vae", start, fixed)
    assert str(e.value).startswith(message)


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "popularity"], "'popularity' declares no search space"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "ease", "--trials", "0"], "--trials must be at least 1, got 0"),
        (["--model", "ease", "--trials", "-2"], "--trials must be at least 1, got -2"),
        (["--model", "ease", "--timeout", "0"], "--timeout must be a positive"),
        (["--model", "ease", "--param", "ease.alpha=3"], "model 'ease' has no parameter 'alpha'"),
        (["--model", "ease", "--param", "als.factors=3"], "--param names model(s) als"),
        (["--model", "ease", "--param", "ease.l2=5"], "every parameter model 'ease' searches is fixed"),
        (["--model", "ease", "--start", "ease.l2=-5"], "--start ease.l2=-5: outside the searched range"),
        (["--model", "ease", "--start", "als.factors=3"], "--start names model(s) als"),
        (["--model", "ease", "--start", "l2=3"], "--start 'l2=3': expected MODEL.NAME=VALUE"),
    ],
)
def test_bad_input_ends_with_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["tune", *args, "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recae: error: ") and message in err[0]
    assert not (tmp_path / "m.db").exists()  # nothing was started


def test_an_empty_search_space_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(EASE, "search_space", classmethod(lambda cls, trial: {}))
    assert cli.main(["tune", "--model", "ease"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["recae: error: model 'ease' has an empty search space; there is nothing to tune"]


def test_python_api_rejects_bad_trial_counts(shared_datasets):
    for n in (0, -1, 2.5, True):
        with pytest.raises(UsageError, match="number of trials"):
            tuning.tune(_config(shared_datasets, track=False), "ease", n_trials=n, tracker=NullTracker())


def test_cli_tune_prints_the_best_trial_and_writes_json(shared_datasets, mlflow_uri, capsys):
    out = Path("best.json")
    code = cli.main([
        "tune", "--model", "ease", "--trials", "2", "--data-dir", str(shared_datasets),
        "--tracking-uri", mlflow_uri, "--no-progress", "--json", str(out), "--sampler-seed", "3",
        "--start", "ease.l2=321",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Best of 2 trials (2 complete, 0 pruned, 0 failed)" in printed and "l2" in printed
    assert "recall@20" in printed and "tuning run" in printed
    saved = json.loads(out.read_text())
    assert set(saved["best_params"]) == {"l2"} and saved["model"] == "ease"
    assert {"recall_at_20", "ndcg_at_20"} <= set(saved["test"]) and saved["val"]["ndcg_at_100"] > 0
    assert len(saved["trials"]) == 2 and saved["mlflow_run_id"]
    assert saved["trials"][0]["params"] == {"l2": 321.0}  # --start ran first
    assert saved["trials"][1]["params"] != {"l2": 321.0}
    assert not list(Path().glob(".best.json.tmp"))


@pytest.mark.slow
def test_two_workers_share_one_study_in_a_journal_file_and_run_every_trial_once(tmp_path, mlflow_uri):
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(200) for i in rng.choice(150, size=20, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    # Mult-DAE for 3 epochs: trials of about a second, so that both workers start before the study is full
    command = [sys.executable, "-m", "recae.cli", "tune", "--dataset", "r.csv", "--model", "mult-dae", "--trials", "12",
               "--param", "mult-dae.epochs=3", "--no-pruning",
               "--heldout-users", "20", "--tracking-uri", mlflow_uri, "--no-progress",
               "--storage", "journal:study.log", "--study", "s"]
    workers = [subprocess.Popen([*command, "--json", f"w{i}.json"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
    done = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2)]
    numbers = [[t["number"] for t in d["trials"]] for d in done]
    assert all(numbers), numbers  # both workers ran trials
    assert not set(numbers[0]) & set(numbers[1])  # no trial ran twice
    total = sorted(numbers[0] + numbers[1])
    assert total == list(range(len(total))) and 12 <= len(total) <= 13  # every trial once; one may start at the end
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log"))))
    assert len(study.trials) == len(total)
    assert done[0]["best_trial"] == done[1]["best_trial"] == study.best_trial.number  # each worker tests the study's best
    assert done[0]["best_params"] == done[1]["best_params"]


def test_a_storage_that_cannot_be_opened_is_named_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["tune", "--dataset", "no-such-file.csv", "--model", "ease",
                     "--storage", f"journal:{tmp_path}/missing/dir/study.log", "--study", "s"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "--storage journal:" in err and "cannot open the study 's'" in err
    assert cli.main(["tune", "--dataset", "x.csv", "--model", "ease", "--storage", "journal:s.log"]) == 2
    assert "--storage and --study go together" in capsys.readouterr().err


def _small_ratings(folder: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(200) for i in rng.choice(150, size=20, replace=False)]
    (folder / "r.csv").write_text("\n".join(rows) + "\n")


def _journal_study(path: Path, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path))))


def test_helper_processes_run_the_trials_of_the_shared_study(tmp_path, monkeypatch):
    """The helpers of --workers, alone: every trial of the study is theirs, each run once,
    on the split handed to them (the data file is gone before they start: none reads it)."""
    import os

    from recae.experiment import runs
    from recae.experiment.tuning.workers import SharedSearch, helpers

    monkeypatch.chdir(tmp_path)
    _small_ratings(tmp_path)
    config = BenchmarkConfig.create(dataset="r.csv", models=("ease",), heldout_users=20, track=False, progress=False)
    split = runs.prepare_split(config, lambda _: None)
    (tmp_path / "r.csv").unlink()
    search = SharedSearch(f"journal:{tmp_path}/study.log", "s", threads=1)
    tuning.open_study(search.storage, "s", 0, optuna.pruners.NopPruner())  # the study exists before they start
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a helper that fails warns: here that fails the test
        with helpers(2, config, split, "ease", 6, None, 0, True, search):
            pass  # this process runs no trial: the helpers fill the study
    study = _journal_study(tmp_path / "study.log")
    numbers = sorted(t.number for t in study.trials)
    assert numbers[:6] == list(range(6)) and len(numbers) <= 7  # each once; one more may start at the end
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert os.getpid() not in {t.user_attrs["worker_pid"] for t in study.trials}


def test_tune_with_two_workers_runs_every_trial_once_and_tests_the_studys_best(tmp_path, monkeypatch, mlflow_uri, capsys):
    monkeypatch.chdir(tmp_path)
    _small_ratings(tmp_path)
    code = cli.main(["tune", "--dataset", "r.csv", "--model", "ease", "--trials", "8", "--heldout-users", "20",
                     "--workers", "2", "--storage", "journal:study.log", "--study", "s",
                     "--tracking-uri", mlflow_uri, "--no-progress", "--json", "out.json"])
    assert code == 0
    study = _journal_study(tmp_path / "study.log")
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(len(numbers))) and 8 <= len(numbers) <= 9
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["best_trial"] == study.best_trial.number
    assert {t["number"] for t in saved["trials"]} <= set(numbers)  # this process's share of them
    # the summary counts the study's trials, and says how many ran here
    printed = capsys.readouterr().out
    assert f"Best of {len(numbers)} trials (" in printed
    assert f"of the {len(saved['trials'])} run by this process)" in printed


def test_tune_with_workers_reads_and_splits_the_data_once(tmp_path, monkeypatch, mlflow_uri):
    """The process that starts the helpers prepares the split for all of them and for itself."""
    from recae.experiment import runs

    monkeypatch.chdir(tmp_path)
    _small_ratings(tmp_path)
    calls = []
    prepare = runs.prepare_split
    monkeypatch.setattr(runs, "prepare_split", lambda *a, **k: calls.append(1) or prepare(*a, **k))
    code = cli.main(["tune", "--dataset", "r.csv", "--model", "ease", "--trials", "4", "--heldout-users", "20",
                     "--workers", "2", "--tracking-uri", mlflow_uri, "--no-progress"])
    assert code == 0
    assert len(calls) == 1


def test_workers_must_be_a_positive_count(capsys):
    assert cli.main(["tune", "--dataset", "x.csv", "--model", "ease", "--workers", "0"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
