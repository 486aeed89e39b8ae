"""Weak generalization and the temporal splits: every user trains; no test pair precedes the cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recae.cli import main
from recae.errors import UsageError
from recae.evaluation.split import TEMPORAL_GLOBAL, TEMPORAL_USER, WEAK
from recae.evaluation.temporal import temporal_split, weak_generalization


def _ratings(n_users: int = 60, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, i, int(t)) for u in range(n_users) for i, t in
            zip(rng.choice(40, per_user, replace=False), rng.integers(10**9, 10**9 + 10**6, per_user))]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def _pairs(X, users, items):
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return set(zip(users[rows].tolist(), items[X.indices].tolist()))


def test_weak_generalization_holds_out_a_share_of_every_users_items_and_trains_everyone():
    ratings = _ratings()
    split = weak_generalization(ratings, test_prop=0.25, seed=3)
    assert split.protocol == WEAK and len(split.train_users) == 60 and len(split.test_users) == 60
    assert (np.diff(split.test_out.indptr) == 3).all()  # int(0.25 · 12) per user
    assert split.fingerprint() == weak_generalization(ratings, test_prop=0.25, seed=3).fingerprint()
    assert split.fingerprint() != weak_generalization(ratings, test_prop=0.25, seed=4).fingerprint()


def test_no_test_interaction_is_earlier_than_the_global_cut():
    ratings = _ratings()
    split = temporal_split(ratings, cut=0.7)
    assert split.protocol == TEMPORAL_GLOBAL
    cut = split.info["cut_timestamp"]
    time = {(u, i): t for u, i, t in ratings.itertuples(index=False)}
    test = _pairs(split.test_out, split.test_users, split.item_ids)
    train = _pairs(split.refit_train, split.train_users, split.item_ids)
    assert test and min(time[p] for p in test) >= cut > max(time[p] for p in train)
    with pytest.warns(UserWarning, match="dropped test pairs"):  # most users have nothing before it
        by_date = temporal_split(ratings, cut="2001-09-09T01:50:00")  # 1,000,000,200 s
    assert by_date.info["cut_timestamp"] == 1_000_000_200.0


def test_each_users_last_k_interactions_test_and_nothing_later_trains():
    ratings = _ratings()
    split = temporal_split(ratings, last_k=2)
    assert split.protocol == TEMPORAL_USER and (np.diff(split.test_out.indptr) == 2).all()
    time = {(u, i): t for u, i, t in ratings.itertuples(index=False)}
    test = _pairs(split.test_out, split.test_users, split.item_ids)
    train = _pairs(split.refit_train, split.train_users, split.item_ids)
    for user in split.test_users:
        assert min(time[p] for p in test if p[0] == user) >= max(time[p] for p in train if p[0] == user)


def test_temporal_settings_and_data_without_timestamps_are_refused(tmp_path, capsys, monkeypatch):
    with pytest.raises(UsageError, match="needs timestamps"):
        temporal_split(_ratings().drop(columns="timestamp"), last_k=1)
    with pytest.raises(UsageError, match="either --time-cut"):
        temporal_split(_ratings(), cut=0.5, last_k=1)
    with pytest.raises(UsageError, match="strictly between 0 and 1"):
        temporal_split(_ratings(), cut=1.5)
    with pytest.raises(UsageError, match="expected a quantile in \\(0, 1\\) or a date"):
        temporal_split(_ratings(), cut="yesterday-ish")
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"user": [1, 2], "item": [3, 4]}).to_csv("r.csv", index=False)
    for args, message in (
        (["--protocol", "temporal"], "takes either --time-cut"),
        (["--last-k", "2"], "apply to --protocol temporal"),
        (["--protocol", "temporal", "--last-k", "0"], "last_k must be"),
    ):
        assert main(["benchmark", "--dataset", "r.csv", "--models", "popularity", "--no-tracking", *args]) == 2
        assert message in capsys.readouterr().err
    assert list(sorted(p.name for p in tmp_path.iterdir())) == ["r.csv"]
