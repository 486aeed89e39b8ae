"""The columns every reader returns, and the checks of paths, columns and values they share.

Every reader returns a DataFrame with the columns ``user``, ``item`` and, when
the source has them, ``rating`` (float64) and ``timestamp`` (int64). The checks
below are the one home of each rule; they raise
:class:`~recae.errors.DataError` with a one-line message that names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from recae.data.compression import check_compression
from recae.errors import DataError

PathLike = str | os.PathLike[str]
_Ids = TypeVar("_Ids", pd.Series, np.ndarray)

USER, ITEM, RATING, TIMESTAMP = "user", "item", "rating", "timestamp"
#: Every column a reader may return, in order.
COLUMNS = (USER, ITEM, RATING, TIMESTAMP)

#: The dtype of each column when it holds numbers (ids may also be strings).
DTYPES = {USER: np.int64, ITEM: np.int64, RATING: np.float64, TIMESTAMP: np.int64}

#: Header names a table's rating and timestamp columns are found by when the
#: caller names none, in order of preference (MovieLens' ``ratings.csv`` says
#: ``rating`` and ``timestamp``; other exports capitalise them).
CONVENTIONAL_NAMES = {
    RATING: ("rating", "Rating", "RATING"),
    TIMESTAMP: ("timestamp", "Timestamp", "TIMESTAMP"),
}


def existing_file(path: PathLike) -> Path:
    """``path`` as a Path when it names a file, else DataError (missing, a directory, or
    named as compressed but not: see :mod:`recae.data.compression`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    check_compression(path)
    return path


def check_columns(where: str, wanted: Iterable[str], found: Sequence[str], hint: str = "") -> None:
    """DataError naming the ``wanted`` columns absent from ``found``, and what was found.

    ``where`` names the file (and line) for the message; ``hint`` is appended to it.
    """
    missing = [column for column in wanted if column not in found]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}; found {', '.join(found)}{hint}"
        )


def invalid_values(values: pd.Series, column: str) -> np.ndarray:
    """Boolean mask, one entry per row, of the values no reader accepts in ``column``.

    Rejected everywhere: missing values (NaN, None, empty fields). Also
    rejected: a ``rating`` that is not finite, and a ``user`` or ``item`` id
    that is an empty or blank string.
    """
    bad = values.isna().to_numpy(copy=True)
    if column == RATING and pd.api.types.is_numeric_dtype(values):
        bad |= ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    elif column in (USER, ITEM) and pd.api.types.is_string_dtype(values):
        bad |= (values.str.strip() == "").to_numpy(dtype=bool, na_value=False)
    return bad


def normalize_ids(ids: _Ids | Sequence[Any]) -> _Ids | np.ndarray:
    """Raw ids as recae compares them: text ids without surrounding whitespace.

    ``" 42 "`` and ``"42"`` name the same id wherever ids come in (data files,
    histories, allow and deny lists), so every entry point applies this one
    rule. Integers (and anything else that is not text) are left as they are;
    text that is an integer stays text.

    Parameters
    ----------
    ids : Series, 1-D array or sequence
        Raw ids, of any dtype.

    Returns
    -------
    Series or ndarray
        A Series for a Series (same index), else an array; the input itself
        when it holds no text.
    """
    if isinstance(ids, pd.Series):
        if ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype):
            return ids.map(_strip, na_action="ignore")  # keeps a str dtype
        return ids
    ids = np.asarray(ids)
    if ids.dtype.kind == "U":
        return np.char.strip(ids)
    if ids.dtype.kind != "O":
        return ids
    return np.frompyfunc(_strip, 1, 1)(ids).astype(object, copy=False)  # keeps the shape


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value
