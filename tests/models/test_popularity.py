"""Most-popular: counts users per item and ranks by them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recae.models import Popularity
from tests.models.contract import ModelContract


class TestPopularityContract(ModelContract):
    model_class = Popularity
    tunable = False

    def test_a_planted_pattern_is_recovered(self, data, fitted):
        """The pattern popularity knows: everyone gets the most-bought items first."""
        X = data[0]
        counts = np.asarray(X.sum(axis=0)).ravel()
        items, _ = fitted.recommend(sp.csr_matrix((1, X.shape[1]), dtype=np.float32), k=5)
        assert list(items[0]) == list(np.argsort(-counts, kind="stable")[:5])


def test_popularity_counts_users_per_item() -> None:
    X = sp.csr_matrix(np.array([[1, 0, 3], [1, 0, 0], [0, 0, 2]], dtype=np.float32))
    model = Popularity().fit(X)
    np.testing.assert_array_equal(model.item_counts_, [2, 0, 2])
    scores = model.score(sp.csr_matrix((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(scores, [[2, 0, 2], [2, 0, 2]])
