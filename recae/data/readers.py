"""One reader per file format: MovieLens ratings files, adjacency lists, train/test folders.

Every reader takes a path and returns a DataFrame with the columns of
:mod:`recae.data.schema` (``user``, ``item`` and, when the file has them,
``rating`` and ``timestamp``). Bad input raises
:class:`~recae.errors.DataError` with a one-line message that names the file,
the line and what was expected. Tables with named columns (CSV/TSV/Parquet)
are read by :func:`recae.data.tables.read_table`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recae.data.compression import read_bytes
from recae.data.parsing import (
    Layout,
    Source,
    check_values,
    fits_int64,
    header,
    looks_like,
    parse,
    parse_failed,
)
from recae.data.schema import COLUMNS, DTYPES, ITEM, USER, PathLike, check_columns, existing_file
from recae.errors import DataError

_INT_TOKEN = re.compile(rb"[+-]?[0-9]+")


def _ml_layout(sep: str, sep_name: str, expected: str, header_lines: int = 0) -> Layout:
    return Layout(
        sep=sep,
        sep_name=sep_name,
        columns=COLUMNS,
        kinds=("int", "int", "float", "int"),
        expected=expected,
        header_lines=header_lines,
    )


_ML100K = _ml_layout("\t", "tab", "user<TAB>item<TAB>rating<TAB>timestamp, no header")
_ML_DAT = _ml_layout("::", "'::'", "user::item::rating::timestamp")
_ML_CSV = _ml_layout(",", "comma", "header userId,movieId,rating,timestamp", header_lines=1)
_ML_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")


def _read_movielens(source: Source, path: Path, layout: Layout, sep: str | None = None) -> pd.DataFrame:
    dtypes = {i: DTYPES[c] for i, c in enumerate(layout.columns)}
    return check_values(parse(source, path, layout, dtypes, sep), path, layout)


def read_ml100k(path: PathLike) -> pd.DataFrame:
    """Read MovieLens 100K ``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header.

    Parameters
    ----------
    path : str or path-like
        The ``u.data`` file.

    Returns
    -------
    DataFrame, one row per line
        Columns ``user`` (int64), ``item`` (int64), ``rating`` (float64),
        ``timestamp`` (int64, Unix seconds), in file order.

    Raises
    ------
    DataError
        The file is missing or empty, a line does not have four tab-separated
        fields, or a field is not a number (the message names the line).
    """
    path = existing_file(path)
    return _read_movielens(path, path, _ML100K)


def read_ml_dat(path: PathLike) -> pd.DataFrame:
    """Read MovieLens 1M/10M ``ratings.dat``: ``user::item::rating::timestamp``.

    Parameters
    ----------
    path : str or path-like
        The ``ratings.dat`` file.

    Returns
    -------
    DataFrame, one row per line
        Columns ``user``, ``item`` (int64), ``rating`` (float64), ``timestamp`` (int64).

    Raises
    ------
    DataError
        As :func:`read_ml100k`, for the ``::`` delimiter.
    """
    path = existing_file(path)
    raw = read_bytes(path)
    if b"\t" in raw:
        # A tab would survive the rewrite below and make a tab-separated file
        # look like a valid one; let the scan name the line instead.
        raise parse_failed(path, _ML_DAT, None)
    # pandas only takes single-character separators in its C engine; "::"
    # rewritten to a tab keeps the fast path (and any stray ":" still fails
    # to parse as a number, so nothing malformed slips through).
    return _read_movielens(io.BytesIO(raw.replace(b"::", b"\t")), path, _ML_DAT, sep="\t")


def read_ml_csv(path: PathLike) -> pd.DataFrame:
    """Read MovieLens 20M/25M/latest ``ratings.csv`` (header ``userId,movieId,rating,timestamp``).

    Parameters
    ----------
    path : str or path-like
        The ``ratings.csv`` file.

    Returns
    -------
    DataFrame, one row per data line
        Columns ``user``, ``item`` (int64), ``rating`` (float64), ``timestamp`` (int64).

    Raises
    ------
    DataError
        The file is missing or empty, the header is not the four MovieLens
        columns (the message lists the columns found), or a line is malformed.
    """
    path = existing_file(path)
    found = header(path, _ML_CSV.sep)
    where = f"{path}, line 1"
    if len(found) == 1:
        raise DataError(
            f"{where}: 1 column found, expected 4 separated by comma "
            f"({_ML_CSV.expected}){looks_like(found[0], ',')}"
        )
    expected = f"; expected {_ML_CSV.expected}"
    check_columns(where, _ML_CSV_HEADER, found, hint=expected)
    if tuple(found) != _ML_CSV_HEADER:
        raise DataError(f"{where}: columns out of order; found {', '.join(found)}{expected}")
    return _read_movielens(path, path, _ML_CSV)


def read_adjacency(path: PathLike) -> pd.DataFrame:
    """Read an adjacency list: one user per line, ``user item item ...`` (whitespace-separated).

    Parameters
    ----------
    path : str or path-like
        A text file of integers, e.g. ``train.txt`` of the LightGCN/UltraGCN
        splits. A line holding only a user id is allowed (a user with no
        items); blank lines are skipped.

    Returns
    -------
    DataFrame, one row per (user, item) pair
        Columns ``user``, ``item`` (int64), users in file order, each user's
        items in line order. A user with no items contributes no row.

    Raises
    ------
    DataError
        The file is missing or holds no ids, or a token is not an integer
        (the message names the line and the token).
    """
    path = existing_file(path)
    tokens: list[bytes] = []
    lengths: list[int] = []
    line_numbers: list[int] = []
    content = read_bytes(path)
    for number, line in enumerate(content.splitlines(), start=1):
        fields = line.split()
        if fields:
            tokens.extend(fields)
            lengths.append(len(fields))
            line_numbers.append(number)
    if not tokens:
        raise DataError(f"{path}: empty file; expected lines of 'user item item ...'")
    try:
        if b"_" in content:  # int() reads "1_0" as 10; a data file means no such number
            raise ValueError("_")
        values = np.array(list(map(int, tokens)), dtype=np.int64)
    except (ValueError, OverflowError):
        bad = _first_bad_int(tokens)
        line = line_numbers[int(np.searchsorted(np.cumsum(lengths), bad, side="right"))]
        token = tokens[bad].decode(errors="replace")
        raise DataError(
            f"{path}, line {line}: {token!r} is not a 64-bit integer; expected 'user item item ...'"
        ) from None
    counts = np.asarray(lengths)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts] = False
    return pd.DataFrame({USER: np.repeat(values[starts], counts - 1), ITEM: values[is_item]})


def _first_bad_int(tokens: list[bytes]) -> int:
    """Index of the first token that is not ASCII digits with an optional sign, or
    that overflows int64."""
    for index, token in enumerate(tokens):
        if _INT_TOKEN.fullmatch(token) and fits_int64(int(token)):
            continue
        return index
    raise AssertionError("every token is a valid int64")


def read_train_test_dir(path: PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a given split: a directory holding ``train.txt`` and ``test.txt`` adjacency lists.

    Parameters
    ----------
    path : str or path-like
        The directory, e.g. ``ml-1m-lcfn/``.

    Returns
    -------
    train, test : DataFrame
        Each as :func:`read_adjacency` returns it (columns ``user``, ``item``).

    Raises
    ------
    DataError
        The directory or one of the two files is missing, or a file is malformed.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such directory; expected one holding train.txt and test.txt")
    missing = [name for name in ("train.txt", "test.txt") if not (path / name).is_file()]
    if missing:
        raise DataError(
            f"{path}: missing {' and '.join(missing)}; a given split needs train.txt and test.txt"
        )
    return read_adjacency(path / "train.txt"), read_adjacency(path / "test.txt")
