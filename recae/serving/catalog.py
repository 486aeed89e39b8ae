"""What a fitted model needs besides its weights to speak in raw ids, and the bundle
folder that holds both.

A *bundle* is what a logged model carries (see :mod:`recae.tracking.pyfunc`):

- ``recae-model/``: the fitted :class:`~recae.models.base.Recommender`
  (``Recommender.save``: JSON + npz, loaded with ``allow_pickle=False``);
- ``catalog.npz``: a :class:`Catalog`: the raw item id of each column, each
  item's popularity in the training matrix (the fallback list for users with
  no known items) and, optionally, the training users' raw ids and histories
  (CSR arrays), so that known users can be scored without any input file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.errors import DataError, RecaeError
from recae.files import atomic_path
from recae.models.base import Recommender
from recae.serving.ids import lookup_ids, plain_ids

__all__ = [
    "CATALOG_FILE",
    "MODEL_DIR",
    "Catalog",
    "check_bundle",
    "find_bundle",
    "item_popularity",
    "load_model",
    "save_bundle",
]

#: Folder of the saved Recommender inside a bundle.
MODEL_DIR = "recae-model"
#: File of the :class:`Catalog` inside a bundle.
CATALOG_FILE = "catalog.npz"

_CATALOG_FORMAT = "recae-catalog/1"


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
        """Column of each raw item id (matched by :func:`~recae.serving.ids.convert_ids`),
        ``-1`` for ids the model does not know: int64 (n,)."""
        return lookup_ids(raw, self.item_ids, self._item_index)

    def user_positions(self, raw: Any) -> np.ndarray:
        """Row of each raw user id in ``histories`` (matched by
        :func:`~recae.serving.ids.convert_ids`), ``-1`` for unknown users: int64 (n,)."""
        if self.user_ids is None:
            return np.full(len(raw), -1, dtype=np.int64)
        return lookup_ids(raw, self.user_ids, self._user_index)

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
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
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
            raise DataError(f"{path}: not a readable recae catalog ({_first_sentence(e)})") from None
        if str(arrays.get("format", "")) != _CATALOG_FORMAT:
            raise DataError(f"{path}: unknown catalog format {arrays.get('format')!r}, expected {_CATALOG_FORMAT!r}")
        try:
            return cls._from_arrays(arrays)
        except KeyError as e:
            raise DataError(f"{path}: not a readable recae catalog (no array {e})") from None
        except (ValueError, TypeError, IndexError) as e:  # CSR arrays that do not fit together
            raise DataError(f"{path}: not a readable recae catalog ({_first_sentence(e)})") from None

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> Catalog:
        histories = None
        if "indptr" in arrays:
            shape = tuple(int(s) for s in arrays["shape"])
            data = arrays.get("data")
            if data is None:
                data = np.ones(arrays["indices"].shape[0], dtype=np.float32)
            histories = sp.csr_matrix((data, arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(arrays["item_ids"], arrays["popularity"], arrays.get("user_ids"), histories)


def check_bundle(model: Recommender, catalog: Catalog) -> None:
    """``DataError`` unless ``model`` scores exactly the catalogue's items."""
    if model.n_items_ != catalog.n_items:
        raise DataError(
            f"the model scores {model.n_items_} items but the catalogue has {catalog.n_items} item ids"
        )


def save_bundle(model: Recommender, catalog: Catalog, path: str | Path) -> Path:
    """Write ``model`` and ``catalog`` into the folder ``path`` (``recae-model/`` + ``catalog.npz``)."""
    check_bundle(model, catalog)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_DIR)
    catalog.save(path / CATALOG_FILE)
    return path


def load_model(path: str | Path) -> Recommender:
    """:meth:`Recommender.load` of a bundle's model folder, checked by scoring one empty history.

    A missing, unreadable or inconsistent file (no ``state.npz``, a file that
    is not an npz, an array missing or of the wrong shape, unknown metadata)
    raises one ``DataError`` naming the folder, whatever the reader raised.
    """
    path = Path(path)
    try:
        model = Recommender.load(path)
    except DataError:
        raise
    except RecaeError as e:  # e.g. an unknown model name in the metadata: the file's fault
        raise DataError(f"{path}: {e}") from None
    except KeyError as e:
        raise DataError(f"{path}: not a readable recae model (its state has no array {e})") from None
    except _READ_ERRORS as e:
        raise DataError(f"{path}: not a readable recae model ({_first_sentence(e)})") from None
    try:
        model.score(sp.csr_matrix((1, model.n_items_), dtype=np.float32))
    except _SCORE_ERRORS as e:
        raise DataError(
            f"{path}: its arrays do not make a model of {model.n_items_} items ({_first_sentence(e)})"
        ) from None
    return model


# What reading a damaged folder can raise: a missing file (OSError), a file that
# is not a zip (BadZipFile) or is cut short (EOFError), an object array or bad
# JSON value (ValueError), metadata of the wrong shape (TypeError, AttributeError),
# weights torch will not take (RuntimeError).
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, AttributeError, RuntimeError, zipfile.BadZipFile)
# What scoring with arrays of the wrong shape raises (numpy, scipy, torch), and
# Recommender.score's own check of the shape of what the model returned.
_SCORE_ERRORS = (ValueError, IndexError, TypeError, RuntimeError, AssertionError)


def _first_sentence(error: Exception) -> str:
    return str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__


def find_bundle(path: Path) -> Path:
    """The folder holding ``recae-model/`` and ``catalog.npz``: ``path`` itself or its
    ``artifacts/`` folder (an MLflow pyfunc model's layout)."""
    for folder in (path, path / "artifacts"):
        if (folder / MODEL_DIR).is_dir() and (folder / CATALOG_FILE).is_file():
            return folder
    if (path / "MLmodel").is_file():
        raise DataError(f"{path}: an MLflow model, but not one logged by recae (no artifacts/{MODEL_DIR})")
    raise DataError(f"{path}: not a recae model (expected {MODEL_DIR}/ and {CATALOG_FILE}, or an MLflow model holding them)")
