"""Histories in raw ids: read from files, then mapped onto a model's items.

- :func:`read_history` reads a history file (JSON, a rating table, a data set
  name) into a frame of raw ``user``/``item`` ids; :func:`read_id_list` reads
  a list of user or item ids.
- :func:`map_history` maps such a frame onto a :class:`~recae.serving.catalog.Catalog`'s
  items, and :func:`stored_histories` takes the catalogue's own training
  histories: both give :class:`Histories`, the rows :class:`~recae.serving.topn.TopN`
  scores. Unknown items are dropped and unknown users get an empty row (the
  popularity fallback); both are counted in a warning. Text ids are compared
  without their surrounding whitespace (:func:`recae.data.normalize_ids`),
  whichever way they come in: files, frames, lists, requests.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.data import binarize, load_ratings, normalize_ids, read_text
from recae.errors import DataError, UsageError
from recae.serving.catalog import Catalog
from recae.serving.ids import fits_int64, id_labels, ids_from_text, lookup_ids, unique_in_order

__all__ = ["Histories", "map_history", "read_history", "read_id_list", "stored_histories"]

# The mapping functions are called through TopN.fold_in and TopN.known: their
# warnings name the code that called those methods.
_CALLER = 3


@dataclass(frozen=True, eq=False)
class Histories:
    """Histories over the model's items, one row per user, with what was dropped.

    Attributes
    ----------
    user_ids : 1-D array (n_users,)
        Raw user ids, in the order of the rows.
    X : float32 CSR (n_users, n_items)
        The known items of each user.
    n_unknown_items : int
        Rows of the input whose item the model does not know (dropped).
    n_unknown_users : int
        Users asked for who have no history at all (listed but absent).
    """

    user_ids: np.ndarray
    X: sp.csr_matrix
    n_unknown_items: int = 0
    n_unknown_users: int = 0

    @property
    def n_users(self) -> int:
        return int(self.X.shape[0])


# ------------------------------------------------------------------- mapping
def map_history(
    history: pd.DataFrame, catalog: Catalog, users: Any | None = None, source: str = "history"
) -> Histories:
    """Map a history given as raw ids onto the catalogue's items.

    Parameters
    ----------
    history : DataFrame with ``user`` and ``item`` columns
        One row per interaction, raw ids. Items the model does not know are
        dropped and counted; duplicates collapse.
    users : 1-D array-like, optional
        Restrict to these users, in this order; users absent from
        ``history`` get an empty row (the popularity fallback).
    source : str
        How the history is named in messages.

    Returns
    -------
    Histories
        Rows in order of each user's first appearance (or of ``users``).
    """
    for column in ("user", "item"):
        if column not in history.columns:
            raise DataError(f"{source}: no {column!r} column; found {', '.join(map(str, history.columns))}")
    raw_users = normalize_ids(history["user"].to_numpy())
    if pd.isna(raw_users).any():
        row = int(np.flatnonzero(pd.isna(raw_users))[0])
        raise DataError(f"{source}: row {row + 1} has no user id")
    codes, out_users, n_absent = _user_rows(id_labels(raw_users, "user id", source), users)
    raw_items = history["item"].to_numpy()
    # A row without an item names a user with an empty history (JSON ``"u": []``).
    no_item = np.asarray(pd.isna(raw_items), dtype=bool)
    cols = catalog.item_positions(raw_items)
    keep_user = codes >= 0
    unknown = keep_user & (cols < 0) & ~no_item
    keep = keep_user & (cols >= 0)
    X = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (codes[keep], cols[keep])),
        shape=(len(out_users), catalog.n_items),
    )
    X.sum_duplicates()
    X.data[:] = 1.0
    X.sort_indices()
    n_unknown = int(unknown.sum())
    if n_unknown:
        examples = ", ".join(map(repr, pd.unique(raw_items[unknown])[:5].tolist()))
        warnings.warn(
            f"{source}: {n_unknown} row(s) name items the model does not know (ignored; e.g. {examples})",
            stacklevel=_CALLER,
        )
    if n_absent:
        warnings.warn(
            f"{source}: {n_absent} of {len(out_users)} listed users have no history; "
            "they get the popularity list",
            stacklevel=_CALLER,
        )
    return Histories(out_users, X, n_unknown, n_absent)


def _user_rows(raw_users: np.ndarray, users: Any | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Output row of each history row's user (``-1``: a user not asked for), the
    output rows' user ids, and the number of listed users absent from the history."""
    codes, uniques = pd.factorize(raw_users, sort=False)
    uniques = np.asarray(uniques)
    if users is None:
        return codes, uniques, 0
    wanted = unique_in_order(id_labels(users, "user id", "users list"))
    pos = lookup_ids(wanted, uniques, pd.Index(uniques))
    # Rows of the history whose user was not asked for are dropped.
    new_row = np.full(len(uniques), -1, dtype=np.int64)
    new_row[pos[pos >= 0]] = np.flatnonzero(pos >= 0)
    return new_row[codes], wanted, int((pos < 0).sum())


