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
