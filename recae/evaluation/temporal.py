"""The protocols where every user trains: weak generalization and the temporal splits.

Each makes a train and a test frame of ``(user, item)`` pairs from the
interactions and hands them to :func:`recae.evaluation.protocols.given_split`,
so that they share its semantics: a user's train row is the model's input, the
test pairs its targets; validation is a seeded share of each user's train
items, never a test pair; the model may be refit on the full train rows.

``weak_generalization``
    Each user with at least ``min_items`` items holds out a random
    ``test_prop`` of them; every user is in training.
``temporal_split`` with ``cut``
    One global time: the interactions before it train, those at or after it
    test (a quantile in (0, 1) of the timestamps, or a date). Test users
    without a train interaction cannot be scored and are dropped (counted).
``temporal_split`` with ``last_k``
    Each user's last ``k`` interactions by timestamp test, the rest train
    (users with more than ``k`` interactions); ties keep the file's order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recae.errors import UsageError
from recae.evaluation.inputs import check_probability, check_seed
from recae.evaluation.protocols import given_split
from recae.evaluation.split import TEMPORAL_GLOBAL, TEMPORAL_USER, WEAK, Split

__all__ = ["temporal_split", "weak_generalization"]


def weak_generalization(
    ratings: pd.DataFrame, test_prop: float = 0.2, val_prop: float = 0.2, seed: int = 98765,
    min_items: int = 5, source: str = "",
) -> Split:
    """Random per-user holdout; every user in training (see the module docstring)."""
    check_probability(test_prop, "test_prop")
    check_seed(seed)
    pairs = ratings[["user", "item"]].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keys = rng.random(len(pairs))
    size = pairs.groupby("user", sort=False)["item"].transform("size").to_numpy()
    rank = pd.Series(keys).groupby(pairs["user"].to_numpy()).rank(method="first").to_numpy()
    test = (size >= min_items) & (rank <= np.floor(test_prop * size))
    info = {"test_prop": test_prop, "min_items_to_hold_out": min_items}
    return given_split(pairs[~test], pairs[test], val_prop=val_prop, seed=seed, source=source, protocol=WEAK, info=info)


def temporal_split(
    ratings: pd.DataFrame, cut: float | str | None = None, last_k: int | None = None,
    val_prop: float = 0.2, seed: int = 98765, source: str = "",
) -> Split:
    """A global time cut or each user's last ``k`` interactions as test (see the module docstring).

    ``UsageError`` when the data have no timestamps, when neither or both of
    ``cut`` and ``last_k`` are given, or for a cut that is neither a quantile
    in (0, 1) nor a date.
    """
    if "timestamp" not in ratings.columns or ratings["timestamp"].isna().all():
        raise UsageError(f"{source or 'the data'}: a temporal protocol needs timestamps, and these data have none")
    if (cut is None) == (last_k is None):
        raise UsageError("a temporal split takes either --time-cut (a quantile or a date) or --last-k, not both or neither")
    frame = ratings[["user", "item", "timestamp"]]
    if last_k is not None:
        if isinstance(last_k, bool) or not isinstance(last_k, int) or last_k < 1:
            raise UsageError(f"--last-k must be a whole number ≥ 1, got {last_k!r}")
        order = frame.sort_values(["user", "timestamp"], kind="stable")
        from_end = order.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
        size = order.groupby("user", sort=False)["item"].transform("size").to_numpy()
        test = (from_end < last_k) & (size > last_k)
        return given_split(order[~test], order[test], val_prop=val_prop, seed=seed, source=source,
                           protocol=TEMPORAL_USER, info={"last_k": last_k})
    threshold = _threshold(frame["timestamp"], cut)
    before = frame["timestamp"].to_numpy() < threshold
    return given_split(frame[before], frame[~before], val_prop=val_prop, seed=seed, source=source,
                       protocol=TEMPORAL_GLOBAL, info={"time_cut": str(cut), "cut_timestamp": float(threshold)})


def _threshold(timestamps: pd.Series, cut: float | str) -> float:
    """The cut as a timestamp: a quantile of ``timestamps``, or a date in the timestamps' unit
    (seconds since 1970, as MovieLens)."""
    if isinstance(cut, int | float) and not isinstance(cut, bool):
        if not 0 < float(cut) < 1:
            raise UsageError(f"--time-cut {cut!r}: a quantile must lie strictly between 0 and 1")
        return float(np.quantile(timestamps.to_numpy(dtype=np.float64), float(cut)))
    try:
        return float(pd.Timestamp(str(cut), tz="UTC").timestamp())
    except ValueError:
        raise UsageError(f"--time-cut {cut!r}: expected a quantile in (0, 1) or a date such as 2003-01-01") from None
