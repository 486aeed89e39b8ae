"""Memory budgets for models whose state grows with n_items² (EASE, item × item models).

Such a model estimates its peak memory from the catalogue size and refuses,
before any work, to fit when the estimate exceeds its budget: an explicit
``max_memory``, else the memory available now.
"""

from __future__ import annotations

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
