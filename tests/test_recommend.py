"""Top-N lists with raw ids: fold-in of new users, stored histories, allow/deny lists,
the catalogue file, and ``recae recommend`` on a local model folder (no MLflow here).

History files and id lists are tested in test_histories.py, output files in test_output.py."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recae.checks import check_k
from recae.cli import main
from recae.errors import DataError, UsageError
from recae.models import REGISTRY, make_model
from recae.serving import Catalog, TopN, item_popularity, read_history, require_ids, save_bundle
from tests.conftest import planted_blocks
from tests.test_contract import FAST

N_USERS, N_ITEMS = 90, 30
ITEM_IDS = np.arange(N_ITEMS, dtype=np.int64) * 10 + 1000  # raw ids ≠ column indices
USER_IDS = np.arange(N_USERS, dtype=np.int64) + 500


@pytest.fixture(scope="module")
def planted():
    X, _ = planted_blocks(n_users=N_USERS, n_items=N_ITEMS, n_blocks=3, density=0.5, seed=3)
    new, _ = planted_blocks(n_users=12, n_items=N_ITEMS, n_blocks=3, density=0.3, seed=4)
    return X, new


@pytest.fixture(scope="module")
def topn(planted):
    X, _ = planted
    model = make_model("ease", l2=10.0).fit(X)
    return TopN(model, Catalog.from_matrix(X, ITEM_IDS, USER_IDS))


def _as_frame(X: sp.csr_matrix, users: np.ndarray, item_ids: np.ndarray = ITEM_IDS) -> pd.DataFrame:
    rows = [(users[u], item_ids[i]) for u in range(X.shape[0]) for i in X[u].indices]
    return pd.DataFrame(rows, columns=["user", "item"])


def _lists(frame: pd.DataFrame) -> dict:
    return {u: g.sort_values("rank")["item_id"].tolist() for u, g in frame.groupby("user_id", sort=False)}


# ------------------------------------------------------------------ fold-in
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_fold_in_of_raw_ids_gives_the_models_own_lists(name, planted):
    """Every registered model: a new user's history given as raw ids → the model's top-N."""
    X, new = planted
    model = make_model(name, **FAST[name]).fit(X)
    topn = TopN(model, Catalog.from_matrix(X, ITEM_IDS))
    users = np.array([f"new-{u}" for u in range(new.shape[0])])
    hist = topn.fold_in(_as_frame(new, users))
    assert (hist.X != new).nnz == 0
    out = topn.frame(hist, k=7)
    items, _ = model.recommend(new, k=7)
    expected = {users[u]: ITEM_IDS[items[u]].tolist() for u in range(new.shape[0])}
    assert _lists(out) == expected
    assert list(out.columns) == ["user_id", "rank", "item_id", "score", "fallback"]
    assert not out["fallback"].any()


def test_unknown_items_are_ignored_and_counted(topn, planted):
    _, new = planted
    frame = _as_frame(new[:2], np.array([1, 2]))
    frame = pd.concat([frame, pd.DataFrame({"user": [1, 1], "item": [7, 8]})], ignore_index=True)
    with pytest.warns(UserWarning, match="2 row.*not know"):
        hist = topn.fold_in(frame)
    assert hist.n_unknown_items == 2
    assert (hist.X != new[:2]).nnz == 0


def test_a_user_with_no_known_item_gets_the_popularity_list_flagged(topn, planted):
    X, new = planted
    frame = pd.concat(
        [_as_frame(new[:1], np.array(["a"])), pd.DataFrame({"user": ["b", "b"], "item": [1, 2]})],
        ignore_index=True,
    )
    with pytest.warns(UserWarning, match="not know"):
        out = topn.frame(topn.fold_in(frame), k=5)
    b = out[out["user_id"] == "b"]
    popular = ITEM_IDS[np.argsort(-item_popularity(X), kind="stable")[:5]]
    assert b["item_id"].tolist() == popular.tolist()
    assert b["fallback"].all() and not out[out["user_id"] == "a"]["fallback"].any()
    assert b["score"].tolist() == sorted(b["score"].tolist(), reverse=True)


def test_ids_given_as_text_match_integer_ids(topn, planted):
    _, new = planted
    frame = _as_frame(new[:3], np.arange(3))
    text = frame.astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = topn.frame(topn.fold_in(frame), k=5)
        b = topn.frame(topn.fold_in(text), k=5)
    assert a["item_id"].tolist() == b["item_id"].tolist()


def test_string_item_ids_round_trip(planted, tmp_path):
    X, new = planted
    ids = np.array([f"movie-{i}" for i in range(N_ITEMS)], dtype=object)
    model = make_model("item-knn", neighbors=10).fit(X)
    save_bundle(model, Catalog.from_matrix(X, ids, USER_IDS), tmp_path / "bundle")
    with np.load(tmp_path / "bundle" / "catalog.npz", allow_pickle=False) as npz:
        assert npz["item_ids"].dtype.kind == "U"
    topn = TopN.load(tmp_path / "bundle")
    out = topn.frame(topn.fold_in(_as_frame(new[:2], np.array([1, 2]), ids.astype(str))), k=4)
    items, _ = model.recommend(new[:2], k=4)
    assert out["item_id"].tolist() == ids[items].ravel().tolist()


TEXT_ITEMS = np.array([f"m{i}" for i in range(N_ITEMS)])
TEXT_USERS = np.array([f"u{u}" for u in range(N_USERS)])


@pytest.fixture(scope="module")
def text_topn(planted):
    X, _ = planted
    return TopN(make_model("ease", l2=10.0).fit(X), Catalog.from_matrix(X, TEXT_ITEMS, TEXT_USERS))


def test_text_ids_with_surrounding_spaces_match_wherever_they_come_in(text_topn, planted, tmp_path):
    """Frames (and so requests), JSON keys and values, allow/deny and user lists: " m1 " is "m1"."""
    _, new = planted
    clean = _as_frame(new[:3], np.array(["a", "b", "c"]), TEXT_ITEMS)
    padded = clean.map(lambda v: f" {v}\t")
    j = tmp_path / "h.json"
    j.write_text(json.dumps({f" {u} ": [f" {i}" for i in g["item"]] for u, g in clean.groupby("user")}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an id that matched nothing would warn
        expected = text_topn.frame(text_topn.fold_in(clean), k=5)
        pd.testing.assert_frame_equal(text_topn.frame(text_topn.fold_in(padded), k=5), expected)
        pd.testing.assert_frame_equal(text_topn.frame(text_topn.fold_in(read_history(j)), k=5), expected)
        mask = text_topn.allowed_items(allow=[" m0", "m1 ", "m2"], deny=np.array([" m1"]))
        assert np.flatnonzero(mask).tolist() == [0, 2]
        known = text_topn.known(np.array([" u3 ", "u3", "u5\t"]))
        assert known.user_ids.tolist() == ["u3", "u5"] and known.n_unknown_users == 0
        listed = text_topn.fold_in(padded, users=np.array([" b", "a "]))
    assert listed.user_ids.tolist() == ["b", "a"] and listed.n_unknown_users == 0


def test_a_json_user_with_an_empty_list_gets_the_fallback(topn, tmp_path):
    j = tmp_path / "h.json"
    j.write_text(json.dumps({"7": [], "8": [1000]}))
    out = topn.frame(topn.fold_in(read_history(j)), k=3)
    assert out.groupby("user_id")["fallback"].first().to_dict() == {7: True, 8: False}


def test_listed_users_missing_from_the_history_get_the_fallback(topn, planted):
    _, new = planted
    with pytest.warns(UserWarning, match="1 of 3 listed users have no history"):
        hist = topn.fold_in(_as_frame(new[:3], np.arange(3)), users=np.array([2, 99, 0]))
    assert hist.user_ids.tolist() == [2, 99, 0]
    assert hist.X.getnnz(axis=1).tolist() == [new[2].nnz, 0, new[0].nnz]


# ---------------------------------------------------------------------- ids
# Every spelling of the integer 1000 that names it exactly, and values that do not.
EXACTLY_1000 = [1000, np.int64(1000), np.uint16(1000), 1000.0, np.float32(1000), "1000", " 1000 ", "+1000", "1000.0"]
NOT_1000 = [
    1000.9, "1000.9", np.float64(1000.5), "1e3", "\u0661\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10",
    "1_000", True, np.True_, "true", None, float("nan"), float("inf"), "", 2**64 + 1000, str(2**64 + 1000),
]


@pytest.mark.parametrize("value", EXACTLY_1000 + NOT_1000, ids=repr)
def test_integer_ids_match_exact_integer_values_only(topn, value):
    """A fraction, a bool, non-ASCII digits or an integer beyond int64 is no item
    of a model with integer ids (``50.9`` was once read as 50)."""
    expected = 0 if any(value is v for v in EXACTLY_1000) else -1
    assert topn.catalog.item_positions([value, 1010]).tolist() == [expected, 1]
    assert topn.catalog.item_positions(np.array([value, "1010"], dtype=object)).tolist() == [expected, 1]


def test_bools_never_match_and_lists_keep_each_elements_type():
    """``[True, 0.0]`` must not become ``[1, 0]`` on its way into an array."""
    ints = Catalog(np.arange(5), np.ones(5, dtype=np.int64))
    assert ints.item_positions([True, False, 1, 0.0]).tolist() == [-1, -1, 1, 0]
    assert ints.item_positions(np.array([True, False])).tolist() == [-1, -1]
    text = Catalog(np.array(["12", "m1", "True", "nan"]), np.ones(4, dtype=np.int64))
    values = [12, 12.0, np.int64(12), " m1 ", "m1", True, np.True_, 12.5, float("nan"), None, "", "M1"]
    assert text.item_positions(values).tolist() == [0, 0, 0, 1, 1, -1, -1, -1, -1, -1, -1, -1]


def test_a_user_id_that_is_no_id_is_named_in_the_error(topn):
    for users in ([True, 1], [1.5, 1], ["", "a"]):
        frame = pd.DataFrame({"user": pd.Series(users, dtype=object), "item": [1000, 1010]})
        with pytest.raises(DataError, match=r"history: row 1: user id .* is not an id"):
            topn.fold_in(frame)
    frame = pd.DataFrame({"user": [1, 2], "item": [1000, 1010]})
    with pytest.raises(DataError, match=r"users list: row 2: user id True is not an id"):
        topn.fold_in(frame, users=[1, True])
    with pytest.raises(DataError, match=r"users list: row 1: user id True is not an id"):
        topn.known([True, USER_IDS[1]])


def test_text_ids_are_matched_once_normalized(topn):
    """Surrounding spaces do not count, in user ids and item ids alike."""
    frame = pd.DataFrame({"user": [" a", "a ", "b"], "item": [" 1000", "1010 ", 1020]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = topn.fold_in(frame, users=["b", " a "])
    assert hist.user_ids.tolist() == ["b", "a"]
    assert hist.X.getnnz(axis=1).tolist() == [1, 2]


def test_require_ids_names_the_first_value_that_is_not_an_id_of_the_type():
    np.testing.assert_array_equal(require_ids(["7", 8.0, " 9"], np.dtype(np.int64), "item_id", "request"), [7, 8, 9])
    with pytest.raises(DataError, match=r"^request: row 2: item_id 1000.9 is not an integer id$"):
        require_ids(np.array([1000, 1000.9]), np.dtype(np.int64), "item_id", "request")
    with pytest.raises(DataError, match=r"row 3: user_id True is not an integer id"):
        require_ids([1, 2, True], np.dtype(np.int64), "user_id", "request")
    with pytest.raises(DataError, match=r"row 1: item_id False is not an id \(an integer or a non-empty text\)"):
        require_ids([False], np.dtype(str), "item_id", "request")


# ---------------------------------------------------------- stored histories
def test_known_users_are_scored_from_their_stored_histories(topn, planted):
    X, _ = planted
    out = topn.frame(topn.known(), k=10, batch_size=17)
    items, _ = topn.model.recommend(X, k=10)
    assert out["user_id"].nunique() == N_USERS
    assert _lists(out) == {USER_IDS[u]: ITEM_IDS[items[u]].tolist() for u in range(N_USERS)}
    assert out.groupby("user_id").size().eq(10).all()


def test_a_users_list_restricts_and_unknown_users_fall_back(topn, planted):
    X, _ = planted
    with pytest.warns(UserWarning, match="1 of 3 listed users are not among"):
        hist = topn.known(np.array([USER_IDS[5], 12345, USER_IDS[0]]))
    assert hist.X.getnnz(axis=1).tolist() == [X[5].nnz, 0, X[0].nnz]
    out = topn.frame(hist, k=3)
    assert out.groupby("user_id", sort=False)["fallback"].first().tolist() == [False, True, False]


def test_a_model_without_stored_histories_asks_for_a_file(planted):
    X, _ = planted
    topn = TopN(make_model("popularity").fit(X), Catalog.from_matrix(X, ITEM_IDS))
    with pytest.raises(UsageError, match="--history"):
        topn.known()


# --------------------------------------------------------- allow/deny, k
def test_allow_and_deny_lists(topn):
    with pytest.warns(UserWarning, match="1 of 4 ids are not items"):
        mask = topn.allowed_items(allow=[1000, 1010, 1020, 5], deny=np.array(["1010"]))
    assert np.flatnonzero(mask).tolist() == [0, 2]
    with pytest.warns(UserWarning, match="fewer than k=5"):
        out = topn.frame(topn.known(USER_IDS[:4]), k=5, allowed=mask, exclude_seen=False)
    assert set(out["item_id"]) <= {1000, 1020}
    with pytest.raises(DataError, match="none of its 2 ids"), pytest.warns(UserWarning):
        topn.allowed_items(allow=[1, 2])
    with pytest.raises(DataError, match="leave no item"):
        topn.allowed_items(allow=[1000], deny=[1000])


def test_excluding_seen_items_and_short_lists_are_counted(topn, planted):
    X, _ = planted
    with pytest.warns(UserWarning, match=r"\d+ user\(s\) have fewer than k=30"):
        out = topn.frame(topn.known(), k=N_ITEMS)
    sizes = out.groupby("user_id", sort=False).size().to_numpy()
    np.testing.assert_array_equal(sizes, N_ITEMS - X.getnnz(axis=1))
    everything = topn.frame(topn.known(), k=N_ITEMS, exclude_seen=False)
    assert everything.groupby("user_id").size().eq(N_ITEMS).all()


@pytest.mark.parametrize(("k", "match"), [(0, "≥ 1"), (-3, "≥ 1"), (31, "catalogue of 30"), ("5", "integer"), (2.5, "integer"), (True, "integer")])
def test_k_out_of_range_is_refused(topn, k, match):
    histories = topn.known(USER_IDS[:2])
    with pytest.raises(UsageError, match=match):
        topn.frame(histories, k)
    assert len(topn.frame(histories, 30, exclude_seen=False)) == 2 * 30
    with pytest.raises(UsageError, match="limit of 10"):
        check_k(11, 100, max_k=10)


# ----------------------------------------------------------------- catalog
def test_catalog_round_trip_stores_plain_arrays(planted, tmp_path):
    X, _ = planted
    cat = Catalog.from_matrix(X, ITEM_IDS, USER_IDS.astype(str))
    cat.save(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        assert "data" not in npz.files  # binary histories store only their pattern
    back = Catalog.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.item_ids, ITEM_IDS)
    np.testing.assert_array_equal(back.user_ids, USER_IDS.astype(str))
    assert (back.histories != X).nnz == 0
    np.testing.assert_array_equal(back.popularity, np.asarray(X.sum(axis=0)).ravel())


# --------------------------------------------------------------------- CLI
@pytest.fixture
def bundle(planted, tmp_path):
    X, _ = planted
    model = make_model("ease", l2=10.0).fit(X)
    return save_bundle(model, Catalog.from_matrix(X, ITEM_IDS, USER_IDS), tmp_path / "model"), model


def test_cli_lists_every_known_user(bundle, planted, tmp_path, capsys):
    path, model = bundle
    X, _ = planted
    out = tmp_path / "lists" / "top5.parquet"
    assert main(["recommend", "--model", str(path), "--k", "5", "--out", str(out), "--no-progress"]) == 0
    top = pd.read_parquet(out)
    items, _ = model.recommend(X, 5)
    assert top["item_id"].tolist() == ITEM_IDS[items].ravel().tolist()
    assert top["user_id"].tolist() == np.repeat(USER_IDS, 5).tolist()
    assert f"for {N_USERS} users" in capsys.readouterr().out


def test_cli_new_users_users_list_and_allow_deny(bundle, planted, tmp_path, capsys):
    path, model = bundle
    _, new = planted
    history = _as_frame(new[:3], np.array([1, 2, 3]))
    history.to_csv(tmp_path / "h.csv", index=False)
    (tmp_path / "users.txt").write_text("3\n1\n42\n")
    (tmp_path / "deny.txt").write_text("item\n1000\n999\n")
    out = tmp_path / "top.csv"
    code = main([
        "recommend", "--model", str(path), "--k", "4", "--history", str(tmp_path / "h.csv"),
        "--users", str(tmp_path / "users.txt"), "--items-deny", str(tmp_path / "deny.txt"),
        "--out", str(out), "--no-progress",
    ])
    assert code == 0
    err = capsys.readouterr().err
    assert "1 of 2 ids are not items" in err and "1 of 3 listed users have no history" in err
    top = pd.read_csv(out)
    assert top["user_id"].drop_duplicates().tolist() == [3, 1, 42]
    assert 1000 not in set(top["item_id"])
    assert top.groupby("user_id")["fallback"].first().to_dict() == {1: False, 3: False, 42: True}
    allowed = np.ones(N_ITEMS, dtype=bool)
    allowed[0] = False
    items, _ = model.recommend(new[[2, 0]], 4, allowed=allowed)
    assert top[top["user_id"] != 42]["item_id"].tolist() == ITEM_IDS[items].ravel().tolist()


@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (["--k", "0"], 2, "k must be an integer ≥ 1"),
        (["--k", "31"], 2, "catalogue of 30"),
        (["--out", "{tmp}/top.xlsx"], 2, "unknown output format"),
        (["--history", "{tmp}/missing.json"], 1, "missing.json: no such file"),
        (["--users", "{tmp}/missing.txt"], 1, "missing.txt: no such file"),
        (["--items-allow", "{tmp}/allow.txt"], 1, "none of its 1 ids"),
        (["--min-rating", "3"], 2, "--min-rating applies to --history"),
        (["--batch-size", "0"], 2, "--batch-size"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(bundle, tmp_path, capsys, args, code, match):
    path, _ = bundle
    (tmp_path / "allow.txt").write_text("5\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "top.csv"
    base = ["recommend", "--model", str(path), "--out", str(out), "--no-progress"]
    assert main(base + args) == code
    err = capsys.readouterr().err
    assert match in err and err.count("error:") == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".top.csv.*"))


def test_cli_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    assert main(["recommend", "--model", str(tmp_path), "--out", str(tmp_path / "t.csv")]) == 1
    assert "not a recae model" in capsys.readouterr().err


def _damage(folder, how: str) -> None:
    """Break one file of a saved bundle ``folder`` the way ``how`` names."""
    state = folder / "recae-model" / "state.npz"
    if how == "no weights file":
        state.unlink()
    elif how == "weights not an npz":
        state.write_text("not numpy")
    elif how == "weights cut short":
        state.write_bytes(state.read_bytes()[:100])
    elif how == "weights of the wrong shape":
        arrays = dict(np.load(state))
        np.savez(state, **{k: v[:5, :5] if v.ndim == 2 else v[:5] for k, v in arrays.items()})
    elif how == "weights under another name":
        np.savez(state, other=np.zeros(3))
    elif how == "metadata not an object":
        (folder / "recae-model" / "recae-model.json").write_text("[1]")
    elif how == "metadata of an unknown model":
        meta = folder / "recae-model" / "recae-model.json"
        meta.write_text(meta.read_text().replace('"ease"', '"mult-gan"'))
    elif how == "catalogue without item ids":
        np.savez(folder / "catalog.npz", format=np.array("recae-catalog/1"))


@pytest.mark.parametrize(
    "how",
    [
        "no weights file", "weights not an npz", "weights cut short", "weights of the wrong shape",
        "weights under another name", "metadata not an object", "metadata of an unknown model",
        "catalogue without item ids",
    ],
)
def test_cli_names_a_damaged_model_folder_in_one_line(bundle, tmp_path, capsys, how):
    path, _ = bundle
    _damage(path, how)
    out = tmp_path / "top.csv"
    assert main(["recommend", "--model", str(path), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"recae: error: {path}/") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
