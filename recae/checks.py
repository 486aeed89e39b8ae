"""Checks of values that enter recae from outside: each rule lives here, once.

Every check returns the value converted to its canonical type, or raises
:class:`~recae.errors.UsageError` with a one-line message naming the value and
what was expected.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from recae.errors import UsageError


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` ≥ 1 (an integer type, not a bool or float), else ``UsageError``."""
    if isinstance(value, bool):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise UsageError(f"{name} must be an integer, got {value!r}") from None
    if value < 1:
        raise UsageError(f"{name} must be ≥ 1, got {value}")
    return value


def check_k(k: Any, n_items: int | None = None, max_k: int | None = None) -> int:
    """The length of a top-N list: an int in ``[1, min(n_items, max_k)]``, else ``UsageError``.

    Integral floats (``20.0``, as JSON request parameters may carry them) are
    accepted as their integer; bools, other floats and non-numbers are not.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        if isinstance(k, float | np.floating) and float(k).is_integer():
            k = int(k)
        else:
            raise UsageError(f"k must be an integer ≥ 1, got {k!r}")
    k = int(k)
    if k < 1:
        raise UsageError(f"k must be an integer ≥ 1, got {k}")
    if n_items is not None and k > n_items:
        raise UsageError(f"k={k} exceeds the model's catalogue of {n_items} items")
    if max_k is not None and k > max_k:
        raise UsageError(f"k={k} exceeds the limit of {max_k} items per list")
    return k
