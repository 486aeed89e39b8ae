"""Users' codes and items' vectors as tables with raw ids, and a 2-D map of them.

:meth:`TopN.embed` (via :func:`user_table`) turns a model's
:meth:`~recae.models.base.Recommender.embed_users` into a frame
``user_id, z0 … z{d-1}`` (and ``var0 …`` for the variational models);
:func:`item_table` does the same for :meth:`~recae.models.base.Recommender.item_vectors`.
:func:`map_2d` projects rows to two dimensions (PCA by default, t-SNE from
scikit-learn when installed) and :func:`map_figure` draws them coloured by
activity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure

from recae.errors import UsageError
from recae.evaluation.anomalies import anomaly_scores, popularity_nll
from recae.models.base import Recommender
from recae.serving.histories import Histories

#: The projections :func:`map_2d` offers.
METHODS = ("pca", "tsne")


def user_table(model: Recommender, histories: Histories) -> pd.DataFrame:
    """``user_id, z0 …`` (and ``var0 …`` when the model has variances), one row per user."""
    codes, variances = model.embed_users(histories.X)
    frame = pd.DataFrame(codes, columns=[f"z{i}" for i in range(codes.shape[1])])
    if variances is not None:
        frame = pd.concat([frame, pd.DataFrame(variances, columns=[f"var{i}" for i in range(codes.shape[1])])], axis=1)
    frame.insert(0, "user_id", histories.user_ids)
    return frame


def item_table(model: Recommender, item_ids: np.ndarray) -> pd.DataFrame:
    """``item_id, v0 …``, one row per item of the model."""
    vectors = np.asarray(model.item_vectors(), dtype=np.float32)
    frame = pd.DataFrame(vectors, columns=[f"v{i}" for i in range(vectors.shape[1])])
    frame.insert(0, "item_id", item_ids)
    return frame


def map_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Rows of ``vectors`` (n × d) projected to (n × 2): the first two principal components,
    or t-SNE (``method="tsne"``; needs scikit-learn)."""
    if method not in METHODS:
        raise UsageError(f"map method {method!r}: expected one of {', '.join(METHODS)}")
    X = np.asarray(vectors, dtype=np.float64)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise UsageError("a t-SNE map needs scikit-learn (pip install scikit-learn); the PCA map does not") from None
        return TSNE(n_components=2, random_state=seed, init="pca").fit_transform(X)
    centred = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))) if out.shape[1] < 2 else out


def map_figure(points: np.ndarray, activity: np.ndarray, title: str) -> Figure:
    """A scatter of ``points`` (n × 2) coloured by log10 of ``activity`` (items per user or users per item)."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    shown = ax.scatter(points[:, 0], points[:, 1], c=np.log10(np.maximum(activity, 1)), s=4, cmap="viridis", alpha=0.7)
    fig.colorbar(shown, ax=ax, label="log10 activity")
    ax.set_title(title)
    return fig




def synthetic_users(
    model: Recommender, training: sp.csr_matrix, n: int, item_ids: np.ndarray, seed: int = 0
) -> tuple[pd.DataFrame, sp.csr_matrix]:
    """``n`` synthetic histories from a generative model, their lengths drawn from the
    training histories' lengths: a ``user_id, item_id`` frame (ids ``synthetic-0`` …,
    raw item ids) and the matrix."""
    lengths = np.diff(training.indptr)
    lengths = lengths[lengths > 0]
    drawn = np.random.default_rng(seed).choice(lengths, size=n, replace=True)
    X = model.sample_histories(drawn, seed=seed)
    rows = np.repeat(np.arange(n), np.diff(X.indptr))
    frame = pd.DataFrame({"user_id": [f"synthetic-{u}" for u in rows], "item_id": item_ids[X.indices]})
    return frame, X




def anomaly_table(model: Recommender, histories: Histories, popularity: np.ndarray) -> pd.DataFrame:
    """``user_id, score, nll, popularity_nll``, most anomalous first (see :mod:`recae.evaluation.anomalies`);
    users without a known item are left out."""
    keep = np.diff(histories.X.indptr) > 0
    X = histories.X[keep]
    nll = model.reconstruction_nll(X)
    pop = popularity_nll(X, popularity)
    frame = pd.DataFrame({"user_id": histories.user_ids[keep], "score": anomaly_scores(nll, pop),
                          "nll": nll, "popularity_nll": pop})
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


__all__ = ["METHODS", "anomaly_table", "item_table", "map_2d", "map_figure", "synthetic_users", "user_table"]
