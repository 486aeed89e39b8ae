"""recae.files: a write either completes or leaves the destination as it was, with nothing beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recae.files import atomic_path, replace, write_json


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
