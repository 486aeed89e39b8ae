"""Properties of the data readers (recae.data.readers, recae.data.tables) over random files.

Whatever the interactions, written in a reader's format (plain or compressed,
any row order, duplicates, blank lines, either line end), they read back as
the same rows, and the matrix built from what was read holds the same
(raw user, raw item) pairs under the same sorted id maps as one built from
the drawn rows. One malformed line anywhere in a well-formed file gives a
one-line DataError that starts with the file and that line's number (1-based,
a header line counted). Text ids that differ only by surrounding whitespace
are one id, and so are integer ids written with spaces around them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recae.data import (
    read_adjacency,
    read_ml100k,
    read_ml_csv,
    read_ml_dat,
    read_table,
    read_train_test_dir,
    to_interactions,
)
from recae.errors import DataError
from tests.data_helpers import raises

# pandas warns as it casts an out-of-range number to int64, before the error we check.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")

# Modest example counts and small files: the whole file runs in a few seconds.
# Malformed lines come in many kinds, and each example is cheap: more of them.
PROPERTY = settings(max_examples=30, deadline=None)
MALFORMED = settings(max_examples=60, deadline=None)

# Small ids repeat (duplicate pairs, shared users); the others span all of int64.
INT64 = st.one_of(st.integers(0, 20), st.integers(-(2**63), 2**63 - 1))
RATINGS = st.one_of(
    st.sampled_from([0.5, 1.0, 2.5, 4.0, 5.0]), st.floats(allow_nan=False, allow_infinity=False)
)
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
}
SUFFIXES = st.sampled_from(list(COMPRESS))

# Text ids: any printable text (separators, quotes, '#', tabs and other
# scripts included) without surrounding whitespace. A text column holds at
# least one CLEAR id (a character no number has), so that no parser takes
# the column for integers; other ids may look like numbers ("007", "1.5") or
# like pandas' missing-value markers, and stay text.
_ODD = st.one_of(
    st.characters(exclude_categories=("Cs", "Cc")), st.sampled_from(list(',;|"\'#\t :'))
)
_NOT_NUMERIC = st.characters(
    exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters='0123456789+-.eE"'
)
CLEAR_ID = st.builds(
    lambda a, c, b: a + c + b, st.text(_ODD, max_size=4), _NOT_NUMERIC, st.text(_ODD, max_size=4)
).filter(lambda s: s == s.strip())
NA_WORDS = [  # pandas reads these as missing by default
    "NA", "N/A", "n/a", "null", "NULL", "None", "nan", "NaN", "-nan", "<NA>", "#N/A", "1.#IND",
]
TEXT_ID = st.one_of(
    CLEAR_ID,
    st.sampled_from(NA_WORDS),
    st.from_regex(r"0[0-9]{1,3}|-?[0-9]{1,3}\.[0-9]{1,2}", fullmatch=True),
)
# What str.strip() strips; line breaks left out (they end a line).
WHITESPACE = st.text(st.sampled_from([" ", "\t", "\xa0", "\u3000", "\u2003", "\x1f"]), max_size=3)

# Tokens no reader takes where a number is required: curated ones (among them
# what Python's int() and float() take and pandas does not: other scripts'
# digits, "1_0", non-ASCII spaces; numbers just out of int64; an unbalanced
# quote), and random text holding a character no number has.
BAD_INT = st.one_of(
    st.sampled_from(
        ["x", "1.5", "0x10", "\u0661", "\u0663\u0664", "1_0", "nan", "inf", "9223372036854775808",
         "-9223372036854775809", "1e19", "--1", "1-", "e5", "1e", ".", "+", '"7', "7\xa0",
         "\xa07", "7\u3000", "+-1", "5 5"]
    ),
    CLEAR_ID,
)
BAD_FLOAT = st.one_of(
    st.sampled_from(
        ["x", "\u0661", "1_0", "0x1p3", "--1", "1e", ".", "+", "\xa05", "5\u3000", "1.2.3",
         "1e+", "1d3", "5f", '"7']
    ),
    CLEAR_ID,
)
NOT_FINITE = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999"])
EMPTY = st.sampled_from(["", " ", "  "])


def write(folder: str, name: str, text: str, suffix: str = "") -> Path:
    """``text`` as UTF-8 in ``folder/name+suffix``, compressed as the suffix says."""
    path = Path(folder, name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(COMPRESS[suffix](text.encode()))
    return path


def blanks(sep: str) -> list[str]:
    """Lines every reader skips as pandas does: empty, or only spaces and tabs,
    unless tabs delimit fields (or are refused: ratings.dat)."""
    return ["", " ", "  "] + ([] if sep in ("\t", "::") else ["\t", " \t"])


def is_blank(line: str, sep: str) -> bool:
    """Whether ``line`` is one of :func:`blanks` for ``sep``."""
    return not line.strip(" \t") and not (sep in ("\t", "::") and "\t" in line)


@st.composite
def file_text(draw, lines: list[str], header: str | None = None, sep: str = ","):
    """``(text, numbers)``: ``lines`` after the header (if any), joined by a drawn
    line end, blank lines drawn among them, a final line end or not;
    ``numbers[k]`` is the 1-based line number of ``lines[k]``."""
    gaps = st.one_of(st.just([]), st.lists(st.sampled_from(blanks(sep)), min_size=1, max_size=2))
    physical = [] if header is None else [header]
    numbers = []
    for line in lines:
        physical.extend(draw(gaps))
        physical.append(line)
        numbers.append(len(physical))
    physical.extend(draw(gaps))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    final = ending if draw(st.booleans()) else ""
    return ending.join(physical) + final, numbers


@st.composite
def shuffled_with_duplicates(draw, rows: list[tuple]) -> list[tuple]:
    """``rows`` and some of them again (at least one), in a drawn order."""
    again = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=3))
    return draw(st.permutations(rows + again))


def assert_same_interactions(frame: pd.DataFrame, users: list, items: list) -> None:
    """``to_interactions(frame)`` holds the pairs of ``users``/``items``, rows and
    columns in sorted raw-id order (as documented), every entry 1.0."""
    data = to_interactions(frame)
    assert data.user_ids.tolist() == sorted(set(users))
    assert data.item_ids.tolist() == sorted(set(items))
    coo = data.matrix.tocoo()
    pairs = set(zip(data.user_ids[coo.row].tolist(), data.item_ids[coo.col].tolist(), strict=True))
    assert pairs == set(zip(users, items, strict=True))
    assert coo.nnz == len(pairs) and data.matrix.dtype == np.float32
    assert (coo.data == 1.0).all()


def assert_names_line(reader: Callable, path: Path, number: int, where: Path | None = None) -> None:
    """``reader(path)`` raises a one-line DataError starting with ``where`` (default:
    ``path``) and line ``number``."""
    message = raises(DataError, reader, path)
    assert message.startswith(f"{where or path}, line {number}: "), message


# ---------------------------------------------------------------------------
# MovieLens files: u.data, ratings.dat, ratings.csv
# ---------------------------------------------------------------------------

# name: reader, separator, header line
MOVIELENS = {
    "u.data": (read_ml100k, "\t", None),
    "ratings.dat": (read_ml_dat, "::", None),
    "ratings.csv": (read_ml_csv, ",", "userId,movieId,rating,timestamp"),
}
RATING_ROWS = st.lists(st.tuples(INT64, INT64, RATINGS, INT64), min_size=1, max_size=10).flatmap(
    shuffled_with_duplicates
)


@pytest.mark.parametrize("name", list(MOVIELENS))
@PROPERTY
@given(rows=RATING_ROWS, suffix=SUFFIXES, data=st.data())
def test_a_movielens_file_reads_back_as_written(name, rows, suffix, data):
    reader, sep, header = MOVIELENS[name]
    text, _ = data.draw(file_text([sep.join(map(repr, row)) for row in rows], header, sep))
    with tempfile.TemporaryDirectory() as folder:
        frame = reader(write(folder, name, text, suffix))
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame.dtypes.tolist() == [np.int64, np.int64, np.float64, np.int64]
    assert list(frame.itertuples(index=False, name=None)) == rows
    users, items, _, _ = zip(*rows, strict=True)
    assert_same_interactions(frame, list(users), list(items))


@st.composite
def malformed_movielens_line(draw, row: tuple, sep: str) -> str:
    """One line of ``row`` made malformed in a drawn way."""
    fields = [repr(value) for value in row]
    kinds = ["fewer", "more", "bad number", "separator", "empty", "not finite", "quote"]
    how = draw(st.sampled_from(kinds))
    if how == "fewer":
        fields = fields[: draw(st.integers(1, 3))]
    elif how == "more":
        fields += draw(st.lists(st.integers(0, 9).map(str), min_size=1, max_size=2))
    elif how == "bad number":
        at = draw(st.integers(0, 3))
        fields[at] = draw(BAD_FLOAT if at == 2 else BAD_INT)
    elif how == "separator":
        others = [s for s in ["\t", ",", ";", " ", "|", "::", ":"] if s != sep]
        return draw(st.sampled_from(others)).join(fields)
    elif how == "empty":
        fields[draw(st.integers(0, 3))] = draw(EMPTY)
    elif how == "quote":  # unbalanced: a csv reader's record runs on to the end of the file
        at = draw(st.integers(0, 3))
        fields[at] = '"' + fields[at]
    else:
        fields[2] = draw(NOT_FINITE)
    return sep.join(fields)


@pytest.mark.parametrize("name", list(MOVIELENS))
@MALFORMED
@given(rows=RATING_ROWS, suffix=SUFFIXES, data=st.data())
def test_a_malformed_line_in_a_movielens_file_is_named(name, rows, suffix, data):
    reader, sep, header = MOVIELENS[name]
    lines = [sep.join(map(repr, row)) for row in rows]
    at = data.draw(st.integers(0, len(lines)), label="at")
    lines.insert(at, data.draw(malformed_movielens_line(rows[min(at, len(rows) - 1)], sep)))
    text, numbers = data.draw(file_text(lines, header, sep))
    with tempfile.TemporaryDirectory() as folder:
        assert_names_line(reader, write(folder, name, text, suffix), numbers[at])


@pytest.mark.parametrize("name", list(MOVIELENS))
@PROPERTY
@given(rows=RATING_ROWS, data=st.data())
def test_spaces_around_integer_ids_make_no_new_ids(name, rows, data):
    reader, sep, header = MOVIELENS[name]
    def spaced(value: int) -> str:
        pad = st.text(" ", max_size=2)
        return data.draw(pad) + str(value) + data.draw(pad)

    lines = [sep.join([spaced(u), spaced(i), repr(r), spaced(t)]) for u, i, r, t in rows]
    text, _ = data.draw(file_text(lines, header, sep))
    with tempfile.TemporaryDirectory() as folder:
        frame = reader(write(folder, name, text))
    assert list(frame.itertuples(index=False, name=None)) == rows
    users, items, _, _ = zip(*rows, strict=True)
    assert_same_interactions(frame, list(users), list(items))


# ---------------------------------------------------------------------------
# Tables with named columns: CSV/TSV and Parquet (read_table)
# ---------------------------------------------------------------------------

# Header names: ours, the conventional capitalised ones read by default, and
# names the caller must give.
NAMINGS = [
    {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
    {"user": "userId", "item": "movieId", "rating": "Rating", "timestamp": "TIMESTAMP"},
    {"user": "who", "item": "what", "rating": "stars", "timestamp": "when"},
]
SEPARATORS = {",": "r.csv", "\t": "r.tsv", ";": "r.csv", "|": "r.txt"}


@st.composite
def tables(draw, max_rows: int = 8):
    """``(columns, rows, naming)``: our column names (user, item, maybe rating and
    timestamp, maybe an unread "note"), in a drawn order; rows of values for them;
    the table's names for ours. Each id column is all int64 or all text."""
    n = draw(st.integers(1, max_rows))

    def ids() -> list:
        if draw(st.booleans()):
            return draw(st.lists(INT64, min_size=n, max_size=n))
        values = draw(st.lists(TEXT_ID, min_size=n, max_size=n))
        values[draw(st.integers(0, n - 1))] = draw(CLEAR_ID)
        return values

    values = {"user": ids(), "item": ids()}
    optional = {"rating": RATINGS, "timestamp": INT64, "note": st.one_of(TEXT_ID, EMPTY)}
    for column, strategy in optional.items():
        if draw(st.booleans()):
            values[column] = draw(st.lists(strategy, min_size=n, max_size=n))
    columns = draw(st.permutations(list(values)))
    rows = draw(shuffled_with_duplicates(list(zip(*(values[c] for c in columns), strict=True))))
    return columns, rows, {**draw(st.sampled_from(NAMINGS)), "note": "note"}


