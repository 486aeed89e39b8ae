"""Raw ids: stored without pickling, and matched to a model's ids by one rule.

Ids that come from outside (history files and frames, lists of users or
items, requests) meet a model's ids here and nowhere else:
:func:`convert_ids` states and applies the rule, :func:`lookup_ids` finds the
converted ids among the model's, :func:`require_ids` refuses, naming it, the
first value that cannot be an id of a given type, and :func:`id_labels` checks
ids that only name users (new users' histories, lists of users). An id that
cannot take the model's id type is unknown, like an id the model never saw.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from recae.data import normalize_ids
from recae.errors import DataError

__all__ = [
    "INT_TEXT",
    "convert_ids",
    "fits_int64",
    "id_labels",
    "ids_from_text",
    "lookup_ids",
    "plain_ids",
    "require_ids",
    "unique_in_order",
]

#: Text that is an integer id (``" 42"``, ``"-7"``; ASCII digits only, at most 19
#: after leading zeros: no longer one fits in int64): read as an int wherever ids
#: are parsed (:func:`ids_from_text`).
INT_TEXT = re.compile(r"\s*[+-]?0*[0-9]{1,19}\s*")
# Normalized text of an exact integer: what the data readers read as an int64 id
# (pandas' integer parser takes "+5" and "5.0").
_INTEGER_TEXT = re.compile(r"[+-]?0*[0-9]{1,19}(?:\.0*)?")
# int64 holds the integers in [-_INT64, _INT64).
_INT64 = 2**63


def fits_int64(v: int) -> bool:
    """Whether the Python integer ``v`` fits in an int64 id."""
    return -_INT64 <= v < _INT64


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


def ids_from_text(texts: list[str]) -> np.ndarray:
    """Ids read as text (the lines of an id list, the keys of a JSON object): an
    int64 array (n,) when every one is :data:`INT_TEXT` and fits in int64, else
    the text as given (n,)."""
    if texts and all(INT_TEXT.fullmatch(t) for t in texts):
        ints = [int(t) for t in texts]
        if all(fits_int64(v) for v in ints):
            return np.array(ints, dtype=np.int64)
    return np.array(texts, dtype=str)


def _id_array(values: Any) -> np.ndarray:
    """``values`` as a 1-D array, each element as given.

    A list goes element by element into an object array: ``np.asarray([True, 5])``
    would turn the bool into the integer 1.
    """
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    elif not isinstance(values, np.ndarray):
        values = list(values)
        values = np.fromiter(values, dtype=object, count=len(values))
    if values.ndim != 1:
        raise DataError(f"a list of ids must be 1-D, got shape {values.shape}")
    return values


def _text_mask(values: np.ndarray) -> np.ndarray:
    """Which elements of a 1-D array are text."""
    kind = values.dtype.kind
    if kind == "O":
        return np.fromiter((isinstance(v, str) for v in values.tolist()), dtype=bool, count=len(values))
    return np.full(len(values), kind in "US", dtype=bool)


def _exact_integer(v: Any) -> int | None:
    """A number that is an exact int64 integer, as an ``int``; None for anything else
    (bools, fractions, NaN, infinity, text, None)."""
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        v = int(v)
    elif isinstance(v, float | np.floating) and math.isfinite(v) and float(v).is_integer():
        v = int(v)
    else:
        return None
    return v if fits_int64(v) else None


def _exact_integers(values: np.ndarray) -> np.ndarray:
    """Mask of the elements of a float array that are exact int64 integers."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.floor(values) == values) & (values >= -_INT64) & (values < _INT64)


