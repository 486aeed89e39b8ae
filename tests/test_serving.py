"""The MLflow pyfunc model end to end: logged by ``run_benchmark``, loaded back, registered,
listed by ``recae recommend``, and served by ``recae serve`` (one server per module, and one
more that is stopped with SIGTERM)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with MLflow
    psutil = None

from recae import tracking
from recae.cli import main
from recae.experiment.benchmark import BenchmarkConfig, prepare_split, run_benchmark
from recae.models import REGISTRY, make_model
from recae.serving import CATALOG_FILE, MODEL_DIR, Catalog, save_bundle
from recae.tracking import MlflowTracker, RecaeModel, load_topn
from recae.tracking.pyfunc import ENTRY_POINT
from tests.conftest import FAST_BENCHMARK_PARAMS, planted_blocks

K = 20
NAME = "recae-test"


@contextlib.contextmanager
def _store(folder: Path):
    """Make the MLflow store in ``folder`` the current one (its artifacts land there too), then
    restore the store that was current before: the module's two stores do not leak into each other."""
    previous = tracking.tracking_uri()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        tracking.use_store(uri)
        try:
            yield uri
        finally:
            tracking.use_store(previous)


@pytest.fixture(scope="module")
def trained(shared_datasets, _mlflow_template, tmp_path_factory):
    """Mult-DAE (5 epochs) benchmarked on ml-100k, logged and registered as ``recae-test@champion``.

    Its store stays the current one for the whole module."""
    folder = tmp_path_factory.mktemp("serving")
    shutil.copy(_mlflow_template, folder / "mlflow.db")
    with _store(folder) as uri, pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECAE_DATA_DIR", str(shared_datasets))
        config = BenchmarkConfig(
            dataset="ml-100k", models=("mult-dae",), model_params={"mult-dae": {"epochs": 5}},
            tracking_uri=uri, progress=False, register=NAME,
        )
        echoed: list[str] = []
        bench = run_benchmark(config, MlflowTracker(uri), echo=echoed.append)
        split = prepare_split(config)
        result = bench.models["mult-dae"]
        yield SimpleNamespace(
            uri=uri, folder=folder, split=split, model=result.model, run_id=result.run_id, echoed=echoed
        )


def _fold_in_rows(split, users: np.ndarray | None = None) -> pd.DataFrame:
    """The test users' fold-in items as raw-id rows; ``users`` renames them (new users)."""
    X = split.test_in
    names = split.test_users if users is None else users
    return pd.DataFrame(
        [(names[u], split.item_ids[i]) for u in range(X.shape[0]) for i in X[u].indices],
        columns=["user_id", "item_id"],
    )


def _expected(model, split, X, user_ids, k: int = K) -> dict:
    """``model``'s in-memory top-``k`` of each history row of ``X``, as raw item ids by ``user_ids``."""
    items, _ = model.recommend(X, k)
    return {user_ids[u]: split.item_ids[items[u]].tolist() for u in range(X.shape[0])}


def _lists(frame: pd.DataFrame) -> dict:
    return {u: g.sort_values("rank")["item_id"].tolist() for u, g in frame.groupby("user_id", sort=False)}


# --------------------------------------------------------------- the model
def test_pyfunc_model_gives_the_in_memory_top_n_for_every_test_user(trained):
    model = tracking.load_pyfunc(f"runs:/{trained.run_id}/model")
    out = model.predict(_fold_in_rows(trained.split), params={"k": K})
    assert list(out.columns) == ["user_id", "rank", "item_id", "score", "fallback"]
    assert _lists(out) == _expected(trained.model, trained.split, trained.split.test_in, trained.split.test_users)
    assert out.groupby("user_id").size().eq(K).all() and not out["fallback"].any()


@pytest.fixture(scope="module")
def every_model(shared_datasets, _mlflow_template, tmp_path_factory):
    """Every registered model benchmarked on ml-100k and logged, as ``make run`` logs them."""
    folder = tmp_path_factory.mktemp("every-model")
    shutil.copy(_mlflow_template, folder / "mlflow.db")
    with _store(folder) as uri:
        config = BenchmarkConfig(
            dataset="ml-100k", models=tuple(REGISTRY), model_params=FAST_BENCHMARK_PARAMS, tracking_uri=uri, progress=False
        )
        bench = run_benchmark(config, MlflowTracker(uri), echo=lambda _: None)
    return SimpleNamespace(folder=folder, bench=bench, split=prepare_split(config))


