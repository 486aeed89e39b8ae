"""Tests for recae.data.interactions: the users × items matrix and its raw ids."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recae.data import Interactions, to_interactions


def test_rows_and_columns_in_sorted_raw_id_order_with_duplicates_collapsed():
    frame = pd.DataFrame(
        {"user": [20, 10, 20, 20], "item": ["b", "a", "b", "c"], "rating": [1.0, 2.0, 3.0, 4.0]}
    )
    binary = to_interactions(frame, source="x")
    assert binary.user_ids.tolist() == [10, 20] and binary.item_ids.tolist() == ["a", "b", "c"]
    assert binary.matrix.dtype == np.float32
    assert binary.matrix.toarray().tolist() == [[1, 0, 0], [0, 1, 1]]
    assert (binary.n_users, binary.n_items, binary.nnz, binary.source) == (2, 3, 3, "x")
    rated = Interactions.from_frame(frame, value="rating")
    assert rated.matrix.toarray().tolist() == [[2, 0, 0], [0, 4, 4]]  # duplicates summed: 1 + 3
