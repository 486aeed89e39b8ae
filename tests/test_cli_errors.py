"""Every option of ``recae benchmark`` and ``recae tune``, and every output path (``--json``,
``recommend --out``): a value the run cannot take ends in one line naming it and exit status 2,
before any data is read and with nothing written."""

from __future__ import annotations

import os

import numpy as np
import pytest

from recae import files
from recae.cli import main
from recae.errors import UsageError

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


# ------------------------------------------------------------------ output paths

OUTPUT_OPTIONS = {
    # the cache is empty: the output path is refused before the data is looked for
    "benchmark --json": ([*BENCHMARK, "--data-dir", "cache", "--json"], ".json"),
    "tune --json": ([*TUNE, "--data-dir", "cache", "--json"], ".json"),
    # --model names nothing: the output path is refused before the model is looked for
    "recommend --out": (["recommend", "--model", "nowhere", "--out"], ".csv"),
}
BAD_PATHS = {
    # what is wrong: (path under tmp_path, with {ext}; the message after "<path>: ")
    "a file where a folder should be": ("notes.txt/out{ext}", "notes.txt is a file, not a folder"),
    "a file deeper under a file": ("notes.txt/a/b/out{ext}", "notes.txt is a file, not a folder"),
    "a folder": ("results{ext}", "is a directory, expected a file name"),
}


def _refused(command, path, capsys) -> str:
    assert main([*command, str(path), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("recae: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize("what", list(BAD_PATHS))
@pytest.mark.parametrize("option", list(OUTPUT_OPTIONS))
def test_a_bad_output_path_is_refused_before_any_work(option, what, tmp_path, monkeypatch, capsys):
    command, ext = OUTPUT_OPTIONS[option]
    relative, message = BAD_PATHS[what]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / f"results{ext}").mkdir()
    path = relative.format(ext=ext)
    assert f"{path}: {message}" in _refused(command, path, capsys)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["notes.txt", f"results{ext}"]  # no temp file


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
@pytest.mark.parametrize("option", list(OUTPUT_OPTIONS))
def test_an_output_folder_without_write_permission_is_refused(option, tmp_path, monkeypatch, capsys):
    command, ext = OUTPUT_OPTIONS[option]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "locked").mkdir(mode=0o555)
    assert f"locked/out{ext}: cannot write there (Permission denied)" in _refused(command, f"locked/out{ext}", capsys)


def test_missing_output_folders_are_created(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(60) for i in rng.choice(20, size=8, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "new" / "deeper" / "results.json"
    args = [*BENCHMARK, "--dataset", "r.csv", "--models", "popularity", "--heldout-users", "5", "--json", str(out)]
    assert main([*args, "--no-progress"]) == 0
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["results.json"]


def test_a_folder_nothing_can_be_written_in_is_named(tmp_path, monkeypatch):
    """What the test above checks for a user without permission, here for any user (root too)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(UsageError, match=r"^out/r.json: cannot write there \(Permission denied\)$"):
        files.check_output_path("out/r.json")