def stored_histories(catalog: Catalog, users: Any | None = None) -> Histories:
    """The catalogue's stored histories of the training users (all, or those listed in ``users``).

    Listed users the model does not know get an empty row (the popularity fallback).
    """
    if catalog.histories is None:
        raise UsageError(
            "this model stores no user histories; give them with a history file (--history)"
        )
    if users is None:
        return Histories(catalog.user_ids, catalog.histories)
    wanted = unique_in_order(id_labels(users, "user id", "users list"))
    rows = catalog.user_positions(wanted)
    n_absent = int((rows < 0).sum())
    X = catalog.histories[np.maximum(rows, 0)]
    if n_absent:
        # Unknown users get an empty row: zero their rows, then drop the zeros.
        X = (sp.diags((rows >= 0).astype(np.float32)) @ X).tocsr()
        X.eliminate_zeros()
        warnings.warn(
            f"{n_absent} of {len(wanted)} listed users are not among the model's "
            f"{catalog.user_ids.shape[0]} known users; they get the popularity list",
            stacklevel=_CALLER,
        )
    return Histories(wanted, sp.csr_matrix(X, dtype=np.float32), 0, n_absent)


# --------------------------------------------------------------------- files
def read_history(path: str | Path, min_rating: float | None = None) -> pd.DataFrame:
    """Read histories given as raw ids: a frame with ``user`` and ``item`` columns.

    Formats
    -------
    - ``.json``: an object ``{"user": [item, item, ...], ...}``; ids are
      numbers or strings; a user id that is an integer in text (``"42"``)
      becomes the integer 42 when every user id is one.
    - anything else: what :func:`recae.data.load_ratings` reads: a CSV/TSV/
      Parquet table with ``user`` and ``item`` (and optional ``rating``)
      columns, a MovieLens ratings file (``u.data``, ``ratings.dat``,
      ``ratings.csv``), or an adjacency list (``.txt``: ``user item item ...``);
      also a data set name (``ml-latest-small``), read from the cache.

    ``min_rating`` keeps only rows rated strictly above it (tables with a
    ``rating`` column only). Text ids lose their surrounding whitespace
    (:func:`recae.data.normalize_ids`, as everywhere ids come in).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if min_rating is not None:
            raise UsageError(f"{path}: --min-rating applies to rating tables, not to JSON histories")
        return _read_json_history(path)
    # A table's rating column is read by its conventional names (rating, Rating, ...).
    frame = load_ratings(str(path), progress=False)
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise UsageError(f"{path}: has no rating column; --min-rating applies to rating tables")
        frame = binarize(frame, threshold=min_rating)
    return frame[["user", "item"]].reset_index(drop=True)


def _is_id(v: Any) -> bool:
    """An integer that fits in int64, or text that is not blank."""
    if isinstance(v, int) and not isinstance(v, bool):
        return fits_int64(v)
    return isinstance(v, str) and v.strip() != ""


def _read_json_history(path: Path) -> pd.DataFrame:
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object {{user: [item, ...]}}, got a {type(obj).__name__}")
    if not obj:
        raise DataError(f"{path}: holds no users")
    users: list[int] = []  # the position of each row's user among the keys
    items: list[Any] = []
    for key, (user, hist) in enumerate(obj.items()):
        if not _is_id(user):
            raise DataError(f"{path}: user {user!r} is not an id (a non-empty string)")
        if not isinstance(hist, list):
            raise DataError(f"{path}: user {user!r}: expected a list of item ids, got a {type(hist).__name__}")
        for pos, item in enumerate(hist):
            if not _is_id(item):
                raise DataError(
                    f"{path}: user {user!r}, item #{pos + 1}: {item!r} is not an id "
                    "(an integer that fits in 64 bits, or a non-empty string)"
                )
        if hist:
            users.extend([key] * len(hist))
            items.extend(hist)
        else:
            # An empty list names a user with no history: one row without an
            # item, so that they are scored (popularity list), not left out.
            users.append(key)
            items.append(None)
    user_col = ids_from_text(list(obj))[users]
    if all(isinstance(i, int) for i in items):  # every int passed _is_id: it fits in int64
        item_col = np.array(items, dtype=np.int64)
    else:
        item_col = np.array(items, dtype=object)
    return pd.DataFrame({"user": normalize_ids(user_col), "item": normalize_ids(item_col)})


def read_id_list(path: str | Path, column: str) -> np.ndarray:
    """Raw ids from a file: one per line, or a CSV whose header names ``column``.

    Blank lines are skipped and ids lose their surrounding whitespace
    (:func:`recae.data.normalize_ids`). Returns an int64 array when every id
    is an integer (see :func:`~recae.serving.ids.ids_from_text`), else strings.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file of {column} ids")
    text = read_text(path)
    lines = text.splitlines()
    header = lines[0].split(",") if lines else []
    if len(header) > 1 or (header and header[0].strip() == column):
        names = [h.strip() for h in header]
        if column not in names:
            raise DataError(f"{path}, line 1: no {column!r} column; found {', '.join(names)}")
        try:
            # the text already read (and decompressed), not the file again
            frame = pd.read_csv(io.StringIO(text), usecols=[column], dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as e:
            raise DataError(f"{path}: cannot read as CSV ({e})") from None
        values = normalize_ids(frame[column]).tolist()
        first_line = 2
    else:
        values = normalize_ids(lines).tolist()
        first_line = 1
    for offset, v in enumerate(values):
        if "," in v or "\t" in v:
            raise DataError(
                f"{path}, line {offset + first_line}: {v!r} holds a delimiter; expected one {column} id per line "
                f"or a CSV with a {column!r} column"
            )
    values = [v for v in values if v]
    if not values:
        raise DataError(f"{path}: holds no {column} ids")
    return ids_from_text(values)

