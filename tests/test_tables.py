"""Tests for recae.data.tables: CSV/TSV/Parquet tables with named columns."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from recae.data import normalize_ids, read_table
from recae.errors import DataError, UsageError
from tests.data_helpers import EXPECTED_SMALL, raises, write_file


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""
    return functools.partial(write_file, tmp_path)


def test_read_table_named_columns_and_omitted_optional_ones(write):
    path = write("r.csv", "ts,who,what,stars,extra\n100,1,10,4,x\n200,1,20,2.5,y\n300,2,10,5,z\n")
    full = read_table(path, "who", "what", rating_col="stars", timestamp_col="ts")
    pd.testing.assert_frame_equal(full, EXPECTED_SMALL)
    ids_only = read_table(path, "who", "what")
    assert list(ids_only.columns) == ["user", "item"]
    assert ids_only["user"].dtype == np.int64


def test_read_table_keeps_string_ids_as_read(write):
    path = write("r.tsv", "user\titem\nu1\t007\nu2\tx\n")
    frame = read_table(path)
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["item"].tolist() == ["007", "x"]  # one id is not an integer: all stay text


def test_pandas_missing_value_markers_are_text_ids(write):
    frame = read_table(write("r.csv", "user,item\nNA,null\nNone,nan\n"))
    assert frame["user"].tolist() == ["NA", "None"] and frame["item"].tolist() == ["null", "nan"]


def test_read_table_reads_each_id_column_by_its_own_ids(write):
    frame = read_table(write("r.tsv", "user\titem\nu1\t007\nu2\t10\n"))
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["item"].tolist() == [7, 10] and frame["item"].dtype == np.int64


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.csv", "user,item\n1,2\n"),
        ("a.tsv", "user\titem\n1\t2\n"),
        ("semi.csv", "user;item\n1;2\n"),
        ("a.dat", "user item\n1  2\n"),
    ],
)
def test_read_table_sniffs_the_delimiter(write, name, text):
    assert read_table(write(name, text)).values.tolist() == [[1, 2]]


def test_read_table_parquet(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame(
        {
            "u": np.array([1, 2], dtype=np.int32),
            "i": ["a", "b"],
            "r": np.array([1, 5], dtype=np.int8),
            "t": pd.to_datetime(["1970-01-01 00:01:40", "1970-01-01 00:03:20"]),
        }
    ).to_parquet(path)
    with pytest.warns(UserWarning, match="Unix seconds"):
        frame = read_table(path, "u", "i", rating_col="r", timestamp_col="t")
    assert frame["user"].dtype == np.int64
    assert frame["item"].tolist() == ["a", "b"]
    assert frame["rating"].dtype == np.float64
    assert frame["timestamp"].tolist() == [100, 200]


def test_read_table_refuses_one_column_named_for_two_roles(write):
    path = write("r.csv", "user,item,rating\n1,2,5\n")
    assert raises(UsageError, read_table, path, "user", "user") == "column 'user' is named as both the user and the item column"
    assert "both the user and the rating column" in raises(UsageError, read_table, path, rating_col="user")


def test_read_table_rejects_multi_character_separators(write):
    assert "'::'" in raises(UsageError, read_table, write("r.txt", "user::item\n1::2\n"), sep="::")


def test_a_parquet_file_damaged_inside_is_named_in_one_line(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": np.arange(500), "item": np.arange(500) % 7}).to_parquet(path)
    data = bytearray(path.read_bytes())
    data[100:300] = bytes(200)  # the footer (the schema) stays readable
    path.write_bytes(bytes(data))
    assert raises(DataError, read_table, path).startswith(f"{path}: not a readable Parquet file (")


def test_parquet_missing_column_and_nan_rating(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 2], "item": [3, 4], "r": [1.0, np.nan]}).to_parquet(path)
    assert "found user, item, r" in raises(DataError, read_table, path, rating_col="stars")
    message = raises(DataError, read_table, path, rating_col="r")
    assert "r.parquet" in message and "row 1" in message and "nan" in message


def test_read_table_reads_a_conventionally_named_rating_and_timestamp(write, tmp_path):
    path = write("r.csv", "user,item,Rating,timestamp,stars\n1,10,4,100,1\n1,20,2.5,200,1\n2,10,5,300,1\n")
    pd.testing.assert_frame_equal(read_table(path), EXPECTED_SMALL)
    pd.read_csv(path).to_parquet(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "r.parquet"), EXPECTED_SMALL)
    assert read_table(path, rating_col="stars")["rating"].tolist() == [1.0, 1.0, 1.0]  # named wins
    assert list(read_table(path, rating_col="", timestamp_col="").columns) == ["user", "item"]


def test_text_ids_are_read_without_surrounding_whitespace(write, tmp_path):
    path = write("r.csv", "user,item\n u1 ,a\nu1, a\t\nu2,b \n")
    frame = read_table(path)
    assert frame["user"].tolist() == ["u1", "u1", "u2"]
    assert frame["item"].tolist() == ["a", "a", "b"]
    pd.DataFrame({"user": [" u1", "u1 "], "item": ["a", " a"]}).to_parquet(tmp_path / "r.parquet")
    parquet = read_table(tmp_path / "r.parquet")
    assert parquet["user"].tolist() == ["u1", "u1"] and parquet["item"].tolist() == ["a", "a"]


def test_normalize_ids_strips_text_and_leaves_other_ids_alone():
    assert normalize_ids(np.array([" a", "b\t"])).tolist() == ["a", "b"]
    assert normalize_ids([" a", 7, None]).tolist() == ["a", 7, None]
    series = pd.Series([" x ", "y"], index=[3, 4])
    pd.testing.assert_series_equal(normalize_ids(series), pd.Series(["x", "y"], index=[3, 4]))
    integers = np.array([1, 2], dtype=np.int64)
    assert normalize_ids(integers) is integers
