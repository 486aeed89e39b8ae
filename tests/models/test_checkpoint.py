"""Checkpoints: an autoencoder fit stopped mid-epoch and resumed ends exactly as an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recae.errors import DataError, UsageError
from recae.models import make_model
from recae.models.checkpoint import Checkpoint
from tests.conftest import planted_blocks

#: Small settings of every resumable model; each runs a few epochs in well under a second.
SMALL = {
    "mult-vae": {"epochs": 6, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40, "device": "cpu", "total_anneal_steps": 7},
    "mult-dae": {"epochs": 6, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40, "device": "cpu"},
    "recvae": {"epochs": 6, "hidden_dim": 32, "latent_dim": 8, "batch_size": 40, "device": "cpu"},
    "cdae": {"epochs": 6, "hidden_dim": 8, "batch_size": 40, "device": "cpu"},
    "elsa": {"epochs": 6, "factors": 8, "batch_size": 40, "device": "cpu"},
    "vasp": {"epochs": 6, "hidden_dim": 32, "latent_dim": 8, "encoder_layers": 2, "decoder_layers": 2,
             "batch_size": 40, "device": "cpu", "lr": 1e-3, "lr_decay_epoch": 3},
}


class Killed(BaseException):
    """Stands for the process dying: nothing after the raise runs."""


def _data():
    X, _ = planted_blocks(n_users=120, n_items=60, seed=1)
    V, _ = planted_blocks(n_users=30, n_items=60, seed=2)
    rng = np.random.default_rng(0)
    keep = rng.random(V.nnz) < 0.7
    V_in, V_out = V.copy(), V.copy()
    V_in.data = np.where(keep, V.data, 0).astype(np.float32)
    V_out.data = np.where(keep, 0, V.data).astype(np.float32)
    V_in.eliminate_zeros()
    V_out.eliminate_zeros()
    return X, (V_in, V_out)


def _kill_in_epoch(model, epoch: int, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``model`` die in the ``batch``-th step of epoch ``epoch`` (a mid-epoch kill)."""
    original = type(model)._batch_loss
    calls = {"n": 0}
    steps_per_epoch = -(-120 // model.batch_size) * (getattr(model, "encoder_epochs", 0) + getattr(model, "decoder_epochs", 1))

    def batch_loss(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == (epoch - 1) * steps_per_epoch + batch:
            raise Killed
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "_batch_loss", batch_loss)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_fit_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_result(name, tmp_path, monkeypatch):
    """On the CPU, bit for bit (SMALL pins it: a GPU's atomics make even two uninterrupted
    runs differ in float32 rounding)."""
    X, validation = _data()
    whole = make_model(name, **SMALL[name], random_state=3).fit(X, validation=validation)

    path = tmp_path / "fit.pt"
    saves: list[int] = []
    interrupted = make_model(name, **SMALL[name], random_state=3)
    with monkeypatch.context() as patch:
        _kill_in_epoch(interrupted, epoch=5, batch=2, monkeypatch=patch)
        with pytest.raises(Killed):
            interrupted.fit(X, validation=validation, checkpoint=Checkpoint(path, every=2, on_save=lambda p: saves.append(1)))
    assert path.exists() and saves
    assert torch.load(path, weights_only=True)["epoch"] == 4  # the last save before the kill

    records: list[dict] = []
    resumed = make_model(name, **SMALL[name], random_state=3).fit(
        X, validation=validation, callback=records.append, checkpoint=Checkpoint(path, every=2)
    )
    assert [r["epoch"] for r in records] == [5, 6]  # only the epochs after the checkpoint ran again
    assert resumed.best_epoch_ == whole.best_epoch_
    strip = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in whole.history_]
    assert [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in resumed.history_] == strip
    np.testing.assert_array_equal(resumed.score(validation[0]), whole.score(validation[0]))


def test_a_finished_checkpoint_resumes_without_training(tmp_path):
    X, validation = _data()
    path = tmp_path / "fit.pt"
    params = {**SMALL["mult-dae"], "epochs": 3}
    first = make_model("mult-dae", **params).fit(X, validation=validation, checkpoint=Checkpoint(path, every=5))
    records: list[dict] = []
    again = make_model("mult-dae", **params).fit(X, validation=validation, callback=records.append, checkpoint=Checkpoint(path))
    assert records == []  # the last epoch was saved: nothing left to train
    np.testing.assert_array_equal(again.score(X), first.score(X))


def test_a_checkpoint_of_another_fit_is_refused_naming_the_file(tmp_path):
    X, validation = _data()
    path = tmp_path / "fit.pt"
    make_model("mult-dae", **{**SMALL["mult-dae"], "epochs": 2}).fit(X, validation=validation, checkpoint=Checkpoint(path))
    other = make_model("mult-dae", **{**SMALL["mult-dae"], "epochs": 2, "lr": 0.01})
    with pytest.raises(UsageError, match="fit.pt: this checkpoint was written by a fit with other parameters"):
        other.fit(X, validation=validation, checkpoint=Checkpoint(path))
    with pytest.raises(UsageError, match="other parameters or data"):
        make_model("mult-dae", **{**SMALL["mult-dae"], "epochs": 2}).fit(X[:100], checkpoint=Checkpoint(path))


def test_an_unreadable_checkpoint_is_named(tmp_path):
    X, _ = _data()
    path = tmp_path / "fit.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="fit.pt: not a readable recae checkpoint"):
        make_model("mult-dae", **SMALL["mult-dae"]).fit(X, checkpoint=Checkpoint(path))


def test_a_save_leaves_no_temporary_file_and_a_model_without_checkpoints_refuses_one(tmp_path):
    X, _ = _data()
    make_model("mult-dae", **{**SMALL["mult-dae"], "epochs": 2}).fit(X, checkpoint=Checkpoint(tmp_path / "c" / "fit.pt"))
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["fit.pt"]
    with pytest.raises(UsageError, match="'ease' trains in one step and takes no checkpoint"):
        make_model("ease").fit(X, checkpoint=Checkpoint(tmp_path / "e.pt"))
    with pytest.raises(UsageError, match="every=0"):
        Checkpoint(tmp_path / "x.pt", every=0)
