"""Preprocessing of a ratings frame: keep positive feedback (binarize), then the k-core.

The Mult-VAE paper keeps ratings > 3.5 and users with at least 5 items. Both
filters take and return a DataFrame with the columns of :mod:`recae.data.schema`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from recae.data.schema import ITEM, RATING, TIMESTAMP, USER
from recae.errors import UsageError


def binarize(df: pd.DataFrame, threshold: float = 3.5) -> pd.DataFrame:
    """Keep the pairs rated strictly above ``threshold`` (the Mult-VAE paper keeps > 3.5).

    A (user, item) pair rated more than once is judged by its last rating
    (by ``timestamp`` when there is one, else by position), the one
    :func:`kcore` keeps: a pair whose last rating is at or below
    ``threshold`` is never a positive, whatever it was rated before.

    Parameters
    ----------
    df : DataFrame
        ``user``, ``item`` and optionally ``rating`` and ``timestamp``.
    threshold : float
        Ratings ``> threshold`` count as positive feedback.

    Returns
    -------
    DataFrame
        The kept rows (one per pair), in their original order, same columns,
        fresh index; ``df`` itself when it has no ``rating`` column (implicit
        data is already binary).

    Raises
    ------
    UsageError
        ``threshold`` is not a number (NaN included: it would keep nothing).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or math.isnan(threshold):
        raise UsageError(f"the rating threshold must be a number, got {threshold!r}")
    if RATING not in df:
        return df
    keep = df[RATING].to_numpy() > threshold
    if keep.any():
        keep &= _pairs(df)[2]
    return df.loc[keep].reset_index(drop=True)


def kcore(df: pd.DataFrame, min_user: int = 5, min_item: int = 0) -> pd.DataFrame:
    """Iterative k-core: drop users with < ``min_user`` items and items with < ``min_item`` users.

    Duplicate ``(user, item)`` rows are collapsed first, so counts are of
    distinct partners; the last row wins, by ``timestamp`` when there is one,
    else by position. Removing items can push a user below ``min_user`` and
    vice versa, so both filters repeat until neither removes anything.

    Parameters
    ----------
    df : DataFrame
        ``user``, ``item`` and any other columns (carried along).
    min_user, min_item : int
        Minimum distinct items per user and distinct users per item; 0 or 1
        disables a filter.

    Returns
    -------
    DataFrame
        The surviving rows in their original order, fresh index.

    Raises
    ------
    UsageError
        A threshold is negative.
    """
    if min_user < 0 or min_item < 0:
        raise UsageError(
            f"kcore thresholds must be >= 0, got min_user={min_user}, min_item={min_item}"
        )
    users, items, keep = _pairs(df)
    while True:
        before = keep.sum()
        for codes, minimum in ((users, min_user), (items, min_item)):
            if minimum > 1:
                counts = np.bincount(codes[keep], minlength=codes.max(initial=-1) + 1)
                keep &= counts[codes] >= minimum
        if keep.sum() == before:
            break
    return df.loc[keep].reset_index(drop=True)


def _pairs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factorized user and item codes of ``df``'s rows, and the mask of each pair's last row."""
    users, _ = pd.factorize(df[USER])
    items, _ = pd.factorize(df[ITEM])
    timestamps = df[TIMESTAMP].to_numpy() if TIMESTAMP in df else None
    return users, items, _last_of_each_pair(users, items, timestamps)


def _last_of_each_pair(
    users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None
) -> np.ndarray:
    """Boolean mask of the rows to keep so that each (user, item) pair appears once.

    The kept row is the pair's last by timestamp, ties (and frames without
    timestamps) broken by position. Works on factorized codes: sorting one
    int64 key is much faster than pandas' duplicated() on two columns.
    """
    key = users.astype(np.int64) * (items.max(initial=-1) + 1) + items
    order = np.argsort(key, kind="stable")  # stable: equal keys stay in file order
    sorted_key = key[order]
    if not (sorted_key[1:] == sorted_key[:-1]).any():
        return np.ones(len(key), dtype=bool)
    if timestamps is not None:
        order = np.lexsort((timestamps, key))  # by key, then timestamp; stable
        sorted_key = key[order]
    is_last = np.append(sorted_key[1:] != sorted_key[:-1], True)
    keep = np.zeros(len(key), dtype=bool)
    keep[order[is_last]] = True
    return keep
