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
        # a taste no item was dealt (small catalogues) draws from the whole catalogue
        per_taste.append(p / p.sum() if p.sum() > 0 else global_p)
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


#: The kinds of bot :func:`inject_bots` makes.
BOT_KINDS = ("random", "popular", "block")


def inject_bots(
    X: sp.csr_matrix, share: float = 0.02, block_size: int = 30, seed: int | np.random.Generator = 0
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``X`` with ``share`` × its users added as bots, a third of each kind, and each row's kind.

    - ``random``: as many items as a real history drawn at random holds, uniformly;
    - ``popular``: that many of the most popular items;
    - ``block``: one fixed block of ``block_size`` unpopular items (popularity
      ranks from the middle of the catalogue on), the same for every such bot.

    Returns the matrix (real users first, then the bots) and an int array:
    0 for a real user, 1 + the index of the bot's kind in :data:`BOT_KINDS`.
    """
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(X, dtype=np.float32)
    n_users, n_items = X.shape
    popularity = X.getnnz(axis=0)
    by_popularity = np.argsort(-popularity, kind="stable")
    lengths = X.getnnz(axis=1)
    lengths = np.minimum(lengths[lengths > 0], n_items)
    per_kind = max(1, int(round(share * n_users / len(BOT_KINDS))))
    block = by_popularity[n_items // 2 : n_items // 2 + block_size]
    rows: list[np.ndarray] = []
    for kind in BOT_KINDS:
        for _ in range(per_kind):
            length = int(rng.choice(lengths))
            if kind == "random":
                rows.append(rng.choice(n_items, size=length, replace=False))
            elif kind == "popular":
                rows.append(by_popularity[:length])
            else:
                rows.append(block)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    bots = sp.csr_matrix((np.ones(indptr[-1], dtype=np.float32), np.concatenate(rows), indptr), shape=(len(rows), n_items))
    bots.sort_indices()
    labels = np.concatenate([np.zeros(n_users, dtype=np.int64), np.repeat(np.arange(1, len(BOT_KINDS) + 1), per_kind)])
    return sp.vstack([X, bots], format="csr"), labels
