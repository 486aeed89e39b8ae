"""``--config FILE``: model parameters from a TOML file, checked before any work, with
``--param`` > ``--config`` > ``--tuned`` > defaults, and the file recorded with the run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from recae import tracking
from recae.cli import build_parser, main
from recae.cli.options import config_from_args
from recae.errors import UsageError
from recae.experiment.config import BenchmarkConfig
from recae.experiment.config_file import merge_params, read_config_file
from recae.experiment.tracker import NullTracker, TunedParams
from recae.experiment.tuned import with_tuned_params
from recae.models import REGISTRY, make_model

COMMITTED = Path(__file__).resolve().parents[1] / "configs" / "ml-1m-lcfn.toml"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------ the committed file


def test_the_committed_file_checks_against_the_registry():
    """A renamed or removed parameter, or a tighter range, breaks this test, not a benchmark."""
    file = read_config_file(COMMITTED)
    missing = [name for name in REGISTRY if name not in file.model_params]
    assert not missing, f"add a table for {missing} to {COMMITTED.name} (its tuned values, or empty: defaults)"
    for name, params in file.model_params.items():
        make_model(name, **params)._validate_params()
    assert file.model_params["ease"] == {"l2": 919.0}
    assert file.model_params["item-knn"] == {"weighting": "bm25", "neighbors": 86}
    config = BenchmarkConfig.create(models=tuple(REGISTRY), config_file=str(COMMITTED))
    assert config.config_file_sha256 == hashlib.sha256(COMMITTED.read_bytes()).hexdigest()


def test_a_model_left_untuned_is_marked_in_the_file():
    """Every table without values says why: defaults, not yet tuned (or nothing to set)."""
    text = COMMITTED.read_text()
    for name, params in read_config_file(COMMITTED).model_params.items():
        if not params and name != "popularity":
            comment = text[: text.index(f"[{name}]")].rsplit("\n\n", 1)[-1]
            assert "# defaults: not yet tuned" in comment, name


# ------------------------------------------------------------ refusals


BAD_FILES = [
    # (file content, fragment of the message after "FILE: ")
    ("[ease]\nlambda = 3.0\n", "table [ease]: unknown parameter 'lambda'; ease takes: l2, max_memory"),
    ("[popularity]\nk = 3\n", "table [popularity]: unknown parameter 'k'; popularity takes no parameters"),
    ("[mult-gan]\nepochs = 3\n", "table [mult-gan]: unknown model; known models: mult-vae, "),
    ("[ease]\nl2 = -1\n", "table [ease]: l2 must be a finite number > 0, got -1"),
    ("[ease]\nl2 = \"big\"\n", "table [ease]: l2 must be a finite number > 0, got 'big'"),
    ("[mult-vae]\nepochs = 1.5\n", "table [mult-vae]: epochs must be an integer ≥ 1, got 1.5"),
    ("[mult-vae]\nhidden_dims = [600, 0]\n", "table [mult-vae]: hidden_dims must be a list whose items are each an integer ≥ 1"),
    ("[ease]\nl2 500\n", "not valid TOML: Expected '=' after a key in a key/value pair (at line 2, column 4)"),
    ("[ease]\nl2 = 1.0\n[ease]\n", "not valid TOML: Cannot declare ('ease',) twice (at line 3"),
    ("l2 = 500.0\n", "key 'l2' lies outside any table; a parameter goes under its model's table, e.g. [ease]"),
    ("[[als]]\nfactors = 8\n", "[[als]] is an array of tables; a model takes one table, [als]"),
]


def _refused(args: list[str], tmp_path: Path, capsys) -> str:
    """Run ``recae args`` in ``tmp_path``: exit 2, one line on stderr, nothing printed or written."""
    before = sorted(tmp_path.iterdir())
    assert main([*args, "--data-dir", str(tmp_path / "cache"), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("recae: error: ") and err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == before  # no cache, no mlflow.db
    return err


@pytest.mark.parametrize("command", [["benchmark", "--no-tracking", "--models", "popularity"], ["tune", "--model", "ease"]])
@pytest.mark.parametrize(("text", "fragment"), BAD_FILES, ids=[f for _, f in BAD_FILES])
def test_a_bad_file_is_one_line_naming_file_table_and_key_exit_2(command, text, fragment, tmp_path, monkeypatch, capsys):
    """Every table is checked, also those of models the run does not train."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "bad.toml", text)
    err = _refused([*command, "--config", "bad.toml"], tmp_path, capsys)
    assert f"recae: error: bad.toml: {fragment}" in err


@pytest.mark.parametrize(("name", "message"), [("missing.toml", "missing.toml: no such config file"), (".", ".: is a folder, not a config file")])
def test_a_missing_file_or_a_folder_is_one_line_exit_2(name, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _refused(["benchmark", "--no-tracking", "--config", name], tmp_path, capsys) == f"recae: error: {message}\n"


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "latin.toml").write_bytes(b"# caf\xe9\n[ease]\n")
    with pytest.raises(UsageError, match=r"latin.toml: not UTF-8 text \(byte 6\)"):
        read_config_file(tmp_path / "latin.toml")


# ------------------------------------------------------------ precedence


