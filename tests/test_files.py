"""recae.files: a write either completes or leaves the destination as it was, with nothing beside it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from recae.files import atomic_path, replace, signals_deferred, write_json


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_folder_replaces_a_non_empty_folder(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert _siblings(dest) == ["new.txt"]
    assert _siblings(tmp_path) == ["model"]


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert _siblings(dest) == ["old.txt"]
    assert _siblings(tmp_path) == ["model"]


def test_a_failed_rename_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dest = tmp_path / "new", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self == src:
            raise OSError("disk gone")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="disk gone"):
        replace(src, dest)
    assert (dest / "old.txt").read_text() == "old"
    assert _siblings(tmp_path) == ["dest", "new"]


def test_write_json_replaces_a_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{}")
    write_json(path, {"ndcg_at_100": 0.5, "path": tmp_path})
    assert json.loads(path.read_text()) == {"ndcg_at_100": 0.5, "path": str(tmp_path)}
    assert _siblings(tmp_path) == ["results.json"]


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):  # noqa: ANN001
    raise _Stop()


def test_an_ending_signal_in_a_deferred_block_is_handled_after_it():
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    done = []
    try:
        with pytest.raises(_Stop):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # a handler not held back would have raised here
                done.append("written")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert done == ["written"]


def test_a_checkpoint_interrupted_while_written_is_whole_and_the_signal_still_ends(tmp_path, monkeypatch):
    import torch

    from recae.models.checkpoint import Checkpoint

    save = torch.save

    def interrupted_save(obj, f):  # noqa: ANN001
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the write
        save(obj, f)

    monkeypatch.setattr(torch, "save", interrupted_save)
    checkpoint = Checkpoint(tmp_path / "fit.pt")
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with pytest.raises(_Stop):
            checkpoint.save({"key": "k", "weights": torch.arange(100_000, dtype=torch.float32)})
    finally:
        signal.signal(signal.SIGTERM, previous)
    state = checkpoint.load("k")
    assert state is not None and torch.equal(state["weights"], torch.arange(100_000, dtype=torch.float32))