def csv_line(fields: list, sep: str) -> str:
    """One line of a delimited file, quoted as csv writes it; floats as repr."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="").writerow(
        [repr(v) if isinstance(v, float) else v for v in fields]
    )
    return buffer.getvalue()


def read_named(path: Path, naming: dict[str, str], columns: list[str]) -> pd.DataFrame:
    """read_table with the table's names; rating and timestamp named only where
    read_table's defaults would not find them."""
    named = {}
    if naming["rating"] == "stars":
        named = {f"{c}_col": naming[c] for c in ("rating", "timestamp") if c in columns}
    return read_table(path, naming["user"], naming["item"], **named)


def expected_frame(columns: list[str], rows: list[tuple]) -> dict[str, list]:
    """What read_table returns for ``rows`` of ``columns``: our columns in order, by name."""
    by_name = dict(zip(columns, zip(*rows, strict=True), strict=True))
    return {c: list(by_name[c]) for c in ("user", "item", "rating", "timestamp") if c in by_name}


def assert_read_as(frame: pd.DataFrame, expected: dict[str, list]) -> None:
    assert list(frame.columns) == list(expected)
    for column, values in expected.items():
        assert frame[column].tolist() == values, column
        if column in ("user", "item") and isinstance(values[0], str):
            assert pd.api.types.is_string_dtype(frame[column]), column
        else:
            assert frame[column].dtype == (np.float64 if column == "rating" else np.int64), column


