"""Tables with named columns: CSV/TSV (a header line names the columns) and Parquet.

:func:`read_table` maps the caller's column names onto ours (``user``,
``item``, ``rating``, ``timestamp``), reads only those columns, and checks them
with the same rules as the other readers (:mod:`recae.data.schema`). A rating
or timestamp column the caller does not name is read when the table has one
under its conventional name (``rating``, ``timestamp``, ...): a rating column
left unread would make every row a positive interaction, whatever its rating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recae.data.compression import text_lines
from recae.data.parsing import Layout, check_values, header, looks_like, parse, read_csv
from recae.data.schema import (
    CONVENTIONAL_NAMES,
    DTYPES,
    ITEM,
    RATING,
    TIMESTAMP,
    USER,
    PathLike,
    check_columns,
    existing_file,
    invalid_values,
    normalize_ids,
)
from recae.errors import DataError, UsageError

_SEP_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "whitespace": "whitespace"}
_KINDS = {USER: "id", ITEM: "id", RATING: "float", TIMESTAMP: "int"}


def read_table(
    path: PathLike,
    user_col: str = USER,
    item_col: str = ITEM,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV (with a header line) or Parquet table with named columns.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet``/``.pq`` file, or a delimited text file whose first line
        names the columns.
    user_col, item_col : str
        Columns holding the user and item ids.
    rating_col, timestamp_col : str, optional
        Columns holding the rating and the Unix timestamp. None (the default):
        the first of :data:`~recae.data.schema.CONVENTIONAL_NAMES` the table
        has (``rating``, ``Rating``, ``RATING``; ``timestamp``, ...), else
        none. ``""``: not read, whatever the table holds.
    sep : str, optional
        Delimiter of a text file: one character (``","``, ``"\\t"``, ``";"``, ...)
        or ``"whitespace"`` (any run of spaces and tabs).
        None: guessed from the header line (tab, comma, semicolon, pipe,
        whitespace), else from the extension (``.tsv`` → tab, else comma).

    Returns
    -------
    DataFrame, one row per data line
        ``user``, ``item``: int64 when every id in the column is an integer,
        else strings without surrounding whitespace
        (:func:`~recae.data.schema.normalize_ids`); ``rating`` (float64) and
        ``timestamp`` (int64) when read. Only those columns are read and
        checked; other columns may hold anything.

    Raises
    ------
    UsageError
        ``sep`` is longer than one character (and not ``"whitespace"``), or
        one column is named for two of user, item, rating and timestamp.
    DataError
        The file is missing or empty, a named column is absent (the message
        lists the columns found), an id is empty, a rating is not a finite
        number or a timestamp not an integer (the message names the line).
    """
    frame, _ = read_table_columns(path, user_col, item_col, rating_col, timestamp_col, sep)
    return frame