@pytest.mark.slow
@pytest.mark.parametrize("k", [20, 100])
def test_every_logged_model_gives_its_in_memory_top_n_for_every_test_user(every_model, k):
    split = every_model.split
    rows = _fold_in_rows(split)
    new_ids = np.arange(len(split.test_users)) + 10**6
    renamed = _fold_in_rows(split, new_ids)
    with _store(every_model.folder):
        for name, result in every_model.bench.models.items():
            model = tracking.load_pyfunc(f"runs:/{result.run_id}/model")
            expected = _expected(result.model, split, split.test_in, split.test_users, k)
            assert _lists(model.predict(rows, params={"k": k})) == expected, name
            # the same histories under ids the model never saw: the same lists
            renamed_expected = dict(zip(new_ids, expected.values()))  # test_users order, renamed
            assert _lists(model.predict(renamed, params={"k": k})) == renamed_expected, name


def test_logged_model_has_a_signature_an_example_and_no_pickle(trained, tmp_path):
    local = tracking.download_model(f"runs:/{trained.run_id}/model", tmp_path)
    info = tracking.model_info(str(local))
    sig = info.signature
    assert sig.inputs.input_names() == ["user_id", "item_id"]
    assert sig.outputs.input_names() == ["user_id", "rank", "item_id", "score", "fallback"]
    assert {p.name: p.default for p in sig.params.params} == {"k": 20, "exclude_seen": True}
    assert (local / "input_example.json").is_file() and (local / "serving_input_example.json").is_file()
    assert not list(local.rglob("*.pkl"))
    assert (local / "recae_pyfunc.py").read_text() == ENTRY_POINT
    reqs = (local / "requirements.txt").read_text().split()
    assert any(r.startswith("recae==") for r in reqs) and f"mlflow=={version('mlflow')}" in reqs
    catalog = Catalog.load(local / "artifacts" / "catalog.npz")  # allow_pickle=False inside
    assert catalog.item_ids.dtype.kind == "i"
    np.testing.assert_array_equal(catalog.item_ids, trained.split.item_ids)
    np.testing.assert_array_equal(catalog.user_ids, trained.split.train_users)
    assert (catalog.histories != trained.split.train).nnz == 0


def test_pyfunc_errors_are_invalid_parameter_values(trained):
    model = tracking.load_pyfunc(f"runs:/{trained.run_id}/model")
    good = _fold_in_rows(trained.split).head(5)
    for frame, params, match in [
        (good, {"k": 0}, "k must be an integer ≥ 1"),
        (good, {"k": 5000}, "catalogue of 1411 items"),
        (good.iloc[:0], {}, "holds no rows"),
        (good.rename(columns={"item_id": "item"}), {}, "item_id"),
    ]:
        with pytest.raises(Exception, match=match) as err:  # MLflow's exception, answered with HTTP 400
            model.predict(frame, params=params)
        assert err.value.get_http_status_code() == 400


def test_a_request_with_padded_text_ids_gets_the_lists_of_the_clean_one(tmp_path):
    X, _ = planted_blocks(n_users=40, n_items=20, n_blocks=2, density=0.5, seed=0)
    items = np.array([f"m{i}" for i in range(20)])
    bundle = save_bundle(make_model("ease", l2=10.0).fit(X), Catalog.from_matrix(X, items), tmp_path / "b")
    served = RecaeModel()
    served.load_context(SimpleNamespace(artifacts={"recae_model": str(bundle / MODEL_DIR), "catalog": str(bundle / CATALOG_FILE)}))
    request = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["m1", "m2", "m3"]})
    expected = served.predict(None, request, params={"k": 5})
    padded = served.predict(None, request.map(lambda v: f" {v} "), params={"k": 5})
    pd.testing.assert_frame_equal(padded, expected)
    assert not expected["fallback"].any()


