"""Reading ratings, the download cache, binarization, k-core and ``Interactions``.

Raw ids exist only here and where top-N lists are written out; everything
downstream works on contiguous integer indices and CSR matrices.

The flow through this module::

    spec ──load──▶ RawData (ratings, or a given train/test split)
         ratings ──binarize──▶ ──kcore──▶ ──to_interactions──▶ Interactions

Every reader returns a DataFrame with the columns ``user``, ``item`` and, when
the file has them, ``rating`` (float64) and ``timestamp`` (int64). Bad input
raises :class:`~recae.errors.DataError` with a one-line message that names the
file, the line (or row, or column) and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from recae.errors import DataError, UsageError

PathLike = str | os.PathLike[str]

#: Environment variable naming the download cache (see :func:`data_dir`).
DATA_DIR_ENV = "RECAE_DATA_DIR"
#: Environment variable naming a mirror to download archives from (see :func:`fetch`).
DATASET_URL_ENV = "RECAE_DATASET_URL"

USER, ITEM, RATING, TIMESTAMP = "user", "item", "rating", "timestamp"

# ---------------------------------------------------------------------------
# Parsing delimited files
#
# Every delimited reader takes the same two steps: a vectorized pandas parse
# with explicit dtypes (the C engine reads ML-20M's 20M rows in seconds), and,
# only when that parse fails or yields a value we reject, a line-by-line scan
# whose only job is to find the first offending line and say what is wrong
# with it. The scan applies the same rules as the fast path, so it names the
# line pandas choked on.
# ---------------------------------------------------------------------------

# pandas' int64 parser takes "+5", " 5" and "5.0"; the scan must accept the
# same spellings or it would blame a harmless line before the bad one.
_INT_RE = re.compile(r"\s*[+-]?\d+(\.0*)?\s*")
_INT64_LIMIT = 2**63


@dataclass(frozen=True)
class _Layout:
    """What a delimited file must look like: used for parsing and for messages.

    ``columns`` are the output names of the fields to check and ``positions``
    their indices in a line (``None``: every field, in order, and the count
    must match exactly). ``kinds`` says what each holds: ``"int"`` (64-bit
    integer), ``"float"`` (finite number) or ``"id"`` (any non-empty text).
    """

    sep: str
    sep_name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    expected: str
    header_lines: int = 0
    positions: tuple[int, ...] | None = None


def _ml_layout(sep: str, sep_name: str, expected: str) -> _Layout:
    return _Layout(
        sep=sep,
        sep_name=sep_name,
        columns=(USER, ITEM, RATING, TIMESTAMP),
        kinds=("int", "int", "float", "int"),
        expected=expected,
    )


_ML100K = _ml_layout("\t", "tab", "user<TAB>item<TAB>rating<TAB>timestamp, no header")
_ML_DAT = _ml_layout("::", "'::'", "user::item::rating::timestamp")
_ML_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")
_ML_CSV = _Layout(
    sep=",",
    sep_name="comma",
    columns=(USER, ITEM, RATING, TIMESTAMP),
    kinds=("int", "int", "float", "int"),
    expected="header userId,movieId,rating,timestamp",
    header_lines=1,
)
_DTYPES = {USER: np.int64, ITEM: np.int64, RATING: np.float64, TIMESTAMP: np.int64}


def _existing_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    return path


def _looks_like(line: str, sep: str) -> str:
    """A hint naming the delimiter a line seems to use, when it is not ``sep``."""
    for candidate, name in (("::", "'::'"), ("\t", "tab"), (",", "comma"), (";", "semicolon")):
        if candidate != sep and candidate in line:
            return f"; the line looks {name}-separated"
    return ""


def _check_field(value: str, kind: str) -> str | None:
    """Why ``value`` is not a valid ``kind``, or None when it is."""
    if kind == "int" and value.isascii() and value.isdigit() and len(value) < 19:
        return None  # the common case, decided without a regex
    if not value.strip():
        return "is empty"
    if kind == "int":
        if not _INT_RE.fullmatch(value):
            return f"{value.strip()!r} is not an integer"
        if abs(int(value.strip().split(".")[0])) >= _INT64_LIMIT:
            return f"{value.strip()!r} does not fit in 64 bits"
    elif kind == "float":
        try:
            number = float(value)
        except ValueError:
            return f"{value.strip()!r} is not a number"
        if not math.isfinite(number):
            return f"{value.strip()!r} is not a finite number"
    return None


def _records(path: Path, sep: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each record, skipping the lines pandas skips.

    pandas skips empty lines, and with a whitespace delimiter blank ones too.
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        if len(sep) == 1:
            # One reader for the whole file: it honours quotes (a quoted field
            # may span lines) and counts physical lines, as pandas does.
            reader = csv.reader(fh, delimiter=sep)
            for fields in reader:
                if fields:
                    yield reader.line_num, fields
            return
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            fields = line.split() if sep == "whitespace" else line.split(sep)
            if fields and line:
                yield number, fields


def _locate(path: Path, layout: _Layout) -> DataError | None:
    """Scan ``path`` for the first record that breaks ``layout``; None if all pass."""
    n_fields = len(layout.columns)
    positions = layout.positions or range(n_fields)
    checks = list(zip(positions, layout.columns, layout.kinds, strict=True))
    for number, fields in _records(path, layout.sep):
        if number <= layout.header_lines:
            continue
        where = f"{path}, line {number}"
        if layout.positions is None and len(fields) != n_fields:
            noun = "column" if len(fields) == 1 else "columns"
            hint = _looks_like(fields[0], layout.sep) if len(fields) == 1 else ""
            return DataError(
                f"{where}: {len(fields)} {noun} found, expected {n_fields} separated by "
                f"{layout.sep_name} ({layout.expected}){hint}"
            )
        for position, column, kind in checks:
            if position >= len(fields):
                return DataError(
                    f"{where}: {column} is missing ({len(fields)} fields); expected {layout.expected}"
                )
            problem = _check_field(fields[position], kind)
            if problem:
                return DataError(f"{where}: {column} {problem}; expected {layout.expected}")
    return None


def _parse_failed(path: Path, layout: _Layout, error: Exception | None) -> DataError:
    """The error to raise when the fast parse failed or produced a rejected value."""
    located = _locate(path, layout)
    if located is not None:
        return located
    # The scan found nothing pandas would object to: report pandas' own words.
    detail = str(error).strip().splitlines()[0] if error else "unreadable"
    return DataError(f"{path}: cannot parse ({detail}); expected {layout.expected}")


def _read_csv(
    source: Path | io.BytesIO, layout: _Layout, dtypes: dict[int, type], sep: str | None = None
) -> pd.DataFrame:
    """The fast path: ``pd.read_csv`` with explicit dtypes, columns named as ours.

    ``dtypes`` is keyed by a field's position in a line; ``sep`` is the
    delimiter in ``source`` when it differs from the file's own (``layout.sep``).
    Raises what pandas raises, and ValueError for a wrong number of columns.
    """
    sep = sep or layout.sep
    frame = pd.read_csv(
        source,
        sep=r"\s+" if sep == "whitespace" else sep,
        header=None,
        skiprows=layout.header_lines,
        usecols=list(layout.positions) if layout.positions is not None else None,
        dtype=dtypes,
        engine="c",
    )
    if layout.positions is not None:
        frame = frame[list(layout.positions)]  # pandas returns file order, not usecols order
    elif frame.shape[1] != len(layout.columns):
        raise ValueError(f"{frame.shape[1]} columns, expected {len(layout.columns)}")
    frame.columns = list(layout.columns)
    return frame


def _parse(
    source: Path | io.BytesIO,
    path: Path,
    layout: _Layout,
    dtypes: dict[int, type],
    sep: str | None = None,
) -> pd.DataFrame:
    """:func:`_read_csv`, raising DataError that names the offending line."""
    try:
        frame = _read_csv(source, layout, dtypes, sep)
    except pd.errors.EmptyDataError:
        what = "no data rows after the header" if layout.header_lines else "empty file"
        raise DataError(f"{path}: {what}; expected {layout.expected}") from None
    except (ValueError, OverflowError) as error:  # ParserError is a ValueError
        raise _parse_failed(path, layout, error) from None
    if frame.empty:
        raise DataError(f"{path}: no data rows; expected {layout.expected}")
    return frame


def _check_finite(frame: pd.DataFrame, path: Path, layout: _Layout) -> pd.DataFrame:
    # Empty fields and "nan" parse as NaN, "inf" as infinity: pandas accepts
    # them as floats, we do not accept them as ratings.
    if RATING in frame and not np.isfinite(frame[RATING].to_numpy()).all():
        raise _parse_failed(path, layout, None)
    return frame


def _read_movielens(
    source: Path | io.BytesIO, path: Path, layout: _Layout, sep: str | None = None
) -> pd.DataFrame:
    dtypes = {i: _DTYPES[c] for i, c in enumerate(layout.columns)}
    return _check_finite(_parse(source, path, layout, dtypes, sep), path, layout)


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


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
    path = _existing_file(path)
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
    path = _existing_file(path)
    raw = path.read_bytes()
    if b"\t" in raw:
        # A tab would survive the rewrite below and make a tab-separated file
        # look like a valid one; let the scan name the line instead.
        raise _parse_failed(path, _ML_DAT, None)
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
    path = _existing_file(path)
    header = _header(path, _ML_CSV.sep)
    if len(header) == 1:
        raise DataError(
            f"{path}, line 1: 1 column found, expected 4 separated by comma "
            f"({_ML_CSV.expected}){_looks_like(header[0], ',')}"
        )
    if tuple(header) != _ML_CSV_HEADER:
        missing = [c for c in _ML_CSV_HEADER if c not in header]
        problem = f"missing column(s) {', '.join(missing)}" if missing else "columns out of order"
        raise DataError(
            f"{path}, line 1: {problem}; found {', '.join(header)}; expected {_ML_CSV.expected}"
        )
    return _read_movielens(path, path, _ML_CSV)


def _header(path: Path, sep: str) -> list[str]:
    """The first record of ``path``, split by ``sep`` (DataError when there is none)."""
    for _, fields in _records(path, sep):
        return [field.strip() for field in fields]
    raise DataError(f"{path}: empty file; expected a header line naming the columns")


_SEP_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "whitespace": "whitespace"}


def _sniff_sep(path: Path) -> str:
    """Guess a table's delimiter from its header line, falling back on the extension."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        line = next((line for line in fh if line.strip()), "")
    for sep in ("\t", ",", ";", "|"):
        if sep in line:
            return sep
    if len(line.split()) > 1:
        return "whitespace"
    return "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","


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
        Columns holding the rating and the Unix timestamp; left out when None.
    sep : str, optional
        Delimiter of a text file: one character (``","``, ``"\\t"``, ``";"``, ...)
        or ``"whitespace"`` (any run of spaces and tabs).
        None: guessed from the header line (tab, comma, semicolon, pipe,
        whitespace), else from the extension (``.tsv`` → tab, else comma).

    Returns
    -------
    DataFrame, one row per data line
        ``user``, ``item``: int64 when every id in the column is an integer,
        else strings, as written; ``rating`` (float64) and ``timestamp``
        (int64) when asked for. Only the named columns are read and checked;
        other columns may hold anything.

    Raises
    ------
    UsageError
        ``sep`` is longer than one character (and not ``"whitespace"``).
    DataError
        The file is missing or empty, a named column is absent (the message
        lists the columns found), an id is empty, a rating is not a finite
        number or a timestamp not an integer (the message names the line).
    """
    path = _existing_file(path)
    wanted = {USER: user_col, ITEM: item_col, RATING: rating_col, TIMESTAMP: timestamp_col}
    wanted = {ours: theirs for ours, theirs in wanted.items() if theirs is not None}
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _read_parquet(path, wanted)

    sep = sep if sep is not None else _sniff_sep(path)
    if len(sep) != 1 and sep != "whitespace":
        # pandas' C engine takes one character; anything else would silently
        # switch to its slow Python engine.
        raise UsageError(f"sep must be one character or 'whitespace', got {sep!r}")
    header = _header(path, sep)
    missing = [theirs for theirs in wanted.values() if theirs not in header]
    if missing:
        hint = _looks_like(header[0], sep) if len(header) == 1 else ""
        raise DataError(
            f"{path}, line 1: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(header)}{hint}"
        )
    kinds = {USER: "id", ITEM: "id", RATING: "float", TIMESTAMP: "int"}
    layout = _Layout(
        sep=sep,
        sep_name=_SEP_NAMES.get(sep, repr(sep)),
        columns=tuple(wanted),
        kinds=tuple(kinds[c] for c in wanted),
        expected=f"columns {', '.join(wanted.values())}",
        header_lines=1,
        positions=tuple(header.index(theirs) for theirs in wanted.values()),
    )
    positions = dict(zip(wanted, layout.positions, strict=True))
    numeric = {positions[c]: _DTYPES[c] for c in (RATING, TIMESTAMP) if c in wanted}
    ids = (positions[USER], positions[ITEM])
    try:
        # Integer ids are the common case and parse fastest.
        frame = _read_csv(path, layout, {**numeric, **dict.fromkeys(ids, np.int64)})
    except (ValueError, OverflowError):
        # Some id is not an integer (or something else is wrong): read the ids
        # as text; if that fails too, the scan names the line.
        frame = _parse(path, path, layout, {**numeric, **dict.fromkeys(ids, str)})
        for column in (USER, ITEM):
            if frame[column].isna().any() or (frame[column].str.strip() == "").any():
                raise _parse_failed(path, layout, None) from None
    if frame.empty:
        raise DataError(f"{path}: no data rows after the header; expected {layout.expected}")
    return _check_finite(frame, path, layout)


def _read_parquet(path: Path, wanted: dict[str, str]) -> pd.DataFrame:
    import pyarrow.parquet as pq  # a dependency of pandas' Parquet support

    try:
        found = pq.ParquetFile(path).schema_arrow.names
    except Exception as error:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({error})") from None
    missing = [theirs for theirs in wanted.values() if theirs not in found]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(found)}")
    table = pd.read_parquet(path, columns=list(wanted.values()))
    table.columns = list(wanted)
    if table.empty:
        raise DataError(f"{path}: no rows")
    for column, theirs in wanted.items():
        values = table[column]
        bad = values.isna().to_numpy(copy=True)
        if column == RATING and pd.api.types.is_numeric_dtype(values):
            bad |= ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        elif column in (USER, ITEM) and pd.api.types.is_string_dtype(values):
            bad |= (values.str.strip() == "").to_numpy(dtype=bool, na_value=False)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{path}, row {row} (from 0): column {theirs} is {values.iloc[row]!r}; "
                f"expected {'a finite number' if column == RATING else 'a value'}"
            )
        table[column] = _parquet_column(values, column, path, theirs)
    return table


def _parquet_column(values: pd.Series, column: str, path: Path, theirs: str) -> pd.Series:
    """Cast one Parquet column to the dtype this module promises, or explain why not."""
    dtype = values.dtype
    if column in (USER, ITEM):
        if pd.api.types.is_integer_dtype(dtype):
            return values.astype(np.int64)
        if pd.api.types.is_string_dtype(values):  # inspects the values of object columns
            return values
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
    path = _existing_file(path)
    tokens: list[bytes] = []
    lengths: list[int] = []
    line_numbers: list[int] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        fields = line.split()
        if fields:
            tokens.extend(fields)
            lengths.append(len(fields))
            line_numbers.append(number)
    if not tokens:
        raise DataError(f"{path}: empty file; expected lines of 'user item item ...'")
    try:
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
    """Index of the first token that ``int`` rejects or that overflows int64."""
    for index, token in enumerate(tokens):
        try:
            if abs(int(token)) < _INT64_LIMIT:
                continue
        except ValueError:
            pass
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


# ---------------------------------------------------------------------------
# Named data sets and the download cache
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """A public data set that :func:`fetch` can download, check and cache.

    Attributes
    ----------
    name : str
        The name users type (``"ml-1m"``); also the cache folder's name.
    url : str
        Where the publisher serves the zip archive.
    member : str
        Path of the ratings file inside the archive (``"ml-10M100K/ratings.dat"``);
        its folder is what gets extracted.
    reader : callable
        The reader for the ratings file (path → DataFrame).
    sha256, md5 : str or None
        Hex digests of the archive. Every digest given must match; when both
        are None a download is refused unless explicitly allowed.
    """

    name: str
    url: str
    member: str
    reader: Callable[[PathLike], pd.DataFrame]
    sha256: str | None
    md5: str | None = None

    @property
    def folder(self) -> str:
        """The archive's top folder holding the ratings file."""
        return str(PurePosixPath(self.member).parent)

    @property
    def ratings_file(self) -> str:
        """The ratings file's name, inside the archive and in the cache."""
        return PurePosixPath(self.member).name

    @property
    def archive_name(self) -> str:
        """The archive's file name, also its name on a mirror (``"ml-1m.zip"``)."""
        return self.url.rsplit("/", 1)[-1]


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

