"""Compressed data files: ``.gz``, ``.bz2`` and ``.xz`` files are read by their name.

A file whose name says it is compressed must start as that format does
(:func:`check_compression`, called wherever a reader opens a file); it is
then decompressed as it is read, by recae (:func:`text_lines`,
:func:`read_bytes`) and by pandas (:func:`pandas_compression`). Whatever a
damaged stream raises while it is read (a file cut short, corrupt data)
becomes one :class:`~recae.errors.DataError` naming the file
(:func:`stream_errors`). Any other file is read as it is. :func:`read_text` is
the whole of a small text file, for the layers above.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from recae.errors import DataError


@dataclass(frozen=True)
class Compression:
    """One compressed format: its name (as pandas names it), the bytes every file
    of it starts with, and the function that opens such a file."""

    name: str
    magic: bytes
    open: Callable[..., IO[Any]]


#: The compressed formats recae reads, by file suffix (compared in lower case).
COMPRESSIONS = {
    ".gz": Compression("gzip", b"\x1f\x8b", gzip.open),
    ".bz2": Compression("bz2", b"BZh", bz2.open),
    ".xz": Compression("xz", b"\xfd7zXZ\x00", lzma.open),
}

# What a damaged stream raises as it is read: gzip's BadGzipFile and bz2's
# "Invalid data stream" are OSErrors, a file cut short raises EOFError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def compression_of(source: Any) -> Compression | None:
    """The format a path's suffix names; None for any other path, or a buffer."""
    return COMPRESSIONS.get(source.suffix.lower()) if isinstance(source, Path) else None


def plain_name(path: Path) -> Path:
    """``path`` without its compression suffix (``u.data.gz`` → ``u.data``): what selects its reader."""
    return path.with_suffix("") if compression_of(path) else path


def pandas_compression(source: Any) -> str | None:
    """The ``compression=`` for ``pandas.read_csv``: the suffix's format, else none (never
    pandas' own guess, so that pandas and recae read every file alike)."""
    kind = compression_of(source)
    return kind.name if kind else None


def check_compression(path: Path) -> None:
    """``DataError`` when ``path``'s name says it is compressed but its first bytes say otherwise."""
    kind = compression_of(path)
    if kind is None:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(kind.magic))
    if head != kind.magic:
        raise DataError(
            f"{path}: not {kind.name} data, although its name ends in {path.suffix} "
            f"(it starts with {head!r})"
        )


@contextlib.contextmanager
def stream_errors(source: Any) -> Iterator[None]:
    """Inside the block, what reading a damaged compressed ``source`` raises becomes one
    ``DataError`` naming it; errors about other sources pass unchanged."""
    kind = compression_of(source)
    try:
        yield
    except _STREAM_ERRORS as error:
        if kind is None:
            raise
        raise DataError(f"{source}: damaged {kind.name} data ({error or type(error).__name__})") from None


def text_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` as UTF-8 text, decompressed: a BOM skipped, undecodable
    bytes replaced, line ends kept as in the file (what ``csv.reader`` needs)."""
    kind = compression_of(path)
    opener = open if kind is None else kind.open
    with stream_errors(path), opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
        yield from fh


def read_bytes(path: Path) -> bytes:
    """The content of ``path``, decompressed."""
    kind = compression_of(path)
    if kind is None:
        return path.read_bytes()
    with stream_errors(path), kind.open(path, "rb") as fh:
        return fh.read()


def read_text(path: Path) -> str:
    """The content of the file ``path`` as UTF-8 text (a BOM skipped), decompressed;
    ``DataError`` naming the first byte that is not UTF-8."""
    check_compression(path)
    try:
        return read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
