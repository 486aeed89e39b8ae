"""Parsing delimited text files fast, and naming the first bad line when that fails.

Every delimited reader takes the same two steps: a vectorized pandas parse
with explicit dtypes (the C engine reads ML-20M's 20M rows in seconds), and,
only when that parse fails or yields a value we reject, a line-by-line scan
whose only job is to find the first offending line and say what is wrong
with it. The scan applies the same rules as the fast path, so it names the
line pandas choked on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from recae.data.compression import pandas_compression, stream_errors, text_lines
from recae.data.schema import invalid_values
from recae.errors import DataError

# pandas' int64 parser takes "+5", " 5" and "5.0"; the scan must accept the
# same spellings or it would blame a harmless line before the bad one. pandas
# reads ASCII digits and spaces only, where Python's int() and float() also
# take other scripts' digits, non-ASCII spaces and "1_000": the scan refuses
# those too, or a line pandas refused would pass the scan unnamed.
_INT_RE = re.compile(r"\s*[+-]?\d+(\.0*)?\s*", re.ASCII)


def fits_int64(value: int) -> bool:
    """Whether the integer ``value`` fits in int64: -2**63 <= value < 2**63."""
    return -(2**63) <= value < 2**63


Source = Path | io.BytesIO


@dataclass(frozen=True)
class Layout:
    """What a delimited file must look like: used for parsing and for messages.

    ``columns`` are the output names of the fields to check and ``positions``
    their indices in a line (``None``: every field, in order, and the count
    must match exactly); ``width`` is the number of fields a header names,
    when ``positions`` picks some of them. ``kinds`` says what each holds: ``"int"`` (64-bit
    integer), ``"float"`` (finite number) or ``"id"`` (any non-empty text).
    ``sep`` is one character, ``"::"`` or ``"whitespace"``; ``sep_name``
    names it in messages; ``expected`` describes a valid line.
    """

    sep: str
    sep_name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    expected: str
    header_lines: int = 0
    positions: tuple[int, ...] | None = None
    width: int | None = None


def looks_like(line: str, sep: str) -> str:
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
        if not fits_int64(int(value.strip().split(".")[0])):
            return f"{value.strip()!r} does not fit in 64 bits"
    elif kind == "float":
        try:
            if not value.isascii() or "_" in value:
                raise ValueError(value)
            number = float(value)
        except ValueError:
            return f"{value.strip()!r} is not a number"
        if not math.isfinite(number):
            return f"{value.strip()!r} is not a finite number"
    return None


def _blank(line: str, sep: str) -> bool:
    """Whether pandas skips ``line`` as blank: nothing but spaces and tabs, and no
    tab where tabs delimit fields (``"::"`` is read as a tab; see ``read_ml_dat``)."""
    body = line.rstrip("\r\n")
    return not body.strip(" \t") and not (sep in ("\t", "::") and "\t" in body)


# A line read after the file's last: a record of its own, unless the file ends
# inside a quoted field (pandas: "EOF inside string"), whose record then takes it.
_END = '\x00"'


def _remember(lines: Iterator[str], last: list[str]) -> Iterator[str]:
    """``lines``, each also left in ``last[0]`` as it is handed on."""
    for line in lines:
        last[:] = [line]
        yield line


class Record(NamedTuple):
    """One record of a delimited file: the line it starts on, its fields, and
    False for ``closed`` when a quoted field in it runs to the end of the file
    (which pandas refuses)."""

    number: int
    fields: list[str]
    closed: bool = True


def records(path: Path, sep: str) -> Iterator[Record]:
    """Each record of ``path``, skipping the lines pandas skips: lines of nothing
    but spaces and tabs (:func:`_blank`), empty ones included."""
    with contextlib.closing(text_lines(path)) as lines:
        if len(sep) == 1:
            # One reader for the whole file: it honours quotes (a quoted field
            # may span lines) and counts physical lines, as pandas does. A
            # record is named by its first line: after an unbalanced quote the
            # reader's own count is the end of the file.
            last = [""]
            reader = csv.reader(_remember(itertools.chain(lines, [_END]), last), delimiter=sep)
            start = 1
            for fields in reader:
                if last[0] == _END:  # the reader has taken the line after the file's last
                    if fields != [_END]:
                        fields[-1] = fields[-1].removesuffix(_END[0])
                        yield Record(start, fields, closed=False)
                    return
                if fields and not (reader.line_num == start and _blank(last[0], sep)):
                    yield Record(start, fields)
                start = reader.line_num + 1
            return
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            fields = line.split() if sep == "whitespace" else line.split(sep)
            if fields and not _blank(line, sep):
                yield Record(number, fields)


def header(path: Path, sep: str) -> list[str]:
    """The first record of ``path``, split by ``sep`` (DataError when there is none)."""
    for record in records(path, sep):
        return [field.strip() for field in record.fields]
    raise DataError(f"{path}: empty file; expected a header line naming the columns")


def _locate(path: Path, layout: Layout) -> DataError | None:
    """Scan ``path`` for the first record that breaks ``layout``; None if all pass."""
    n_fields = len(layout.columns)
    positions = layout.positions or range(n_fields)
    checks = list(zip(positions, layout.columns, layout.kinds, strict=True))
    for number, fields, closed in records(path, layout.sep):
        if number <= layout.header_lines:
            continue
        where = f"{path}, line {number}"
        if not closed:
            return DataError(
                f"{where}: a quoted field runs to the end of the file (no closing '\"'); "
                f"expected {layout.expected}"
            )
        if layout.positions is None and len(fields) != n_fields:
            noun = "column" if len(fields) == 1 else "columns"
            hint = looks_like(fields[0], layout.sep) if len(fields) == 1 else ""
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


def parse_failed(path: Path, layout: Layout, error: Exception | None) -> DataError:
    """The error to raise when the fast parse failed or produced a rejected value."""
    located = _locate(path, layout)
    if located is not None:
        return located
    # The scan found nothing pandas would object to: report pandas' own words.
    detail = str(error).strip().splitlines()[0] if error else "unreadable"
    return DataError(f"{path}: cannot parse ({detail}); expected {layout.expected}")


def read_csv(
    source: Source, layout: Layout, dtypes: dict[int, type], sep: str | None = None
) -> pd.DataFrame:
    """The fast path: ``pd.read_csv`` with explicit dtypes, columns named as ours.

    ``dtypes`` is keyed by a field's position in a line; ``sep`` is the
    delimiter in ``source`` when it differs from the file's own (``layout.sep``).
    Raises what pandas raises, and ValueError for a wrong number of columns.
    """
    sep = sep or layout.sep
    with stream_errors(source):
        frame = pd.read_csv(
            source,
            sep=r"\s+" if sep == "whitespace" else sep,
            header=None,
            skiprows=layout.header_lines,
            usecols=list(layout.positions) if layout.positions is not None else None,
            # The header's width, not the first line's: a short first line
            # would leave pandas without the columns asked for (a KeyError).
            names=list(range(layout.width)) if layout.width else None,
            index_col=False,
            dtype=dtypes,
            # Only an empty field is missing: "NA", "null", "None", ... are
            # text ids, and as numbers they fail to parse (the scan names them).
            keep_default_na=False,
            na_values=[""],
            engine="c",
            compression=pandas_compression(source),
        )
    if layout.positions is not None:
        frame = frame[list(layout.positions)]  # pandas returns file order, not usecols order
    elif frame.shape[1] != len(layout.columns):
        raise ValueError(f"{frame.shape[1]} columns, expected {len(layout.columns)}")
    frame.columns = list(layout.columns)
    return frame


def parse(
    source: Source,
    path: Path,
    layout: Layout,
    dtypes: dict[int, type],
    sep: str | None = None,
) -> pd.DataFrame:
    """:func:`read_csv`, raising DataError that names the offending line.

    ``path`` is the file ``source`` was read from, for messages and the scan.
    Returns a frame with at least one row.
    """
    try:
        frame = read_csv(source, layout, dtypes, sep)
    except pd.errors.EmptyDataError:
        what = "no data rows after the header" if layout.header_lines else "empty file"
        raise DataError(f"{path}: {what}; expected {layout.expected}") from None
    except (ValueError, OverflowError) as error:  # ParserError is a ValueError
        raise parse_failed(path, layout, error) from None
    if frame.empty:
        raise DataError(f"{path}: no data rows; expected {layout.expected}")
    return frame


def check_values(frame: pd.DataFrame, path: Path, layout: Layout) -> pd.DataFrame:
    """``frame`` when every value passes :func:`~recae.data.schema.invalid_values`.

    pandas reads an empty field as NaN (in a text column too) and "inf" as
    infinity in a float column; we do not accept them as ratings or ids, so
    the scan is asked to name the line.
    """
    if any(invalid_values(frame[column], column).any() for column in frame.columns):
        raise parse_failed(path, layout, None)
    return frame