# SHA-256 digests: tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt
# (ml-100k and ml-1m also pinned, identically, by several independent projects).
# MD5 digests: the ``<name>.zip.md5`` files GroupLens publishes beside each
# archive. No SHA-256 for ml-10m was found in any public source, so its
# download is checked against the publisher's MD5 alone; MD5 collisions can be
# manufactured, but forging a second file that matches an existing digest
# (a second preimage) is still out of reach, which is what matters here.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "ml-100k",
            f"{_GROUPLENS}/ml-100k.zip",
            "ml-100k/u.data",
            read_ml100k,
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
        ),
        DatasetInfo(
            "ml-1m",
            f"{_GROUPLENS}/ml-1m.zip",
            "ml-1m/ratings.dat",
            read_ml_dat,
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
        ),
        DatasetInfo(
            "ml-10m",
            f"{_GROUPLENS}/ml-10m.zip",
            "ml-10M100K/ratings.dat",
            read_ml_dat,
            sha256=None,
            md5="ce571fd55effeba0271552578f2648bd",
        ),
        DatasetInfo(
            "ml-20m",
            f"{_GROUPLENS}/ml-20m.zip",
            "ml-20m/ratings.csv",
            read_ml_csv,
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
        ),
        DatasetInfo(
            "ml-25m",
            f"{_GROUPLENS}/ml-25m.zip",
            "ml-25m/ratings.csv",
            read_ml_csv,
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
        ),
        # GroupLens replaces ml-latest-small from time to time. This digest is
        # the September 2018 edition (610 users, 9,724 movies, 100,836 ratings),
        # the one served since; the 2016 edition (671 users, 100,004 ratings)
        # that older papers and some caches hold has a different archive. A
        # cached copy of either is used as is: only downloads are checked.
        DatasetInfo(
            "ml-latest-small",
            f"{_GROUPLENS}/ml-latest-small.zip",
            "ml-latest-small/ratings.csv",
            read_ml_csv,
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        ),
    )
}