@PROPERTY
@given(table=tables(), sep=st.sampled_from(list(SEPARATORS)), suffix=SUFFIXES, data=st.data())
def test_a_delimited_table_reads_back_as_written(table, sep, suffix, data):
    columns, rows, naming = table
    header = sep.join(naming[c] for c in columns)
    text, _ = data.draw(file_text([csv_line(list(row), sep) for row in rows], header, sep))
    with tempfile.TemporaryDirectory() as folder:
        frame = read_named(write(folder, SEPARATORS[sep], text, suffix), naming, columns)
    expected = expected_frame(columns, rows)
    assert_read_as(frame, expected)
    assert_same_interactions(frame, expected["user"], expected["item"])


def parquet_frame(columns: list[str], rows: list[tuple], naming: dict[str, str]) -> pd.DataFrame:
    """``rows`` of ``columns`` as a frame with the table's column names."""
    by_name = dict(zip(columns, zip(*rows, strict=True), strict=True))
    return pd.DataFrame({naming[c]: list(by_name[c]) for c in columns})


@PROPERTY
@given(table=tables())
def test_a_parquet_table_reads_back_as_written(table):
    columns, rows, naming = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "r.parquet")
        parquet_frame(columns, rows, naming).to_parquet(path)
        frame = read_named(path, naming, columns)
    expected = expected_frame(columns, rows)
    assert_read_as(frame, expected)
    assert_same_interactions(frame, expected["user"], expected["item"])


