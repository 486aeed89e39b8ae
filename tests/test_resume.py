"""`recae benchmark --resume`: after a kill -9 mid-epoch, the benchmark ends with exactly the
metrics of an uninterrupted run, in the same MLflow runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recae import tracking
from recae.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: Dies (SIGKILL, no clean-up of any kind) in Mult-VAE's training step number $KILL_AT.
KILLER = """
import os, signal, sys
from recae.models.mult_vae import MultVAE
original, calls = MultVAE._batch_loss, [0]
def batch_loss(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
MultVAE._batch_loss = batch_loss
from recae.cli import main
sys.exit(main(sys.argv[1:]))
"""

MODELS = "mult-dae,mult-vae,popularity"
PARAMS = [
    "--param", "mult-dae.epochs=3", "--param", "mult-dae.hidden_dims=[32]", "--param", "mult-dae.latent_dim=8",
    "--param", "mult-vae.epochs=8", "--param", "mult-vae.hidden_dims=[32]", "--param", "mult-vae.latent_dim=8",
    "--param", "mult-vae.batch_size=50", "--param", "mult-vae.total_anneal_steps=20",
]


def _write_data(folder: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(200) for i in rng.choice(300, size=20, replace=False)]
    (folder / "r.csv").write_text("\n".join(rows) + "\n")


def _recae(folder: Path, *args: str, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if kill_at is None:
        command = [sys.executable, "-m", "recae.cli", *args]
    else:
        (folder / "killer.py").write_text(KILLER)
        command = [sys.executable, "killer.py", *args]
        env["KILL_AT"] = str(kill_at)
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def _models(path: Path) -> dict:
    models = json.loads(path.read_text())["models"]
    return {name: {k: r[k] for k in ("test", "test_ci", "val", "best_epoch", "params")} for name, r in models.items()}


@pytest.mark.slow
def test_a_benchmark_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_metrics(mlflow_uri, tmp_path):
    _write_data(tmp_path)
    common = ["benchmark", "--dataset", "r.csv", "--models", MODELS, *PARAMS, "--heldout-users", "20",
              "--no-progress", "--checkpoint-every", "2"]
    whole = _recae(tmp_path, *common, "--no-tracking", "--json", "whole.json", "--checkpoint-dir", "ck0")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert not any((tmp_path / "ck0").iterdir())  # a completed benchmark leaves no checkpoints

    # 160 training users in batches of 50: 4 steps an epoch; step 18 is in epoch 5,
    # after the checkpoint of epoch 4
    killed = _recae(tmp_path, *common, "--tracking-uri", mlflow_uri, "--json", "killed.json", kill_at=18)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "killed.json").exists()
    [folder] = (tmp_path / "checkpoints").iterdir()
    assert (folder / "mult-dae" / "result.json").exists() and (folder / "mult-vae" / "select.pt").exists()
    runs = tracking.search_runs("r.csv/strong-generalization", tracking_uri=mlflow_uri)
    parent = runs[runs["tags.recae.kind"] == "benchmark"]
    assert list(parent["status"]) == ["RUNNING"]  # nothing marked it: the process died
    run_id = parent["run_id"].iloc[0]
    mult_vae_run = runs[runs["tags.model"] == "mult-vae"]["run_id"].iloc[0]

    resumed = _recae(tmp_path, "benchmark", "--resume", run_id, "--tracking-uri", mlflow_uri, "--json", "resumed.json",
                     "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _models(tmp_path / "resumed.json") == _models(tmp_path / "whole.json")
    assert not folder.exists()

    runs = tracking.search_runs("r.csv/strong-generalization", tracking_uri=mlflow_uri)
    assert sorted(runs["tags.model"].dropna()) == ["mult-dae", "mult-vae", "popularity"]  # no second run of any
    assert set(runs["status"]) == {"FINISHED"}
    assert runs[runs["tags.model"] == "mult-vae"]["run_id"].iloc[0] == mult_vae_run  # the same run, continued
    history = tracking.client(mlflow_uri).get_metric_history(mult_vae_run, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, 9))  # every epoch once
    artifacts = [a.path for a in tracking.client(mlflow_uri).list_artifacts(run_id, "checkpoints/mult-vae")]
    assert "checkpoints/mult-vae/select.pt" in artifacts  # the checkpoints were logged to the run


def test_resume_refuses_settings_an_unknown_target_and_a_finished_run(mlflow_uri, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "--resume", str(tmp_path), "--models", "ease"]) == 2
    assert "--resume continues the earlier benchmark with its own settings; drop --models" in capsys.readouterr().err
    assert main(["benchmark", "--resume", "nothing-here"]) == 2
    assert "neither a checkpoint folder nor an MLflow run id" in capsys.readouterr().err
    assert main(["benchmark", "--resume", str(tmp_path)]) == 2
    assert "no benchmark.json; not the checkpoint folder of a benchmark" in capsys.readouterr().err
    assert main(["benchmark", "--resume", "0" * 32, "--tracking-uri", mlflow_uri]) == 2
    assert "no such run" in capsys.readouterr().err
    assert main(["benchmark", "--dataset", "ml-100k", "--models", "popularity", "--tracking-uri", mlflow_uri,
                 "--no-progress", "--data-dir", str(tmp_path), "--checkpoint-every", "-1"]) == 2
    assert "--checkpoint-every -1" in capsys.readouterr().err


def test_a_checkpoint_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    code = main(["benchmark", "--dataset", "no-such.csv", "--models", "mult-dae", "--no-tracking",
                 "--checkpoint-dir", "a-file/sub"])
    err = capsys.readouterr().err
    assert code == 2 and "a-file is a file, not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert main(["benchmark", "--dataset", "no-such.csv", "--models", "mult-dae", "--no-tracking",
                 "--checkpoint-dir", "new/folders"]) == 2  # no such data set: nothing was trained
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # the folders made for the check are gone
