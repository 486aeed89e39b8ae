"""Similar items: on planted item groups, an item's nearest items are mostly from its own group."""

from __future__ import annotations

import numpy as np
import pytest

from recae.cli import main
from recae.errors import DataError, UsageError
from recae.models import make_model
from recae.serving import Catalog, TopN, item_popularity, save_bundle
from tests.conftest import planted_blocks

#: Settings that learn the planted blocks in well under a second.
MODELS = {
    "mult-vae": {"epochs": 15, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40, "total_anneal_steps": 100},
    "mult-dae": {"epochs": 15, "hidden_dims": [32], "latent_dim": 8, "batch_size": 40},
    "recvae": {"epochs": 5, "hidden_dim": 32, "latent_dim": 8, "batch_size": 40, "lr": 5e-3},
    "cdae": {"epochs": 10, "hidden_dim": 8, "batch_size": 40},
    "ease": {"l2": 10.0},
    "edlae": {"l2": 10.0},
    "elsa": {"factors": 8, "epochs": 10, "batch_size": 40, "lr": 0.05},
    "als": {"factors": 8, "iterations": 10},
    "bpr": {"factors": 8, "iterations": 50},
    "item-knn": {"neighbors": 20},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_nearest_items_are_mostly_from_the_items_own_group(name):
    X, _ = planted_blocks(n_users=300, n_items=60, n_blocks=3, density=0.5, noise=0.02)
    model = make_model(name, **MODELS[name]).fit(X)
    items, scores = model.similar_items(np.arange(60), k=10)
    assert items.shape == (60, 10) and (items != np.arange(60)[:, None]).all()  # never the item itself
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    same_group = (items % 3) == (np.arange(60) % 3)[:, None]
    assert same_group.mean() >= 0.8, (name, same_group.mean())


def test_a_model_without_item_vectors_and_a_bad_index_are_refused():
    X, _ = planted_blocks()
    with pytest.raises(UsageError, match="'popularity' has no item vectors"):
        make_model("popularity").fit(X).similar_items([0])
    with pytest.raises(DataError, match="item index 60 is outside the model's 60 items"):
        make_model("ease", l2=10.0).fit(X).similar_items([60])


def test_recae_similar_lists_an_items_neighbours_in_raw_ids(tmp_path, capsys):
    X, _ = planted_blocks()
    model = make_model("ease", l2=10.0).fit(X)
    ids = np.arange(60) * 10 + 7  # raw ids differ from positions
    folder = save_bundle(model, Catalog(ids, item_popularity(X), np.arange(X.shape[0]), X), tmp_path / "m")
    assert main(["similar", "--model", str(folder), "--item", "17", "--item", "27", "--k", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["item_id", "rank", "similar_item_id", "score"] and len(out) == 11
    rows = [line.split() for line in out[1:]]
    assert [r[0] for r in rows] == ["17"] * 5 + ["27"] * 5
    assert all((int(r[2]) - 7) // 10 % 3 == (int(r[0]) - 7) // 10 % 3 for r in rows)  # same planted group
    frame = TopN.load(folder).similar([17], 3)
    assert list(frame.columns) == ["item_id", "rank", "similar_item_id", "score"] and len(frame) == 3
    assert main(["similar", "--model", str(folder), "--item", "18"]) == 2
    assert "--item: item '18' is not an item the model knows" in capsys.readouterr().err
    assert main(["similar", "--model", str(folder), "--item", "17", "--out", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "s.csv").read_text().startswith("item_id,rank,similar_item_id,score")


def test_recae_similar_refuses_a_k_below_one_and_an_unknown_item_with_one_line_and_no_file(tmp_path, capsys):
    X, _ = planted_blocks()
    folder = save_bundle(make_model("ease", l2=10.0).fit(X), Catalog(np.arange(60), item_popularity(X), np.arange(X.shape[0]), X),
                         tmp_path / "m")
    out = tmp_path / "s.csv"
    for args, message in (
        (["--item", "17", "--k", "0"], "k must be an integer ≥ 1, got 0"),
        (["--item", "17", "--k", "-1"], "k must be an integer ≥ 1, got -1"),
        (["--item", "60"], "--item: item '60' is not an item the model knows"),
    ):
        assert main(["similar", "--model", str(folder), *args, "--out", str(out)]) == 2
        stdout, err = capsys.readouterr()
        assert stdout == "" and err.count("\n") == 1 and err.startswith("recae: error: ") and message in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