def test_best_model_is_registered_as_champion_and_recommend_lists_every_known_user(trained, tmp_path, capsys):
    assert any(f"models:/{NAME}@champion" in line for line in trained.echoed)
    version = tracking.client(trained.uri).get_model_version_by_alias(NAME, "champion")
    assert version.run_id == trained.run_id
    out = tmp_path / "top.parquet"
    args = ["recommend", "--model", f"models:/{NAME}@champion", "--k", str(K), "--out", str(out), "--no-progress"]
    assert main([*args, "--tracking-uri", trained.uri]) == 0
    top = pd.read_parquet(out)
    split = trained.split
    assert top["user_id"].nunique() == len(split.train_users)
    assert _lists(top) == _expected(trained.model, split, split.train, split.train_users)
    # runs:/ URIs and the loader give the same lists
    topn = load_topn(f"runs:/{trained.run_id}/model", trained.uri)
    again = topn.frame(topn.known(split.train_users[:50]), K)
    assert _lists(again) == {u: v for u, v in _lists(top).items() if u in set(split.train_users[:50])}
    capsys.readouterr()
    assert main(["recommend", "--model", "models:/no-such-model@champion", "--out", str(tmp_path / "x.csv"),
                 "--tracking-uri", trained.uri]) == 1
    assert "cannot fetch the model" in capsys.readouterr().err


# -------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: str | bytes, content_type: str = "application/json") -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            return e.code, json.loads(text)
        except json.JSONDecodeError:
            return e.code, {"message": text}


#: The module's server refuses requests of more users than this (the test users are fewer).
SERVER_MAX_USERS = 1000


