"""Shared fixtures: planted data, the shared data sets, and a migrated MLflow store per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if SHARED_DATASETS.is_dir():
    # Tests never download: named data sets come from ../shared/datasets, as in CI.
    os.environ.setdefault("RECAE_DATA_DIR", str(SHARED_DATASETS))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` beside the checkout (CI has it); tests that need it skip without it."""
    path = Path(os.environ.get("RECAE_DATA_DIR", SHARED_DATASETS))
    if not (path / "ml-100k" / "u.data").is_file():
        pytest.skip(f"shared data sets not found at {path}")
    return path


#: Model settings that keep a benchmark of every registered model on ml-100k or
#: ml-latest-small to seconds (models not named keep their defaults).
FAST_BENCHMARK_PARAMS: dict[str, dict] = {
    "mult-vae": {"epochs": 2, "hidden_dims": [64], "latent_dim": 16},
    "mult-dae": {"epochs": 2, "hidden_dims": [64], "latent_dim": 16},
    "recvae": {"epochs": 2, "hidden_dim": 64, "latent_dim": 16},
    "vasp": {"epochs": 2, "hidden_dim": 64, "latent_dim": 16, "encoder_layers": 2, "decoder_layers": 2, "lr": 1e-3},
    "cdae": {"epochs": 2, "hidden_dim": 16, "fold_in_steps": 3},
    "edlae": {"rank": 64},  # the full-rank closed form is EASE's cost again; its own tests cover it
    "blend": {
        "member_params": {"recvae": {"epochs": 2, "hidden_dim": 64, "latent_dim": 16}, "edlae": {"rank": 32}},
        "grid_step": 0.5,
    },
    "bpr": {"iterations": 5, "fold_in_steps": 10},
    "als": {"iterations": 3},
}


def planted_blocks(
    n_users: int = 120, n_items: int = 60, n_blocks: int = 3, density: float = 0.5, noise: float = 0.01, seed: int = 0
) -> tuple[sp.csr_matrix, np.ndarray]:
    """A binary matrix where user ``u`` likes the items of block ``u % n_blocks``.

    Returns the matrix (float32 CSR) and each user's block.
    """
    rng = np.random.default_rng(seed)
    block_of_item = np.arange(n_items) % n_blocks
    user_block = np.arange(n_users) % n_blocks
    likes = block_of_item[None, :] == user_block[:, None]
    X = (likes & (rng.random((n_users, n_items)) < density)) | (rng.random((n_users, n_items)) < noise)
    # every user has at least two items of their block
    for u in range(n_users):
        items = np.flatnonzero(block_of_item == user_block[u])
        X[u, items[:2]] = True
    return sp.csr_matrix(X.astype(np.float32)), user_block


@pytest.fixture
def planted() -> tuple[sp.csr_matrix, np.ndarray]:
    return planted_blocks()


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store, created and migrated once per session (migration takes seconds)."""
    from recae import tracking  # imports mlflow: only the sessions that track pay for it

    folder = tmp_path_factory.mktemp("mlflow-template")
    db = folder / "mlflow.db"
    tracking.client(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_uri(tmp_path: Path, _mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh copy of the migrated store under ``tmp_path``; artifacts land under ``tmp_path`` too."""
    db = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
