"""How close synthetic histories are to real ones: item popularity and history length."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.stats


def popularity_js(A: sp.spmatrix, B: sp.spmatrix) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between the item-popularity
    distributions of two users × items matrices (each item's share of all interactions)."""
    p = np.asarray(sp.csr_matrix(A).getnnz(axis=0), dtype=np.float64)
    q = np.asarray(sp.csr_matrix(B).getnnz(axis=0), dtype=np.float64)
    p, q = p / max(p.sum(), 1.0), q / max(q.sum(), 1.0)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def length_ks(A: sp.spmatrix, B: sp.spmatrix) -> float:
    """The two-sample Kolmogorov–Smirnov statistic between the history lengths of ``A`` and ``B``."""
    return float(scipy.stats.ks_2samp(sp.csr_matrix(A).getnnz(axis=1), sp.csr_matrix(B).getnnz(axis=1)).statistic)


def uniform_histories(lengths: np.ndarray, n_items: int, seed: int = 0) -> sp.csr_matrix:
    """Histories of the given lengths with items drawn uniformly without replacement: the
    baseline a generative model's samples should beat."""
    rng = np.random.default_rng(seed)
    rows = [rng.choice(n_items, size=min(int(n), n_items), replace=False) for n in lengths]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(lengths), n_items))


__all__ = ["length_ks", "popularity_js", "uniform_histories"]