def _dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})") from None


def data_dir(explicit: PathLike | None = None) -> Path:
    """The download cache: ``explicit``, else ``$RECAE_DATA_DIR``, else ``./data``.

    Parameters
    ----------
    explicit : str or path-like, optional
        A folder chosen by the caller; wins over the environment.

    Returns
    -------
    Path
        The folder (not created here); data set ``name`` lives in ``<folder>/<name>/``.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else Path("data")


# The functions below take a parameter called ``data_dir``, which shadows the function.
_resolve_data_dir = data_dir


def fetch(
    name: str,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
    allow_unverified: bool = False,
) -> Path:
    """Return the path of a named data set's ratings file, downloading it if needed.

    A cached copy, ``<data_dir>/<name>/<ratings file>``, is used as is, with no
    network access. Otherwise the archive is downloaded into a temporary
    folder inside ``data_dir``, its checksum verified, its folder extracted and
    renamed into place in one step. A failed or interrupted download therefore
    leaves nothing behind but, at worst, a hidden ``.<name>-*`` temporary folder
    after a hard kill, and never a partial cache entry.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    data_dir : str or path-like, optional
        The cache; see :func:`data_dir`.
    base_url : str, optional
        A mirror to download from instead of GroupLens: the archive is fetched
        from ``<base_url>/<name>.zip`` and must still match the known digests.
        Defaults to ``$RECAE_DATASET_URL`` when that is set. Any scheme urllib
        opens works, ``file://`` included.
    progress : bool
        Show a progress bar while downloading.
    force : bool
        Download again even when cached; the cached folder is replaced only
        once the new copy has been verified and extracted.
    allow_unverified : bool
        Accept an archive for which no digest is known.

    Returns
    -------
    Path
        The ratings file, readable with ``DATASETS[name].reader``.

    Raises
    ------
    UsageError
        ``name`` is not a known data set.
    DataError
        The download failed (HTTP error, unreachable host, truncated), the
        checksum did not match (the message gives the URL, the expected and
        the actual digest), the archive lacks the ratings file, or the cache
        cannot be written.
    """
    info = _dataset_info(name)
    root = _resolve_data_dir(data_dir)
    dest = root / info.name
    target = dest / info.ratings_file
    if target.is_file() and not force:
        return target
    if dest.exists() and not force:
        # Not ours to clear: it may hold the user's own files.
        raise DataError(
            f"{dest}: exists but holds no {info.ratings_file}; "
            f"remove it, or fetch with force=True to replace it"
        )
    if info.sha256 is None and info.md5 is None and not allow_unverified:
        raise DataError(
            f"no checksum is known for {name}; refusing to download it unverified "
            f"(pass allow_unverified=True to accept it)"
        )
    mirror = base_url or os.environ.get(DATASET_URL_ENV, "").strip()
    url = f"{mirror.rstrip('/')}/{info.archive_name}" if mirror else info.url
    created = [d for d in (root, *root.parents) if not d.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
        # The scratch folder lives inside the cache so that the final rename
        # stays on one file system, and therefore atomic.
        with tempfile.TemporaryDirectory(prefix=f".{info.name}-", dir=root) as scratch:
            scratch = Path(scratch)
            archive = scratch / info.archive_name
            digests = _download(url, archive, progress=progress, label=info.name)
            _verify(info, url, digests)
            staged = _extract(archive, info, url, scratch / "extracted")
            try:
                _install(staged, dest, scratch)
            except OSError:
                if target.is_file():  # another process finished the same download first
                    return target
                raise
    except OSError as error:
        _remove_empty(created)
        raise DataError(
            f"cannot write {info.name} into the cache {root}: {error.strerror or error}; "
            f"choose a writable folder with data_dir= or ${DATA_DIR_ENV}"
        ) from None
    except BaseException:
        _remove_empty(created)  # a failed first download leaves no empty cache folder behind
        raise
    return target


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this call created (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _download(url: str, dest: Path, *, progress: bool, label: str) -> dict[str, str]:
    """Stream ``url`` into ``dest``; return the hex digests of what was written."""
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    written = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with (
                open(dest, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    for digest in hashes.values():
                        digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise DataError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DataError(f"cannot reach {url}: {error.reason}") from None
    except (http.client.HTTPException, TimeoutError, ConnectionError) as error:
        raise DataError(f"downloading {url} failed: {error!r}") from None
    if total is not None and written != total:
        raise DataError(f"downloading {url} failed: got {written} of {total} bytes")
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def _verify(info: DatasetInfo, url: str, actual: dict[str, str]) -> None:
    for algorithm in ("sha256", "md5"):
        expected = getattr(info, algorithm)
        if expected is not None and actual[algorithm] != expected.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected {algorithm} {expected}, "
                f"got {actual[algorithm]}; the download was discarded"
            )


def _extract(archive: Path, info: DatasetInfo, url: str, into: Path) -> Path:
    """Extract the archive's folder holding the ratings file; return the extracted folder."""
    prefix = info.folder + "/"
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if info.member not in names:
                raise DataError(f"{url}: the archive holds no {info.member}")
            for member in names:
                parts = PurePosixPath(member).parts
                if member.startswith("/") or ".." in parts:
                    raise DataError(f"{url}: unsafe path {member!r} in the archive")
                if member.startswith(prefix):
                    zf.extract(member, into)
    except zipfile.BadZipFile as error:
        raise DataError(f"{url}: not a valid zip archive ({error})") from None
    return into / info.folder