class OneSearch(NullTracker):
    """A tracker whose store holds one finished search per model in ``found``."""

    def __init__(self, found: dict[str, dict]):
        self.found = found

    def find_tuning_run(self, model, dataset, protocol, fingerprint=None):
        if model not in self.found:
            return None
        return TunedParams(model, dict(self.found[model]), "run", fingerprint or "fp", same_split=True)


def test_param_wins_over_config_which_wins_over_tuned_which_wins_over_defaults(tmp_path):
    path = _write(tmp_path / "p.toml", '[item-knn]\nneighbors = 86\nweighting = "cosine"\n[ease]\nl2 = 919.0\n')
    args = build_parser().parse_args(
        ["benchmark", "--models", "item-knn,ease,als", "--config", str(path), "--param", "item-knn.neighbors=5", "--tuned"]
    )
    config = config_from_args(args, models=tuple(args.models), track=False, tuned=True)
    assert config.model_params == {"item-knn": {"neighbors": 5, "weighting": "cosine"}, "ease": {"l2": 919.0}}
    tracker = OneSearch(
        {"item-knn": {"neighbors": 50, "weighting": "tfidf", "bm25_k1": 2.0}, "ease": {"l2": 10.0}, "als": {"factors": 8}}
    )
    tuned = with_tuned_params(config, tracker, "given", "fp", echo=lambda _: None)
    assert tuned.model_params == {
        "item-knn": {"neighbors": 5, "weighting": "cosine", "bm25_k1": 2.0},  # --param, --config, --tuned
        "ease": {"l2": 919.0},  # --config over --tuned
        "als": {"factors": 8},  # --tuned over the defaults
    }
    assert make_model("item-knn", **tuned.params_for("item-knn")).bm25_b == 0.75  # the default


def test_merge_params_is_per_parameter_and_the_later_layer_wins():
    assert merge_params({"ease": {"l2": 1.0, "max_memory": 5.0}}, {"ease": {"l2": 2.0}, "als": {}}) == {
        "ease": {"l2": 2.0, "max_memory": 5.0},
        "als": {},
    }


def test_only_the_tables_of_the_models_run_enter_the_config(tmp_path):
    """The file may hold every model; ``tune`` fixes only the tuned model's table."""
    path = _write(tmp_path / "all.toml", "[ease]\nl2 = 919.0\n[als]\nfactors = 8\n[popularity]\n")
    config = BenchmarkConfig.create(models=("popularity", "als"), config_file=str(path), max_memory=1e9)
    assert config.model_params == {"als": {"factors": 8}, "popularity": {}}
    args = build_parser().parse_args(["tune", "--model", "ease", "--config", str(path)])
    assert config_from_args(args, models=(args.model,)).model_params == {"ease": {"l2": 919.0}}


def test_a_file_fixing_every_searched_parameter_leaves_nothing_to_tune(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "fixed.toml", "[ease]\nl2 = 919.0\n")
    err = _refused(["tune", "--model", "ease", "--config", "fixed.toml"], tmp_path, capsys)
    assert "every parameter model 'ease' searches is fixed by --param or --config (l2)" in err


# ------------------------------------------------------------ traceability


def test_the_config_records_the_file_and_its_hash(tmp_path):
    path = _write(tmp_path / "c.toml", "[ease]\nl2 = 919.0\n")
    config = BenchmarkConfig.create(models=("ease",), config_file=str(path))
    recorded = config.to_dict()
    assert recorded["config_file"] == str(path)
    assert recorded["config_file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded["model_params"] == {"ease": {"l2": 919.0}}
    assert BenchmarkConfig.create(models=("ease",)).to_dict()["config_file"] is None
    with pytest.raises(UsageError, match="config_file and config_file_sha256 go together"):
        BenchmarkConfig(models=("ease",), config_file=str(path))


def test_a_tracked_benchmark_logs_the_file_as_flat_params(tmp_path, mlflow_uri, capsys):
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    _write(tmp_path / "r.csv", "\n".join(rows) + "\n")
    _write(tmp_path / "c.toml", "[ease]\nl2 = 7.0\n[als]\nfactors = 8\n")
    args = ["benchmark", "--dataset", "r.csv", "--models", "ease,popularity", "--heldout-users", "5", "--no-progress"]
    assert main([*args, "--config", "c.toml", "--param", "ease.max_memory=1e9", "--json", "out.json"]) == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256((tmp_path / "c.toml").read_bytes()).hexdigest()
    assert f"model parameters from c.toml (sha256 {sha[:12]})" in out
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["models"]["ease"]["params"] == {"l2": 7.0, "max_memory": 1e9, "dtype": "float32"}
    client = tracking.client(mlflow_uri)
    parent = client.get_run(results["models"]["ease"]["mlflow_run_id"]).data.tags["mlflow.parentRunId"]
    params = client.get_run(parent).data.params
    assert params["config_file"] == "c.toml" and params["config_file_sha256"] == sha
    config = json.loads(Path(client.download_artifacts(parent, "config.json", str(tmp_path))).read_text())
    assert config["config_file"] == "c.toml" and config["model_params"]["ease"] == {"l2": 7.0, "max_memory": 1e9}