@st.composite
def malformed_table_line(draw, row: tuple, columns: list[str], sep: str) -> str:
    """One line of ``row`` (of ``columns``) made malformed in a drawn way."""
    fields = list(row)
    kinds = ["fewer", "separator", "empty id"]
    if "rating" in columns:
        kinds += ["bad rating", "not finite"]
    if "timestamp" in columns:
        kinds += ["bad timestamp"]
    how = draw(st.sampled_from(kinds))
    if how == "fewer":  # cut before the last column read
        last = max(columns.index(c) for c in columns if c != "note")
        fields = fields[: draw(st.integers(1, last))]
    elif how == "separator":
        # numbers joined by another separator: one field, the other columns missing
        other = draw(st.sampled_from([s for s in SEPARATORS if s != sep]))
        numbers = st.lists(st.integers(0, 99).map(str), min_size=2, max_size=len(fields) + 1)
        return other.join(draw(numbers))
    elif how == "empty id":
        fields[columns.index(draw(st.sampled_from(["user", "item"])))] = draw(EMPTY)
    elif how == "bad rating":
        fields[columns.index("rating")] = draw(BAD_FLOAT)
    elif how == "not finite":
        fields[columns.index("rating")] = draw(NOT_FINITE)
    else:
        fields[columns.index("timestamp")] = draw(BAD_INT)
    return csv_line(fields, sep)


