"""Raw ids: stored without pickling, and matched to a model's ids by value.

Ids read from files are matched to the model's ids by value, converted to the
model's id type first (``"12"`` matches item ``12`` of a model with integer
ids; ``12`` matches item ``"12"`` of a model with string ids). An id that
cannot take that type is unknown, like an id the model never saw.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from recae.data import normalize_ids
from recae.errors import DataError

__all__ = ["INT_TEXT", "lookup_ids", "plain_ids", "unique_in_order"]

#: Text that is an integer id (``" 42"``, ``"-7"``): read as an int wherever ids are parsed.
INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def plain_ids(ids: Any) -> np.ndarray:
    """Raw ids as an array ``np.save`` stores without pickling: integers stay
    integers, anything else becomes fixed-width text (never object dtype)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64, copy=False)
    if ids.dtype.kind == "U":
        return ids
    if ids.dtype.kind == "O" and ids.size and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in ids.tolist()
    ):
        return ids.astype(np.int64)
    return ids.astype(str)


def _coerce_like(values: Any, like: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert raw ids to the dtype of ``like``; return ``(converted, ok)``.

    ``ok[i]`` is False where ``values[i]`` cannot be an id of that type (text
    that is not an integer for integer ids, a fractional number); those
    positions hold a placeholder and must be treated as unknown.
    """
    values = np.asarray(normalize_ids(values))
    n = values.shape[0]
    if like.dtype.kind in "iu":
        if values.dtype.kind in "iu":
            return values.astype(np.int64, copy=False), np.ones(n, dtype=bool)
        if values.dtype.kind == "b":
            return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        if values.dtype.kind == "f":
            ok = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**63)
            out = np.zeros(n, dtype=np.int64)
            out[ok] = values[ok].astype(np.int64)
            return out, ok
        # text or mixed objects: exact integer parsing, no float round trip
        out = np.zeros(n, dtype=np.int64)
        ok = np.zeros(n, dtype=bool)
        for i, v in enumerate(values.tolist()):
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                out[i], ok[i] = v, True
            elif isinstance(v, float):
                if v == v and v.is_integer():
                    out[i], ok[i] = int(v), True
            elif isinstance(v, str) and INT_TEXT.fullmatch(v):
                out[i], ok[i] = int(v), True
        return out, ok
    # string ids: compare as text
    if values.dtype.kind in "US":
        return values.astype(str), np.ones(n, dtype=bool)
    text = np.array(["" if v is None else str(v) for v in values.tolist()], dtype=str)
    ok = np.array([v is not None and not (isinstance(v, float) and v != v) for v in values.tolist()], dtype=bool)
    return text.reshape(n), ok



def lookup_ids(values: Any, ids: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``ids`` (``-1`` for unknown ids), after converting their type."""
    converted, ok = _coerce_like(values, ids)
    pos = index.get_indexer(converted) if len(converted) else np.zeros(0, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    pos[~ok] = -1
    return pos


def unique_in_order(values: np.ndarray) -> np.ndarray:
    """The distinct ids of a 1-D array, each at its first position, in that order."""
    if values.ndim != 1:
        raise DataError(f"a list of ids must be 1-D, got shape {values.shape}")
    _, first = np.unique(pd.factorize(values, sort=False)[0], return_index=True)
    return values[np.sort(first)]
