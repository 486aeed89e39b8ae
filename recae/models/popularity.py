"""Most popular items: the same list for everyone, the floor every model must beat."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recae.models.base import EpochCallback, Recommender, Validation


class Popularity(Recommender):
    """Most popular items: the score of an item is the number of training users who have it.

    Every history gets the same scores; ties are broken by the ranking code
    (lower item index first). Takes no parameters.
    """

    name = "popularity"

    def __init__(self) -> None:
        pass

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        # Count users, not interaction values: an explicit zero is not an interaction.
        self.item_counts_ = np.bincount(X.indices[X.data > 0], minlength=X.shape[1]).astype(
            np.int64
        )

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return np.repeat(self.item_counts_.astype(np.float32)[None, :], X.shape[0], axis=0)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_counts_ = np.asarray(state["item_counts"], dtype=np.int64)