@MALFORMED
@given(table=tables(), sep=st.sampled_from(list(SEPARATORS)), suffix=SUFFIXES, data=st.data())
def test_a_malformed_line_in_a_delimited_table_is_named(table, sep, suffix, data):
    columns, rows, naming = table
    header = sep.join(naming[c] for c in columns)
    lines = [csv_line(list(row), sep) for row in rows]
    at = data.draw(st.integers(0, len(lines)), label="at")
    bad = data.draw(malformed_table_line(rows[min(at, len(rows) - 1)], columns, sep))
    assume(not is_blank(bad, sep))  # a line cut to one blank field is skipped, as pandas does
    lines.insert(at, bad)
    text, numbers = data.draw(file_text(lines, header, sep))
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, SEPARATORS[sep], text, suffix)
        assert_names_line(lambda p: read_named(p, naming, columns), path, numbers[at])


@PROPERTY
@given(table=tables(), data=st.data())
def test_a_missing_or_infinite_value_in_a_parquet_table_is_named_by_row(table, data):
    columns, rows, naming = table
    frame = parquet_frame(columns, rows, naming)
    at = data.draw(st.integers(0, len(rows) - 1), label="at")
    column = data.draw(st.sampled_from([c for c in columns if c in ("user", "item", "rating")]))
    frame[naming[column]] = frame[naming[column]].astype(object if column != "rating" else float)
    frame.loc[at, naming[column]] = data.draw(
        st.sampled_from([np.nan, np.inf, -np.inf] if column == "rating" else [None])
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "r.parquet")
        frame.to_parquet(path)
        message = raises(DataError, read_named, path, naming, columns)
    assert message.startswith(f"{path}, row {at} (from 0): column {naming[column]} is "), message


@PROPERTY
@given(table=tables(), sep=st.sampled_from(list(SEPARATORS)), parquet=st.booleans(), data=st.data())
def test_whitespace_around_text_ids_makes_no_new_ids(table, sep, parquet, data):
    columns, rows, naming = table
    def pad(column: str, value):
        if column in ("user", "item") and isinstance(value, str):
            return data.draw(WHITESPACE) + value + data.draw(WHITESPACE)
        return value

    padded = [tuple(pad(c, v) for c, v in zip(columns, row, strict=True)) for row in rows]
    with tempfile.TemporaryDirectory() as folder:
        if parquet:
            path = Path(folder, "r.parquet")
            parquet_frame(columns, padded, naming).to_parquet(path)
        else:
            header = sep.join(naming[c] for c in columns)
            lines = [csv_line(list(row), sep) for row in padded]
            path = write(folder, SEPARATORS[sep], data.draw(file_text(lines, header, sep))[0])
        frame = read_named(path, naming, columns)
    expected = expected_frame(columns, rows)
    assert_read_as(frame, expected)
    assert_same_interactions(frame, expected["user"], expected["item"])