def _install(staged: Path, dest: Path, scratch: Path) -> None:
    """Rename ``staged`` to ``dest``; a folder already at ``dest`` is swapped out, not lost."""
    previous = None
    if dest.exists():
        previous = scratch / "previous"
        dest.rename(previous)  # removed with the scratch folder
    try:
        staged.rename(dest)
    except OSError:
        if previous is not None:
            previous.rename(dest)
        raise


# ---------------------------------------------------------------------------
# One entry point for every source
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RawData:
    """What :func:`load` read: either one ratings frame or a given train/test split.

    Attributes
    ----------
    source : str
        The data set name or path it came from, for messages and tracking.
    ratings : DataFrame or None
        ``user``, ``item`` and, when present, ``rating`` and ``timestamp``.
    train, test : DataFrame or None
        The given split's ``(user, item)`` pairs; set together, and only when
        ``ratings`` is None.
    """

    source: str
    ratings: pd.DataFrame | None = None
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None

    @property
    def is_given_split(self) -> bool:
        """Whether the source fixed the train/test split itself."""
        return self.train is not None


_READERS_BY_FILE_NAME: dict[str, Callable[[PathLike], pd.DataFrame]] = {
    "u.data": read_ml100k,
    "ratings.dat": read_ml_dat,
    "ratings.csv": read_ml_csv,
}


