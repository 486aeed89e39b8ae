"""Writing files so that a failure never leaves a partial one: one home for that rule.

:func:`check_output_path` checks, before any work, that a file can be written
where the user asked. :func:`atomic_path` yields a temporary path (for a file
or a folder) in the destination's folder and renames it over the destination
only when the block completes (:func:`replace`); on any error (Ctrl-C
included) the temporary file or folder is removed and the destination is
untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recae.errors import UsageError


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path once a file can be written there; else ``UsageError`` naming it.

    Meant for output paths given on the command line, before any work: the
    missing folders are created, then a temporary file is created and
    removed beside ``path`` (the one test that holds for every file system
    and user, root included). Refused: a folder, a path whose folder cannot
    be created, and a folder nothing can be written in.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, expected a file name")
    blocking = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UsageError(f"{path}: {blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{path}: cannot create the folder {path.parent} ({e.strerror})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UsageError(f"{path}: cannot write there ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` that becomes ``path`` when the block ends without error.

    The caller writes a file (or creates a folder) at the yielded path. The
    rename is atomic on one file system, so readers see the old content or
    the new one, never a mixture.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp
        replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


#: The signals that end a run (Ctrl-C, ``kill``): held back while a file is written whole.
_ENDING_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs; one that arrived meanwhile is
    raised again, to its own handler, as the block ends.

    For writes that a handler raising mid-way would leave inconsistent even though
    the file itself is replaced atomically: a zip writer interrupted between two
    records fails when it is closed, and that error would hide the interruption.
    The Python handlers are swapped for one that notes the signal (handlers run
    in the main thread whichever thread the signal reaches, which a thread's
    signal mask cannot promise); elsewhere than in the main thread, which alone
    may set handlers, the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _ENDING_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for s in dict.fromkeys(caught):
            signal.raise_signal(s)


def replace(src: str | Path, dest: str | Path) -> None:
    """Rename ``src`` to ``dest``, replacing whatever is at ``dest``.

    A file is replaced in one atomic rename. A folder cannot be renamed over a
    non-empty one, so the old folder is moved aside first, put back if the
    rename fails, and removed after: ``dest`` always holds the old content or
    the new one, never a mixture.
    """
    src, dest = Path(src), Path(dest)
    if not (src.is_dir() and dest.is_dir()):
        os.replace(src, dest)
        return
    old = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.old")
    dest.rename(old)
    try:
        src.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values via ``str``)."""
    write_text(path, json.dumps(obj, indent=2, default=str))
