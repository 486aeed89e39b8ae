"""Tests for recae.data.datasets and recae.data.download: the registry, the download
cache, and downloads served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recae import data
from recae.data import DATASETS, fetch, load, read_ml100k
from recae.data.datasets import CACHED_FOLDERS
from recae.errors import DataError, UsageError
from tests.data_helpers import FAKE_U_DATA, raises, write_file


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file under tmp_path."""
    return functools.partial(write_file, tmp_path)


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


def test_unreachable_host_and_unknown_scheme_are_clear_errors(tmp_path):
    cache = tmp_path / "cache"
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port
    message = raises(DataError, fetch, "ml-1m", cache, base_url=unreachable, progress=False)
    assert message.startswith(f"cannot reach {unreachable}/ml-1m.zip")
    message = raises(DataError, fetch, "ml-1m", cache, base_url="gopher://x", progress=False)
    assert "unsupported URL scheme 'gopher'" in message
    assert not cache.exists()


def test_file_mirror(fake_ml100k, tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "ml-100k.zip").write_bytes(fake_ml100k)
    mirror = (tmp_path / "mirror").as_uri()
    path = fetch("ml-100k", tmp_path / "cache", base_url=mirror, progress=False)
    assert path.read_text() == FAKE_U_DATA
    message = raises(DataError, fetch, "ml-1m", tmp_path / "cache", base_url=mirror)
    assert message == f"cannot reach {mirror}/ml-1m.zip: no such file"


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
# A cached file is checked every time it is opened
# ---------------------------------------------------------------------------


def _alter(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its modification time, as an edit or a cut-short copy would."""
    before = path.stat().st_mtime_ns
    path.write_bytes(text.encode())
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_truncated_cache_is_downloaded_again(server, fake_ml100k, tmp_path):
    path = fetch("ml-100k", tmp_path, base_url=server.url, progress=False)
    _alter(path, FAKE_U_DATA[:10])
    with pytest.warns(UserWarning, match="truncated or altered"):
        assert fetch("ml-100k", tmp_path, base_url=server.url, progress=False) == path
    assert path.read_text() == FAKE_U_DATA
    assert server.hits == ["/ml-100k.zip", "/ml-100k.zip"]
    assert fetch("ml-100k", tmp_path, base_url=server.url, progress=False) == path
    assert len(server.hits) == 2  # the new copy passes


def test_an_altered_cache_that_cannot_be_downloaded_again_is_a_one_line_error(
    server, fake_ml100k, tmp_path
):
    path = fetch("ml-100k", tmp_path, base_url=server.url, progress=False)
    recorded = hashlib.sha256(FAKE_U_DATA.encode()).hexdigest()
    _alter(path, FAKE_U_DATA.replace("5", "1"))
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.warns(UserWarning, match="downloading ml-100k again"):
        message = raises(DataError, fetch, "ml-100k", tmp_path, base_url=unreachable, progress=False)
    assert message.startswith(f"{path}: ")
    assert "expected " in message and f"{len(FAKE_U_DATA)} bytes with sha256 {recorded}" in message
    assert "cannot reach" in message


@pytest.fixture
def read_only_cache(tmp_path, monkeypatch):
    """A hand-filled cache, no marker, folders without write permission; the registry
    knows the digest of its ``ml-100k/u.data`` (FAKE_U_DATA). Returns the cache folder."""
    cache = tmp_path / "cache"
    write_file(cache, "ml-100k/u.data", FAKE_U_DATA)
    known = (hashlib.sha256(FAKE_U_DATA.encode()).hexdigest(),)
    monkeypatch.setitem(DATASETS, "ml-100k", dataclasses.replace(DATASETS["ml-100k"], ratings_sha256=known))
    for folder in (cache / "ml-100k", cache):
        folder.chmod(0o555)
    yield cache
    for folder in (cache, cache / "ml-100k"):
        folder.chmod(0o755)


def test_a_read_only_cache_is_checked_against_the_registry_and_never_written(
    read_only_cache, server
):
    path = read_only_cache / "ml-100k" / "u.data"
    files = sorted(read_only_cache.rglob("*"))
    assert fetch("ml-100k", read_only_cache, base_url=server.url, progress=False) == path
    _alter(path, FAKE_U_DATA[:-5])
    message = raises(DataError, fetch, "ml-100k", read_only_cache, base_url=server.url, progress=False)
    assert message.startswith(f"{path}: ") and DATASETS["ml-100k"].ratings_sha256[0] in message
    assert "read-only" in message and server.hits == []
    assert sorted(read_only_cache.rglob("*")) == files  # no marker, no scratch folder


def test_a_cached_file_is_hashed_at_most_once_per_process(server, fake_ml100k, tmp_path, monkeypatch):
    calls = []
    file_digest = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda *a, **k: calls.append(1) or file_digest(*a, **k))
    fetch("ml-100k", tmp_path / "downloaded", base_url=server.url, progress=False)
    hashed_by_download = len(calls)
    for _ in range(3):
        fetch("ml-100k", tmp_path / "downloaded", progress=False)
    assert len(calls) == hashed_by_download  # size and mtime match the recorded digest
    hand_filled = write_file(tmp_path / "by-hand", "ml-100k/u.data", FAKE_U_DATA)
    known = (hashlib.sha256(FAKE_U_DATA.encode()).hexdigest(),)
    monkeypatch.setitem(DATASETS, "ml-100k", dataclasses.replace(DATASETS["ml-100k"], ratings_sha256=known))
    calls.clear()
    for _ in range(3):
        assert fetch("ml-100k", tmp_path / "by-hand", progress=False) == hand_filled
    assert len(calls) == 1  # no marker: hashed once, then remembered


def test_a_known_cached_split_is_checked_when_opened_by_name(write, tmp_path):
    write("cache/ml-1m-lcfn/train.txt", "0 1 2\n")
    write("cache/ml-1m-lcfn/test.txt", "0 3\n")
    message = raises(DataError, load, "ml-1m-lcfn", tmp_path / "cache")
    assert message.startswith(str(tmp_path / "cache/ml-1m-lcfn/train.txt"))
    assert CACHED_FOLDERS["ml-1m-lcfn"]["train.txt"][0] in message


def test_the_shared_cache_matches_the_registry(shared_datasets, recwarn):
    """CI's cache holds the publishers' files, no marker: each passes by the registry's digest."""
    before = sorted(shared_datasets.rglob("*"))
    checked = 0
    for name, info in DATASETS.items():
        path = shared_datasets / name / info.ratings_file
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() in info.ratings_sha256
            assert fetch(name, shared_datasets, progress=False) == path
            checked += 1
    for name, files in CACHED_FOLDERS.items():
        for file_name, known in files.items():
            if (shared_datasets / name / file_name).is_file():
                assert hashlib.sha256((shared_datasets / name / file_name).read_bytes()).hexdigest() in known
                checked += 1
    assert checked >= 1 and not recwarn.list
    assert sorted(shared_datasets.rglob("*")) == before
