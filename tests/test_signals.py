"""SIGTERM is handled like Ctrl-C: runs marked KILLED, nothing half-written, exit status 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recae import tracking

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sigterm_during_training_marks_the_runs_killed_and_exits_143(mlflow_uri, tmp_path):
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(200) for i in rng.choice(300, size=20, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable, "-m", "recae.cli", "benchmark", "--dataset", "r.csv", "--models", "mult-dae",
        "--param", "mult-dae.epochs=100000", "--param", "mult-dae.patience=none", "--heldout-users", "20",
        "--tracking-uri", mlflow_uri, "--json", "out.json", "--no-progress",
    ]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:  # until the model's run has logged an epoch
            runs = tracking.search_runs("r.csv/strong-generalization", "tags.model = 'mult-dae'", mlflow_uri)
            if not runs.empty and "metrics.train/loss" in runs and runs["metrics.train/loss"].notna().any():
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "recae: terminated"
    runs = tracking.search_runs("r.csv/strong-generalization", tracking_uri=mlflow_uri)
    assert len(runs) == 2 and set(runs["status"]) == {"KILLED"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mlflow.db.lock", "checkpoints", "mlflow.db", "mlruns", "r.csv"]  # no out.json; the checkpoints stay, to resume


def _raising_sigterm_midway(function):  # noqa: ANN001, ANN202
    """``function`` with a SIGTERM raised to this process before it runs: one that lands
    inside a call into the store."""
    def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        signal.raise_signal(signal.SIGTERM)
        return function(*args, **kwargs)
    return call


@pytest.mark.parametrize("during", ["log_metrics", "start_run"])
def test_a_sigterm_inside_a_store_call_waits_for_it_and_the_run_ends_killed(mlflow_uri, monkeypatch, during):
    """A database store's call is never cut midway: the signal takes effect when it returns
    (the metric is in the store, the run started is ended), and the run ends KILLED."""
    from recae.cli import _terminate
    from recae.errors import Terminated
    from recae.tracking import MlflowTracker
    from recae.tracking import tracker as tracker_module

    mlflow = tracker_module.mlflow  # the functions the tracker calls

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        tracker = MlflowTracker(mlflow_uri)
        with pytest.raises(Terminated), tracker.run("e", "parent", tags={}) as parent:
            monkeypatch.setattr(mlflow, during, _raising_sigterm_midway(getattr(mlflow, during)))
            with parent.nested("child", tags={}) as child:
                child.log_metrics({"loss": 1.5}, step=1)
                pytest.fail("the SIGTERM was not raised after the store call")  # pragma: no cover
    finally:
        signal.signal(signal.SIGTERM, previous)
    runs = tracking.search_runs("e", tracking_uri=mlflow_uri)
    assert sorted(runs["tags.mlflow.runName"]) == ["child", "parent"]
    assert set(runs["status"]) == {"KILLED"}
    if during == "log_metrics":
        assert runs.set_index("tags.mlflow.runName").loc["child", "metrics.loss"] == 1.5