def load(
    spec: PathLike,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    **read_table_kwargs: str | None,
) -> RawData:
    """Read a data set given by name or path.

    ``spec`` is resolved in this order:

    1. a name in :data:`DATASETS` → :func:`fetch` (cached or downloaded) and its reader;
    2. an existing path, or else a folder of that name in the data directory:

       - a directory with ``train.txt`` and ``test.txt`` → a given split
         (:func:`read_train_test_dir`);
       - a directory with ``u.data``, ``ratings.dat`` or ``ratings.csv`` → that file;
       - a file named ``u.data`` / ``ratings.dat`` / ``ratings.csv`` → the
         MovieLens reader for it;
       - a ``.txt`` file → :func:`read_adjacency`;
       - any other file (``.csv``, ``.tsv``, ``.parquet``, ...) → :func:`read_table`.

    Parameters
    ----------
    spec : str or path-like
        A data set name or a path.
    data_dir : str or path-like, optional
        The download cache; see :func:`data_dir`.
    base_url, progress
        Passed to :func:`fetch` for a named data set.
    **read_table_kwargs
        ``user_col``, ``item_col``, ``rating_col``, ``timestamp_col``, ``sep``
        for :func:`read_table`. Given for a MovieLens file name they select
        :func:`read_table` instead of the MovieLens reader.

    Returns
    -------
    RawData
        ``ratings`` set, or ``train`` and ``test`` set for a given split.

    Raises
    ------
    UsageError
        ``spec`` is neither a known name nor an existing path, or table
        options were given for a source that is not a table.
    DataError
        The file is malformed (see the readers) or the download failed.
    """
    spec = os.fspath(spec)
    if spec in DATASETS:
        _refuse_table_options(spec, read_table_kwargs)
        path = fetch(spec, data_dir, base_url=base_url, progress=progress)
        return RawData(spec, ratings=DATASETS[spec].reader(path))
    path = _local_path(spec, data_dir)
    if path.is_dir():
        if (path / "train.txt").exists() or (path / "test.txt").exists():
            _refuse_table_options(spec, read_table_kwargs)
            train, test = read_train_test_dir(path)
            return RawData(str(path), train=train, test=test)
        for file_name in _READERS_BY_FILE_NAME:
            if (path / file_name).is_file():
                return RawData(str(path), ratings=_read_file(path / file_name, read_table_kwargs))
        raise DataError(
            f"{path}: holds neither train.txt and test.txt nor any of "
            f"{', '.join(_READERS_BY_FILE_NAME)}"
        )
    return RawData(str(path), ratings=_read_file(path, read_table_kwargs))


