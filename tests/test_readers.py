"""Tests for recae.data.readers: MovieLens files, adjacency lists, given splits, and the
error messages of every reader (tables included): file, line and value named."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recae.data import (
    read_adjacency,
    read_ml100k,
    read_ml_csv,
    read_ml_dat,
    read_table,
    read_train_test_dir,
)
from recae.errors import DataError
from tests.data_helpers import EXPECTED_SMALL, raises, write_file


def existing(path: Path) -> Path:
    """``path``, or skip the test where this machine's copy of the shared data lacks it."""
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""
    return functools.partial(write_file, tmp_path)


# ---------------------------------------------------------------------------
# Readers on small files
# ---------------------------------------------------------------------------


def test_read_ml100k(write):
    path = write("u.data", "1\t10\t4\t100\n1\t20\t2.5\t200\n2\t10\t5\t300\n")
    pd.testing.assert_frame_equal(read_ml100k(path), EXPECTED_SMALL)


def test_read_ml_dat(write):
    path = write("ratings.dat", "1::10::4::100\n1::20::2.5::200\n2::10::5::300\n")
    pd.testing.assert_frame_equal(read_ml_dat(path), EXPECTED_SMALL)


def test_read_ml_csv_accepts_crlf_and_no_final_newline(write):
    text = "userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n1,20,2.5,200\r\n2,10,5.0,300"
    pd.testing.assert_frame_equal(read_ml_csv(write("ratings.csv", text)), EXPECTED_SMALL)


def test_read_adjacency_allows_users_without_items_and_blank_lines(write):
    path = write("train.txt", "0 5 6 7\r\n\n1\n2 5\n")
    frame = read_adjacency(path)
    assert frame.values.tolist() == [[0, 5], [0, 6], [0, 7], [2, 5]]
    assert frame.dtypes.tolist() == [np.int64, np.int64]


def test_read_train_test_dir(write, tmp_path):
    write("split/train.txt", "0 1 2\n1 2\n")
    write("split/test.txt", "0 3\n1 0\n")
    train, test = read_train_test_dir(tmp_path / "split")
    assert train.values.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert test.values.tolist() == [[0, 3], [1, 0]]


# ---------------------------------------------------------------------------
# Readers on the real files (skipped where the shared copy is absent)
# ---------------------------------------------------------------------------


def test_real_ml100k(shared_datasets):
    frame = read_ml100k(shared_datasets / "ml-100k/u.data")
    assert (len(frame), frame["user"].nunique(), frame["item"].nunique()) == (100_000, 943, 1_682)
    assert frame["rating"].between(1, 5).all()


def test_real_ml_latest_small_2016_edition(shared_datasets):
    frame = read_ml_csv(existing(shared_datasets / "ml-latest-small/ratings.csv"))
    assert (len(frame), frame["user"].nunique(), frame["item"].nunique()) == (100_004, 671, 9_066)


def test_real_ml1m_lcfn_split(shared_datasets):
    train, test = read_train_test_dir(existing(shared_datasets / "ml-1m-lcfn"))
    assert (len(train), len(test)) == (796_244, 99_455)
    assert pd.concat([train["user"], test["user"]]).nunique() == 6_022


# ---------------------------------------------------------------------------
# Bad input: every message names the file and the line or value
# ---------------------------------------------------------------------------


def read_rated_table(path):
    return read_table(path, rating_col="rating")


