"""The dense item × item Gram matrix and its in-place inverse: what EASE and EDLAE's full-rank fit share.

Memory is one n_items × n_items matrix of the chosen precision (float32 by
default: 4·n² bytes) plus a workspace of at most :data:`WORKSPACE_FRACTION`
of it: the Gram matrix XᵀX is formed one block of rows at a time, each block's
sparse product written straight into the dense matrix, and LAPACK's Cholesky
routines (``potrf``, ``potri``) invert it in place. For a 40,981-item catalogue
that is 8.4 GB in float32, where three float64 matrices took 40 GB.

Precision: the Gram matrix holds counts (exact in float32 up to 2²⁴ users per
item pair), and ``XᵀX + Λ`` with Λ ≥ λ·I, λ > 0, is symmetric positive definite
and well conditioned for the λ these models use; the float32 inverse gives the
float64 one's top-20 lists for more than 99% of users on ml-1m-lcfn (see
``tests/models/test_gram.py`` and the README).
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recae.checks import Constraint, Options
from recae.errors import ModelFitError

#: The precisions the closed-form models compute in (their ``dtype`` parameter).
DTYPE_CONSTRAINT: list[Constraint] = [Options(("float32", "float64"))]
#: The sparse product's block, at most this fraction of the dense matrix's bytes.
WORKSPACE_FRACTION = 0.25
#: From this size on, the Cholesky routines run on one BLAS thread: the threaded
#: ``spotrf`` of the OpenBLAS that scipy ships (0.3.30) writes out of bounds and
#: kills the process from about n = 27,000 on 2 threads (n = 26,000 passes), where
#: one thread factors n = 40,119 correctly, about twice as slowly.
SINGLE_THREAD_FROM = 20_000


def memory_estimate(n_items: int, dtype: str = "float32") -> int:
    """Peak bytes of :func:`dense_gram` + :func:`spd_inverse_inplace` and the float32
    weights made from the inverse: one n × n matrix, the workspace, and (float64
    only) the float32 copy."""
    itemsize = np.dtype(dtype).itemsize
    n2 = int(n_items) ** 2
    return int(itemsize * n2 * (1 + WORKSPACE_FRACTION) + (4 * n2 if itemsize != 4 else 0))


def dense_gram(X: sp.csr_matrix, dtype: str, diagonal: float | np.ndarray) -> np.ndarray:
    """``XᵀX + diag(diagonal)`` as a dense C-ordered ``dtype`` matrix, n_items × n_items.

    Rows are computed in blocks whose sparse product (values and int32
    indices, at worst fully dense) stays under :data:`WORKSPACE_FRACTION` of
    the dense matrix.
    """
    dt = np.dtype(dtype)
    n = X.shape[1]
    Xd = sp.csr_matrix(X, dtype=dt)
    XT = Xd.T.tocsr()
    G = np.empty((n, n), dtype=dt)
    rows = max(1, int(WORKSPACE_FRACTION * dt.itemsize * n / (dt.itemsize + 4)))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        (XT[start:stop] @ Xd).toarray(out=G[start:stop])
    G[np.diag_indices(n)] += diagonal
    return G


def spd_inverse_inplace(A: np.ndarray, owner: str, l2: float) -> np.ndarray:
    """Invert a symmetric positive definite matrix (float32 or float64), overwriting ``A``; returns it.

    ``potrf`` + ``potri`` work in place, so unlike ``np.linalg.inv`` or
    ``cho_solve`` against the identity no second n × n buffer is needed.
    ``owner`` and ``l2`` name the model and its penalty in the error raised
    when the matrix is not positive definite.
    """
    n = A.shape[0]
    # A is C-ordered and symmetric, so A.T is the same matrix in Fortran order:
    # LAPACK works on it in place. Its upper triangle is A's lower one.
    F = A.T
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (F,))
    threads = threadpool_limits(1, user_api="blas") if n >= SINGLE_THREAD_FROM else contextlib.nullcontext()
    with threads:
        c, info = potrf(F, lower=False, overwrite_a=True, clean=False)
        if info == 0:
            inv, info_inv = potri(c, lower=False, overwrite_c=True)
    if info > 0:
        raise ModelFitError(
            f"{owner}: XᵀX + l2·I is not positive definite (leading minor {info} of {n}) "
            f"with l2={l2:g}; increase l2"
        )
    if info < 0:
        raise ModelFitError(f"{owner}: LAPACK potrf rejected argument {-info}")
    if info_inv != 0:
        raise ModelFitError(f"{owner}: the inverse of XᵀX + l2·I failed (LAPACK potri info={info_inv}) with l2={l2:g}")
    if not (inv is F or np.shares_memory(inv, A)):  # LAPACK made a copy after all
        A[...] = inv.T
    _mirror_lower_to_upper(A)
    return A


def _mirror_lower_to_upper(A: np.ndarray, block: int = 512) -> None:
    """Copy A's lower triangle over its upper one, a block of rows at a time (no n × n buffer)."""
    n = A.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        # rows start:stop, columns right of the diagonal block ← lower triangle below it
        A[start:stop, stop:] = A[stop:, start:stop].T
        d = A[start:stop, start:stop]
        iu = np.triu_indices(stop - start, 1)
        d[iu] = d.T[iu]


__all__ = ["DTYPE_CONSTRAINT", "SINGLE_THREAD_FROM", "WORKSPACE_FRACTION", "dense_gram", "memory_estimate", "spd_inverse_inplace"]
