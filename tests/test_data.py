"""Tests for recae.data: readers, error messages, the download cache, preprocessing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recae import data
from recae.data import (
    DATASETS,
    RawData,
    binarize,
    fetch,
    kcore,
    load,
    load_ratings,
    read_adjacency,
    read_ml100k,
    read_ml_csv,
    read_ml_dat,
    read_table,
    read_train_test_dir,
    to_interactions,
)
from recae.errors import DataError, UsageError

# ---------------------------------------------------------------------------
# Helpers and fixtures
# ---------------------------------------------------------------------------


def existing(path: Path) -> Path:
    """``path``, or skip the test where this machine's copy of the shared data lacks it."""
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())  # exact bytes: no newline translation
        return path

    return _write


def raises(error: type[Exception], call, *args, **kwargs) -> str:
    """Call, expect ``error``, check its message is one line; return the message."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------------------
# Readers on small files
# ---------------------------------------------------------------------------

EXPECTED_SMALL = pd.DataFrame(
    {
        "user": np.array([1, 1, 2], dtype=np.int64),
        "item": np.array([10, 20, 10], dtype=np.int64),
        "rating": np.array([4.0, 2.5, 5.0]),
        "timestamp": np.array([100, 200, 300], dtype=np.int64),
    }
)


def test_read_ml100k(write):
    path = write("u.data", "1\t10\t4\t100\n1\t20\t2.5\t200\n2\t10\t5\t300\n")
    pd.testing.assert_frame_equal(read_ml100k(path), EXPECTED_SMALL)


def test_read_ml_dat(write):
    path = write("ratings.dat", "1::10::4::100\n1::20::2.5::200\n2::10::5::300\n")
    pd.testing.assert_frame_equal(read_ml_dat(path), EXPECTED_SMALL)


def test_read_ml_csv_accepts_crlf_and_no_final_newline(write):
    text = "userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n1,20,2.5,200\r\n2,10,5.0,300"
    pd.testing.assert_frame_equal(read_ml_csv(write("ratings.csv", text)), EXPECTED_SMALL)


def test_read_table_named_columns_and_omitted_optional_ones(write):
    path = write("r.csv", "ts,who,what,stars,extra\n100,1,10,4,x\n200,1,20,2.5,y\n300,2,10,5,z\n")
    full = read_table(path, "who", "what", rating_col="stars", timestamp_col="ts")
    pd.testing.assert_frame_equal(full, EXPECTED_SMALL)
    ids_only = read_table(path, "who", "what")
    assert list(ids_only.columns) == ["user", "item"]
    assert ids_only["user"].dtype == np.int64


def test_read_table_keeps_string_ids_as_read(write):
    path = write("r.tsv", "user\titem\nu1\t007\nu2\t10\n")
    frame = read_table(path)
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["item"].tolist() == ["007", "10"]  # one id is not an integer: all stay text


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


def test_ml100k_paper_preprocessing(shared_datasets):
    """Mult-VAE's rule on ML-100K: keep ratings > 3.5, then users with >= 5 items."""
    positives = binarize(read_ml100k(shared_datasets / "ml-100k/u.data"))
    assert len(positives) == 55_375
    core = kcore(positives, min_user=5)
    matrix = to_interactions(core, source="ml-100k")
    assert (matrix.n_users, matrix.n_items, matrix.nnz) == (938, 1_447, 55_361)
    assert len(core) == 55_361  # ML-100K has no duplicate (user, item) pairs


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
    # adjacency lists
    (read_adjacency, "train.txt", "0 1 2\n1 a 3\n", ["line 2", "'a' is not a 64-bit integer"]),
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


def test_read_table_rejects_multi_character_separators(write):
    assert "'::'" in raises(UsageError, read_table, write("r.txt", "user::item\n1::2\n"), sep="::")


def test_train_test_dir_missing_a_file(write, tmp_path):
    write("split/train.txt", "0 1\n")
    message = raises(DataError, read_train_test_dir, tmp_path / "split")
    assert "split" in message and "missing test.txt" in message


def test_parquet_missing_column_and_nan_rating(tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 2], "item": [3, 4], "r": [1.0, np.nan]}).to_parquet(path)
    assert "found user, item, r" in raises(DataError, read_table, path, rating_col="stars")
    message = raises(DataError, read_table, path, rating_col="r")
    assert "r.parquet" in message and "row 1" in message and "nan" in message


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


def test_binarize_keeps_strictly_greater_and_passes_implicit_data_through():
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 3], "rating": [3.5, 4.0, 5.0]})
    assert binarize(frame)["item"].tolist() == [2, 3]
    implicit = frame.drop(columns="rating")
    assert binarize(implicit) is implicit


