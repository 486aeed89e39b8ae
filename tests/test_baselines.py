"""Tests of the baselines against closed forms and against ``implicit`` itself.

Every model-specific claim in ``recae.models.baselines`` is checked here: EASE
against a dense numpy solve, ALS's fold-in against ``implicit``'s own user
solve, item-kNN's scores against ``implicit``'s ``recommend``, BPR's fold-in on
a planted pattern, and the state round trip of every model. (The contract
every model shares is tested once, over the registry, elsewhere.)
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import MemoryBudgetError, UsageError
from recae.models.base import Recommender
from recae.models.baselines import ALS, BPR, EASE, ItemKNN, Popularity

N_BLOCKS, BLOCK = 5, 20


def planted(
    n_users: int, seed: int, p_in: float = 0.5, p_noise: float = 0.03
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Users in 5 blocks of 20 items: each has its block's items with ``p_in``, others with ``p_noise``.

    Returns the (n_users, 100) binary float32 CSR matrix and each user's block.
    """
    rng = np.random.default_rng(seed)
    block = rng.integers(0, N_BLOCKS, n_users)
    dense = rng.random((n_users, N_BLOCKS * BLOCK)) < p_noise
    for u, b in enumerate(block):
        dense[u, b * BLOCK : (b + 1) * BLOCK] |= rng.random(BLOCK) < p_in
    return sp.csr_matrix(dense.astype(np.float32)), block


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_matrix, np.ndarray]:
    return planted(300, seed=0)


# ------------------------------------------------------------- popularity


