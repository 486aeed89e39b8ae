"""Blend: the standardized weighted sum against numpy, weights chosen on validation, members checked."""

from __future__ import annotations

import numpy as np
import pytest

from recae.errors import UsageError
from recae.models import Blend, make_model
from recae.models.blend import standardized
from tests.conftest import planted_blocks
from tests.models.contract import ModelContract

TINY = {"mult-dae": {"hidden_dims": [32], "latent_dim": 8, "epochs": 30, "batch_size": 40, "lr": 1e-2}, "ease": {"l2": 10.0}}


class TestBlendContract(ModelContract):
    model_class = Blend
    fast_params = {"members": ["mult-dae", "ease"], "member_params": TINY}
    bad_params = [
        {"members": ["ease"]},
        {"members": ["ease", "ease"]},
        {"members": ["ease", "als"]},
        {"weights": [1.0]},
        {"weights": [0.0, 0.0]},
        {"weights": [-1.0, 1.0]},
        {"grid_step": 0.0},
        {"grid_step": 0.7},
        {"member_params": {"edlae": {"l2": 1.0}}},
        {"member_params": {"ease": {"l2": -1.0}}},
        {"member_params": {"ease": {"lambda": 1.0}}},
    ]


def _split():
    X, _ = planted_blocks(n_users=150, n_items=40, n_blocks=4, density=0.4, seed=3)
    rng = np.random.default_rng(0)
    val_in = X[120:].copy()
    val_out = X[120:].copy()
    for u in range(val_in.shape[0]):
        row = val_in.indices[val_in.indptr[u] : val_in.indptr[u + 1]]
        held = rng.choice(row, size=len(row) // 2, replace=False)
        val_in[u, held] = 0
        val_out[u, np.setdiff1d(row, held)] = 0
    val_in.eliminate_zeros()
    val_out.eliminate_zeros()
    return X[:120], (val_in, val_out)


def test_scores_are_the_weighted_sum_of_standardized_member_scores():
    train, validation = _split()
    blend = Blend(members=["mult-dae", "ease"], member_params=TINY, weights=[3.0, 1.0]).fit(train, validation)
    X = validation[0]
    dae = make_model("mult-dae", **TINY["mult-dae"]).fit(train, validation).score(X).astype(np.float64)
    ease = make_model("ease", **TINY["ease"]).fit(train).score(X).astype(np.float64)
    z = [(s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True) for s in (dae, ease)]
    np.testing.assert_allclose(blend.score(X), 0.75 * z[0] + 0.25 * z[1], atol=1e-5)


def test_standardized_rows_have_mean_0_std_1_and_constant_rows_become_zero():
    s = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    z = standardized(s)
    np.testing.assert_allclose(z[0], (s[0] - 3.0) / np.sqrt(3.5), atol=1e-6)
    assert (z[1] == 0).all()


def test_weights_are_the_best_point_of_the_grid_on_validation():
    train, validation = _split()
    blend = Blend(members=["mult-dae", "ease"], member_params=TINY, grid_step=0.25).fit(train, validation)
    grid = [s["weights"] for s in blend.selection_]
    assert grid == [[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]
    best = max(blend.selection_, key=lambda s: s["val/ndcg_at_100"])
    assert blend.weights_.tolist() == best["weights"]
    assert blend.best_score_ == best["val/ndcg_at_100"]


def test_a_bad_member_parameter_is_refused_before_any_member_trains():
    train, validation = _split()
    bad = Blend(members=["mult-dae", "ease"], member_params={"mult-dae": {"epochs": 0}})
    with pytest.raises(UsageError, match="epochs must be an integer ≥ 1"):
        bad.fit(train, validation)
    assert not bad.is_fitted


def test_selected_params_repeat_the_weights_and_each_members_best_epoch():
    train, validation = _split()
    blend = Blend(members=["mult-dae", "ease"], member_params=TINY, grid_step=0.5).fit(train, validation)
    chosen = blend.selected_params()
    assert chosen["weights"] == blend.weights_.tolist()
    assert chosen["member_params"]["mult-dae"] == {**TINY["mult-dae"], "epochs": blend.members_[0].best_epoch_}
    assert chosen["member_params"]["ease"] == TINY["ease"]
    refit = Blend(members=["mult-dae", "ease"], member_params=TINY).set_params(**chosen).fit(train)
    assert refit.weights_.tolist() == blend.weights_.tolist()
