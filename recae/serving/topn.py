"""Top-N lists with raw ids: batch lists for known users, fold-in for new users.

This is the far end of the flow in DESIGN.md: raw ids come back here, and only
here, after everything in between ran on integer indices.

:class:`TopN` joins a fitted model and its :class:`~recae.serving.catalog.Catalog`
(a *bundle*) and turns histories given as raw ids into top-N frames
``user_id, rank, item_id, score, fallback``. No MLflow here: the command line
reads a bundle from a local folder (``recae.tracking.pyfunc`` downloads it from
a model URI first), and the pyfunc model calls the same code.

Id matching (:func:`recae.serving.ids.convert_ids`): ids read from files are
matched to the model's ids by value, converted to the model's id type first;
an id that cannot take that type (``50.9`` or ``True`` for integer ids) is
unknown. Unknown ids are dropped and counted in a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recae.checks import check_k
from recae.errors import DataError, UsageError
from recae.evaluation.ranking import topk
from recae.models.base import Recommender, iter_batches
from recae.serving.catalog import (
    CATALOG_FILE,
    MODEL_DIR,
    Catalog,
    check_bundle,
    find_bundle,
    load_model,
)
from recae.serving.histories import Histories, map_history, stored_histories

__all__ = ["OUTPUT_COLUMNS", "TopN"]

#: Columns of every top-N frame, in order.
OUTPUT_COLUMNS = ("user_id", "rank", "item_id", "score", "fallback")


class TopN:
    """A fitted model and its :class:`~recae.serving.catalog.Catalog`: top-N lists in raw ids.

    Parameters
    ----------
    model : Recommender
        Fitted; its item columns are the catalogue's items.
    catalog : Catalog
    """

    def __init__(self, model: Recommender, catalog: Catalog):
        model._check_fitted()
        check_bundle(model, catalog)
        self.model = model
        self.catalog = catalog

    @classmethod
    def load(cls, path: str | Path) -> TopN:
        """Read a bundle folder, or an MLflow pyfunc model folder logged by :mod:`recae.tracking.pyfunc`."""
        folder = find_bundle(Path(path))
        return cls(load_model(folder / MODEL_DIR), Catalog.load(folder / CATALOG_FILE))

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    # ------------------------------------------------------------- histories
    def fold_in(
        self, history: pd.DataFrame, users: Any | None = None, source: str = "history"
    ) -> Histories:
        """Map a history given as raw ids onto the model's items (see
        :func:`~recae.serving.histories.map_history`).

        ``history`` is a frame with ``user`` and ``item`` columns; ``users``
        optionally restricts and orders the rows; ``source`` names the history
        in messages.
        """
        return map_history(history, self.catalog, users, source)

    def similar(self, items: Any, k: int = 10, source: str = "--item") -> pd.DataFrame:
        """The ``k`` items most similar to each of ``items`` (raw ids), by the model's item
        similarity (:meth:`recae.models.base.Recommender.similar_items`).

        Columns ``item_id, rank, similar_item_id, score``, best first. An id the
        model does not know is a ``UsageError`` naming it (and ``source``).
        """
        raw = np.atleast_1d(np.asarray(items, dtype=object))
        pos = self.catalog.item_positions(raw)
        if (pos < 0).any():
            unknown = raw[pos < 0][0]
            raise UsageError(f"{source}: item {unknown!r} is not an item the model knows")
        top, scores = self.model.similar_items(pos, k)
        keep = top >= 0
        ranks = np.broadcast_to(np.arange(1, top.shape[1] + 1), top.shape)
        return pd.DataFrame({
            "item_id": np.repeat(self.catalog.item_ids[pos], top.shape[1])[keep.ravel()],
            "rank": ranks[keep],
            "similar_item_id": self.catalog.item_ids[top[keep]],
            "score": scores[keep],
        })

    def known(self, users: Any | None = None) -> Histories:
        """The stored histories of the training users (all, or those listed in ``users``).

        Listed users the model does not know get an empty row (the popularity fallback).
        """
        return stored_histories(self.catalog, users)

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
            pos = self.catalog.item_positions(allow)
            self._warn_unknown(pos, allow_source)
            if not (pos >= 0).any():
                raise DataError(f"{allow_source}: none of its {len(pos)} ids is an item the model knows")
            mask[:] = False
            mask[pos[pos >= 0]] = True
        if deny is not None:
            pos = self.catalog.item_positions(deny)
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
        return pd.DataFrame(
            {
                "user_id": np.zeros(0, dtype=np.int64),
                "rank": np.zeros(0, dtype=np.int64),
                "item_id": self.catalog.item_ids[:0],
                "score": np.zeros(0, dtype=np.float32),
                "fallback": np.zeros(0, dtype=bool),
            }
        )
