"""Top-k selection with exclusion: the one ranking path every model goes through.

:func:`topk` turns a dense batch of scores into top-k item lists. It masks the
items a user must not get (their history, items outside an allow list) by
writing ``-inf`` into the scores **in place**, then selects the k best per row
without sorting the whole catalogue: a partition finds each row's k-th best
score, and only the k candidates are sorted.

Ordering contract (the same for every batch size, so that a batch and a single
row give identical lists):

- best (highest) score first;
- equal scores are ordered by the lower item index first, including at the
  boundary of the list (which of several tied items makes the cut);
- ``-inf`` means "not eligible": such items are never returned; a row with
  fewer than k eligible items is padded with item ``-1`` and score ``-inf``;
- ``+inf`` is an ordinary (maximal) score;
- NaN is an error (:class:`~recae.errors.DataError` naming the rows): NaN
  scores mean a broken model, and silently ranking them anywhere would hide it.
  The check runs after masking, so a NaN on an excluded or disallowed item
  (overwritten with ``-inf``) is not reported.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from recae.checks import check_k
from recae.errors import DataError

__all__ = ["check_allowed", "check_no_nan", "mask_excluded", "topk"]


def mask_excluded(scores: np.ndarray, exclude: sp.spmatrix | sp.sparray) -> None:
    """Set ``scores[u, i] = -inf`` for every stored nonzero ``(u, i)`` of ``exclude``, in place.

    Parameters
    ----------
    scores : float ndarray, shape (n, n_items)
        Modified in place.
    exclude : scipy sparse matrix or array, shape (n, n_items)
        Row ``u`` lists the items user ``u`` must not be recommended (typically
        the user's history). Explicit zeros are not exclusions.
    """
    if not sp.issparse(exclude):
        raise DataError(
            f"exclude must be a scipy sparse matrix of shape {scores.shape}, "
            f"got {type(exclude).__name__}"
        )
    if exclude.shape != scores.shape:
        raise DataError(
            f"exclude has shape {exclude.shape} but scores have shape {scores.shape}; "
            "they must match (one row per user, one column per item)"
        )
    exclude = exclude.tocsr()  # no copy when it already is CSR
    if exclude.nnz == 0:
        return
    # One fancy assignment for the whole batch instead of a Python loop over users:
    # the CSR row pointer expands to one row index per stored entry.
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
    cols = exclude.indices
    data = exclude.data
    if not data.all():  # explicit zeros are stored but are not interactions
        keep = data != 0
        rows, cols = rows[keep], cols[keep]
    scores[rows, cols] = -np.inf


def topk(
    scores: np.ndarray,
    k: int,
    exclude: sp.spmatrix | sp.sparray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items per row, best first, after masking excluded items.

    .. warning:: ``scores`` is **modified in place**: excluded and disallowed
       items are overwritten with ``-inf``. Pass a scratch array (as
       :meth:`recae.models.base.Recommender.recommend` does) or a copy.
       Integer scores cannot hold ``-inf``; they are converted to a float64
       copy (with a warning) and then the caller's array is left untouched.

    Parameters
    ----------
    scores : float ndarray, shape (n, n_items)
        Higher is better. ``-inf`` marks an item as not eligible. NaN is an error.
    k : int
        List length, ≥ 1. May exceed ``n_items``; the lists are then padded.
    exclude : scipy sparse matrix, shape (n, n_items), optional
        Stored nonzeros of row ``u`` are never recommended to row ``u``.
    allowed : bool ndarray, shape (n_items,), optional
        Items that may be recommended at all; ``False`` items never are.

    Returns
    -------
    items : int64 ndarray, shape (n, k)
        Item indices, best first; ties in score are ordered by lower item index.
        Rows with fewer than ``k`` eligible items (score > -inf after masking)
        are padded at the end with ``-1``.
    top_scores : float32 ndarray, shape (n, k)
        The scores of ``items``; ``-inf`` where padded.

    Raises
    ------
    UsageError
        ``k`` is not an integer ≥ 1 (see :func:`recae.checks.check_k`).
    DataError
        ``scores`` is not 2-D, ``exclude`` or ``allowed`` has the wrong shape,
        or a score is NaN (the message names the first offending rows).
    """
    scores = _as_scores(scores)
    k = check_k(k)  # k may exceed n_items: the lists are then padded
    n, n_items = scores.shape
    if exclude is not None:
        mask_excluded(scores, exclude)
    if allowed is not None:
        _mask_disallowed(scores, allowed)
    check_no_nan(scores)

    kk = min(k, n_items)
    items = np.full((n, k), -1, dtype=np.int64)
    top = np.full((n, k), -np.inf, dtype=np.float32)
    if n == 0 or kk == 0:
        return items, top

    cols = _select_candidates(scores, kk)  # (n, kk), ascending item index per row
    cand = np.take_along_axis(scores, cols, axis=1)
    # A stable sort of the negated scores keeps equal scores in the ascending
    # index order `cols` already has: ties go to the lower item index.
    order = np.argsort(-cand, axis=1, kind="stable")
    best_items = np.take_along_axis(cols, order, axis=1)
    best_scores = np.take_along_axis(cand, order, axis=1)
    best_items[np.isneginf(best_scores)] = -1  # ineligible items fill the tail: pad
    items[:, :kk] = best_items
    top[:, :kk] = best_scores
    return items, top


# --------------------------------------------------------------------- helpers
def _as_scores(scores: np.ndarray) -> np.ndarray:
    if not isinstance(scores, np.ndarray):
        scores = np.asarray(scores)
    if scores.ndim != 2:
        raise DataError(f"scores must be 2-D (users × items), got shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        if not (np.issubdtype(scores.dtype, np.integer) or scores.dtype == np.bool_):
            raise DataError(f"scores must be a float array, got dtype {scores.dtype}")
        warnings.warn(
            f"scores have dtype {scores.dtype}; ranking a float64 copy (the input is not masked)",
            stacklevel=3,
        )
        scores = scores.astype(np.float64)
    return scores


def check_allowed(allowed: Any, n_items: int) -> np.ndarray:
    """``allowed`` as a boolean array of one flag per item; ``DataError`` naming its dtype or shape otherwise."""
    allowed = np.asarray(allowed)
    if allowed.dtype != np.bool_:
        raise DataError(f"allowed must be a boolean mask over items, got dtype {allowed.dtype}")
    if allowed.shape != (n_items,):
        raise DataError(
            f"allowed has shape {allowed.shape}, expected ({n_items},) (one flag per item)"
        )
    return allowed


def _mask_disallowed(scores: np.ndarray, allowed: np.ndarray) -> None:
    allowed = check_allowed(allowed, scores.shape[1])
    banned = np.flatnonzero(~allowed)
    if banned.size:
        scores[:, banned] = -np.inf


def check_no_nan(scores: np.ndarray) -> None:
    """``DataError`` naming the first rows of ``scores`` that hold a NaN."""
    nan = np.isnan(scores)
    if nan.any():
        rows = np.flatnonzero(nan.any(axis=1))
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if rows.size > 5 else "")
        raise DataError(
            f"scores contain NaN in {rows.size} row(s) of the batch (rows {shown}); "
            "NaN scores mean a broken model and cannot be ranked"
        )


def _select_candidates(scores: np.ndarray, kk: int) -> np.ndarray:
    """Column indices of each row's ``kk`` best items, in ascending index order.

    Among items tied with the row's kk-th best score, the lowest indices are
    taken, so that the selection does not depend on the batch it is part of.
    """
    n, n_items = scores.shape
    if kk == n_items:
        return np.broadcast_to(np.arange(n_items), (n, n_items)).copy()
    # The kk-th largest value of each row. Partitioning values (not indices)
    # keeps the temporary at the scores' dtype instead of an int64 index array.
    thresh = np.partition(scores, n_items - kk, axis=1)[:, n_items - kk, None]
    selected = scores >= thresh
    # Flat positions are row-major, so each row's positions are contiguous and
    # ascending; counting them per row needs only a search over the boundaries
    # (a 1-D pass over ~n·kk entries instead of another pass over n × n_items).
    flat = np.flatnonzero(selected)
    n_selected = np.diff(np.searchsorted(flat, np.arange(n + 1) * n_items))
    # Rows where more than kk items reach the threshold have ties at the cut
    # (rare for learned scores, routine for popularity counts and for rows padded
    # with -inf): among the tied items keep only the lowest indices.
    tied_rows = np.flatnonzero(n_selected > kk)
    if tied_rows.size:
        every_row = tied_rows.size == n  # popularity-like scores: skip the row copy
        sub = scores if every_row else scores[tied_rows]
        t = thresh if every_row else thresh[tied_rows]
        keep = np.greater(sub, t, order="C")  # C order: written through ravel() below
        n_above = np.count_nonzero(keep, axis=1)
        # Positions of the tied items, row-major; within each row take the first
        # (kk - n_above) of them, i.e. the lowest item indices.
        at = np.flatnonzero(sub == t)
        starts = np.searchsorted(at, np.arange(tied_rows.size) * n_items)
        row_of = np.repeat(np.arange(tied_rows.size), np.diff(np.append(starts, at.size)))
        rank_in_row = np.arange(at.size) - starts[row_of]
        keep.ravel()[at[rank_in_row < (kk - n_above)[row_of]]] = True
        if every_row:
            selected = keep
        else:
            selected[tied_rows] = keep
        flat = np.flatnonzero(selected)
    # Exactly kk flags per row now, row-major: subtract each row's offset.
    return flat.reshape(n, kk) - (np.arange(n) * n_items)[:, None]
