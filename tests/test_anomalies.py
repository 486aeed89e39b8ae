"""Anomalous users: injected bots of three kinds are told from real users by the score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata

from recae.cli import main
from recae.data.synthetic import BOT_KINDS, inject_bots, power_law_interactions
from recae.errors import UsageError
from recae.evaluation.anomalies import anomaly_scores, mean_log_loss, popularity_nll
from recae.models import make_model
from recae.serving import Catalog, item_popularity, save_bundle
from tests.conftest import planted_blocks


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The probability that a positive outscores a negative (ties count half)."""
    ranks = rankdata(scores)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_the_per_item_losses_against_direct_formulas():
    X = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    log_probs = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    np.testing.assert_allclose(mean_log_loss(log_probs, X), [-(np.log(0.5) + np.log(0.25)) / 2, -np.log(0.8)])
    share = (np.array([3, 1, 0]) + 1) / 7
    np.testing.assert_allclose(popularity_nll(X, np.array([3, 1, 0])),
                               [-(np.log(share[0]) + np.log(share[2])) / 2, -np.log(share[1])])
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(200), rng.standard_normal(200)
    a[0], b[0] = 8.0, 8.0  # one far point
    scores = anomaly_scores(a, b)
    assert scores.argmax() == 0 and scores.shape == (200,)


def test_bots_of_every_kind_are_told_from_real_users(tmp_path):
    X = power_law_interactions(n_users=1500, n_items=400, mean_items_per_user=25, seed=0).matrix
    X, kinds = inject_bots(X, share=0.02, seed=0)
    assert np.bincount(kinds).tolist() == [1500, 10, 10, 10]
    model = make_model("mult-vae", epochs=50, hidden_dims=[100], latent_dim=32, batch_size=100).fit(X)
    scores = anomaly_scores(model.reconstruction_nll(X), popularity_nll(X, X.getnnz(axis=0)))
    for k, kind in enumerate(BOT_KINDS, start=1):
        keep = (kinds == 0) | (kinds == k)
        assert roc_auc(scores[keep], kinds[keep] == k) >= 0.9, kind
    catalog = Catalog(np.arange(400), item_popularity(X), np.arange(X.shape[0]) + 1, X)
    folder = save_bundle(model, catalog, tmp_path / "m")
    assert main(["anomalies", "--model", str(folder), "--out", str(tmp_path / "a.csv")]) == 0
    frame = pd.read_csv(tmp_path / "a.csv")
    assert list(frame.columns) == ["user_id", "score", "nll", "popularity_nll"]
    assert (np.diff(frame["score"]) <= 0).all() and len(frame) == X.shape[0]


def test_a_model_without_a_multinomial_reconstruction_says_so():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="'ease' has no multinomial reconstruction"):
        make_model("ease", l2=10.0).fit(X).reconstruction_nll(X)
    with pytest.raises(UsageError, match="'mult-dae' has no multinomial reconstruction"):
        make_model("mult-dae", epochs=1, likelihood="gaussian").fit(X).reconstruction_nll(X)


def test_the_generator_takes_a_catalogue_where_some_taste_has_no_item():
    X = power_law_interactions(n_users=100, n_items=50, mean_items_per_user=10, n_tastes=40, seed=0).matrix
    assert X.shape == (100, 50) and (X.getnnz(axis=1) > 0).all()  # it drew NaN probabilities before


def test_recae_anomalies_scores_the_histories_of_data_most_anomalous_first(tmp_path, capsys):
    X, _ = planted_blocks(n_users=150)
    model = make_model("mult-vae", epochs=50, hidden_dims=[32], latent_dim=8, batch_size=40, total_anneal_steps=100).fit(X)
    ids = np.arange(60) + 100
    folder = save_bundle(model, Catalog(ids, item_popularity(X), np.arange(X.shape[0]), X), tmp_path / "m")
    rows = [(f"u{u}", ids[i]) for u in range(40) for i in X[u].indices]
    rows += [("mixed", ids[i]) for i in range(0, 60, 2)]  # half of every block's items: no one taste
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(tmp_path / "h.csv", index=False)
    out = tmp_path / "a.csv"
    assert main(["anomalies", "--model", str(folder), "--data", str(tmp_path / "h.csv"), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[:2]) == ["user_id", "score"]
    assert sorted(frame["user_id"]) == sorted([f"u{u}" for u in range(40)] + ["mixed"])
    assert (np.diff(frame["score"]) <= 0).all() and frame["user_id"].iloc[0] == "mixed"
    # --history, the name recommend and embed use, is the same option
    assert main(["anomalies", "--model", str(folder), "--history", str(tmp_path / "h.csv"), "--out", str(tmp_path / "b.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b.csv"), frame)
    capsys.readouterr()
    assert main(["anomalies", "--model", str(folder), "--min-rating", "3", "--out", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert err == "recae: error: --min-rating applies to --data files\n" and not (tmp_path / "c.csv").exists()