def test_popularity_counts_users_per_item() -> None:
    X = sp.csr_matrix(np.array([[1, 0, 3], [1, 0, 0], [0, 0, 2]], dtype=np.float32))
    model = Popularity().fit(X)
    np.testing.assert_array_equal(model.item_counts_, [2, 0, 2])
    scores = model.score(sp.csr_matrix((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(scores, [[2, 0, 2], [2, 0, 2]])


# ------------------------------------------------------------------- EASE


def test_ease_matches_dense_closed_form() -> None:
    rng = np.random.default_rng(1)
    X = sp.random(80, 40, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    l2 = 7.5
    model = EASE(l2=l2).fit(X)

    D = X.toarray().astype(np.float64)
    P = np.linalg.inv(D.T @ D + l2 * np.eye(40))
    B = np.eye(40) - P / np.diag(P)[None, :]  # B = I − P · diag(1/diag(P))
    np.testing.assert_array_equal(np.diag(model.weights_), 0.0)
    np.testing.assert_allclose(model.weights_, B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(X[:7]), D[:7] @ B, rtol=1e-4, atol=1e-5)


def test_ease_refuses_over_memory_budget(data) -> None:
    X, _ = data
    estimate = EASE.memory_estimate(X.shape[1])
    assert estimate == EASE.MEMORY_FACTOR * 8 * X.shape[1] ** 2
    with pytest.raises(MemoryBudgetError) as err:
        EASE(max_memory=estimate / 2).fit(X)
    message = str(err.value)
    assert f"{estimate / 1e9:.3g} GB" in message
    assert f"{estimate / 2e9:.3g} GB" in message
    assert f"n_items={X.shape[1]}" in message
    EASE(max_memory=estimate).fit(X)  # exactly at the budget is allowed


# -------------------------------------------------------------------- ALS


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_als_fold_in_is_implicits_user_solve(data, alpha: float) -> None:
    """Fold-in of training users == ``implicit``'s Cholesky ``recalculate_user``, and its scores."""
    from implicit.cpu.als import AlternatingLeastSquares

    X, _ = data
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
    X, block = planted(1000, seed=2)
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


# -------------------------------------------------------------------- BPR


@pytest.fixture(scope="module")
def bpr(data) -> BPR:
    X, _ = data
    return BPR(factors=16, learning_rate=0.05, iterations=40, random_state=0).fit(X)


def test_bpr_fold_in_ranks_a_new_users_block_first(bpr) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for b in range(N_BLOCKS):
        row = np.zeros(N_BLOCKS * BLOCK, dtype=np.float32)
        row[b * BLOCK + rng.choice(BLOCK, 8, replace=False)] = 1.0
        rows.append(row)
    new_users = sp.csr_matrix(np.array(rows))
    items, _ = bpr.recommend(new_users, k=8)
    np.testing.assert_array_equal(
        items // BLOCK, np.arange(N_BLOCKS)[:, None] * np.ones((1, 8), int)
    )


def test_bpr_scores_are_deterministic_and_per_history(bpr, data) -> None:
    X, _ = data
    batch = bpr.score(X[:6])
    alone = np.vstack([bpr.score(X[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(batch, alone, rtol=1e-6, atol=1e-6)
    again = BPR(**bpr.get_params()).fit(X)
    np.testing.assert_array_equal(again.item_factors_, bpr.item_factors_)
    np.testing.assert_array_equal(again.score(X[:6]), batch)
    # an empty history scores the item biases
    empty = bpr.score(sp.csr_matrix((1, X.shape[1]), dtype=np.float32))
    np.testing.assert_array_equal(empty[0], bpr.item_factors_[:, -1])


def test_bpr_fold_in_agrees_with_implicits_user_factors(data) -> None:
    """Folding in training users ranks roughly as the factors ``implicit`` learned for them."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    X, _ = data
    model = BPR(factors=16, learning_rate=0.05, iterations=40, random_state=0).fit(X)
    ref = BayesianPersonalizedRanking(
        factors=16, learning_rate=0.05, iterations=40, random_state=0, num_threads=1
    )
    ref.fit(X, show_progress=False)
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors)
    own = ref.user_factors @ ref.item_factors.T
    folded = model.score(X)
    corr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(own, folded, strict=True)])
    assert corr > 0.95  # measured 0.97


# --------------------------------------------------------------- item-kNN


@pytest.mark.filterwarnings(
    "ignore::implicit.utils.ParameterWarning"
)  # implicit's own COO→CSR notice
@pytest.mark.parametrize("weighting", ["cosine", "tfidf", "bm25"])
def test_item_knn_scores_equal_implicits_recommend(data, weighting: str) -> None:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    X, _ = data
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


# ------------------------------------------------------- state round trip

SMALL = {
    Popularity: {},
    EASE: {"l2": 10.0},
    ALS: {"factors": 8, "iterations": 3, "alpha": 2.0, "num_threads": 1},
    BPR: {"factors": 8, "iterations": 5, "fold_in_steps": 20},
    ItemKNN: {"neighbors": 10, "num_threads": 1},
}


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.name)
def test_state_round_trip_gives_identical_scores(cls: type[Recommender], data, tmp_path) -> None:
    X, _ = data
    model = cls(**SMALL[cls]).fit(X[:250])
    state = model._get_state()
    for key, value in state.items():
        assert isinstance(value, np.ndarray) and value.dtype.kind in "biuf", key
    np.savez(tmp_path / "state.npz", **state)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as npz:
        loaded = {k: npz[k] for k in npz.files}
    fresh = cls(**model.get_params())
    fresh._set_state(loaded)
    fresh.n_items_ = model.n_items_
    np.testing.assert_array_equal(fresh.score(X[250:]), model.score(X[250:]))

    saved = Recommender.load(model.save(tmp_path / "model"))
    assert type(saved) is cls and saved.get_params() == model.get_params()
    np.testing.assert_array_equal(saved.score(X[250:]), model.score(X[250:]))


# ------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("cls", "params", "named"),
    [
        (EASE, {"l2": -1.0}, "l2"),
        (EASE, {"l2": 0.0}, "l2"),
        (EASE, {"max_memory": 0}, "max_memory"),
        (ALS, {"factors": 0}, "factors"),
        (ALS, {"alpha": 0.0}, "alpha"),
        (ALS, {"regularization": float("nan")}, "regularization"),
        (ALS, {"iterations": 2.5}, "iterations"),
        (BPR, {"learning_rate": 0.0}, "learning_rate"),
        (BPR, {"num_threads": -1}, "num_threads"),
        (BPR, {"fold_in_samples": 0}, "fold_in_samples"),
        (BPR, {"random_state": "x"}, "random_state"),
        (ItemKNN, {"weighting": "foo"}, "weighting"),
        (ItemKNN, {"neighbors": 0}, "neighbors"),
        (ItemKNN, {"bm25_b": 1.5}, "bm25_b"),
    ],
)
def test_invalid_parameters_raise_usage_error_in_fit(cls, params, named, data) -> None:
    X, _ = data
    model = cls(**params)  # the constructor only stores
    with pytest.raises(UsageError, match=named) as err:
        model.fit(X)
    assert repr(next(iter(params.values())))[:3] in str(err.value)


def test_weighting_error_lists_the_allowed_values(data) -> None:
    with pytest.raises(UsageError, match="'cosine', 'tfidf', 'bm25'"):
        ItemKNN(weighting="foo").fit(data[0])


@pytest.mark.parametrize("cls", [EASE, ALS, BPR, ItemKNN], ids=lambda c: c.name)
def test_search_space_draws_valid_parameters(cls) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        params = cls.search_space(study.ask())
        assert params and set(params) <= set(cls.param_names())
        cls(**params)._check_params()
