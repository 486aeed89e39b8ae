"""The users × items interaction matrix, with the raw ids of its rows and columns.

Raw ids exist only here (and where top-N lists are written out); everything
downstream works on contiguous integer indices and CSR matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recae.data.schema import ITEM, USER


@dataclass(frozen=True)
class Interactions:
    """A users × items interaction matrix with the raw ids of its rows and columns.

    Attributes
    ----------
    matrix : float32 CSR, shape (n_users, n_items)
        Row ``u`` is user ``user_ids[u]``, column ``i`` is item ``item_ids[i]``.
    user_ids, item_ids : 1-D arrays
        Raw ids in index order (sorted ascending when built from a frame).
    source : str
        Where the data came from (a data set name or a path), for messages.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    source: str = ""

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    @classmethod
    def from_frame(cls, df: pd.DataFrame, source: str = "", value: str | None = None) -> Interactions:
        """Build from a frame with ``user`` and ``item`` columns (duplicates collapsed).

        ``value`` names a column to use as the matrix entries; by default every
        (user, item) pair is 1.0 (binary implicit feedback).
        """
        users, user_idx = np.unique(df[USER].to_numpy(), return_inverse=True)
        items, item_idx = np.unique(df[ITEM].to_numpy(), return_inverse=True)
        vals = (
            np.ones(len(df), dtype=np.float32)
            if value is None
            else df[value].to_numpy(dtype=np.float32)
        )
        m = sp.csr_matrix((vals, (user_idx, item_idx)), shape=(len(users), len(items)), dtype=np.float32)
        m.sum_duplicates()
        if value is None:
            m.data[:] = 1.0  # duplicates collapse to one interaction
        m.sort_indices()
        return cls(m, users, items, source)


def to_interactions(df: pd.DataFrame, source: str = "") -> Interactions:
    """Build the users × items matrix from a frame; see :meth:`Interactions.from_frame`.

    Parameters
    ----------
    df : DataFrame
        ``user`` and ``item`` columns; every pair becomes a 1.0 entry.
    source : str
        Where the data came from, for messages.

    Returns
    -------
    Interactions
        float32 CSR of shape (n_users, n_items), rows and columns in sorted raw-id order.
    """
    return Interactions.from_frame(df, source=source)
