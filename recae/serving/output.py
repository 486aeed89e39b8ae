"""Top-N frames to a CSV or Parquet file, batch by batch, never leaving a partial file."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recae.errors import UsageError
from recae.files import atomic_path, check_output_path

__all__ = ["write_table"]


class write_table:  # noqa: N801 - used like a function: ``with write_table(path) as write: ...``
    """Write frames to a CSV or Parquet file atomically, batch by batch.

    The rows go to a temporary file in the destination folder, renamed over
    ``path`` when the ``with`` block ends without an error; an interrupted or
    failed run removes it and leaves no partial file (and any earlier file at
    ``path`` untouched). The format follows the suffix: ``.parquet``/``.pq``
    or ``.csv``. Constructing the writer checks the path
    (:func:`recae.files.check_output_path`: the folder is created, a file
    must be writable there); nothing is written before the ``with`` block
    starts.
    """

    FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = self.FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UsageError(f"{self.path}: unknown output format; use a .parquet or .csv file name")
        check_output_path(self.path)
        self._tmp: Path | None = None
        self._file: Any = None
        self._writer: Any = None
        self._stack: contextlib.ExitStack | None = None
        self.rows = 0

    def __enter__(self) -> write_table:
        with contextlib.ExitStack() as stack:
            self._tmp = stack.enter_context(atomic_path(self.path))
            # Runs before atomic_path's exit: the file is complete when renamed.
            stack.callback(self._close)
            # The file exists from the start, so that a block that writes no
            # frame still leaves an (empty) file; open() gives it the umask's
            # permissions.
            with open(self._tmp, "x"):
                pass
            self._stack = stack.pop_all()
        return self

    def __call__(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows; the first frame sets the columns (and the Parquet schema)."""
        assert self._tmp is not None, "use write_table as a context manager"
        if self.format == "csv":
            if self._file is None:
                self._file = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
                frame.to_csv(self._file, index=False)
            else:
                frame.to_csv(self._file, index=False, header=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self._tmp), table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(frame)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        # Closes the file, then renames it into place (no error) or removes it.
        return stack.__exit__(exc_type, exc, tb)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
