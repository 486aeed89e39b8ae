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


def test_a_temporal_benchmark_of_data_without_timestamps_is_one_line_and_starts_no_run(tmp_path, mlflow_uri, capsys):
    from recae import tracking  # imports mlflow: only the tracked tests pay for it

    _ratings().drop(columns="timestamp").to_csv(tmp_path / "r.csv", index=False)
    args = ["benchmark", "--dataset", "r.csv", "--models", "popularity", "--protocol", "temporal", "--time-cut", "0.5",
            "--tracking-uri", mlflow_uri, "--json", "out.json", "--no-progress"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert err == "recae: error: r.csv: a temporal protocol needs timestamps, and these data have none\n"
    assert not (tmp_path / "out.json").exists()
    client = tracking.client(mlflow_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "r.csv"]


def test_the_temporal_splits_fingerprints_repeat_and_tell_settings_apart():
    ratings = _ratings()
    by_cut = temporal_split(ratings, cut=0.5).fingerprint()
    assert by_cut == temporal_split(ratings.copy(), cut=0.5).fingerprint()
    assert by_cut == temporal_split(ratings.sample(frac=1.0, random_state=1), cut=0.5).fingerprint()  # row order
    assert by_cut != temporal_split(ratings, cut=0.6).fingerprint()
    last = temporal_split(ratings, last_k=2).fingerprint()
    assert last == temporal_split(ratings, last_k=2).fingerprint()
    assert len({by_cut, last, temporal_split(ratings, last_k=3).fingerprint()}) == 3