def read_table_columns(
    path: PathLike,
    user_col: str = USER,
    item_col: str = ITEM,
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    sep: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`read_table`, and which of the table's columns it read.

    Returns
    -------
    frame : DataFrame
        As :func:`read_table` returns it.
    columns : dict of str to str
        Our column name (``user``, ``item``, ``rating``, ``timestamp``) to the
        table's, for each column read; ``rating`` absent when none was.
    """
    path = existing_file(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        found = _parquet_columns(path)
        wanted = _wanted(found, user_col, item_col, rating_col, timestamp_col)
        return _read_parquet(path, wanted, found), wanted
    sep = sep if sep is not None else _sniff_sep(path)
    if len(sep) != 1 and sep != "whitespace":
        # pandas' C engine takes one character; anything else would silently
        # switch to its slow Python engine.
        raise UsageError(f"sep must be one character or 'whitespace', got {sep!r}")
    found = header(path, sep)
    wanted = _wanted(found, user_col, item_col, rating_col, timestamp_col)
    return _read_delimited(path, wanted, sep, found), wanted


def _wanted(
    found: list[str], user_col: str, item_col: str, rating_col: str | None, timestamp_col: str | None
) -> dict[str, str]:
    """Our column names to the table's (``found``); see :func:`read_table` for the defaults."""
    wanted = {USER: user_col, ITEM: item_col}
    for ours, theirs in ((RATING, rating_col), (TIMESTAMP, timestamp_col)):
        if theirs is None:
            candidates = (name for name in CONVENTIONAL_NAMES[ours] if name in found)
            theirs = next((name for name in candidates if name not in (user_col, item_col)), "")
        if theirs:
            wanted[ours] = theirs
    for ours, theirs in wanted.items():
        same = [other for other, name in wanted.items() if name == theirs and other != ours]
        if same:
            raise UsageError(f"column {theirs!r} is named as both the {ours} and the {same[0]} column")
    return wanted


def _sniff_sep(path: Path) -> str:
    """Guess a table's delimiter from its header line, falling back on the extension."""
    with contextlib.closing(text_lines(path)) as lines:
        line = next((line for line in lines if line.strip()), "")
    for sep in ("\t", ",", ";", "|"):
        if sep in line:
            return sep
    if len(line.split()) > 1:
        return "whitespace"
    return "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","


def _read_delimited(path: Path, wanted: dict[str, str], sep: str, found: list[str]) -> pd.DataFrame:
    """The text half of :func:`read_table`: ``wanted`` maps our column names to the file's,
    ``found`` lists the file's."""
    missing = [theirs for theirs in wanted.values() if theirs not in found]
    if missing and any("\ufffd" in name or "\x00" in name for name in found):
        # binary (say, compressed under a plain name): its "columns" would be noise
        raise DataError(
            f"{path}, line 1: not UTF-8 text; a compressed file is read only under a .gz, .bz2 or .xz name"
        )
    hint = looks_like(found[0], sep) if len(found) == 1 else ""
    check_columns(f"{path}, line 1", wanted.values(), found, hint=hint)
    layout = Layout(
        sep=sep,
        sep_name=_SEP_NAMES.get(sep, repr(sep)),
        columns=tuple(wanted),
        kinds=tuple(_KINDS[c] for c in wanted),
        expected=f"columns {', '.join(wanted.values())}",
        header_lines=1,
        positions=tuple(found.index(theirs) for theirs in wanted.values()),
        width=len(found),
    )
    positions = dict(zip(wanted, layout.positions, strict=True))
    numeric = {positions[c]: DTYPES[c] for c in (RATING, TIMESTAMP) if c in wanted}
    ids = (positions[USER], positions[ITEM])
    as_text = False
    try:
        # Integer ids are the common case and parse fastest.
        frame = read_csv(path, layout, {**numeric, **dict.fromkeys(ids, np.int64)})
    except (ValueError, OverflowError):
        # Some id is not an integer (or something else is wrong): read the ids
        # as text; if that fails too, the scan names the line.
        frame = parse(path, path, layout, {**numeric, **dict.fromkeys(ids, str)})
        as_text = True
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header; expected {layout.expected}")
    frame = check_values(frame, path, layout)
    for column in (USER, ITEM):
        if as_text:
            frame[column] = _integer_ids(path, layout, column, positions[column], frame[column])
        frame[column] = normalize_ids(frame[column])
    return frame


def _integer_ids(
    path: Path, layout: Layout, column: str, position: int, text: pd.Series
) -> pd.Series:
    """One id column read alone as int64 when pandas reads it so; else ``text``, the
    column as read as text (the other id column is text: this one may be integers)."""
    alone = dataclasses.replace(layout, columns=(column,), kinds=("id",), positions=(position,))
    try:
        return read_csv(path, alone, {position: np.int64})[column]
    except (ValueError, OverflowError):
        return text


def _parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, or DataError when it is not one."""
    try:
        return pq.ParquetFile(path).schema_arrow.names
    except Exception as error:  # pyarrow raises several types for a bad file
        raise _unreadable_parquet(path, error) from None


def _unreadable_parquet(path: Path, error: Exception) -> DataError:
    return DataError(f"{path}: not a readable Parquet file ({str(error).strip().splitlines()[0]})")


def _read_parquet(path: Path, wanted: dict[str, str], found: list[str]) -> pd.DataFrame:
    """The Parquet half of :func:`read_table`: ``wanted`` maps our column names to the file's,
    ``found`` lists the file's."""
    check_columns(str(path), wanted.values(), found)
    try:
        table = pd.read_parquet(path, columns=list(wanted.values()))
    except Exception as error:  # a damaged page: pyarrow raises OSError, ArrowInvalid, ...
        raise _unreadable_parquet(path, error) from None
    table.columns = list(wanted)
    if table.empty:
        raise DataError(f"{path}: no rows")
    for column, theirs in wanted.items():
        values = table[column]
        bad = invalid_values(values, column)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}, row {row} (from 0): column {theirs} is {values.iloc[row]!r}; "
                f"expected {'a finite number' if column == RATING else 'a value'}"
            )
        table[column] = _parquet_column(values, column, path, theirs)
    return table


def _parquet_column(values: pd.Series, column: str, path: Path, theirs: str) -> pd.Series:
    """Cast one Parquet column to the dtype the readers promise, or explain why not."""
    dtype = values.dtype
    if column in (USER, ITEM):
        if pd.api.types.is_integer_dtype(dtype):
            return values.astype(np.int64)
        if pd.api.types.is_string_dtype(values):  # inspects the values of object columns
            return normalize_ids(values)
        expected = "integer or string ids"
    elif column == RATING:
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return values.astype(np.float64)
        expected = "numeric ratings"
    else:
        if pd.api.types.is_integer_dtype(dtype):
            return values.astype(np.int64)
        if pd.api.types.is_datetime64_any_dtype(dtype):
            warnings.warn(
                f"{path}: column {theirs} holds datetimes; converted to Unix seconds",
                stacklevel=4,
            )
            epoch = pd.Timestamp(0, tz=values.dt.tz)
            return ((values - epoch) // pd.Timedelta(seconds=1)).astype(np.int64)
        expected = "integer Unix timestamps or datetimes"
    raise DataError(f"{path}: column {theirs} has dtype {dtype}; expected {expected}")
