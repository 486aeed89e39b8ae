"""ALS: its fold-in against ``implicit``'s own user solve, and against a refit."""

from __future__ import annotations

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares

from recae.models import ALS
from tests.models.conftest import BLOCK, five_blocks
from tests.models.contract import ModelContract


class TestALSContract(ModelContract):
    model_class = ALS
    fast_params = {"factors": 8, "iterations": 10, "regularization": 0.1, "num_threads": 1}
    bad_params = [
        {"factors": 0},
        {"alpha": 0.0},
        {"regularization": float("nan")},
        {"iterations": 2.5},
        {"random_state": -1},
    ]


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_als_fold_in_is_implicits_user_solve(blocks, alpha: float) -> None:
    """Fold-in of training users == ``implicit``'s Cholesky ``recalculate_user``, and its scores."""
    X, _ = blocks
    model = ALS(
        factors=12, regularization=0.5, alpha=alpha, iterations=6, random_state=3, num_threads=1
    ).fit(X)
    ref = AlternatingLeastSquares(
        factors=12, regularization=0.5, alpha=alpha, iterations=6, random_state=3, num_threads=1
    )
    ref.fit(X, show_progress=False)
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors)

    users = np.arange(0, 300, 7)
    expected = ref.recalculate_user(users, X[users])
    got = model.fold_in(X[users])
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()

    ids, scores = ref.recommend(
        users, X[users], N=X.shape[1], filter_already_liked_items=False, recalculate_user=True
    )
    ours = np.take_along_axis(model.score(X[users]), ids, axis=1)
    np.testing.assert_allclose(ours, scores, rtol=1e-4, atol=1e-4 * np.abs(scores).max())


def test_als_fold_in_of_held_out_users_matches_refit() -> None:
    """Held-out users folded in score like the same users in a model refit with them.

    The planted matrix has rank-5 block structure and the model has 5 factors:
    with more factors than that, the extra dimensions fit noise that differs
    from fit to fit, and the two score vectors agree much less (measured: mean
    correlation ~0.96 with 8 factors) although both rank the user's block first.
    """
    X, block = five_blocks(1000, seed=2)
    held_out, train = X[:20], X[20:]
    params = dict(factors=5, regularization=1.0, iterations=30, random_state=0, num_threads=1)
    folded = ALS(**params).fit(train).score(held_out)
    refit = ALS(**params).fit(X).score(held_out)

    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(folded, refit, strict=True)]
    assert min(corr) > 0.99
    seen = held_out.toarray() > 0
    top_folded = np.argsort(np.where(seen, -np.inf, folded), axis=1)[:, ::-1][:, :5]
    top_refit = np.argsort(np.where(seen, -np.inf, refit), axis=1)[:, ::-1][:, :5]
    overlap = np.mean(
        [len(set(a) & set(b)) / 5 for a, b in zip(top_folded, top_refit, strict=True)]
    )
    assert overlap >= 0.85
    assert np.mean(top_folded // BLOCK == block[:20, None]) >= 0.95
