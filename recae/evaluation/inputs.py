"""Checks of what the evaluation functions take in: target matrices, top lists,
cut-offs, probabilities, seeds and held-out user counts.

Each returns its input in canonical form (CSR, an integer array, a list of
ints, a float, an int) or raises :class:`~recae.errors.DataError` (malformed data) or
:class:`~recae.errors.UsageError` (a cut-off that cannot be asked for), with a
one-line message naming the value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from recae.checks import check_positive_int
from recae.errors import DataError, UsageError

__all__ = [
    "as_csr",
    "check_heldout_users",
    "check_ks",
    "check_probability",
    "check_seed",
    "check_targets",
    "check_top",
    "distinct",
]

T = TypeVar("T")


def as_csr(X: Any, name: str) -> sp.csr_matrix:
    """``X`` (any 2-D scipy sparse matrix or array, shape (n_users, n_items)) as CSR."""
    if not sp.issparse(X):
        raise DataError(f"{name} must be a scipy sparse matrix, got {type(X).__name__}")
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (users × items), got shape {X.shape}")
    return sp.csr_matrix(X)


def check_targets(targets: Any, name: str = "targets") -> sp.csr_matrix:
    """Held-out items, shape (n_users, n_items), as canonical CSR (sorted, no duplicates,
    no explicit zeros); copies only when needed."""
    t = as_csr(targets, name)
    if not t.has_canonical_format:
        t = t.copy()
        t.sum_duplicates()
    if t.nnz and not t.data.all():
        t = t.copy()
        t.eliminate_zeros()
    return t


def check_top(
    top: Any, n_users: int | None, n_items: int, check_duplicates: bool = True
) -> np.ndarray:
    """Top lists, shape (n_users, K), as an integer array of indices in ``-1..n_items-1``.

    ``n_users=None`` accepts any number of rows; ``check_duplicates`` refuses a
    row naming one item twice (it would count as several hits).
    """
    top = np.asarray(top)
    if top.ndim != 2:
        raise DataError(f"top lists must be 2-D (users × K), got shape {top.shape}")
    if not np.issubdtype(top.dtype, np.integer):
        raise DataError(f"top lists must hold integer item indices, got dtype {top.dtype}")
    if n_users is not None and top.shape[0] != n_users:
        raise DataError(
            f"top lists have {top.shape[0]} rows but the targets have {n_users}; "
            "they must be the same users"
        )
    if top.size:
        lo, hi = int(top.min()), int(top.max())
        if lo < -1 or hi >= n_items:
            raise DataError(
                f"top lists hold item indices from {lo} to {hi}; expected -1 (padding) "
                f"or 0..{n_items - 1}"
            )
        if check_duplicates and top.shape[1] > 1:
            # A repeated item would count as several hits; sorting rows of K ints is cheap.
            s = np.sort(top, axis=1)
            dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
            if dup.any():
                row, col = np.argwhere(dup)[0]
                raise DataError(f"top list of row {row} names item {s[row, col + 1]} more than once")
    return top


def check_ks(ks: Sequence[int] | int, limit: int) -> list[int]:
    """Cut-offs as a list of distinct ints in ``1..limit``, in the order given."""

    def check_one(k: Any) -> int:
        k = check_positive_int(k, "cut-off K")
        if k > limit:
            raise UsageError(f"cut-off K={k} exceeds the top-list length ({limit})")
        return k

    if isinstance(ks, int | np.integer):
        ks = [ks]
    return distinct(ks, check_one, "no cut-offs given (ks is empty)")


def distinct(values: Iterable[T], check: Callable[[T], T], if_empty: str) -> list[T]:
    """Each of ``values`` passed through ``check``, repeats dropped (the first kept),
    in the order given; ``UsageError(if_empty)`` when nothing is left."""
    out: list[T] = []
    for value in values:
        value = check(value)
        if value not in out:
            out.append(value)
    if not out:
        raise UsageError(if_empty)
    return out


def check_probability(value: Any, name: str) -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence level, a significance level)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number, got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise UsageError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int ≥ 0 (what :func:`numpy.random.default_rng` accepts as a seed);
    ``name`` names it in the message."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"{name} must be an integer ≥ 0, got {seed!r}")
    return int(seed)


def check_heldout_users(value: Any) -> int | float:
    """How many users to hold out: a whole number ≥ 1 (as an int) or a fraction of
    all users strictly between 0 and 1 (as a float)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        if 0 < value < 1:
            return float(value)
        if value >= 1 and float(value).is_integer():
            return int(value)
    raise UsageError(f"heldout_users={value}: expected a whole number ≥ 1 or a fraction in (0, 1)")