def load_ratings(
    spec: PathLike,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    **read_table_kwargs: str | None,
) -> pd.DataFrame:
    """Read one ratings frame given by name or path; see :func:`load` for ``spec``.

    Returns
    -------
    DataFrame
        ``user``, ``item`` and, when present, ``rating`` and ``timestamp``.

    Raises
    ------
    UsageError
        As :func:`load`, and when ``spec`` is a given train/test split (use
        :func:`load` for those).
    DataError
        As :func:`load`.
    """
    raw = load(spec, data_dir, base_url=base_url, progress=progress, **read_table_kwargs)
    if raw.ratings is None:
        raise UsageError(
            f"{raw.source}: is a given train/test split, not one ratings file; "
            f"read it with recae.data.load"
        )
    return raw.ratings


def _local_path(spec: str, data_dir: PathLike | None) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    root = _resolve_data_dir(data_dir)
    if len(path.parts) == 1 and (root / spec).exists():
        return root / spec  # a data set already laid out in the cache, e.g. ml-1m-lcfn
    raise UsageError(
        f"{spec}: no such file, nor a folder of the data directory {root}, "
        f"and not a known data set name (known: {', '.join(DATASETS)})"
    )


def _refuse_table_options(spec: str, options: dict[str, str | None]) -> None:
    if options:
        raise UsageError(
            f"{spec}: {', '.join(options)} apply only to CSV/TSV/Parquet tables "
            f"read with read_table"
        )