def _start_serve(model: str, log: Path, cwd: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """``recae serve --model MODEL`` on a free port, logging to ``log``; the process and its URL,
    once ``/ping`` answers (the test fails with the log's tail if it does not within 180 s)."""
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recae.cli", "serve", "--model", model, "--port", str(port), *flags],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
        )
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"recae serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}/invocations"
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"the model server did not answer within 180 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> int:
    """SIGTERM to ``recae serve`` (it ends its server's process group), SIGKILL if it lingers."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _server_group(log: Path) -> int:
    """The server's process group, as ``recae serve`` reports it."""
    found = re.search(r"process group (\d+)", log.read_text())
    assert found, log.read_text()[-3000:]
    return int(found.group(1))


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies left to a PID 1 that never reaps them do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    if psutil is None:  # pragma: no cover
        return [pgid]
    live = []
    for p in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                live.append(p.pid)
    return live


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """``recae serve --model models:/recae-test@champion`` on a free port, with ``--max-users 1000``."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = _start_serve(
        f"models:/{NAME}@champion", log, trained.folder,
        "--tracking-uri", trained.uri, "--max-users", str(SERVER_MAX_USERS),
    )  # fmt: skip
    try:
        yield url
    finally:
        _stop(proc)


def _split_body(frame: pd.DataFrame, **params) -> str:
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    if params:
        body["params"] = params
    return json.dumps(body)


@pytest.mark.slow
def test_served_model_gives_a_new_user_the_test_users_top_n(trained, server):
    split = trained.split
    new_ids = np.arange(len(split.test_users)) + 10**6  # ids the model never saw
    status, body = _post(server, _split_body(_fold_in_rows(split, new_ids), k=K))
    assert status == 200, body
    out = pd.DataFrame(body["predictions"])
    assert _lists(out) == _expected(trained.model, split, split.test_in, new_ids)
    one = _fold_in_rows(split, new_ids).query(f"user_id == {new_ids[3]}")
    status, body = _post(server, json.dumps({"dataframe_records": one.to_dict("records"), "params": {"k": 5}}))
    assert status == 200, body
    assert [r["item_id"] for r in body["predictions"]] == _expected(trained.model, split, split.test_in, new_ids)[new_ids[3]][:5]


BAD_REQUESTS = {
    "missing column": ('{"dataframe_records": [{"user_id": 1, "item": 50}]}', "item_id"),
    "text item id": ('{"dataframe_records": [{"user_id": 1, "item_id": "abc"}]}', "item_id"),
    # MLflow's schema once cast these to the integers 50 and 1 before the model saw them
    "fractional item id": ('{"dataframe_records": [{"user_id": 1, "item_id": 50.9}]}', "row 1: item_id 50.9 is not an integer id"),
    "boolean item id": ('{"dataframe_split": {"columns": ["user_id", "item_id"], "data": [[1, 50], [1, true]]}}', "row 2: item_id True is not an integer id"),
    "boolean user id": ('{"dataframe_records": [{"user_id": true, "item_id": 50}]}', "row 1: user id True is not an id"),
    "null item id": ('{"dataframe_records": [{"user_id": 1, "item_id": null}]}', "item_id"),
    "k = 0": ('{"dataframe_records": [{"user_id": 1, "item_id": 50}], "params": {"k": 0}}', "k must be an integer"),
    "k > n_items": ('{"dataframe_records": [{"user_id": 1, "item_id": 50}], "params": {"k": 20000}}', "catalogue of 1411"),
    "k not a number": ('{"dataframe_records": [{"user_id": 1, "item_id": 50}], "params": {"k": "ten"}}', "'k'"),
    "no rows": ('{"dataframe_split": {"columns": ["user_id", "item_id"], "data": []}}', "no rows"),
    "no records": ('{"dataframe_records": []}', "user_id"),
    "empty body": ("", "valid JSON"),
    "not JSON": ("user_id,item_id", "valid JSON"),
    "unknown format": ('{"rows": [[1, 50]]}', "dataframe_split"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving(server, case):
    body, fragment = BAD_REQUESTS[case]
    status, answer = _post(server, body)
    assert 400 <= status < 500, (status, answer)
    assert fragment in answer.get("message", ""), answer
    status, answer = _post(server, '{"dataframe_records": [{"user_id": 1, "item_id": 50}], "params": {"k": 3}}')
    assert status == 200 and len(answer["predictions"]) == 3


@pytest.mark.slow
def test_a_request_over_a_limit_gets_a_400_and_the_server_keeps_serving(server):
    users = np.arange(SERVER_MAX_USERS + 1) + 10**6
    too_many = pd.DataFrame({"user_id": users, "item_id": 50})
    status, answer = _post(server, _split_body(too_many, k=3))
    assert status == 400, answer
    assert f"holds {SERVER_MAX_USERS + 1:,} users; the limit is {SERVER_MAX_USERS:,} users per request" in answer["message"]
    status, answer = _post(server, _split_body(too_many.iloc[:SERVER_MAX_USERS], k=3))
    assert status == 200 and len(answer["predictions"]) == 3 * SERVER_MAX_USERS


@pytest.mark.slow
def test_sigterm_stops_recae_serve_and_its_whole_process_group(trained, tmp_path):
    local = tracking.download_model(f"runs:/{trained.run_id}/model", tmp_path / "model")
    log = tmp_path / "serve.log"
    proc, url = _start_serve(str(local), log, tmp_path)
    pgid = _server_group(log)
    assert pgid != proc.pid and _live_members(pgid)  # MLflow's process and uvicorn's
    status, _ = _post(url, '{"dataframe_records": [{"user_id": 1, "item_id": 50}], "params": {"k": 3}}')
    assert status == 200
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    assert time.monotonic() - start < 30
    assert _live_members(pgid) == [], log.read_text()[-3000:]
    assert "recae: terminated" in log.read_text()


EVIL_LOADER = """from pathlib import Path
Path({marker!r}).write_text("the artifact's code ran")
raise RuntimeError("the artifact's loader ran")
"""


def test_recommend_never_runs_code_from_the_model_and_serve_refuses_a_changed_loader(trained, tmp_path, capsys, monkeypatch):
    local = tracking.download_model(f"runs:/{trained.run_id}/model", tmp_path / "model")
    marker = tmp_path / "marker"
    (local / "recae_pyfunc.py").write_text(EVIL_LOADER.format(marker=str(marker)))
    out = tmp_path / "top.csv"
    assert main(["recommend", "--model", str(local), "--k", "5", "--out", str(out), "--no-progress"]) == 0
    assert not marker.exists()
    assert len(pd.read_csv(out)) == 5 * len(trained.split.train_users)
    load_topn(str(local))
    assert not marker.exists()
    # recae serve checks the loader before any server starts
    monkeypatch.setattr("recae.cli.serve.subprocess.Popen", lambda *a, **k: pytest.fail("a server was started"))
    capsys.readouterr()
    assert main(["serve", "--model", str(local), "--port", str(_free_port())]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve it: its recae_pyfunc.py is not the entry point this recae writes" in err
    assert not marker.exists()
    # MLflow itself runs the file, as the README says
    with pytest.raises(Exception, match="the artifact's loader ran"):
        tracking.load_pyfunc(str(local))
    assert marker.exists()