def convert_ids(values: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Raw ids converted to a model's id type: the one rule by which ids given from
    outside match a model's ids.

    - Text is normalized first, here and only here: surrounding whitespace is
      stripped (``" 42 "`` is ``"42"``, ``" m1"`` is ``"m1"``).
    - Integer ids (``dtype`` of integer kind) match exact integer values: an
      integer; a float without a fractional part (``42.0`` matches 42: pandas
      holds integer columns with gaps as floats); text of ASCII digits with an
      optional sign and an optional ``.0`` (``"42"``, ``"+42"``, ``"42.0"``:
      the spellings the data readers read as integers). Not ``42.5``, ``"42.5"``,
      ``"4.2e1"``, ``"٤٢"``, NaN, infinity, nor integers beyond int64.
    - Text ids match text exactly, after normalization; an exact integer
      value (as above) matches its decimal text (``12`` and ``12.0`` match
      ``"12"``). Empty text matches nothing.
    - Booleans, None and NaN never match, whatever the model's id type.

    Parameters
    ----------
    values : 1-D array-like (n,)
        Raw ids: numbers, text, or a mix (a list keeps each element's type).
    dtype : numpy dtype
        The model's id type: integer kind, or text (anything else).

    Returns
    -------
    converted : int64 array (n,), or text array (n,)
        Each id in the model's id type; a placeholder where ``ok`` is False.
    ok : bool array (n,)
        False where ``values[i]`` cannot be an id of that type (an unknown id).
    """
    values = _id_array(values)
    text = _text_mask(values)
    stripped = np.asarray(normalize_ids(values[text].astype(str)))  # the one rule for text ids
    if np.dtype(dtype).kind in "iu":
        return _as_integers(values, text, stripped)
    return _as_text(values, text, stripped)


def _as_integers(values: np.ndarray, text: np.ndarray, stripped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`convert_ids` to integer ids; ``stripped`` holds the normalized text elements."""
    kind = values.dtype.kind
    if kind == "i":
        return values.astype(np.int64, copy=False), np.ones(len(values), dtype=bool)
    out = np.zeros(len(values), dtype=np.int64)
    if kind in "uf":
        ok = values < _INT64 if kind == "u" else _exact_integers(values)
        out[ok] = values[ok].astype(np.int64)
        return out, ok
    ok = np.zeros(len(values), dtype=bool)
    if kind not in "USO":  # bools, dates, ...: never ids
        return out, ok
    # text, or a mix of objects: exact integer parsing, no float round trip
    parsed = [int(s.split(".")[0]) if _INTEGER_TEXT.fullmatch(s) else None for s in stripped.tolist()]
    numbers = [_exact_integer(v) for v in values[~text].tolist()]
    for positions, ints in ((np.flatnonzero(text), parsed), (np.flatnonzero(~text), numbers)):
        for i, v in zip(positions.tolist(), ints, strict=True):
            if v is not None and -_INT64 <= v < _INT64:
                out[i], ok[i] = v, True
    return out, ok


def _as_text(values: np.ndarray, text: np.ndarray, stripped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`convert_ids` to text ids; ``stripped`` holds the normalized text elements."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(str), np.ones(len(values), dtype=bool)
    if kind in "US":
        return stripped, stripped != ""
    if kind == "f":
        ok = _exact_integers(values)
        out = np.full(len(values), "", dtype=object)
        out[ok] = values[ok].astype(np.int64).astype(str)
        return out.astype(str), ok
    out = np.full(len(values), "", dtype=object)
    if kind == "O":  # text and numbers; other kinds (bools, dates, ...) are never ids
        out[text] = stripped
        numbers = [_exact_integer(v) for v in values[~text].tolist()]
        out[~text] = ["" if v is None else str(v) for v in numbers]
    out = out.astype(str) if len(out) else np.zeros(0, dtype=str)
    return out, out != ""


def lookup_ids(values: Any, ids: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``ids`` (``-1`` for unknown ids), converted by :func:`convert_ids`.

    ``index`` is ``pd.Index(ids)``, built once by the caller. Returns int64 (n,).
    """
    converted, ok = convert_ids(values, ids.dtype)
    pos = index.get_indexer(converted) if len(converted) else np.zeros(0, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    pos[~ok] = -1
    return pos


def require_ids(values: Any, dtype: Any, name: str, source: str) -> np.ndarray:
    """``values`` converted by :func:`convert_ids`, or a ``DataError`` naming the first
    value that cannot be an id of type ``dtype``.

    ``name`` names the ids (``"item_id"``) and ``source`` where they come from
    (``"request"``) in the message, which gives the value's row (1-based).
    """
    expected = "an integer id" if np.dtype(dtype).kind in "iu" else "an id (an integer or a non-empty text)"
    return _require(_id_array(values), np.dtype(dtype), f"{name} {{value!r}} is not {expected}", source)


def id_labels(values: Any, name: str, source: str) -> np.ndarray:
    """Ids that only name users (no model id to match): int64 when none is text,
    else text, each converted by :func:`convert_ids`; ``DataError`` naming the
    row of the first value that is no id at all (a bool, a fraction, NaN, None,
    empty text)."""
    values = _id_array(values)
    dtype = np.dtype(str) if _text_mask(values).any() else np.dtype(np.int64)
    return _require(values, dtype, f"{name} {{value!r}} is not an id (an integer or a non-empty text)", source)


def _require(values: np.ndarray, dtype: np.dtype, problem: str, source: str) -> np.ndarray:
    """:func:`convert_ids`, or ``DataError`` with ``problem`` (a template of ``value``) for the first bad row."""
    converted, ok = convert_ids(values, dtype)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        value = values[row : row + 1].tolist()[0]  # a Python scalar: its repr is what was given
        raise DataError(f"{source}: row {row + 1}: {problem.format(value=value)}")
    return converted


def unique_in_order(values: np.ndarray) -> np.ndarray:
    """The distinct ids of a 1-D array, each at its first position, in that order."""
    if values.ndim != 1:
        raise DataError(f"a list of ids must be 1-D, got shape {values.shape}")
    _, first = np.unique(pd.factorize(values, sort=False)[0], return_index=True)
    return values[np.sort(first)]