def _read_file(path: Path, read_table_kwargs: dict[str, str | None]) -> pd.DataFrame:
    if read_table_kwargs:
        return read_table(path, **read_table_kwargs)
    if path.name in _READERS_BY_FILE_NAME:
        return _READERS_BY_FILE_NAME[path.name](path)
    if path.suffix.lower() == ".txt":
        return read_adjacency(path)
    return read_table(path)


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


def binarize(df: pd.DataFrame, threshold: float = 3.5) -> pd.DataFrame:
    """Keep the rows rated strictly above ``threshold`` (the Mult-VAE paper keeps > 3.5).

    Parameters
    ----------
    df : DataFrame
        ``user``, ``item`` and optionally ``rating``.
    threshold : float
        Ratings ``> threshold`` count as positive feedback.

    Returns
    -------
    DataFrame
        The kept rows, same columns, fresh index; ``df`` itself when it has no
        ``rating`` column (implicit data is already binary).
    """
    if RATING not in df:
        return df
    return df.loc[df[RATING].to_numpy() > threshold].reset_index(drop=True)


def kcore(df: pd.DataFrame, min_user: int = 5, min_item: int = 0) -> pd.DataFrame:
    """Iterative k-core: drop users with < ``min_user`` items and items with < ``min_item`` users.

    Duplicate ``(user, item)`` rows are collapsed first, so counts are of
    distinct partners; the last row wins, by ``timestamp`` when there is one,
    else by position. Removing items can push a user below ``min_user`` and
    vice versa, so both filters repeat until neither removes anything.

    Parameters
    ----------
    df : DataFrame
        ``user``, ``item`` and any other columns (carried along).
    min_user, min_item : int
        Minimum distinct items per user and distinct users per item; 0 or 1
        disables a filter.

    Returns
    -------
    DataFrame
        The surviving rows in their original order, fresh index.

    Raises
    ------
    UsageError
        A threshold is negative.
    """
    if min_user < 0 or min_item < 0:
        raise UsageError(
            f"kcore thresholds must be >= 0, got min_user={min_user}, min_item={min_item}"
        )
    users, _ = pd.factorize(df[USER])
    items, _ = pd.factorize(df[ITEM])
    timestamps = df[TIMESTAMP].to_numpy() if TIMESTAMP in df else None
    keep = _last_of_each_pair(users, items, timestamps)
    while True:
        before = keep.sum()
        for codes, minimum in ((users, min_user), (items, min_item)):
            if minimum > 1:
                counts = np.bincount(codes[keep], minlength=codes.max(initial=-1) + 1)
                keep &= counts[codes] >= minimum
        if keep.sum() == before:
            break
    return df.loc[keep].reset_index(drop=True)