# ---------------------------------------------------------------------------
# Adjacency lists and given train/test folders
# ---------------------------------------------------------------------------

ADJACENCY = st.lists(st.tuples(INT64, st.lists(INT64, max_size=5)), min_size=1, max_size=8)
BAD_TOKEN = st.one_of(
    st.sampled_from(
        ["x", "1.5", "2.0", "1e3", "0x10", "\u0661", "1_0", "+1_0", "nan", "9223372036854775808",
         "-9223372036854775809", "1,2", "--1", "+", "-", "7\xa0"]
    ),
    CLEAR_ID,
)


@st.composite
def adjacency_lines(draw, lines: list[tuple[int, list[int]]]) -> list[str]:
    """Each ``(user, items)`` as ``user item item ...``, tokens separated by drawn
    whitespace, with leading and trailing whitespace or not."""
    gap = st.sampled_from([" ", "\t", "  ", " \t "])
    edge = st.sampled_from(["", "", " ", "\t"])
    out = []
    for user, items in lines:
        line = str(user)
        for item in items:
            line += draw(gap) + str(item)
        out.append(draw(edge) + line + draw(edge))
    return out


def adjacency_pairs(lines: list[tuple[int, list[int]]]) -> list[tuple[int, int]]:
    return [(user, item) for user, items in lines for item in items]


@PROPERTY
@given(lines=ADJACENCY, suffix=SUFFIXES, data=st.data())
def test_an_adjacency_list_reads_back_as_written(lines, suffix, data):
    text, _ = data.draw(file_text(data.draw(adjacency_lines(lines)), sep="whitespace"))
    with tempfile.TemporaryDirectory() as folder:
        frame = read_adjacency(write(folder, "train.txt", text, suffix))
    pairs = adjacency_pairs(lines)
    assert list(frame.columns) == ["user", "item"]
    assert frame.dtypes.tolist() == [np.int64, np.int64]
    assert list(frame.itertuples(index=False, name=None)) == pairs
    assert_same_interactions(frame, [u for u, _ in pairs], [i for _, i in pairs])


@PROPERTY
@given(train=ADJACENCY, test=ADJACENCY, data=st.data())
def test_a_train_test_folder_reads_back_as_written(train, test, data):
    with tempfile.TemporaryDirectory() as folder:
        for name, lines in (("train.txt", train), ("test.txt", test)):
            text, _ = data.draw(file_text(data.draw(adjacency_lines(lines)), sep="whitespace"))
            write(folder, f"split/{name}", text)
        read = read_train_test_dir(Path(folder, "split"))
    for frame, lines in zip(read, (train, test), strict=True):
        assert list(frame.itertuples(index=False, name=None)) == adjacency_pairs(lines)


@MALFORMED
@given(lines=ADJACENCY, in_folder=st.sampled_from(["", "train.txt", "test.txt"]), data=st.data())
def test_a_malformed_line_in_an_adjacency_list_is_named(lines, in_folder, data):
    text_lines = data.draw(adjacency_lines(lines))
    at = data.draw(st.integers(0, len(text_lines)), label="at")
    tokens = data.draw(st.lists(st.integers(0, 99).map(str), min_size=1, max_size=4))
    tokens.insert(data.draw(st.integers(0, len(tokens))), data.draw(BAD_TOKEN))
    text_lines.insert(at, " ".join(tokens))
    text, numbers = data.draw(file_text(text_lines, sep="whitespace"))
    with tempfile.TemporaryDirectory() as folder:
        if not in_folder:
            path = write(folder, "train.txt", text, data.draw(SUFFIXES))
            assert_names_line(read_adjacency, path, numbers[at])
            return
        good = "\n".join(data.draw(adjacency_lines(lines)))
        other = "test.txt" if in_folder == "train.txt" else "train.txt"
        write(folder, f"split/{other}", good)
        bad = write(folder, f"split/{in_folder}", text)
        assert_names_line(read_train_test_dir, bad.parent, numbers[at], where=bad)
