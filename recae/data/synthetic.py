"""Synthetic interaction data for measuring at scales the shared data sets do not reach.

Item popularity follows a Zipf law and user activity a log-normal law, the two
shapes real implicit-feedback data show; users also prefer one of a few
latent "tastes", so models have something to learn. Nothing here claims to
mimic a particular data set: it exists to time and size the code.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recae.data.interactions import Interactions


def power_law_interactions(
    n_users: int = 100_000,
    n_items: int = 20_000,
    mean_items_per_user: float = 70.0,
    zipf_exponent: float = 1.0,
    n_tastes: int = 20,
    taste_weight: float = 0.7,
    seed: int | np.random.Generator = 0,
) -> Interactions:
    """A binary users × items matrix with power-law popularity and activity.

    Parameters
    ----------
    n_users, n_items : int
        Shape of the matrix (ML-20M after the paper's preprocessing: about
        136,677 × 20,108 with 10 million interactions, i.e. ~73 items per user).
    mean_items_per_user : float
        Mean of the log-normal activity (each user has at least 5 items).
    zipf_exponent : float
        Popularity of the item at rank r ∝ r^(−exponent).
    n_tastes, taste_weight : int, float
        Items are dealt into ``n_tastes`` groups; each user draws a share
        ``taste_weight`` of their items from their own group.
    seed : int or Generator

    Returns
    -------
    Interactions with integer raw ids ``0..n-1``.
    """
    rng = np.random.default_rng(seed)
    sigma = 1.0
    activity = rng.lognormal(np.log(mean_items_per_user) - sigma**2 / 2, sigma, n_users)
    activity = np.clip(np.round(activity), 5, n_items // 2).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf_exponent
    popularity = popularity[rng.permutation(n_items)]
    taste_of_item = rng.integers(0, n_tastes, n_items)
    taste_of_user = rng.integers(0, n_tastes, n_users)

    global_p = popularity / popularity.sum()
    per_taste = []
    for t in range(n_tastes):
        p = np.where(taste_of_item == t, popularity, 0.0)
        per_taste.append(p / p.sum())
    # Draw with replacement (vectorised per taste), then drop duplicate pairs:
    # popular items repeat, so users end up with about a third fewer items than
    # drawn at the defaults (45 per user on average), which is fine for timing.
    rows, cols = [], []
    from_taste = rng.binomial(activity, taste_weight)
    for t in range(n_tastes):
        users = np.flatnonzero(taste_of_user == t)
        counts = from_taste[users]
        rows.append(np.repeat(users, counts))
        cols.append(rng.choice(n_items, size=counts.sum(), p=per_taste[t]))
    counts = activity - from_taste
    rows.append(np.repeat(np.arange(n_users), counts))
    cols.append(rng.choice(n_items, size=counts.sum(), p=global_p))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return Interactions(X, np.arange(n_users), np.arange(n_items), source=f"synthetic {n_users}x{n_items}")
