"""The ``recae`` command: bad input ends with one line, the right exit status and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recae.cli import COMMANDS, build_parser, main
from recae.cli.options import config_from_args, parse_model_params, tracker_for
from recae.errors import UsageError
from recae.experiment.tracker import NullTracker
from recae.tracking import MlflowTracker, ReadOnlyTracker


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ratings_csv(path: Path, n_users: int = 30, n_items: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating"]
    for u in range(n_users):
        for i in rng.choice(n_items, size=8, replace=False):
            lines.append(f"{u},{i},5")
    return _write(path, "\n".join(lines) + "\n")


BAD_INPUTS = {
    # name: (files to write relative to tmp_path, --dataset value, expected exit, message fragment)
    "missing file": ({}, "nope/u.data", 2, "nope/u.data"),
    "empty file": ({"u.data": ""}, "u.data", 1, "empty"),
    "misnamed column": ({"r.csv": "usr,item,rating\n1,2,5\n"}, "r.csv", 1, "user"),
    "non-numeric rating": ({"u.data": "1\t2\t5\t100\n1\t3\tfive\t101\n"}, "u.data", 1, "line 2"),
    "NaN rating": ({"u.data": "1\t2\t5\t100\n1\t3\tNaN\t101\n"}, "u.data", 1, "line 2"),
    "wrong delimiter": ({"u.data": "1,2,5,100\n1,3,4,101\n"}, "u.data", 1, "u.data"),
    "non-numeric id": ({"ratings.dat": "1::2::5::100\nx::3::4::101\n"}, "ratings.dat", 1, "line 2"),
    "train/test dir missing test.txt": ({"split/train.txt": "0 1 2\n1 2 3\n"}, "split", 1, "test.txt"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_with_exit_status_and_nothing_written(case, tmp_path, monkeypatch, capsys):
    files, dataset, status, fragment = BAD_INPUTS[case]
    for name, text in files.items():
        _write(tmp_path / name, text)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["benchmark", "--dataset", dataset, "--models", "popularity", "--json", "out.json", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == status
    assert err.startswith("recae: error:") and "\n" not in err and "Traceback" not in err
    assert fragment in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no mlflow.db, no out.json


def test_too_few_users_for_the_heldout_sets(tmp_path, monkeypatch, capsys):
    _ratings_csv(tmp_path / "small.csv", n_users=30)
    monkeypatch.chdir(tmp_path)
    code = main(["benchmark", "--dataset", "small.csv", "--heldout-users", "20", "--models", "popularity", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "30 users" in err and "20 validation and 20 test users" in err
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--models", "mult-gan"], "unknown model 'mult-gan'"),
        (["--dataset", "ml-5m"], "ml-5m"),
        (["--param", "ease.bogus=1"], "no parameter 'bogus'"),
        (["--param", "ease-l2-5"], "MODEL.NAME=VALUE"),
    ],
)
def test_usage_errors_exit_2(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "--models", "popularity", *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args, line",
    [
        (["similar", "--model", "m", "--item", "1", "--k", "1.5", "--out", "s.csv"],
         "recae similar: error: argument --k: invalid int value: '1.5'"),
        (["sample", "--model", "m", "--n", "abc", "--out", "s.csv"], "recae sample: error: argument --n: invalid int value: 'abc'"),
        (["benchmark", "--seed", "x", "--json", "s.json"], "recae benchmark: error: argument --seed: invalid int value: 'x'"),
        (["similar", "--item", "1"], "recae similar: error: the following arguments are required: --model"),
        (["bogus"], "recae: error: argument COMMAND: invalid choice: 'bogus'"),
    ],
)
def test_a_value_argparse_refuses_is_one_line_without_the_usage(args, line, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(line)
    assert list(tmp_path.iterdir()) == []


def test_the_installed_command_prints_help():
    out = subprocess.run([sys.executable, "-m", "recae.cli", "benchmark", "--help"], capture_output=True, text=True, check=True)
    assert "--dataset" in out.stdout and "--json" in out.stdout


@pytest.mark.parametrize(
    "argv, not_loaded",
    [(["--help"], ("torch", "mlflow", "pandas", "scipy")), (["fetch", "--help"], ("torch", "mlflow"))],
)
def test_a_command_imports_only_what_it_needs(argv, not_loaded):
    # in a fresh interpreter: this one has imported everything already
    code = (
        f"import sys; from recae.cli import main; rc = main({argv!r}); "
        f"print('rc', rc, *sorted(m for m in {not_loaded!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "rc 0"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_is_listed_and_has_its_options_when_named(command, capsys):
    assert main(["--help"]) == 0
    assert command in capsys.readouterr().out
    assert main([command, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # its own options, not the bare entry of a command that was not named (-h alone)
    assert any(line.lstrip().startswith("--") for line in lines)


def test_parse_model_params_types():
    assert parse_model_params(["mult-vae.epochs=50", "mult-vae.hidden_dims=[300]", "ease.l2=1e3", "mult-vae.patience=none"]) == {
        "mult-vae": {"epochs": 50, "hidden_dims": [300], "patience": None},
        "ease": {"l2": 1000.0},
    }
    with pytest.raises(UsageError):
        parse_model_params(["epochs=5"])


def test_a_memory_estimate_over_budget_is_refused_before_any_run(tmp_path, monkeypatch, capsys):
    _ratings_csv(tmp_path / "r.csv", n_users=60)
    monkeypatch.chdir(tmp_path)
    code = main(["benchmark", "--dataset", "r.csv", "--models", "popularity,ease", "--max-memory", "1KB", "--heldout-users", "5", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "EASE on n_items=20 needs about" in err and "max_memory" in err
    assert not (tmp_path / "mlflow.db").exists()


def test_named_columns_of_a_generic_table(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    rows = ["uid;mid;stars"] + [f"{u};{i};5" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    _write(tmp_path / "r.csv", "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    args = ["benchmark", "--dataset", "r.csv", "--models", "popularity", "--heldout-users", "5", "--no-progress", "--no-tracking"]
    assert main([*args, "--user-col", "uid", "--item-col", "mid", "--rating-col", "stars"]) == 0
    assert main(args) == 1
    assert "user" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "tracker"),
    [([], MlflowTracker), (["--no-tracking"], NullTracker), (["--no-tracking", "--tuned"], ReadOnlyTracker)],
)
def test_the_tracker_the_command_builds(options, tracker):
    """Tracking on: MLflow; off: nothing stored, but ``--tuned`` still reads the store's searches."""
    args = build_parser().parse_args(["benchmark", "--models", "popularity", *options])
    assert type(tracker_for(config_from_args(args, models=tuple(args.models), track=args.track, tuned=args.tuned))) is tracker


def _short_histories_csv(path: Path) -> Path:
    """60 users with 3 items each: too few for any held-out user to be split."""
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(60) for i in rng.choice(20, size=3, replace=False)]
    return _write(path, "\n".join(rows) + "\n")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["benchmark", "--models", ""], "no model to run"),
        (["benchmark", "--models", " , "], "no model to run"),
        (["benchmark", "--dataset", "short.csv", "--min-user-items", "1", "--models", "popularity,ease"], "no test user"),
        (["tune", "--dataset", "short.csv", "--min-user-items", "1", "--model", "ease"], "no test user"),
    ],
)
def test_a_run_that_would_measure_nothing_is_refused_before_any_training(args, fragment, tmp_path, monkeypatch, capsys):
    """No held-out user, or no model: one line and exit 2, not a table of NaN or an empty frame."""
    _short_histories_csv(tmp_path / "short.csv")
    monkeypatch.chdir(tmp_path)
    tracking = ["--no-tracking"] if args[0] == "benchmark" else ["--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    assert main([*args, *tracking, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert fragment in err and err.count("\n") == 1
    assert "Test metrics" not in out and "Best of" not in out