def test_kcore_iterates_until_stable():
    # Item 9 has one user; dropping it leaves user 2 with one item, which
    # (min_user=2) removes user 2, which leaves item 1 with one user ...
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3], "item": [1, 2, 3, 1, 9, 2, 3]})
    core = kcore(frame, min_user=2, min_item=2)
    assert core.values.tolist() == [[1, 2], [1, 3], [3, 2], [3, 3]]


def test_kcore_counts_distinct_items_and_keeps_the_latest_duplicate():
    frame = pd.DataFrame(
        {
            "user": [1, 1, 1, 2, 2],
            "item": [5, 5, 5, 5, 6],
            "rating": [1.0, 3.0, 2.0, 4.0, 4.0],
            "timestamp": [10, 30, 20, 10, 10],
        }
    )
    core = kcore(frame, min_user=2)
    assert core["user"].tolist() == [2, 2]  # user 1 rated one distinct item three times
    deduped = kcore(frame, min_user=1)
    assert deduped.loc[deduped["user"] == 1, "rating"].tolist() == [3.0]  # timestamp 30 wins


def test_kcore_rejects_negative_thresholds():
    assert "min_user=-1" in raises(UsageError, kcore, EXPECTED_SMALL, min_user=-1)


# ---------------------------------------------------------------------------
# Download cache
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; a path under /truncated/ promises more bytes than it sends."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)
        body = self.server.files.get(self.path.removeprefix("/truncated"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        extra = 1000 if self.path.startswith("/truncated/") else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server: ``.url``, ``.files`` (path -> bytes) and ``.hits`` (paths asked for)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.hits = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


FAKE_U_DATA = "1\t10\t4\t100\n1\t20\t2\t200\n2\t10\t5\t300\n"


def make_zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def fake_ml100k(server, monkeypatch):
    """Serve a small ml-100k.zip and make DATASETS expect its digest; returns the bytes."""
    archive = make_zip({"ml-100k/u.data": FAKE_U_DATA, "ml-100k/README": "fake"})
    server.files["/ml-100k.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    patched = dataclasses.replace(DATASETS["ml-100k"], sha256=digest, md5=None)
    monkeypatch.setitem(DATASETS, "ml-100k", patched)
    return archive


def test_fetch_downloads_verifies_extracts_and_caches(server, fake_ml100k, tmp_path):
    cache = tmp_path / "cache"
    path = fetch("ml-100k", cache, base_url=server.url, progress=False)
    assert path == cache / "ml-100k" / "u.data"
    assert (cache / "ml-100k" / "README").read_text() == "fake"
    assert len(read_ml100k(path)) == 3
    assert server.hits == ["/ml-100k.zip"]
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]  # no temporary leftovers

    assert fetch("ml-100k", cache, base_url=server.url, progress=False) == path
    assert server.hits == ["/ml-100k.zip"]  # the second call is served from the cache


def test_fetch_reads_cache_and_mirror_from_the_environment(
    server, fake_ml100k, tmp_path, monkeypatch
):
    monkeypatch.setenv("RECAE_DATA_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("RECAE_DATASET_URL", server.url + "/")
    raw = load("ml-100k", progress=False)
    assert raw.source == "ml-100k" and not raw.is_given_split
    assert len(raw.ratings) == 3
    assert (tmp_path / "env-cache" / "ml-100k" / "u.data").is_file()


def test_cached_data_set_needs_no_network(write, tmp_path):
    write("cache/ml-1m/ratings.dat", "1::2::3::4\n")
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port
    path = fetch("ml-1m", tmp_path / "cache", base_url=unreachable, progress=False)
    assert path == tmp_path / "cache" / "ml-1m" / "ratings.dat"


def test_checksum_mismatch_leaves_nothing_behind(server, fake_ml100k, tmp_path, monkeypatch):
    wrong = dataclasses.replace(DATASETS["ml-100k"], sha256="0" * 64)
    monkeypatch.setitem(DATASETS, "ml-100k", wrong)
    cache = tmp_path / "cache"
    message = raises(DataError, fetch, "ml-100k", cache, base_url=server.url, progress=False)
    actual = hashlib.sha256(fake_ml100k).hexdigest()
    assert f"{server.url}/ml-100k.zip" in message
    assert "0" * 64 in message and actual in message
    assert not cache.exists()


def test_md5_is_checked_when_no_sha256_is_known(server, fake_ml100k, tmp_path, monkeypatch):
    md5_only = dataclasses.replace(DATASETS["ml-100k"], sha256=None, md5="f" * 32)
    monkeypatch.setitem(DATASETS, "ml-100k", md5_only)
    message = raises(DataError, fetch, "ml-100k", tmp_path, base_url=server.url, progress=False)
    assert "md5" in message and hashlib.md5(fake_ml100k).hexdigest() in message


def test_unverifiable_download_needs_consent(server, fake_ml100k, tmp_path, monkeypatch):
    unknown = dataclasses.replace(DATASETS["ml-100k"], sha256=None, md5=None)
    monkeypatch.setitem(DATASETS, "ml-100k", unknown)
    message = raises(DataError, fetch, "ml-100k", tmp_path, base_url=server.url, progress=False)
    assert "allow_unverified" in message and server.hits == []
    fetch("ml-100k", tmp_path, base_url=server.url, progress=False, allow_unverified=True)
    assert (tmp_path / "ml-100k" / "u.data").is_file()


def test_http_404_is_a_clear_error(server, tmp_path):
    cache = tmp_path / "cache" / "nested"
    message = raises(DataError, fetch, "ml-1m", cache, base_url=server.url, progress=False)
    assert f"{server.url}/ml-1m.zip" in message and "HTTP 404" in message
    assert not (tmp_path / "cache").exists()  # the folders this fetch created are gone again


def test_truncated_download_is_discarded(server, fake_ml100k, tmp_path):
    cache = tmp_path / "cache"
    base = server.url + "/truncated"
    message = raises(DataError, fetch, "ml-100k", cache, base_url=base, progress=False)
    assert "ml-100k.zip" in message
    assert not cache.exists()


def test_existing_cache_survives_a_failed_redownload(
    server, fake_ml100k, write, tmp_path, monkeypatch
):
    cached = write("cache/ml-100k/u.data", "7\t7\t5\t7\n")
    good = DATASETS["ml-100k"]
    monkeypatch.setitem(DATASETS, "ml-100k", dataclasses.replace(good, sha256="0" * 64))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("ml-100k", tmp_path / "cache", base_url=server.url, progress=False, force=True)
    assert cached.read_text() == "7\t7\t5\t7\n"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ml-100k"]

    monkeypatch.setitem(DATASETS, "ml-100k", good)
    fetch("ml-100k", tmp_path / "cache", base_url=server.url, progress=False, force=True)
    assert cached.read_text() == FAKE_U_DATA  # a verified download does replace it


def test_existing_folder_without_ratings_is_not_touched(server, fake_ml100k, write, tmp_path):
    notes = write("cache/ml-100k/notes.txt", "mine")
    message = raises(DataError, fetch, "ml-100k", tmp_path / "cache", base_url=server.url)
    assert "holds no u.data" in message and "force=True" in message
    assert notes.read_text() == "mine" and server.hits == []


@pytest.mark.parametrize(
    ("archive", "fragment"),
    [
        (make_zip({"ml-100k/README": "no ratings"}), "holds no ml-100k/u.data"),
        (make_zip({"ml-100k/u.data": FAKE_U_DATA, "ml-100k/../../evil": "x"}), "unsafe path"),
        (b"this is not a zip archive", "not a valid zip archive"),
    ],
    ids=["no-ratings-file", "zip-slip", "not-a-zip"],
)
def test_bad_archives_are_rejected(server, tmp_path, monkeypatch, archive, fragment):
    server.files["/ml-100k.zip"] = archive
    info = dataclasses.replace(
        DATASETS["ml-100k"], sha256=hashlib.sha256(archive).hexdigest(), md5=None
    )
    monkeypatch.setitem(DATASETS, "ml-100k", info)
    cache = tmp_path / "cache"
    message = raises(DataError, fetch, "ml-100k", cache, base_url=server.url, progress=False)
    assert fragment in message and "ml-100k.zip" in message
    assert list(tmp_path.iterdir()) == []  # no cache folder left, nothing written beside it


def test_unknown_name_lists_the_known_ones(tmp_path):
    message = raises(UsageError, fetch, "ml-32m", tmp_path)
    assert "ml-32m" in message and all(name in message for name in DATASETS)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("RECAE_DATA_DIR", raising=False)
    assert data.data_dir() == Path("data")
    monkeypatch.setenv("RECAE_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    assert data.data_dir(tmp_path / "x") == tmp_path / "x"


def test_registry_is_complete():
    assert set(DATASETS) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"}
    for name, info in DATASETS.items():
        assert info.name == name
        assert info.url.endswith(f"/{name}.zip")
        assert info.sha256 is not None or info.md5 is not None
        assert info.ratings_file in {"u.data", "ratings.dat", "ratings.csv"}


# ---------------------------------------------------------------------------
# load / load_ratings: one entry point for names and paths
# ---------------------------------------------------------------------------


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
