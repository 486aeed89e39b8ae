"""Item-kNN's scores against ``implicit``'s own ``recommend``."""

from __future__ import annotations

import numpy as np
import pytest
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

from recae.errors import UsageError
from recae.models import ItemKNN
from tests.models.contract import ModelContract


class TestItemKNNContract(ModelContract):
    model_class = ItemKNN
    fast_params = {"neighbors": 20}
    bad_params = [{"weighting": "foo"}, {"neighbors": 0}, {"bm25_b": 1.5}]


@pytest.mark.filterwarnings(
    "ignore::implicit.utils.ParameterWarning"
)  # implicit's own COO→CSR notice
@pytest.mark.parametrize("weighting", ["cosine", "tfidf", "bm25"])
def test_item_knn_scores_equal_implicits_recommend(blocks, weighting: str) -> None:
    X, _ = blocks
    X = X.copy()
    X.data = np.random.default_rng(0).integers(1, 4, X.nnz).astype(np.float32)  # non-binary values
    model = ItemKNN(weighting=weighting, neighbors=15, bm25_k1=1.5, bm25_b=0.6, num_threads=1).fit(
        X
    )
    ref = {
        "cosine": CosineRecommender(K=15, num_threads=1),
        "tfidf": TFIDFRecommender(K=15, num_threads=1),
        "bm25": BM25Recommender(K=15, K1=1.5, B=0.6, num_threads=1),
    }[weighting]
    ref.fit(X, show_progress=False)

    users = np.arange(0, 300, 11)
    ids, scores = ref.recommend(users, X[users], N=X.shape[1], filter_already_liked_items=False)
    ours = model.score(X[users])
    returned = scores > -1e30  # implicit pads rows whose other items all score 0
    np.testing.assert_allclose(
        np.take_along_axis(ours, ids, axis=1)[returned], scores[returned], rtol=1e-6
    )
    # what implicit leaves out scores 0 with us
    assert (np.count_nonzero(ours, axis=1) == returned.sum(axis=1)).all()


def test_weighting_error_lists_the_allowed_values(blocks) -> None:
    with pytest.raises(UsageError, match="'cosine', 'tfidf', 'bm25'"):
        ItemKNN(weighting="foo").fit(blocks[0])
