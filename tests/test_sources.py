"""Tests for recae.data.sources: load and load_ratings, one entry point for names and paths."""

from __future__ import annotations

import functools

import pytest

from recae.data import RawData, binarize, load, load_ratings
from recae.errors import DataError, UsageError
from tests.data_helpers import FAKE_U_DATA, raises, write_file


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""
    return functools.partial(write_file, tmp_path)


def test_load_resolves_directories_files_and_formats(write, tmp_path):
    write("ml/u.data", FAKE_U_DATA)
    assert len(load(str(tmp_path / "ml"), tmp_path).ratings) == 3
    csv_path = write("x/ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n")
    assert load_ratings(str(csv_path), tmp_path)["item"].tolist() == [2]
    adjacency = write("a.txt", "0 1 2\n")
    assert load_ratings(str(adjacency), tmp_path).values.tolist() == [[0, 1], [0, 2]]
    table = write("t.csv", "u,i\n5,6\n")
    assert load_ratings(str(table), tmp_path, user_col="u", item_col="i").values.tolist() == [
        [5, 6]
    ]


def test_load_given_split_by_path_or_by_folder_name_in_the_data_dir(write, tmp_path):
    write("cache/my-split/train.txt", "0 1\n1 0\n")
    write("cache/my-split/test.txt", "0 2\n")
    raw = load("my-split", tmp_path / "cache")
    assert isinstance(raw, RawData) and raw.is_given_split and raw.ratings is None
    assert (len(raw.train), len(raw.test)) == (2, 1)
    assert "recae.data.load" in raises(UsageError, load_ratings, str(tmp_path / "cache/my-split"))


def test_load_unknown_spec(tmp_path):
    message = raises(UsageError, load, "no-such-thing", tmp_path)
    assert "no-such-thing" in message and "not a known data set name" in message
    assert "ml-100k" in message


def test_load_refuses_table_options_for_other_sources(write, tmp_path):
    adjacency = write("split/train.txt", "0 1\n")
    write("split/test.txt", "0 1\n")
    assert "user_col" in raises(UsageError, load, str(adjacency.parent), user_col="u")
    assert "user_col" in raises(UsageError, load, "ml-100k", tmp_path, user_col="u")


def test_load_directory_without_known_files(tmp_path):
    (tmp_path / "empty").mkdir()
    message = raises(DataError, load, str(tmp_path / "empty"))
    assert "empty" in message and "train.txt" in message and "u.data" in message


def test_a_tables_rating_column_is_read_and_low_ratings_are_never_positive(write):
    path = write("r.csv", "user,item,rating\n1,10,5\n1,11,0\n1,12,-1\n1,13,3.5\n2,10,4\n")
    raw = load(str(path))
    assert raw.rating_column == "rating"
    assert binarize(raw.ratings, threshold=3.5).values.tolist() == [[1, 10, 5.0], [2, 10, 4.0]]
    named = load_ratings(str(path), user_col="user")  # table options keep the default rating column
    assert binarize(named, threshold=0)["item"].tolist() == [10, 13, 10]


def test_raw_data_names_the_column_ratings_came_from(write, tmp_path):
    assert load(str(write("ml/u.data", FAKE_U_DATA))).rating_column == "rating"
    assert load(str(write("a.txt", "0 1 2\n"))).rating_column is None
    stars = write("s.csv", "user,item,stars\n1,2,3\n")
    assert load(str(stars)).rating_column is None
    assert load(str(stars), rating_col="stars").rating_column == "stars"
