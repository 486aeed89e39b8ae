"""Memory budgets for models whose state grows with n_items² (EASE, item × item models).

Such a model estimates its peak memory from the catalogue size and refuses,
before any work, to fit when the estimate exceeds its budget: an explicit
``max_memory``, else the memory available now.
"""

from __future__ import annotations

from types import TracebackType

from recae.errors import MemoryBudgetError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or ``None`` when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux), else ``psutil`` if it is
    installed; recae does not depend on ``psutil``.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
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

    ``with PeakRSS() as peak: model.fit(X)`` then ``peak.bytes``: the
    kernel's high-water mark of the process (``VmHWM``), reset to the current
    resident size when the block starts (Linux: ``5`` written to
    ``/proc/self/clear_refs``), so that it covers the block alone. It is the
    whole process's peak within the block: what the process held before it
    (the data, models fitted earlier) counts too. ``None`` where the mark
    cannot be reset or read (not Linux, or a kernel that refuses).
    """

    def __init__(self) -> None:
        self.bytes: int | None = None
        self._reset = False

    def __enter__(self) -> PeakRSS:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._reset = True
        except OSError:
            self._reset = False
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bytes = _high_water_mark() if self._reset else None


def _high_water_mark() -> int | None:
    """``VmHWM`` of ``/proc/self/status`` in bytes, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
