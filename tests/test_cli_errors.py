"""Every option of ``recae benchmark`` and ``recae tune``: a value the run cannot take ends in one
line naming it and exit status 2, before any data is read and with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from recae.cli import main

BENCHMARK = ["benchmark", "--no-tracking"]
TUNE = ["tune", "--model", "ease"]

BAD_OPTIONS = [
    # (command line, fragment of the message)
    ([*BENCHMARK, "--models", "ease,popularity,ease"], "model 'ease' is named more than once (--models)"),
    ([*BENCHMARK, "--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ([*TUNE, "--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ([*TUNE, "--sampler-seed", "-1"], "sampler_seed must be an integer ≥ 0, got -1"),
    ([*BENCHMARK, "--heldout-users", "nan"], "heldout_users=nan: expected a whole number ≥ 1"),
    ([*BENCHMARK, "--heldout-users", "inf"], "heldout_users=inf: expected a whole number ≥ 1"),
    ([*BENCHMARK, "--heldout-users", "0"], "heldout_users=0"),
    ([*BENCHMARK, "--heldout-users", "2.5"], "heldout_users=2.5"),
    ([*BENCHMARK, "--test-prop", "1.5"], "test_prop must lie strictly between 0 and 1, got 1.5"),
    ([*BENCHMARK, "--test-prop", "nan"], "test_prop must lie strictly between 0 and 1, got nan"),
    ([*BENCHMARK, "--val-prop", "0"], "val_prop must lie strictly between 0 and 1, got 0"),
    ([*BENCHMARK, "--min-rating", "nan"], "min_rating must be a finite number or None, got nan"),
    ([*BENCHMARK, "--min-user-items", "-1"], "min_user_items must be an integer ≥ 0, got -1"),
    ([*BENCHMARK, "--min-item-users", "-2"], "min_item_users must be an integer ≥ 0, got -2"),
    ([*BENCHMARK, "--ks", "0,20"], "ks must be a list whose items are each an integer ≥ 1, got (0, 20, 100)"),
    ([*BENCHMARK, "--max-memory", "0"], "max_memory must be a finite number > 0 or None, got 0.0"),
    ([*BENCHMARK, "--models", "mult-vae", "--param", "mult-vae.epochs=abc"], "mult-vae: epochs must be an integer ≥ 1, got 'abc'"),
    ([*BENCHMARK, "--models", "mult-vae", "--param", "mult-vae.epochs=1.5"], "mult-vae: epochs must be an integer ≥ 1, got 1.5"),
    ([*BENCHMARK, "--models", "ease", "--param", "ease.l2=-1"], "ease: l2 must be a finite number > 0, got -1"),
    ([*BENCHMARK, "--models", "mult-vae", "--param", "mult-vae.hidden_dims=[600"], "'[600' is not valid JSON (Expecting ',' delimiter at character 5)"),
    ([*BENCHMARK, "--models", "mult-vae", "--param", "mult-vae.hidden_dims=[600,-1]"], "hidden_dims must be a list whose items are each an integer ≥ 1, got [600, -1]"),
    ([*TUNE, "--param", "ease.l2=abc"], "ease: l2 must be a finite number > 0, got 'abc'"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_OPTIONS, ids=[" ".join(a[2:]) for a, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_exit_2_before_any_data_is_read(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--data-dir", str(tmp_path / "cache"), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("recae: error: ") and err.count("\n") == 1 and fragment in err
    assert out == ""  # not even the split's line: nothing was read
    assert list(tmp_path.iterdir()) == []  # no cache, no mlflow.db


def test_cut_offs_without_20_give_a_table_and_a_comparison_at_the_smallest(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    args = [*BENCHMARK, "--dataset", "r.csv", "--models", "popularity,item-knn", "--ks", "10", "--heldout-users", "5"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "recall@10" in out and "ndcg@100" in out and "@20" not in out
    assert "Each model against the best on ndcg_at_100" in out
