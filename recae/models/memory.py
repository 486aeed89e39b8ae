"""Memory budgets for models whose state grows with n_items² (EASE, item × item models).

Such a model estimates its peak memory from the catalogue size and refuses,
before any work, to fit when the estimate exceeds its budget: an explicit
``max_memory``, else the memory available now.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

from recae.errors import MemoryBudgetError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or ``None`` when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux), else ``psutil`` if it is
    installed; recae does not depend on ``psutil``.
    """
    available = _proc_field("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    try:
        import psutil  # type: ignore[import-not-found]  # optional: not a dependency of recae
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def check_memory_budget(need: int, max_memory: float | None, explain: str) -> None:
    """Raise ``MemoryBudgetError`` when ``need`` bytes exceed the budget.

    The budget is ``max_memory`` bytes, or the memory available now when it is
    ``None`` (no check when that cannot be read). The message is ``explain``
    (what needs the memory, e.g. "EASE on n_items=3043 needs about 0.22 GB (…)")
    followed by the budget and where it came from.
    """
    budget: float | None
    if max_memory is not None:
        budget = float(max_memory)
        source = "max_memory"
    else:
        budget = available_memory()
        source = "available memory"
    if budget is not None and need > budget:
        raise MemoryBudgetError(
            f"{explain}, over the budget of {budget / 1e9:.3g} GB ({source}); "
            "drop rare items (k-core) or raise max_memory"
        )


class PeakRSS:
    """The peak resident memory of this process over a block of code, in bytes.

    ``with PeakRSS() as peak: model.fit(X)`` then ``peak.bytes``: the whole
    process's peak within the block (what it held before, such as the data and
    models fitted earlier, counts too). When the block raises the process's
    high-water mark (``VmHWM``, Linux), that mark is the answer, exactly;
    otherwise the largest resident size seen by a thread that reads it every
    ``interval`` seconds, which can miss a spike shorter than that. The kernel's
    mark is read, never reset, so ``getrusage`` and ``/usr/bin/time`` still
    report the process's own peak. ``None`` where ``/proc`` cannot be read.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.bytes: int | None = None
        self._seen: int | None = None
        self._start_mark: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        self._start_mark = _high_water_mark()
        self._seen = _resident_now()
        if self._seen is not None:
            self._thread = threading.Thread(target=self._watch, name="recae-peak-rss", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            now = _resident_now()
            if now is not None and (self._seen is None or now > self._seen):
                self._seen = now

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        end_mark, now = _high_water_mark(), _resident_now()
        seen = max((v for v in (self._seen, now) if v is not None), default=None)
        if self._start_mark is not None and end_mark is not None and end_mark > self._start_mark:
            self.bytes = end_mark  # a new peak of the process, set within the block
        else:
            self.bytes = seen


def _resident_now() -> int | None:
    """The resident size now, in bytes (``/proc/self/statm``), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _high_water_mark() -> int | None:
    """``VmHWM`` of ``/proc/self/status`` in bytes, or None."""
    return _proc_field("/proc/self/status", "VmHWM")


def _proc_field(path: str, key: str) -> int | None:
    """The ``key:  N kB`` line of a ``/proc`` file such as ``/proc/meminfo``, in bytes;
    None where the file or the line cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
