"""Reading histories and id lists given as raw ids: formats, and errors that name the place."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recae.errors import DataError, UsageError
from recae.serving import read_history, read_id_list


def test_read_history_json_and_tables(tmp_path):
    j = tmp_path / "h.json"
    j.write_text(json.dumps({"1": [1000, 1010], "2": [], "3": [1020]}))
    frame = read_history(j)
    assert frame["user"].tolist() == [1, 1, 2, 3]
    assert frame["user"].dtype == np.int64
    c = tmp_path / "h.csv"
    c.write_text("user,item,rating\n1,1000,5\n1,1010,2\n2,1020,4\n")
    assert read_history(c)["item"].tolist() == [1000, 1010, 1020]
    assert read_history(c, min_rating=3.5)["item"].tolist() == [1000, 1020]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"1": [1000,', "line 1: not valid JSON"),
        ('[1, 2]', "expected a JSON object"),
        ('{"1": 1000}', "user '1': expected a list"),
        ('{"1": [1000, [1]]}', r"user '1', item #2"),
        ('{"1": [1000, 1.5]}', r"item #2: 1.5 is not an id"),
        ("{}", "holds no users"),
    ],
)
def test_read_history_json_errors_name_the_place(tmp_path, text, match):
    j = tmp_path / "bad.json"
    j.write_text(text)
    with pytest.raises(DataError, match=match):
        read_history(j)


def test_read_id_list_formats(tmp_path):
    (tmp_path / "a.txt").write_text("1000\n\n1010\n")
    assert read_id_list(tmp_path / "a.txt", "item").tolist() == [1000, 1010]
    (tmp_path / "b.csv").write_text("title,item\nx,1000\ny,abc\n")
    assert read_id_list(tmp_path / "b.csv", "item").tolist() == ["1000", "abc"]
    (tmp_path / "c.csv").write_text("title,movie\nx,1000\n")
    with pytest.raises(DataError, match="c.csv, line 1: no 'item' column; found title, movie"):
        read_id_list(tmp_path / "c.csv", "item")
    (tmp_path / "d.txt").write_text("1000\n1010\t7\n")
    with pytest.raises(DataError, match="d.txt, line 2"):
        read_id_list(tmp_path / "d.txt", "item")
    with pytest.raises(DataError, match="no such file"):
        read_id_list(tmp_path / "nope.txt", "item")


def test_only_ascii_integers_within_int64_are_read_as_integer_ids(tmp_path):
    """Other digits and integers beyond int64 stay text (and then match no integer id)."""
    (tmp_path / "a.txt").write_text(" 1000 \n+1010\n", encoding="utf-8")
    assert read_id_list(tmp_path / "a.txt", "item").tolist() == [1000, 1010]
    for text in ("\u0661\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10", str(2**64)):
        (tmp_path / "b.txt").write_text(f"1010\n{text}\n", encoding="utf-8")
        assert read_id_list(tmp_path / "b.txt", "item").tolist() == ["1010", text]
    j = tmp_path / "h.json"
    j.write_text(json.dumps({"\u0661": [1000], "2": [1010]}), encoding="utf-8")
    frame = read_history(j)
    assert frame["user"].tolist() == ["\u0661", "2"] and frame["item"].tolist() == [1000, 1010]


def test_ids_beyond_int64_are_text_or_refused_never_a_traceback(tmp_path):
    (tmp_path / "u.txt").write_text("99999999999999999999\n1\n")
    assert read_id_list(tmp_path / "u.txt", "user").tolist() == ["99999999999999999999", "1"]
    j = tmp_path / "h.json"
    j.write_text('{"99999999999999999999": [1000]}')
    assert read_history(j)["user"].tolist() == ["99999999999999999999"]
    j.write_text('{"1": [99999999999999999999]}')
    with pytest.raises(DataError, match="item #1: 99999999999999999999 is not an id"):
        read_history(j)
    j.write_text('{" ": [1000]}')
    with pytest.raises(DataError, match="user ' ' is not an id"):
        read_history(j)


def test_min_rating_finds_the_rating_column_by_its_conventional_names(tmp_path):
    c = tmp_path / "h.csv"
    c.write_text("user,item,Rating\n1,1000,5\n1,1010,2\n")
    assert read_history(c, min_rating=3.5)["item"].tolist() == [1000]
    c.write_text("user,item\n1,1000\n")
    with pytest.raises(UsageError, match="h.csv: has no rating column"):
        read_history(c, min_rating=3.5)
