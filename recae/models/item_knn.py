"""Item–item nearest neighbours (cosine, TF-IDF or BM25 weighting), fitted by ``implicit``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

from recae.checks import Constraint, Interval, Options
from recae.models._implicit import implicit_fit_context
from recae.models.base import EpochCallback, Recommender, Validation


class ItemKNN(Recommender):
    """Item–item nearest neighbours from ``implicit.nearest_neighbours``.

    ``implicit`` weights the training matrix (``cosine``: rows of Xᵀ
    L2-normalized; ``tfidf``: TF-IDF then normalized; ``bm25``: BM25 with
    ``bm25_k1``, ``bm25_b``; in each case items are the documents and users the
    terms), keeps for every item its ``neighbors`` most similar items by dot
    product of the weighted columns — the item itself included — and scores a
    user's *raw* history row against that sparse similarity ``S``::

        score = x @ S        # x: (n, n_items) unweighted, S: (n_items, n_items)

    which is what ``implicit``'s own ``recommend`` computes, so the two agree
    for any history. ``S`` is not symmetric (row i holds i's neighbours).

    Parameters
    ----------
    weighting : {"cosine", "tfidf", "bm25"}
    neighbors : int
        ``implicit``'s ``K`` (its default is 20).
    bm25_k1, bm25_b : float
        BM25's term-frequency saturation (≥ 0) and length normalization (in
        [0, 1]); ``implicit``'s ``BM25Recommender`` defaults. Used by ``bm25`` only.
    num_threads : int
        Threads for the similarity computation; 0 = every core.
    """

    name = "item-knn"
    WEIGHTINGS = ("cosine", "tfidf", "bm25")
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "weighting": [Options(WEIGHTINGS)],
        "neighbors": [Interval(int, 1, None)],
        "bm25_k1": [Interval(float, 0, None)],
        "bm25_b": [Interval(float, 0, 1)],
        "num_threads": [Interval(int, 0, None)],
    }

    def __init__(
        self,
        weighting: str = "bm25",
        neighbors: int = 100,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 0,
    ) -> None:
        self.weighting = weighting
        self.neighbors = neighbors
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        k, k1, b = int(self.neighbors), float(self.bm25_k1), float(self.bm25_b)
        threads = int(self.num_threads)
        if self.weighting == "bm25":
            model = BM25Recommender(K=k, K1=k1, B=b, num_threads=threads)
        elif self.weighting == "tfidf":
            model = TFIDFRecommender(K=k, num_threads=threads)
        else:
            model = CosineRecommender(K=k, num_threads=threads)
        with implicit_fit_context():
            model.fit(X, show_progress=False)
        S = sp.csr_matrix(model.similarity, dtype=np.float64)
        S.sort_indices()
        self.similarity_ = S

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return (X @ self.similarity_).toarray().astype(np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """The kept neighbours' similarities (zero for the others)."""
        return self.similarity_[items].toarray().astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        S = self.similarity_
        return {
            "similarity_data": S.data,
            "similarity_indices": S.indices,
            "similarity_indptr": S.indptr,
            "similarity_shape": np.array(S.shape, dtype=np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in state["similarity_shape"])
        self.similarity_ = sp.csr_matrix(
            (state["similarity_data"], state["similarity_indices"], state["similarity_indptr"]),
            shape=shape,
        )

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        # BM25's k1 and b stay at their defaults: searched only on the BM25 branch,
        # they left that branch too few of 30 trials to be found.
        return {
            "weighting": trial.suggest_categorical("weighting", list(cls.WEIGHTINGS)),
            "neighbors": trial.suggest_int("neighbors", 10, 1000, log=True),
        }
