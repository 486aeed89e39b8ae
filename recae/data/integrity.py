"""Checking that a cached data file is still the file that was verified: every time it is opened.

A data file in the cache can be truncated (a copy cut short, a full disk) or
altered after it was checked, and a reader would happily use what is left.
:func:`check_file` compares the file with what is known of it:

- the SHA-256 digests recorded for it in the data set registry, and
- the digest recorded in the folder's marker file (:data:`MARKER`) when the
  file was downloaded and verified, or, for a file the registry knows no
  digest of, when it was first opened; with its size and modification time.

When the size and modification time still match the marker, the recorded
digest is trusted and nothing is hashed, so a large file costs one ``stat``
per open. Otherwise the file is hashed (at most once per process for one
size and modification time) and the marker, if there is one, is brought up
to date. A cache that holds only the publisher's files (a shared CI copy,
often read-only) needs no marker: its files are checked against the
registry's digests, and nothing is written into it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from recae.files import write_json

#: The marker file, in a data set's cache folder: ``{file name: {"sha256", "size", "mtime_ns"}}``.
MARKER = ".recae-sha256.json"


def check_file(path: Path, known: Collection[str] = ()) -> str | None:
    """Whether ``path`` holds what was recorded for it: None when it does, else why not.

    Parameters
    ----------
    path : Path
        An existing file in a cache folder.
    known : collection of str
        SHA-256 hex digests the file may have (several editions of a data
        set may be in use); empty when the registry knows none.

    Returns
    -------
    str or None
        None when the file matches its marker entry or one of the digests.
        Otherwise one line that names the file, its size and digest, and the
        expected ones (the file is truncated or altered). A file with nothing
        to compare with is accepted and its digest recorded, so that a later
        change is caught; when it cannot be recorded (a read-only folder), a
        warning says that it was used unverified.
    """
    stat = path.stat()
    entry = _read_marker(path.parent).get(path.name)
    if entry is not None and (entry.get("size"), entry.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
        return None  # unchanged since its digest was recorded
    actual = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    recorded = entry.get("sha256") if entry is not None else None
    if actual in known or actual == recorded:
        if entry is not None:  # a folder with a marker is ours: keep it current
            _record(path.parent, {path.name: _entry(actual, stat)})
        return None
    if not known and recorded is None:
        if not _record(path.parent, {path.name: _entry(actual, stat)}):
            warnings.warn(
                f"{path}: no checksum is known for it and none can be recorded in a "
                f"read-only folder; used unverified",
                stacklevel=3,
            )
        return None
    expected = [f"sha256 {digest}" for digest in known]
    if recorded is not None and recorded not in known:
        expected.append(f"{entry.get('size')} bytes with sha256 {recorded}")
    return (
        f"{path}: {stat.st_size} bytes with sha256 {actual}, expected {' or '.join(expected)} "
        f"(the file is truncated or altered)"
    )


def is_writable(folder: Path) -> bool:
    """Whether recae may write into ``folder``: it exists, and neither its permissions nor
    the file system forbid it.

    The permission bits are read as well as ``os.access``: root may write
    anywhere, but a cache marked read-only (a shared CI copy) must stay as
    its owner left it.
    """
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(folder, os.W_OK)


def record_files(folder: Path, names: Iterable[str]) -> None:
    """Record the digest, size and modification time of ``folder/name`` for each name.

    Called on a freshly downloaded and verified folder, before it is moved
    into the cache, so that opening it later needs no hashing.

    Raises
    ------
    OSError
        The marker cannot be written.
    """
    entries = {}
    for name in names:
        stat = (folder / name).stat()
        entries[name] = _entry(_sha256(str(folder / name), stat.st_size, stat.st_mtime_ns), stat)
    write_json(folder / MARKER, entries)


def _entry(digest: str, stat: os.stat_result) -> dict[str, Any]:
    return {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_marker(folder: Path) -> dict[str, dict[str, Any]]:
    """The marker's entries; empty when there is none, or it is unreadable (it is rewritten)."""
    try:
        entries = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {name: entry for name, entry in entries.items() if isinstance(entry, dict)}


def _record(folder: Path, entries: dict[str, dict[str, Any]]) -> bool:
    """Add ``entries`` to the marker when the folder is writable; whether that worked."""
    marker = _read_marker(folder)
    if all(marker.get(name) == entry for name, entry in entries.items()):
        return True
    if not is_writable(folder):
        return False
    try:
        write_json(folder / MARKER, {**marker, **entries})
    except OSError:
        return False  # a read-only cache is checked against the registry's digests alone
    return True


# The cache is what makes a file without a usable marker cost one hash per process.
@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, computed once per process for one (path, size, mtime).

    ``size`` and ``mtime_ns`` are part of the cache key only: a file that
    changed is hashed again.
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
