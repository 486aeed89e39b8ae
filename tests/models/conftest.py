"""Data shared by the per-model tests: users in five blocks of twenty items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

N_BLOCKS, BLOCK = 5, 20


def five_blocks(
    n_users: int, seed: int, p_in: float = 0.5, p_noise: float = 0.03
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Users in 5 blocks of 20 items: each has its block's items with ``p_in``, others with ``p_noise``.

    Returns the (n_users, 100) binary float32 CSR matrix and each user's block.
    """
    rng = np.random.default_rng(seed)
    block = rng.integers(0, N_BLOCKS, n_users)
    dense = rng.random((n_users, N_BLOCKS * BLOCK)) < p_noise
    for u, b in enumerate(block):
        dense[u, b * BLOCK : (b + 1) * BLOCK] |= rng.random(BLOCK) < p_in
    return sp.csr_matrix(dense.astype(np.float32)), block


@pytest.fixture(scope="session")
def blocks() -> tuple[sp.csr_matrix, np.ndarray]:
    """300 users of :func:`five_blocks` (seed 0)."""
    return five_blocks(300, seed=0)
