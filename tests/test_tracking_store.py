"""The MLflow store is checked before any work, created once when two runs start together,
and a store that fails during a run costs the logging, never the training or the results."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recae import tracking
from recae.cli import main
from recae.errors import DataError, UsageError
from recae.tracking import store as store_module

ROOT = Path(__file__).resolve().parents[1]


def _ratings(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    path = folder / "r.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Answer(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.send_response(self.code)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server():
    """A server on 127.0.0.1 answering every GET with ``code``: ``start(code)`` → its URI."""
    servers = []

    def start(code: int) -> str:
        handler = type("Handler", (_Answer,), {"code": code})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(autouse=True)
def _own_retry_settings(monkeypatch):
    """open_store bounds MLflow's retries in os.environ; keep that inside each test."""
    for name in store_module.BOUNDED_HTTP_RETRIES:
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------ HTTP stores


def test_a_server_that_is_not_there_is_named_at_once():
    uri = f"http://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(DataError, match=rf"MLflow tracking server {uri}: cannot connect"):
        tracking.open_store(uri)
    assert time.perf_counter() - start < 3


def test_a_server_that_never_answers_is_given_up_after_the_timeout(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # the user's own setting is respected
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(DataError, match="no answer within 1 s"):
            tracking.open_store(uri)
        assert time.perf_counter() - start < 5


def test_a_server_that_answers_health_is_used_and_anything_else_is_named(http_server):
    assert tracking.open_store(http_server(200)).startswith("http://127.0.0.1:")
    assert tracking.open_store(http_server(401))  # it answers: credentials are MLflow's business
    with pytest.raises(DataError, match="answers HTTP 404 .* is it an MLflow tracking server"):
        tracking.open_store(http_server(404))


def test_mlflow_retries_are_bounded_unless_the_user_set_them(monkeypatch, http_server):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    tracking.open_store(http_server(200))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == store_module.BOUNDED_HTTP_RETRIES["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


def test_benchmark_against_an_unreachable_server_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    data = _ratings(tmp_path)
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{_free_port()}"
    args = ["benchmark", "--dataset", str(data), "--models", "popularity", "--tracking-uri", uri, "--no-progress"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"recae: error: MLflow tracking server {uri}: cannot connect") and err.count("\n") == 1
    assert "Test metrics" not in out


# ---------------------------------------------------------------- SQLite stores


def test_a_sqlite_store_in_a_missing_folder_is_refused_naming_the_folder(tmp_path):
    with pytest.raises(UsageError, match=r"folder .*nowhere does not exist"):
        tracking.open_store(f"sqlite:///{tmp_path}/nowhere/mlflow.db")
    assert not (tmp_path / "nowhere").exists()


def test_reading_a_model_from_a_store_that_does_not_exist_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["recommend", "--model", "runs:/0123abcd/model", "--out", "top.csv", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no MLflow store at mlflow.db" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_store_is_named(tmp_path):
    (tmp_path / "mlflow.db").write_text("not a database\n" * 100)
    with pytest.raises(DataError, match="MLflow cannot open this store"):
        tracking.open_store(f"sqlite:///{tmp_path}/mlflow.db")


OPEN_AND_LOG = """
import sys
from recae import tracking
uri = tracking.open_store(sys.argv[1])
with tracking.MlflowTracker(uri).run("race", sys.argv[2], {}) as run:
    run.log_metrics({"x": 1.0})
"""


@pytest.mark.slow
def test_two_runs_started_together_in_an_empty_folder_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_AND_LOG, uri, f"run-{i}"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    runs = tracking.search_runs("race", tracking_uri=uri)
    assert sorted(runs["tags.mlflow.runName"]) == ["run-0", "run-1"]


# -------------------------------------------------------- a store that goes away


def test_a_store_failing_mid_run_costs_the_logging_not_the_results(mlflow_uri, tmp_path, monkeypatch, capsys):
    """After the first model's run, every MLflow write fails (as when a server goes away):
    the benchmark trains and evaluates every model, writes the JSON, names the runs not
    logged and exits 1."""
    data = _ratings(tmp_path)
    calls = {"n": 0}
    real = tracking.tracker.mlflow.log_metrics

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ConnectionError("API request to http://tracking/api/2.0/mlflow/runs/log-batch failed: connection refused")
        return real(*args, **kwargs)

    monkeypatch.setattr("mlflow.log_metrics", failing)
    out_json = tmp_path / "results.json"
    args = ["benchmark", "--dataset", str(data), "--models", "popularity,ease", "--heldout-users", "10",
            "--tracking-uri", mlflow_uri, "--json", str(out_json), "--no-progress"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "Test metrics" in out and set(json.loads(out_json.read_text())["models"]) == {"popularity", "ease"}
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("recae: error: not logged to MLflow: ") for line in lines)
    assert any("connection refused" in line for line in lines)
