"""Anomalous users: how far each history's likelihood lies from the bulk of users.

Two numbers per user, both normalized for history length (means over the
user's items, so a long history is not more anomalous for being long):

- ``nll``: the model's reconstruction −log p(i | x_u), i over the user's items,
  p the decoder's multinomial given the whole history;
- ``popularity_nll``: the same under the popularity distribution (each item's
  share of all training interactions).

A user whose items the model cannot reconstruct (random items) has a high
``nll``; one who holds only the most popular items a low ``popularity_nll``;
a block of items that bots share, learned by heart, an ``nll`` far below
what their unpopular items would suggest. The score is the distance of the
pair from the bulk of users: each coordinate centred on its median and scaled
by its MAD, then the Mahalanobis distance under the covariance of the central
90% of users (the farthest 10% left out, so that the anomalies do not shape it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recae.errors import DataError

#: Users whose robust distance is below this quantile estimate the covariance.
CENTRAL_QUANTILE = 0.9


def mean_log_loss(log_probs: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
    """−mean over each row's stored items of ``log_probs[row, item]`` (n,); NaN for an empty row."""
    X = sp.csr_matrix(X)
    return _negative_row_means(X, log_probs[_entry_rows(X), X.indices])


def popularity_nll(X: sp.csr_matrix, popularity: np.ndarray) -> np.ndarray:
    """−mean log share of each row's items among all interactions (add-one smoothed): (n,)."""
    counts = np.asarray(popularity, dtype=np.float64) + 1.0
    log_share = np.log(counts / counts.sum())
    X = sp.csr_matrix(X)
    return _negative_row_means(X, log_share[X.indices])


def _entry_rows(X: sp.csr_matrix) -> np.ndarray:
    """The row of each stored entry of ``X``, in CSR order."""
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def _negative_row_means(X: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """−mean of ``values`` (one per stored entry of ``X``, CSR order) over each row; NaN for an empty row."""
    total = np.bincount(_entry_rows(X), weights=values, minlength=X.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return -total / np.diff(X.indptr)


def anomaly_scores(nll: np.ndarray, pop_nll: np.ndarray) -> np.ndarray:
    """The robust Mahalanobis distance of each user's ``(nll, pop_nll)`` from the bulk (n,)."""
    Z = np.stack([_robust_z(np.asarray(nll, float)), _robust_z(np.asarray(pop_nll, float))], axis=1)
    if len(Z) < 10:
        raise DataError(f"anomaly scores need at least 10 users to estimate the bulk, got {len(Z)}")
    radius = np.linalg.norm(Z, axis=1)
    central = Z[radius <= np.quantile(radius, CENTRAL_QUANTILE)]
    inverse = np.linalg.pinv(np.cov(central.T))
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, inverse, Z), 0.0))


def _robust_z(v: np.ndarray) -> np.ndarray:
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    return (v - med) / (mad if mad > 0 else (np.std(v) or 1.0))


__all__ = ["CENTRAL_QUANTILE", "anomaly_scores", "mean_log_loss", "popularity_nll"]
