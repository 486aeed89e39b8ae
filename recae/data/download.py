"""Downloading one zip archive with pooch, checking its digests, and extracting one folder.

pooch does the transfer (streamed to a temporary file, behind a progress
bar), the hashing and the unzipping. What it leaves to us is kept here, in
thin wrappers:

- every digest we know is checked (pooch checks one), and a mismatch names
  the URL, the expected and the actual digest;
- an archive holding an absolute or ``..`` path is refused outright
  (``zipfile``, under pooch's unzip, would silently rewrite such a path);
- a ``file://`` mirror is copied (pooch's downloaders speak http, ftp, sftp, doi);
- requests' nested errors become one-line :class:`~recae.errors.DataError`
  messages, and the progress bar is closed when a transfer fails.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import shutil
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pooch
import requests
from tqdm.auto import tqdm

from recae.errors import DataError

# Where the archive's folder is extracted, inside the scratch folder.
_EXTRACTED = "extracted"


def download_folder(
    url: str,
    scratch: Path,
    member: str,
    digests: Mapping[str, str],
    *,
    progress: bool,
    label: str,
) -> Path:
    """Download the zip archive at ``url``, check it, and extract the folder holding ``member``.

    Parameters
    ----------
    url : str
        An ``http``, ``https`` or ``file`` URL of a zip archive.
    scratch : Path
        An empty folder for the archive and the extracted files; the caller removes it.
    member : str
        The path of the file the archive must hold (``"ml-1m/ratings.dat"``);
        its folder is what gets extracted.
    digests : mapping of str to str
        Expected hex digests by algorithm (``"sha256"``, ``"md5"``); every one must match.
    progress : bool
        Show a progress bar labelled ``label`` while downloading over http(s).

    Returns
    -------
    Path
        ``scratch/extracted/<folder of member>``.

    Raises
    ------
    DataError
        The download failed, a digest did not match, or the archive is not a
        valid zip, lacks ``member`` or holds an unsafe path.
    """
    archive_name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    checked_unzip = _CheckedUnzip(url, member, dict(digests))
    bar = _ProgressBar(label) if progress else None
    try:
        with _pooch_quiet():
            # No known_hash: _CheckedUnzip checks every digest, with our message.
            pooch.retrieve(
                url,
                known_hash=None,
                fname=archive_name,
                path=scratch,
                processor=checked_unzip,
                downloader=_downloader(url, bar),
            )
    except requests.RequestException as error:
        raise _download_error(url, error) from None
    finally:
        if bar is not None:
            bar.close()  # pooch leaves the bar open when the transfer fails
    return scratch / _EXTRACTED / str(PurePosixPath(member).parent)


class _ProgressBar:
    """The bar pooch's HTTP downloader drives: a labelled tqdm, drawn once the server answers.

    pooch sets ``total`` when the response arrives (so a refused request draws
    nothing), then calls ``update``, ``reset`` and ``close``.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm | None = None

    @property
    def total(self) -> float | None:
        return None if self.bar is None else self.bar.total

    @total.setter
    def total(self, total: int) -> None:
        # pooch passes 0 when the server sends no Content-Length: tqdm's "unknown" is None.
        self.bar = tqdm(
            total=total or None, desc=self.label, unit="B", unit_scale=True, unit_divisor=1024
        )

    def update(self, n: int) -> None:
        self.bar.update(n)

    def reset(self) -> None:
        self.bar.reset()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _pooch_quiet() -> Iterator[None]:
    """Hold back pooch's INFO lines while it works.

    They repeat what the progress bar says, and name temporary paths that are
    gone by the time anyone reads them.
    """
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _downloader(url: str, bar: _ProgressBar | None) -> Any:
    """pooch's HTTP downloader for http(s) URLs; a plain copy for a file:// mirror."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=bar or False, timeout=60, chunk_size=1 << 20)
    if scheme == "file":
        return _copy_file
    raise DataError(f"cannot reach {url}: unsupported URL scheme {scheme!r} (use http, https or file)")


def _copy_file(url: str, output_file: str, pooch_instance: object) -> None:
    """A pooch downloader for file:// URLs: copy the file to ``output_file``."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    if not source.is_file():
        raise DataError(f"cannot reach {url}: no such file")
    shutil.copyfile(source, output_file)


@dataclass(frozen=True)
class _CheckedUnzip:
    """A pooch processor: check the digests and the member paths, then unzip one folder."""

    url: str
    member: str
    digests: dict[str, str]

    def __call__(self, fname: str, action: str, pooch_instance: object) -> list[str]:
        for algorithm, expected in self.digests.items():
            actual = pooch.file_hash(fname, alg=algorithm)
            if actual != expected.lower():
                raise DataError(
                    f"checksum mismatch for {self.url}: expected {algorithm} {expected}, "
                    f"got {actual}; the download was discarded"
                )
        folder = str(PurePosixPath(self.member).parent)
        try:
            with zipfile.ZipFile(fname) as zf:
                self._check_names(zf.namelist())
            # pooch extracts every name starting with `folder`; only
            # scratch/extracted/<folder> is moved into the cache.
            unzip = pooch.Unzip(members=[folder], extract_dir=_EXTRACTED)
            return unzip(fname, action, pooch_instance)
        except zipfile.BadZipFile as error:
            raise DataError(f"{self.url}: not a valid zip archive ({error})") from None

    def _check_names(self, names: list[str]) -> None:
        if self.member not in names:
            raise DataError(f"{self.url}: the archive holds no {self.member}")
        for name in names:
            if name.startswith("/") or ".." in PurePosixPath(name).parts:
                raise DataError(f"{self.url}: unsafe path {name!r} in the archive")


def _download_error(url: str, error: requests.RequestException) -> DataError:
    """The one-line message for a failed transfer: HTTP status, truncation or unreachable host."""
    response = error.response
    if isinstance(error, requests.HTTPError) and response is not None:
        return DataError(f"downloading {url} failed: HTTP {response.status_code} {response.reason}")
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, http.client.IncompleteRead) and isinstance(cause.partial, int):
            total = cause.partial + cause.expected
            return DataError(f"downloading {url} failed: got {cause.partial} of {total} bytes")
    if isinstance(error, requests.ConnectionError):
        # The socket's own error ("[Errno 111] Connection refused") says it best.
        reason = next((c for c in causes if isinstance(c, OSError) and c.errno is not None), error)
        return DataError(f"cannot reach {url}: {reason}")
    return DataError(f"downloading {url} failed: {error!r}")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it wraps, outermost first.

    requests and urllib3 nest the original error in ``args``, ``reason`` and
    ``__cause__``.
    """
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = (*current.args, getattr(current, "reason", None), current.__cause__, current.__context__)
        pending.extend(item for item in nested if isinstance(item, BaseException))
