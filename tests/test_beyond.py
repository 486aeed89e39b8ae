"""Beyond-accuracy metrics against direct formulas on hand-made lists, and through the benchmark."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recae.cli import main
from recae.errors import UsageError
from recae.evaluation.beyond import (
    check_beyond_metrics,
    exposure,
    gini,
    per_user_beyond,
    short_head,
)
from recae.evaluation.metrics import Beyond, evaluate

POPULARITY = np.array([9, 5, 3, 1, 0], dtype=float)  # 10 training users; item 0 is the short head
TOP = np.array([[0, 1, 2], [3, 4, -1]])  # the second list is padded after two items


def test_novelty_arp_and_long_tail_against_direct_formulas():
    out = per_user_beyond(TOP, [3], ["novelty", "arp", "long_tail"], POPULARITY, 10)
    info = lambda p: -math.log2((p + 1) / 11)  # noqa: E731
    np.testing.assert_allclose(out["novelty_at_3"], [(info(9) + info(5) + info(3)) / 3, (info(1) + info(0)) / 2])
    np.testing.assert_allclose(out["arp_at_3"], [(9 + 5 + 3) / 3, (1 + 0) / 2])
    assert short_head(POPULARITY).tolist() == [True, False, False, False, False]  # ceil(0.2 · 5) = 1 item
    np.testing.assert_allclose(out["long_tail_at_3"], [2 / 3, 1.0])
    np.testing.assert_allclose(per_user_beyond(TOP, [1], ["arp"], POPULARITY, 10)["arp_at_1"], [9, 1])


def test_intra_list_diversity_is_the_mean_pairwise_cosine_distance():
    V = np.array([[1, 0], [0, 1], [1, 1], [2, 0], [0, 3]], dtype=float)
    out = per_user_beyond(TOP, [3], ["ild"], POPULARITY, 10, item_vectors=V)
    c = 1 / math.sqrt(2)
    expected_first = np.mean([1 - 0, 1 - c, 1 - c])  # pairs (0,1), (0,2), (1,2)
    np.testing.assert_allclose(out["ild_at_3"], [expected_first, 1.0])  # (3, 4) are orthogonal
    assert np.isnan(per_user_beyond(TOP, [3], ["ild"], POPULARITY, 10)["ild_at_3"]).all()  # no vectors


def test_gini_and_exposure():
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(0.75)  # (n − 1) / n
    x = np.array([1.0, 2.0, 7.0])
    direct = sum(abs(a - b) for a in x for b in x) / (2 * len(x) ** 2 * x.mean())
    assert gini(x) == pytest.approx(direct)
    assert exposure(TOP, 2, 5).tolist() == [1, 1, 0, 1, 1]
    with pytest.raises(UsageError, match="unknown metric 'serendipity'"):
        check_beyond_metrics(["novelty", "serendipity"])


class Fixed:
    """A ranker that returns fixed lists."""

    def recommend(self, X, k, exclude_seen=True):
        return TOP[: X.shape[0], :k], None


def test_evaluate_adds_the_per_user_and_aggregate_metrics():
    X_in = sp.csr_matrix((2, 5), dtype=np.float32)
    X_out = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 1, 0]], dtype=np.float32))
    result = evaluate(Fixed(), X_in, X_out, ks=(3,), beyond=Beyond(("novelty", "gini", "aggregate_diversity"), POPULARITY, 10))
    assert "novelty_at_3" in result.per_user and "gini_at_3" not in result.per_user
    assert result.coverage["aggregate_diversity_at_3"] == 5.0
    assert result.coverage["gini_at_3"] == pytest.approx(gini(np.array([1, 1, 1, 1, 1])))


@pytest.mark.slow
def test_the_benchmark_logs_and_compares_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(150) for i in rng.choice(60, size=12, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    assert main(["benchmark", "--dataset", "r.csv", "--models", "ease,popularity", "--heldout-users", "20",
                 "--metrics", "novelty,arp,ild,gini", "--no-tracking", "--no-progress", "--json", "out.json"]) == 0
    models = json.loads((tmp_path / "out.json").read_text())["models"]
    assert {"novelty_at_20", "arp_at_20", "gini_at_20"} <= set(models["ease"]["test"])
    # popularity's lists are the most popular items: lower novelty, higher ARP than EASE's
    assert models["popularity"]["test"]["novelty_at_20"] < models["ease"]["test"]["novelty_at_20"]
    assert models["popularity"]["test"]["arp_at_20"] > models["ease"]["test"]["arp_at_20"]
    assert main(["benchmark", "--dataset", "r.csv", "--models", "ease", "--metrics", "fun", "--no-tracking"]) == 2


@pytest.mark.slow
def test_a_tracked_benchmark_logs_them_to_mlflow_and_puts_them_in_the_comparison(tmp_path, mlflow_uri):
    from recae import tracking  # imports mlflow: only the tracked tests pay for it

    rng = np.random.default_rng(0)
    rows = ["user,item"] + [f"{u},{i}" for u in range(150) for i in rng.choice(60, size=12, replace=False)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    assert main(["benchmark", "--dataset", "r.csv", "--models", "popularity,ease,als", "--param", "als.iterations=3",
                 "--heldout-users", "20", "--metrics", "novelty,ild,gini,aggregate_diversity", "--tracking-uri", mlflow_uri,
                 "--no-progress", "--json", "out.json"]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    client = tracking.client(mlflow_uri)
    for name, model in result["models"].items():
        logged = client.get_run(model["mlflow_run_id"]).data.metrics
        for key in ("novelty_at_20", "gini_at_20", "aggregate_diversity_at_20"):
            assert logged[f"test/{key}"] == pytest.approx(model["test"][key]), (name, key)
    experiment = client.get_experiment_by_name(f"{result['dataset']}/{result['protocol']}").experiment_id
    parent = client.search_runs([experiment], "tags.`recae.kind` = 'benchmark'")[0].info.run_id
    markdown = open(client.download_artifacts(parent, "comparison.md", str(tmp_path / "down"))).read()
    sections = {part.split("\n", 1)[0]: part for part in markdown.split("### ")[1:]}
    assert {"novelty_at_20", "ild_at_20", "over all lists"} <= set(sections)
    # only ALS has item vectors: its ILD is shown, the others' is not compared
    assert "| als " in sections["ild_at_20"] and "popularity" not in sections["ild_at_20"] and "ease" not in sections["ild_at_20"]
    table = sections["over all lists"]
    assert "gini_at_20" in table and "aggregate_diversity_at_20" in table
    for name, model in result["models"].items():
        line = next(row for row in table.splitlines() if row.startswith(f"| {name} "))
        values = [float(cell) for cell in line.strip("| ").split("|")[1:]]
        assert values == pytest.approx([model["test"]["gini_at_20"], model["test"]["aggregate_diversity_at_20"]], rel=1e-4)
    summary = open(client.download_artifacts(parent, "summary.csv", str(tmp_path / "down"))).read().splitlines()
    assert "gini@20" in summary[0] and "aggregate_diversity@20" in summary[0]
