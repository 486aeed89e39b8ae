"""Writing top-N tables: atomic, with the umask's permissions, in CSV or Parquet."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from recae.errors import UsageError
from recae.serving import write_table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_is_atomic(tmp_path, suffix):
    dest = tmp_path / f"out{suffix}"
    frame = pd.DataFrame({"a": [1, 2]})
    with write_table(dest) as write:
        write(frame)
        write(frame)
    back = pd.read_csv(dest) if suffix == ".csv" else pd.read_parquet(dest)
    assert back["a"].tolist() == [1, 2, 1, 2]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~_umask()
    with pytest.raises(KeyboardInterrupt), write_table(dest) as write:
        write(pd.DataFrame({"a": [9]}))
        raise KeyboardInterrupt
    back = pd.read_csv(dest) if suffix == ".csv" else pd.read_parquet(dest)
    assert back["a"].tolist() == [1, 2, 1, 2]  # the earlier file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no temporary left


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_a_block_that_writes_no_frame_leaves_an_empty_file(tmp_path):
    dest = tmp_path / "sub" / "out.csv"
    with write_table(dest) as write:
        pass
    assert write.rows == 0 and dest.read_text() == ""
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def test_bad_output_names_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UsageError, match="unknown output format"):
        write_table(tmp_path / "out.xlsx")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        write_table(tmp_path / "folder.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["folder.csv"]
