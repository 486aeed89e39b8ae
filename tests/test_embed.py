"""Embeddings: identical histories share a code; users of disjoint taste clusters separate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recae import tracking
from recae.cli import main
from recae.errors import UsageError
from recae.models import make_model
from recae.serving import Catalog, item_popularity, save_bundle
from recae.serving.embeddings import map_2d
from recae.tracking import MlflowTracker
from tests.conftest import planted_blocks

MODELS = {
    "mult-vae": {"epochs": 15, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40, "total_anneal_steps": 100},
    "mult-dae": {"epochs": 15, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40},
    "recvae": {"epochs": 5, "hidden_dim": 32, "latent_dim": 8, "batch_size": 40, "lr": 5e-3},
    "cdae": {"epochs": 10, "hidden_dim": 8, "batch_size": 40},
    "elsa": {"factors": 8, "epochs": 10, "batch_size": 40, "lr": 0.05},
    "als": {"factors": 8, "iterations": 10},
    "bpr": {"factors": 8, "iterations": 50},
}


def _probe_accuracy(codes: np.ndarray, labels: np.ndarray) -> float:
    """Nearest-centroid accuracy, centroids from the even rows, scored on the odd rows."""
    fit, test = np.arange(0, len(codes), 2), np.arange(1, len(codes), 2)
    centroids = np.stack([codes[fit][labels[fit] == c].mean(axis=0) for c in np.unique(labels)])
    distances = ((codes[test][:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return float((distances.argmin(axis=1) == labels[test]).mean())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_codes_separate_taste_clusters_and_identical_histories_share_a_code(name):
    X, blocks = planted_blocks(n_users=300, n_items=60, n_blocks=3, density=0.5, noise=0.02)
    model = make_model(name, **MODELS[name]).fit(X)
    codes, variances = model.embed_users(X)
    assert codes.shape[0] == 300 and codes.dtype == np.float32
    assert (variances is not None) == (name in ("mult-vae", "recvae"))
    assert _probe_accuracy(codes, blocks) >= 0.9, name
    again, _ = model.embed_users(X[[5, 5]])  # the same history twice
    # equal up to float rounding (CDAE's fold-in steps run batched)
    np.testing.assert_allclose(again[0], again[1], rtol=1e-5, atol=1e-6)


def test_a_model_without_codes_says_so():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="'ease' gives no user codes"):
        make_model("ease", l2=10.0).fit(X).embed_users(X)
    with pytest.raises(UsageError, match="'vasp' gives no user codes"):
        make_model("vasp", epochs=1, hidden_dim=8, latent_dim=4, encoder_layers=1, decoder_layers=1).fit(X).embed_users(X)


def test_recae_embed_writes_codes_vectors_and_a_map_and_logs_them_to_the_models_run(tmp_path, mlflow_uri, capsys):
    X, _ = planted_blocks()
    model = make_model("mult-vae", **MODELS["mult-vae"]).fit(X)
    catalog = Catalog(np.arange(60) + 100, item_popularity(X), np.arange(X.shape[0]) + 1000, X)
    folder = save_bundle(model, catalog, tmp_path / "m")
    args = ["embed", "--model", str(folder), "--out", str(tmp_path / "u.parquet"), "--items", str(tmp_path / "i.csv"),
            "--map", str(tmp_path / "map.png")]
    assert main(args) == 0
    users = pd.read_parquet(tmp_path / "u.parquet")
    assert list(users.columns) == ["user_id", *(f"z{i}" for i in range(8)), *(f"var{i}" for i in range(8))]
    assert users["user_id"].tolist() == list(range(1000, 1000 + X.shape[0]))
    items = pd.read_csv(tmp_path / "i.csv")
    assert items["item_id"].tolist() == list(range(100, 160)) and items.shape[1] == 1 + 32
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    with MlflowTracker(mlflow_uri).run("e", "r", tags={}) as run:
        uri = run.log_model(model, catalog)
    assert main(["embed", "--model", uri, "--out", str(tmp_path / "u2.csv"), "--tracking-uri", mlflow_uri]) == 0
    logged = [a.path for a in tracking.client(mlflow_uri).list_artifacts(run.run_id, "embeddings")]
    assert logged == ["embeddings/u2.csv"]
    capsys.readouterr()
    assert main(["embed", "--model", str(folder), "--out", str(tmp_path / "x.csv"), "--map-items"]) == 2
    assert "--map-items draws the map --map names" in capsys.readouterr().err


def test_the_map_of_a_model_from_a_run_is_logged_to_that_run(tmp_path, mlflow_uri, capsys):
    X, _ = planted_blocks()
    model = make_model("mult-vae", **MODELS["mult-vae"]).fit(X)
    catalog = Catalog(np.arange(60) + 100, item_popularity(X), np.arange(X.shape[0]) + 1000, X)
    with MlflowTracker(mlflow_uri).run("e", "r", tags={}) as run:
        run.log_model(model, catalog)
    uri = f"runs:/{run.run_id}/model"
    png = tmp_path / "maps" / "users.png"
    args = ["embed", "--model", uri, "--out", str(tmp_path / "u.csv"), "--map", str(png), "--tracking-uri", mlflow_uri]
    assert main(args) == 0
    client = tracking.client(mlflow_uri)
    assert sorted(a.path for a in client.list_artifacts(run.run_id, "embeddings")) == ["embeddings/u.csv", "embeddings/users.png"]
    logged = client.download_artifacts(run.run_id, "embeddings/users.png", str(tmp_path / "down"))
    assert open(logged, "rb").read() == png.read_bytes() and png.read_bytes()[:4] == b"\x89PNG"


def test_a_tsne_map_separates_the_taste_clusters_and_the_command_draws_it(tmp_path):
    pytest.importorskip("sklearn")
    X, blocks = planted_blocks(n_users=90)
    model = make_model("mult-vae", **MODELS["mult-vae"]).fit(X)
    codes, _ = model.embed_users(X)
    points = map_2d(codes, "tsne")
    assert points.shape == (90, 2) and np.isfinite(points).all()
    assert _probe_accuracy(points, blocks) >= 0.9  # the clusters stay apart in the plane
    np.testing.assert_array_equal(map_2d(codes, "tsne"), points)  # seeded
    folder = save_bundle(model, Catalog(np.arange(60), item_popularity(X), np.arange(90), X), tmp_path / "m")
    for method in ("tsne", "pca"):
        args = ["embed", "--model", str(folder), "--out", str(tmp_path / f"{method}.csv"),
                "--map", str(tmp_path / f"{method}.png"), "--map-method", method]
        assert main(args) == 0
    tsne, pca = (tmp_path / "tsne.png").read_bytes(), (tmp_path / "pca.png").read_bytes()
    assert tsne[:4] == b"\x89PNG" and tsne != pca


def test_recae_embed_on_a_model_without_codes_is_one_line_and_writes_nothing(tmp_path, capsys):
    X, _ = planted_blocks()
    folder = save_bundle(make_model("ease", l2=10.0).fit(X), Catalog(np.arange(60), item_popularity(X), np.arange(X.shape[0]), X),
                         tmp_path / "m")
    args = ["embed", "--model", str(folder), "--out", str(tmp_path / "u.csv"), "--items", str(tmp_path / "i.csv"),
            "--map", str(tmp_path / "map.png")]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("recae: error: model 'ease' gives no user codes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
