"""Synthetic users: a trained VAE's samples are closer to the training data than uniform draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recae.cli import main
from recae.data.synthetic import power_law_interactions
from recae.errors import UsageError
from recae.evaluation.samples import length_ks, popularity_js, uniform_histories
from recae.models import make_model
from recae.models.autoencoder import first_in_order
from recae.serving import Catalog, item_popularity, save_bundle
from recae.serving.embeddings import synthetic_users
from tests.conftest import planted_blocks


def test_the_distances_against_direct_formulas():
    A = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32))  # popularity 2/3, 1/3, 0
    B = sp.csr_matrix(np.array([[0, 0, 1], [0, 1, 1]], dtype=np.float32))  # 0, 1/3, 2/3
    p, q = np.array([2 / 3, 1 / 3, 0]), np.array([0, 1 / 3, 2 / 3])
    m = (p + q) / 2
    kl = lambda a: sum(x * np.log2(x / y) for x, y in zip(a, m) if x > 0)  # noqa: E731
    assert popularity_js(A, B) == pytest.approx(0.5 * kl(p) + 0.5 * kl(q), abs=1e-12)
    assert popularity_js(A, A) == 0.0 and length_ks(A, A) == 0.0
    assert length_ks(A, B) == pytest.approx(0.0)  # both have lengths {1, 2}
    U = uniform_histories(np.array([3, 1, 2]), 5)
    assert U.getnnz(axis=1).tolist() == [3, 1, 2] and U.max() == 1


def test_the_drawn_items_are_each_rows_first_in_order_sorted():
    rng = np.random.default_rng(3)
    order = np.argsort(rng.random((50, 30)), axis=1)
    lengths = rng.integers(0, 31, size=50)
    expected = np.concatenate([np.sort(order[i, : lengths[i]]) for i in range(50)])
    np.testing.assert_array_equal(first_in_order(order, lengths), expected)


@pytest.mark.parametrize("name", ["mult-vae", "recvae"])
def test_a_trained_vae_samples_closer_to_the_training_data_than_uniform_items(name):
    X = power_law_interactions(n_users=600, n_items=200, mean_items_per_user=15, seed=0).matrix
    params = {"mult-vae": {"epochs": 30, "hidden_dims": [64], "latent_dim": 16, "batch_size": 100},
              "recvae": {"epochs": 8, "hidden_dim": 64, "latent_dim": 16, "batch_size": 100, "lr": 3e-3}}[name]
    model = make_model(name, **params).fit(X)
    frame, S = synthetic_users(model, X, 500, np.arange(200) + 1, seed=1)
    assert S.shape == (500, 200) and S.max() == 1  # distinct items per history
    assert set(S.getnnz(axis=1)) <= set(X.getnnz(axis=1))  # lengths drawn from the training lengths
    uniform = uniform_histories(S.getnnz(axis=1), 200, seed=1)
    assert popularity_js(S, X) < 0.9 * popularity_js(uniform, X)  # here 0.10 (Mult-VAE), 0.12 (RecVAE) against 0.14
    assert length_ks(S, X) < 0.1
    assert frame["user_id"].nunique() == 500 and frame["item_id"].between(1, 200).all()
    again, _ = synthetic_users(model, X, 500, np.arange(200) + 1, seed=1)
    pd.testing.assert_frame_equal(again, frame)  # the seed repeats the draws


def test_a_model_that_is_not_generative_says_so_and_the_command_writes_the_sample(tmp_path, capsys):
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="'mult-dae' is not generative"):
        make_model("mult-dae", epochs=1, hidden_dims=[8], latent_dim=4).fit(X).sample_histories([3])
    model = make_model("mult-vae", epochs=5, hidden_dims=[16], latent_dim=4).fit(X)
    folder = save_bundle(model, Catalog(np.arange(60) + 1, item_popularity(X), np.arange(X.shape[0]), X), tmp_path / "m")
    assert main(["sample", "--model", str(folder), "--n", "50", "--out", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "wrote 50 synthetic users" in out and "Jensen–Shannon divergence" in out and "(uniform items:" in out
    rows = pd.read_csv(tmp_path / "s.csv")
    assert list(rows.columns) == ["user_id", "item_id"] and rows["user_id"].nunique() == 50
    assert main(["sample", "--model", str(folder), "--n", "0", "--out", str(tmp_path / "t.csv")]) == 2


def _one_line(capsys) -> str:
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("recae: error: ")
    return err


def test_recae_sample_refuses_a_model_that_is_not_generative_and_a_count_below_one(tmp_path, capsys):
    X, _ = planted_blocks()
    catalog = Catalog(np.arange(60) + 1, item_popularity(X), np.arange(X.shape[0]), X)
    dae = save_bundle(make_model("mult-dae", epochs=1, hidden_dims=[8], latent_dim=4).fit(X), catalog, tmp_path / "dae")
    out = tmp_path / "s.csv"
    assert main(["sample", "--model", str(dae), "--n", "10", "--out", str(out)]) == 2
    assert "model 'mult-dae' is not generative" in _one_line(capsys)
    assert not out.exists()
    vae = save_bundle(make_model("mult-vae", epochs=1, hidden_dims=[8], latent_dim=4).fit(X), catalog, tmp_path / "vae")
    for n in ("0", "-1"):
        assert main(["sample", "--model", str(vae), "--n", n, "--out", str(out)]) == 2
        assert f"--n must be ≥ 1, got {n}" in _one_line(capsys)
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dae", "vae"]
