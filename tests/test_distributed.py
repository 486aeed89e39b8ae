"""Data-parallel training over torch.distributed: 2 CPU ranks over gloo give one process's metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recae import tracking
from recae.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: Without dropout the two runs differ only in the order of floating-point sums.
PARAMS = ["--param", "mult-dae.dropout=0", "--param", "mult-dae.epochs=4", "--param", "mult-dae.batch_size=50",
          "--param", "mult-dae.hidden_dims=[32]", "--param", "mult-dae.latent_dim=8"]
TOLERANCE = 1e-3


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores
    return {k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}


@pytest.mark.slow
def test_two_gloo_ranks_reach_one_process_metrics_and_only_rank_0_logs(tmp_path, mlflow_uri):
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(200) for i in rng.choice(150, size=20, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    bench = ["benchmark", "--dataset", "r.csv", "--models", "mult-dae", *PARAMS, "--heldout-users", "20", "--no-progress"]
    one = subprocess.run([sys.executable, "-m", "recae.cli", *bench, "--no-tracking", "--json", "one.json"],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "recae.cli",
         *bench, "--distributed", "--tracking-uri", mlflow_uri, "--json", "two.json"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Test metrics on r.csv") == 1  # rank 1 printed nothing
    a = json.loads((tmp_path / "one.json").read_text())["models"]["mult-dae"]
    b = json.loads((tmp_path / "two.json").read_text())["models"]["mult-dae"]
    assert a["best_epoch"] == b["best_epoch"]
    for part in ("val", "test"):
        for key in ("ndcg_at_100", "recall_at_20", "ndcg_at_20"):
            assert abs(a[part][key] - b[part][key]) <= TOLERANCE, (part, key, a[part][key], b[part][key])
    runs = tracking.search_runs("r.csv/strong-generalization", tracking_uri=mlflow_uri)
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}  # one parent, one model run: rank 0's


def test_distributed_without_a_launcher_names_the_missing_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["benchmark", "--dataset", "x.csv", "--models", "mult-dae", "--distributed", "--no-tracking"]) == 2
    err = capsys.readouterr().err
    assert "--distributed needs the launcher's variable RANK; start the command with torchrun" in err
    assert list(tmp_path.iterdir()) == []