def _last_of_each_pair(
    users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None
) -> np.ndarray:
    """Boolean mask of the rows to keep so that each (user, item) pair appears once.

    The kept row is the pair's last by timestamp, ties (and frames without
    timestamps) broken by position. Works on factorized codes: sorting one
    int64 key is much faster than pandas' duplicated() on two columns.
    """
    key = users.astype(np.int64) * (items.max(initial=-1) + 1) + items
    order = np.argsort(key, kind="stable")  # stable: equal keys stay in file order
    sorted_key = key[order]
    if not (sorted_key[1:] == sorted_key[:-1]).any():
        return np.ones(len(key), dtype=bool)
    if timestamps is not None:
        order = np.lexsort((timestamps, key))  # by key, then timestamp; stable
        sorted_key = key[order]
    is_last = np.append(sorted_key[1:] != sorted_key[:-1], True)
    keep = np.zeros(len(key), dtype=bool)
    keep[order[is_last]] = True
    return keep


def to_interactions(df: pd.DataFrame, source: str = "") -> Interactions:
    """Build the users × items matrix from a frame; see :meth:`Interactions.from_frame`.

    Parameters
    ----------
    df : DataFrame
        ``user`` and ``item`` columns; every pair becomes a 1.0 entry.
    source : str
        Where the data came from, for messages.

    Returns
    -------
    Interactions
        float32 CSR of shape (n_users, n_items), rows and columns in sorted raw-id order.
    """
    return Interactions.from_frame(df, source=source)


@dataclass(frozen=True)
class Interactions:
    """A users × items interaction matrix with the raw ids of its rows and columns.

    Attributes
    ----------
    matrix : float32 CSR, shape (n_users, n_items)
        Row ``u`` is user ``user_ids[u]``, column ``i`` is item ``item_ids[i]``.
    user_ids, item_ids : 1-D arrays
        Raw ids in index order (sorted ascending when built from a frame).
    source : str
        Where the data came from (a data set name or a path), for messages.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    source: str = ""

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    @classmethod
    def from_frame(cls, df: pd.DataFrame, source: str = "", value: str | None = None) -> Interactions:
        """Build from a frame with ``user`` and ``item`` columns (duplicates collapsed).

        ``value`` names a column to use as the matrix entries; by default every
        (user, item) pair is 1.0 (binary implicit feedback).
        """
        users, user_idx = np.unique(df["user"].to_numpy(), return_inverse=True)
        items, item_idx = np.unique(df["item"].to_numpy(), return_inverse=True)
        vals = (
            np.ones(len(df), dtype=np.float32)
            if value is None
            else df[value].to_numpy(dtype=np.float32)
        )
        m = sp.csr_matrix((vals, (user_idx, item_idx)), shape=(len(users), len(items)), dtype=np.float32)
        m.sum_duplicates()
        if value is None:
            m.data[:] = 1.0  # duplicates collapse to one interaction
        m.sort_indices()
        return cls(m, users, items, source)
