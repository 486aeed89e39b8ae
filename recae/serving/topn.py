"""Top-N lists with raw ids: batch lists for known users, fold-in for new users.

This is the far end of the flow in DESIGN.md: raw ids come back here, and only
here, after everything in between ran on integer indices.

A *bundle* is what a logged model carries (see :mod:`recae.tracking.pyfunc`):

- ``recae-model/``: the fitted :class:`~recae.models.base.Recommender`
  (``Recommender.save``: JSON + npz, loaded with ``allow_pickle=False``);
- ``catalog.npz``: a :class:`Catalog`: the raw item id of each column, each
  item's popularity in the training matrix (the fallback list for users with
  no known items) and, optionally, the training users' raw ids and histories
  (CSR arrays), so that known users can be scored without any input file.

:class:`TopN` joins the two and turns histories given as raw ids into top-N
frames ``user_id, rank, item_id, score, fallback``. No MLflow here: the
command line reads a bundle from a local folder (``recae.tracking.pyfunc`` downloads
it from a model URI first), and the pyfunc model calls the same code.

Id matching: ids read from files are matched to the model's ids by value,
converted to the model's id type first (``"12"`` matches item ``12`` of a
model with integer ids; ``12`` matches item ``"12"`` of a model with string
ids). Unknown ids are dropped and counted in a warning.
"""

from __future__ import annotations

import json
import re
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.errors import DataError, UsageError
from recae.evaluation.ranking import topk
from recae.models.base import Recommender, iter_batches

__all__ = [
    "CATALOG_FILE",
    "MODEL_DIR",
    "OUTPUT_COLUMNS",
    "Catalog",
    "Histories",
    "TopN",
    "check_k",
    "item_popularity",
    "plain_ids",
    "read_history",
    "read_id_list",
    "save_bundle",
    "write_table",
]

#: Folder of the saved Recommender inside a bundle.
MODEL_DIR = "recae-model"
#: File of the :class:`Catalog` inside a bundle.
CATALOG_FILE = "catalog.npz"
#: Columns of every top-N frame, in order.
OUTPUT_COLUMNS = ("user_id", "rank", "item_id", "score", "fallback")

_CATALOG_FORMAT = "recae-catalog/1"
_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")


# --------------------------------------------------------------------------- ids
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
    values = np.asarray(values)
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
            elif isinstance(v, str) and _INT_TEXT.fullmatch(v):
                out[i], ok[i] = int(v), True
        return out, ok
    # string ids: compare as text
    if values.dtype.kind in "US":
        return values.astype(str), np.ones(n, dtype=bool)
    text = np.array(["" if v is None else str(v) for v in values.tolist()], dtype=str)
    ok = np.array([v is not None and not (isinstance(v, float) and v != v) for v in values.tolist()], dtype=bool)
    return text.reshape(n), ok


