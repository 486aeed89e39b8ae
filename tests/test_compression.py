"""Tests for recae.data.compression: .gz, .bz2 and .xz files are read by their name, and a file
that is not what its name says, or is damaged, ends in one line naming it."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pandas as pd
import pytest

from recae.data import load_ratings, read_text
from recae.errors import DataError
from tests.data_helpers import FAKE_U_DATA, raises, write_file

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
FILES = {
    # name: text, in the format the name selects
    "u.data": FAKE_U_DATA,
    "ratings.dat": FAKE_U_DATA.replace("\t", "::"),
    "ratings.csv": "userId,movieId,rating,timestamp\n" + FAKE_U_DATA.replace("\t", ","),
    "r.csv": "user,item,rating\n1,10,4\n1,20,2.5\n2,10,5\n",
    "a.txt": "1 10 20\n2 10\n",
}


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("name", list(FILES))
def test_a_compressed_file_reads_as_the_plain_one(name, suffix, tmp_path):
    plain = write_file(tmp_path / "plain", name, FILES[name])
    packed = tmp_path / "packed" / f"{name}{suffix}"
    packed.parent.mkdir()
    packed.write_bytes(COMPRESS[suffix](FILES[name].encode()))
    pd.testing.assert_frame_equal(load_ratings(str(packed)), load_ratings(str(plain)))


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("name", ["u.data", "r.csv", "a.txt"])
def test_a_file_that_is_not_what_its_name_says_is_named(name, suffix, tmp_path):
    path = write_file(tmp_path, f"{name}{suffix}", FILES[name])
    message = raises(DataError, load_ratings, str(path))
    assert message.startswith(f"{path}: not ") and f"although its name ends in {suffix}" in message
    assert "\\x" not in message and "\ufffd" not in message


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_compressed_file_cut_short_is_named(suffix, tmp_path):
    data = COMPRESS[suffix](FILES["r.csv"].encode() * 50)
    path = tmp_path / f"r.csv{suffix}"
    path.write_bytes(data[: len(data) // 2])
    message = raises(DataError, load_ratings, str(path))
    assert message.startswith(f"{path}: damaged ")


def test_corrupt_gzip_data_is_named(tmp_path):
    data = bytearray(gzip.compress(FILES["r.csv"].encode() * 50))
    data[20:40] = b"x" * 20
    path = tmp_path / "r.csv.gz"
    path.write_bytes(bytes(data))
    assert raises(DataError, load_ratings, str(path)).startswith(f"{path}: damaged gzip data")


def test_compressed_data_under_a_plain_name_is_not_shown_as_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(gzip.compress(FILES["r.csv"].encode()))
    message = raises(DataError, load_ratings, str(path))
    assert message == f"{path}, line 1: not UTF-8 text; a compressed file is read only under a .gz, .bz2 or .xz name"


def test_read_text_decompresses_and_names_the_first_byte_that_is_not_utf8(tmp_path):
    path = tmp_path / "ids.txt.gz"
    path.write_bytes(gzip.compress("\ufeff1\n2\n".encode()))
    assert read_text(path) == "1\n2\n"
    bad = write_file(tmp_path, "bad.txt", "")
    bad.write_bytes(b"1\n\xff\n")
    assert raises(DataError, read_text, bad) == f"{bad}: not UTF-8 text (invalid start byte at byte 2)"