BAD_FILES = [
    # reader, file name, content, what the message must say besides the file name
    (read_ml100k, "u.data", "", ["empty file"]),
    (read_ml_dat, "ratings.dat", "\n\n", ["empty file"]),
    (read_ml_csv, "ratings.csv", "", ["empty file"]),
    (read_ml_csv, "ratings.csv", "userId,movieId,rating,timestamp\n", ["no data rows"]),
    (read_adjacency, "train.txt", " \n", ["empty file"]),
    (read_table, "r.csv", "", ["empty file"]),
    # missing or misnamed columns list what was found
    (
        read_ml_csv,
        "ratings.csv",
        "userId,movieId,score,timestamp\n1,2,3,4\n",
        ["line 1", "missing column(s) rating", "found userId, movieId, score, timestamp"],
    ),
    (read_table, "r.csv", "uid,iid\n1,2\n", ["missing column(s) user, item", "found uid, iid"]),
    # non-numeric ids and ratings: line number and value
    (read_ml100k, "u.data", "1\t2\t3\t4\n1\t2\t3\t4\nx\t2\t3\t4\n", ["line 3", "user 'x'"]),
    (
        read_ml_dat,
        "ratings.dat",
        "1::2::3::4\n1::i9::3::4\n",
        ["line 2", "item 'i9' is not an integer"],
    ),
    (
        read_ml_csv,
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,2,abc,4\n",
        ["line 2", "'abc'"],
    ),
    (read_ml100k, "u.data", "1\t2\t3\t4\n1\t2\t3\t4.5\n", ["line 2", "timestamp '4.5'"]),
    (read_ml100k, "u.data", "1\t2\t3\t4\n99999999999999999999\t2\t3\t4\n", ["line 2", "64 bits"]),
    (read_ml_dat, "ratings.dat", "1::2::3::4\n1::2::3::4:5\n", ["line 2", "timestamp '4:5'"]),
    # NaN, empty and infinite ratings
    (read_ml100k, "u.data", "1\t2\t3\t4\n1\t2\t\t4\n", ["line 2", "rating is empty"]),
    (
        read_ml_csv,
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,2,nan,4\n",
        ["line 2", "'nan'"],
    ),
    (
        read_ml_dat,
        "ratings.dat",
        "1::2::3::4\n\n1::2::inf::4\n",
        ["line 3", "'inf' is not a finite"],
    ),
    (read_rated_table, "r.csv", "user,item,rating\n1,2,3\n1,2,\n", ["line 3", "rating is empty"]),
    (read_table, "r.csv", "user,item\na,b\n,b\n", ["line 3", "user is empty"]),
    # wrong delimiter, and wrong field counts
    (
        read_ml_dat,
        "ratings.dat",
        "1,2,3,4\n",
        ["line 1", "1 column found, expected 4 separated by '::'", "comma-separated"],
    ),
    (
        read_ml_dat,
        "ratings.dat",
        "1\t2\t3\t4\n",
        ["line 1", "1 column found", "'::'", "tab-separated"],
    ),
    (read_ml100k, "u.data", "1,2,3,4\n", ["line 1", "1 column found", "by tab"]),
    (
        read_ml100k,
        "u.data",
        "1::2::3::4\n",
        ["line 1", "1 column found", "by tab", "'::'-separated"],
    ),
    (read_ml_csv, "ratings.csv", "userId;movieId;rating;timestamp\n", ["line 1", "1 column found"]),
    (read_ml100k, "u.data", "1\t2\t3\t4\n" * 4 + "1\t2\t3\t4\t5\n", ["line 5", "5 columns found"]),
    (read_ml100k, "u.data", "1\t2\t3\t4\n1\t2\t3\n", ["line 2", "3 columns found"]),
    # what Python's int() and float() take and pandas does not; int64's least value
    (read_ml100k, "u.data", "1\t2\t3\t4\n\u0661\t2\t3\t4\n", ["line 2", "is not an integer"]),
    (read_ml100k, "u.data", "1\t2\t1_0\t4\n", ["line 1", "rating '1_0' is not a number"]),
    (read_ml100k, "u.data", "1\t2\t3\t4\xa0\n", ["line 1", "is not an integer"]),
    (read_ml100k, "u.data", "-9223372036854775808\t2\t3\t4\n1\tx\t3\t4\n", ["line 2", "'x'"]),
    # an unbalanced quote is named by the line it opens on; blank lines are skipped
    (read_ml100k, "u.data", '1\t"2\t3\t4\n1\t2\t3\t4\n', ["line 1", "quoted field runs to the end"]),
    (
        read_ml_csv,
        "ratings.csv",
        'userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,"4',
        ["line 3", "quoted field runs to the end"],
    ),
    (read_ml100k, "u.data", "1\t2\t3\t4\n \n1\tx\t3\t4\n", ["line 3", "'x'"]),
    (read_ml_dat, "ratings.dat", "1::2::3::4\n\t\n1::2::3::4\n", ["line 2", "1 column found"]),
    (read_rated_table, "r.csv", "user,item,rating\n1,2,3\n\t\n1,2,x\n", ["line 4", "'x'"]),
    # a short first line in a table
    (read_table, "r.csv", "user,note,item\n0,x\n0,y,z\n", ["line 2", "item is missing"]),
    # adjacency lists
    (read_adjacency, "train.txt", "0 1 2\n1 a 3\n", ["line 2", "'a' is not a 64-bit integer"]),
    (read_adjacency, "train.txt", "0 1_0\n", ["line 1", "'1_0' is not a 64-bit integer"]),
    (read_adjacency, "train.txt", "-9223372036854775808 1\n2 x\n", ["line 2", "'x'"]),
    (read_adjacency, "train.txt", "0 1 2\n\n1 2.0\n", ["line 3", "'2.0'"]),
    (read_adjacency, "test.txt", "0 99999999999999999999\n", ["line 1", "64-bit integer"]),
]


@pytest.mark.parametrize(
    ("reader", "name", "text", "fragments"),
    BAD_FILES,
    ids=[f"{case[0].__name__}-{i}" for i, case in enumerate(BAD_FILES)],
)
def test_bad_input_names_file_line_and_value(write, reader, name, text, fragments):
    path = write(name, text)
    message = raises(DataError, reader, path)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "reader", [read_ml100k, read_ml_dat, read_ml_csv, read_table, read_adjacency]
)
def test_missing_file(tmp_path, reader):
    message = raises(DataError, reader, tmp_path / "nothing.here")
    assert "nothing.here" in message and "no such file" in message


def test_train_test_dir_missing_a_file(write, tmp_path):
    write("split/train.txt", "0 1\n")
    message = raises(DataError, read_train_test_dir, tmp_path / "split")
    assert "split" in message and "missing test.txt" in message