def _lookup(values: Any, ids: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``ids`` (``-1`` for unknown ids), after converting their type."""
    converted, ok = _coerce_like(values, ids)
    pos = index.get_indexer(converted) if len(converted) else np.zeros(0, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    pos[~ok] = -1
    return pos


def check_k(k: Any, n_items: int, max_k: int | None = None) -> int:
    """``k`` as an int in ``[1, min(n_items, max_k)]``, or ``UsageError`` saying why not."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        if isinstance(k, float | np.floating) and float(k).is_integer():
            k = int(k)
        else:
            raise UsageError(f"k must be an integer ≥ 1, got {k!r}")
    k = int(k)
    if k < 1:
        raise UsageError(f"k must be an integer ≥ 1, got {k}")
    if k > n_items:
        raise UsageError(f"k={k} exceeds the model's catalogue of {n_items} items")
    if max_k is not None and k > max_k:
        raise UsageError(f"k={k} exceeds the limit of {max_k} items per list")
    return k


def item_popularity(X: sp.spmatrix) -> np.ndarray:
    """Number of users with a nonzero entry for each item: int64 array of shape (n_items,)."""
    X = sp.csr_matrix(X)
    counts = np.bincount(X.indices[X.data != 0], minlength=X.shape[1])
    return counts.astype(np.int64)


# ----------------------------------------------------------------------- catalog
@dataclass(frozen=True, eq=False)
class Catalog:
    """What a model needs besides its weights to speak in raw ids.

    Attributes
    ----------
    item_ids : 1-D array (n_items,)
        Raw id of each item column (int64 or fixed-width text).
    popularity : int64 array (n_items,)
        Training users per item; the popularity fallback ranks by it.
    user_ids : 1-D array (n_users,), optional
        Raw ids of the known (training) users, the rows of ``histories``.
    histories : float32 CSR (n_users, n_items), optional
        The known users' histories, scored when no history is given.
    """

    item_ids: np.ndarray
    popularity: np.ndarray
    user_ids: np.ndarray | None = None
    histories: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_ids", plain_ids(self.item_ids))
        object.__setattr__(self, "popularity", np.asarray(self.popularity, dtype=np.int64))
        n = self.item_ids.shape[0]
        if self.item_ids.ndim != 1 or n == 0:
            raise DataError(f"item_ids must be a non-empty 1-D array, got shape {self.item_ids.shape}")
        if pd.Index(self.item_ids).has_duplicates:
            raise DataError("item_ids hold duplicate ids")
        if self.popularity.shape != (n,):
            raise DataError(f"popularity has shape {self.popularity.shape}, expected ({n},)")
        if (self.user_ids is None) != (self.histories is None):
            raise DataError("user_ids and histories go together: give both or neither")
        if self.histories is not None:
            users = plain_ids(self.user_ids)
            X = sp.csr_matrix(self.histories, dtype=np.float32)
            X.sort_indices()
            if X.shape != (users.shape[0], n):
                raise DataError(
                    f"histories have shape {X.shape}, expected ({users.shape[0]}, {n}) "
                    "(one row per user id, one column per item id)"
                )
            if pd.Index(users).has_duplicates:
                raise DataError("user_ids hold duplicate ids")
            object.__setattr__(self, "user_ids", users)
            object.__setattr__(self, "histories", X)

    @classmethod
    def from_matrix(
        cls, X: sp.spmatrix, item_ids: Any, user_ids: Any | None = None, store_histories: bool = True
    ) -> Catalog:
        """Build from the training matrix: popularity from ``X``; histories too when asked."""
        X = sp.csr_matrix(X, dtype=np.float32)
        pop = item_popularity(X)
        if store_histories and user_ids is not None:
            return cls(item_ids, pop, user_ids, X)
        return cls(item_ids, pop)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def has_histories(self) -> bool:
        return self.histories is not None

    def item_positions(self, raw: Any) -> np.ndarray:
        """Column of each raw item id, ``-1`` for ids the model does not know."""
        return _lookup(raw, self.item_ids, self._item_index)

    def user_positions(self, raw: Any) -> np.ndarray:
        """Row of each raw user id in ``histories``, ``-1`` for unknown users."""
        if self.user_ids is None:
            return np.full(len(raw), -1, dtype=np.int64)
        return _lookup(raw, self.user_ids, self._user_index)

    @property
    def _item_index(self) -> pd.Index:
        if "_items" not in self.__dict__:
            object.__setattr__(self, "_items", pd.Index(self.item_ids))
        return self.__dict__["_items"]

    @property
    def _user_index(self) -> pd.Index:
        if "_users" not in self.__dict__:
            object.__setattr__(self, "_users", pd.Index(self.user_ids))
        return self.__dict__["_users"]

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` of plain arrays (loadable with ``allow_pickle=False``)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(_CATALOG_FORMAT),
            "item_ids": self.item_ids,
            "popularity": self.popularity,
        }
        if self.histories is not None:
            X = self.histories
            idx_dtype = np.int32 if X.shape[1] < 2**31 else np.int64
            arrays.update(
                user_ids=self.user_ids,
                shape=np.asarray(X.shape, dtype=np.int64),
                indptr=X.indptr.astype(np.int64),
                indices=X.indices.astype(idx_dtype),
            )
            if X.nnz and not (X.data == 1).all():
                arrays["data"] = X.data.astype(np.float32)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        """Read what :meth:`save` wrote; pickled objects are refused."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such file (expected a recae catalog)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a readable recae catalog ({e})") from None
        if str(arrays.get("format", "")) != _CATALOG_FORMAT:
            raise DataError(f"{path}: unknown catalog format {arrays.get('format')!r}, expected {_CATALOG_FORMAT!r}")
        histories = None
        if "indptr" in arrays:
            shape = tuple(int(s) for s in arrays["shape"])
            data = arrays.get("data")
            if data is None:
                data = np.ones(arrays["indices"].shape[0], dtype=np.float32)
            histories = sp.csr_matrix((data, arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(arrays["item_ids"], arrays["popularity"], arrays.get("user_ids"), histories)


def save_bundle(model: Recommender, catalog: Catalog, path: str | Path) -> Path:
    """Write ``model`` and ``catalog`` into the folder ``path`` (``recae-model/`` + ``catalog.npz``)."""
    if model.n_items_ != catalog.n_items:
        raise DataError(
            f"the model scores {model.n_items_} items but the catalogue has {catalog.n_items} item ids"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_DIR)
    catalog.save(path / CATALOG_FILE)
    return path


def _find_bundle(path: Path) -> Path:
    """The folder holding ``recae-model/`` and ``catalog.npz``: ``path`` itself or its
    ``artifacts/`` folder (an MLflow pyfunc model's layout)."""
    for folder in (path, path / "artifacts"):
        if (folder / MODEL_DIR).is_dir() and (folder / CATALOG_FILE).is_file():
            return folder
    if (path / "MLmodel").is_file():
        raise DataError(f"{path}: an MLflow model, but not one logged by recae (no artifacts/{MODEL_DIR})")
    raise DataError(f"{path}: not a recae model (expected {MODEL_DIR}/ and {CATALOG_FILE}, or an MLflow model holding them)")


# --------------------------------------------------------------------- histories
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


class TopN:
    """A fitted model and its :class:`Catalog`: top-N lists in raw ids.

    Parameters
    ----------
    model : Recommender
        Fitted; its item columns are the catalogue's items.
    catalog : Catalog
    """

    def __init__(self, model: Recommender, catalog: Catalog):
        model._check_fitted()
        if model.n_items_ != catalog.n_items:
            raise DataError(
                f"the model scores {model.n_items_} items but the catalogue has {catalog.n_items} item ids"
            )
        self.model = model
        self.catalog = catalog

    @classmethod
    def load(cls, path: str | Path) -> TopN:
        """Read a bundle folder, or an MLflow pyfunc model folder logged by :mod:`recae.tracking.pyfunc`."""
        folder = _find_bundle(Path(path))
        return cls(Recommender.load(folder / MODEL_DIR), Catalog.load(folder / CATALOG_FILE))

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    # ------------------------------------------------------------- histories
    def fold_in(
        self, history: pd.DataFrame, users: Any | None = None, source: str = "history"
    ) -> Histories:
        """Map a history given as raw ids onto the model's items.

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
        raw_users = history["user"].to_numpy()
        if pd.isna(raw_users).any():
            row = int(np.flatnonzero(pd.isna(raw_users))[0])
            raise DataError(f"{source}: row {row + 1} has no user id")
        codes, uniques = pd.factorize(raw_users, sort=False)
        uniques = np.asarray(uniques)
        if users is not None:
            wanted = _unique_in_order(np.asarray(users))
            pos = _lookup(wanted, uniques, pd.Index(uniques))
            n_absent = int((pos < 0).sum())
            # Rows of `history` whose user was not asked for are dropped.
            new_row = np.full(len(uniques), -1, dtype=np.int64)
            new_row[pos[pos >= 0]] = np.flatnonzero(pos >= 0)
            codes = new_row[codes]
            out_users = wanted
        else:
            n_absent = 0
            out_users = uniques
        raw_items = history["item"].to_numpy()
        # A row without an item names a user with an empty history (JSON ``"u": []``).
        no_item = np.asarray(pd.isna(raw_items), dtype=bool)
        cols = self.catalog.item_positions(raw_items)
        keep_user = codes >= 0
        unknown = keep_user & (cols < 0) & ~no_item
        keep = keep_user & (cols >= 0)
        X = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (codes[keep], cols[keep])),
            shape=(len(out_users), self.n_items),
        )
        X.sum_duplicates()
        X.data[:] = 1.0
        X.sort_indices()
        n_unknown = int(unknown.sum())
        if n_unknown:
            examples = ", ".join(map(repr, pd.unique(raw_items[unknown])[:5].tolist()))
            warnings.warn(
                f"{source}: {n_unknown} row(s) name items the model does not know (ignored; e.g. {examples})",
                stacklevel=2,
            )
        if n_absent:
            warnings.warn(
                f"{source}: {n_absent} of {len(out_users)} listed users have no history; "
                "they get the popularity list",
                stacklevel=2,
            )
        return Histories(out_users, X, n_unknown, n_absent)

    def known(self, users: Any | None = None) -> Histories:
        """The stored histories of the training users (all, or those listed in ``users``).

        Listed users the model does not know get an empty row (the popularity fallback).
        """
        cat = self.catalog
        if cat.histories is None:
            raise UsageError(
                "this model stores no user histories; give them with a history file (--history)"
            )
        if users is None:
            return Histories(cat.user_ids, cat.histories)
        wanted = _unique_in_order(np.asarray(users))
        rows = cat.user_positions(wanted)
        n_absent = int((rows < 0).sum())
        X = cat.histories[np.maximum(rows, 0)]
        if n_absent:
            # Unknown users get an empty row: zero their rows, then drop the zeros.
            X = (sp.diags((rows >= 0).astype(np.float32)) @ X).tocsr()
            X.eliminate_zeros()
            warnings.warn(
                f"{n_absent} of {len(wanted)} listed users are not among the model's "
                f"{cat.user_ids.shape[0]} known users; they get the popularity list",
                stacklevel=2,
            )
        return Histories(wanted, sp.csr_matrix(X, dtype=np.float32), 0, n_absent)

    def allowed_items(
        self, allow: Any | None = None, deny: Any | None = None, allow_source: str = "allow list", deny_source: str = "deny list"
    ) -> np.ndarray | None:
        """A boolean mask over items from raw-id allow/deny lists (None: every item allowed).

        Unknown ids are counted in a warning; an allow list with no known id is an error.
        """
        if allow is None and deny is None:
            return None
        mask = np.ones(self.n_items, dtype=bool)
        if allow is not None:
            pos = self.catalog.item_positions(np.asarray(allow))
            self._warn_unknown(pos, allow_source)
            if not (pos >= 0).any():
                raise DataError(f"{allow_source}: none of its {len(pos)} ids is an item the model knows")
            mask[:] = False
            mask[pos[pos >= 0]] = True
        if deny is not None:
            pos = self.catalog.item_positions(np.asarray(deny))
            self._warn_unknown(pos, deny_source)
            mask[pos[pos >= 0]] = False
        if not mask.any():
            raise DataError("the allow and deny lists leave no item to recommend")
        return mask

    @staticmethod
    def _warn_unknown(pos: np.ndarray, source: str) -> None:
        n = int((pos < 0).sum())
        if n:
            warnings.warn(f"{source}: {n} of {len(pos)} ids are not items the model knows (ignored)", stacklevel=3)

    # ----------------------------------------------------------------- lists
    def iter_frames(
        self,
        histories: Histories,
        k: int,
        exclude_seen: bool = True,
        allowed: np.ndarray | None = None,
        batch_size: int = 1000,
        progress: bool = False,
    ) -> Iterator[pd.DataFrame]:
        """Top-``k`` frames, one per batch of users (memory O(batch_size × n_items)).

        Each frame has :data:`OUTPUT_COLUMNS`: ``user_id`` (raw), ``rank`` (1 = best),
        ``item_id`` (raw), ``score`` (the model's score, or the item's training
        popularity for fallback users) and ``fallback`` (True for users with no
        known item, who get the most popular eligible items). Users with fewer
        than ``k`` eligible items get all of them; a warning counts those users.
        """
        from tqdm.auto import tqdm

        k = check_k(k, self.n_items)
        pop_items, pop_scores = topk(self.catalog.popularity[None, :].astype(np.float32), k, allowed=allowed)
        X = histories.X
        n_short = 0
        with tqdm(total=X.shape[0], desc="recommend", unit="user", disable=not progress) as bar:
            for rows in iter_batches(X.shape[0], batch_size):
                batch = X[rows]
                items = np.empty((batch.shape[0], k), dtype=np.int64)
                scores = np.empty((batch.shape[0], k), dtype=np.float32)
                empty = np.diff(batch.indptr) == 0
                if (~empty).any():
                    items[~empty], scores[~empty] = self.model.recommend(
                        batch[~empty], k, exclude_seen=exclude_seen, allowed=allowed, batch_size=batch_size
                    )
                items[empty], scores[empty] = pop_items, pop_scores
                valid = items >= 0
                counts = valid.sum(axis=1)
                n_short += int((counts < k).sum())
                yield pd.DataFrame(
                    {
                        "user_id": np.repeat(histories.user_ids[rows], counts),
                        "rank": np.broadcast_to(np.arange(1, k + 1, dtype=np.int64), items.shape)[valid],
                        "item_id": self.catalog.item_ids[items[valid]],
                        "score": scores[valid],
                        "fallback": np.repeat(empty, counts),
                    }
                )
                bar.update(batch.shape[0])
        if n_short:
            warnings.warn(
                f"{n_short} user(s) have fewer than k={k} eligible items; their lists are shorter",
                stacklevel=2,
            )

    def frame(self, histories: Histories, k: int, **kwargs: Any) -> pd.DataFrame:
        """All of :meth:`iter_frames` in one frame."""
        frames = list(self.iter_frames(histories, k, **kwargs))
        return pd.concat(frames, ignore_index=True) if frames else self.empty_frame()

    def empty_frame(self) -> pd.DataFrame:
        """A frame with the output columns and their types, and no rows."""
        return _empty_frame(self.catalog)


def _unique_in_order(values: np.ndarray) -> np.ndarray:
    if values.ndim != 1:
        raise DataError(f"a list of ids must be 1-D, got shape {values.shape}")
    _, first = np.unique(pd.factorize(values, sort=False)[0], return_index=True)
    return values[np.sort(first)]


def _empty_frame(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.zeros(0, dtype=np.int64),
            "rank": np.zeros(0, dtype=np.int64),
            "item_id": catalog.item_ids[:0],
            "score": np.zeros(0, dtype=np.float32),
            "fallback": np.zeros(0, dtype=bool),
        }
    )


# ------------------------------------------------------------------------- files
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
    ``rating`` column only).
    """
    from recae import data

    path = Path(path)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if min_rating is not None:
            raise UsageError(f"{path}: --min-rating applies to rating tables, not to JSON histories")
        return _read_json_history(path)
    table_options = {}
    if min_rating is not None and path.is_file() and path.suffix.lower() != ".txt" and path.name not in (
        "u.data", "ratings.dat", "ratings.csv"  # MovieLens files: their readers keep the rating
    ):
        table_options["rating_col"] = "rating"  # a table's rating column is read only when named
    frame = data.load_ratings(str(path), progress=False, **table_options)
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise UsageError(f"{path}: has no rating column; --min-rating applies to rating tables")
        frame = data.binarize(frame, threshold=min_rating)
    return frame[["user", "item"]].reset_index(drop=True)


def _is_id(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.strip() != "")


def _read_json_history(path: Path) -> pd.DataFrame:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object {{user: [item, ...]}}, got a {type(obj).__name__}")
    if not obj:
        raise DataError(f"{path}: holds no users")
    users: list[Any] = []
    items: list[Any] = []
    for user, hist in obj.items():
        if not isinstance(hist, list):
            raise DataError(f"{path}: user {user!r}: expected a list of item ids, got a {type(hist).__name__}")
        for pos, item in enumerate(hist):
            if not _is_id(item):
                raise DataError(
                    f"{path}: user {user!r}, item #{pos + 1}: {item!r} is not an id (an integer or a non-empty string)"
                )
        if hist:
            users.extend([user] * len(hist))
            items.extend(hist)
        else:
            # An empty list names a user with no history: one row without an
            # item, so that they are scored (popularity list), not left out.
            users.append(user)
            items.append(None)
    if all(_INT_TEXT.fullmatch(u) for u in obj):
        user_col = np.array([int(u) for u in users], dtype=np.int64)
    else:
        user_col = np.array(users, dtype=object)
    if all(isinstance(i, int) for i in items):
        item_col = np.array(items, dtype=np.int64)
    else:
        item_col = np.array(items, dtype=object)
    return pd.DataFrame({"user": user_col, "item": item_col})


def read_id_list(path: str | Path, column: str) -> np.ndarray:
    """Raw ids from a file: one per line, or a CSV whose header names ``column``.

    Blank lines are skipped. Returns an int64 array when every id is an
    integer, else strings.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file of {column} ids")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    header = lines[0].split(",") if lines else []
    if len(header) > 1 or (header and header[0].strip() == column):
        names = [h.strip() for h in header]
        if column not in names:
            raise DataError(f"{path}, line 1: no {column!r} column; found {', '.join(names)}")
        try:
            frame = pd.read_csv(path, usecols=[column], dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as e:
            raise DataError(f"{path}: cannot read as CSV ({e})") from None
        values = [v.strip() for v in frame[column].tolist()]
        first_line = 2
    else:
        values = [v.strip() for v in lines]
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
    if all(_INT_TEXT.fullmatch(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    return np.array(values, dtype=str)


class write_table:  # noqa: N801 - used like a function: ``with write_table(path) as write: ...``
    """Write frames to a CSV or Parquet file atomically, batch by batch.

    The rows go to a temporary file in the destination folder, renamed over
    ``path`` when the ``with`` block ends without an error; an interrupted or
    failed run removes it and leaves no partial file (and any earlier file at
    ``path`` untouched). The format follows the suffix: ``.parquet``/``.pq``
    or ``.csv``.
    """

    FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = self.FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UsageError(f"{self.path}: unknown output format; use a .parquet or .csv file name")
        if self.path.is_dir():
            raise UsageError(f"{self.path}: is a directory, expected an output file name")
        self._tmp: Path | None = None
        self._file: Any = None
        self._writer: Any = None
        self.rows = 0

    def __enter__(self) -> write_table:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        # Created with open(..., "x") rather than mkstemp, so that the file gets
        # the umask's permissions (mkstemp's are owner-only).
        while True:
            tmp = folder / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
            try:
                with open(tmp, "x"):
                    break
            except FileExistsError:  # pragma: no cover - 48 random bits
                continue
        self._tmp = tmp
        return self

    def __call__(self, frame: pd.DataFrame) -> None:
        assert self._tmp is not None, "use write_table as a context manager"
        if self.format == "csv":
            if self._file is None:
                self._file = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
                frame.to_csv(self._file, index=False)
            else:
                frame.to_csv(self._file, index=False, header=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self._tmp), table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        self.rows += len(frame)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if self._writer is not None:
                self._writer.close()
        finally:
            assert self._tmp is not None
            if exc_type is None:
                self._tmp.replace(self.path)
            else:
                self._tmp.unlink(missing_ok=True)

