"""One contract every registered model must keep (parametrized over the registry)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import NotFittedError, UsageError
from recae.models import REGISTRY, Recommender, make_model
from tests.conftest import planted_blocks

#: Settings that make each model fit the planted data in about a second.
FAST: dict[str, dict] = {
    "mult-vae": dict(hidden_dims=(32,), latent_dim=8, epochs=30, batch_size=40, lr=1e-2, device="cpu", total_anneal_steps=0, anneal_cap=0.05),
    "mult-dae": dict(hidden_dims=(32,), latent_dim=8, epochs=30, batch_size=40, lr=1e-2, device="cpu"),
    "ease": dict(l2=10.0),
    "als": dict(factors=8, iterations=10, regularization=0.1, num_threads=1),
    "bpr": dict(factors=16, iterations=200, learning_rate=0.05, num_threads=1),
    "item-knn": dict(neighbors=20),
    "popularity": dict(),
}
MODELS = sorted(REGISTRY)


def test_every_registered_model_has_fast_settings():
    assert set(FAST) == set(REGISTRY)


@pytest.fixture(scope="module")
def data():
    X, blocks = planted_blocks(n_users=150, n_items=60, n_blocks=3, density=0.5, seed=0)
    new, new_blocks = planted_blocks(n_users=30, n_items=60, n_blocks=3, density=0.3, seed=1)
    return X, new, new_blocks


@pytest.fixture(scope="module")
def fitted(data):
    X = data[0]
    return {name: make_model(name, **FAST[name]).fit(X) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_fit_returns_self_and_sets_learned_state(name, data):
    model = make_model(name, **FAST[name])
    assert not model.is_fitted
    assert model.fit(data[0]) is model
    assert model.is_fitted and model.n_items_ == data[0].shape[1]


@pytest.mark.parametrize("name", MODELS)
def test_unfitted_model_raises_a_clear_error(name, data):
    with pytest.raises(NotFittedError, match="not fitted"):
        make_model(name).score(data[0])


@pytest.mark.parametrize("name", MODELS)
def test_input_items_are_never_recommended(name, data, fitted):
    _, new, _ = data
    items, _ = fitted[name].recommend(new, k=40)
    for u in range(new.shape[0]):
        assert not set(items[u][items[u] >= 0]) & set(new[u].indices)


@pytest.mark.parametrize("name", MODELS)
def test_batch_scores_equal_single_user_scores(name, data, fitted):
    _, new, _ = data
    model = fitted[name]
    batch = model.score(new)
    for u in (0, 7, 29):
        np.testing.assert_allclose(model.score(new[u]), batch[u : u + 1], rtol=1e-5, atol=1e-6)
    items_batch, _ = model.recommend(new, k=10, batch_size=7)
    items_whole, _ = model.recommend(new, k=10, batch_size=1000)
    np.testing.assert_array_equal(items_batch, items_whole)


@pytest.mark.parametrize("name", MODELS)
def test_a_fixed_seed_repeats_exactly(name, data):
    X, new, _ = data
    a = make_model(name, **FAST[name]).fit(X).score(new)
    b = make_model(name, **FAST[name]).fit(X).score(new)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", [m for m in MODELS if m != "popularity"])
def test_a_planted_block_structure_is_recovered(name, data, fitted):
    """New users' top-5 lists come mostly from their own block (≈ 14 unseen items each)."""
    _, new, blocks = data
    items, _ = fitted[name].recommend(new, k=5)
    own = (items % 3) == blocks[:, None]
    assert own.mean() > 0.9, f"{name}: only {own.mean():.0%} of recommendations from the user's block"


def test_popularity_ranks_by_training_counts(data, fitted):
    X = data[0]
    counts = np.asarray(X.sum(axis=0)).ravel()
    items, _ = fitted["popularity"].recommend(sp.csr_matrix((1, X.shape[1]), dtype=np.float32), k=5)
    assert list(items[0]) == list(np.argsort(-counts, kind="stable")[:5])


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, data, fitted, tmp_path):
    _, new, _ = data
    loaded = Recommender.load(fitted[name].save(tmp_path / name))
    assert type(loaded) is type(fitted[name])
    np.testing.assert_allclose(loaded.score(new), fitted[name].score(new), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_an_unknown_parameter_is_named(name):
    with pytest.raises(UsageError, match="no parameter 'bogus'"):
        make_model(name, bogus=1)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_catalogue_width_is_rejected(name, fitted):
    from recae.errors import DataError

    with pytest.raises(DataError, match="fitted on 60 items"):
        fitted[name].score(sp.csr_matrix((2, 59), dtype=np.float32))


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown model 'mult-gan'.*mult-vae"):
        make_model("mult-gan")
