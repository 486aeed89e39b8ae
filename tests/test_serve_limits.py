"""What one served request may ask for, and ``recae serve``'s refusals and stopping, without a server.

The served model is built in process (no MLflow); the end-to-end checks through
a real server are in ``tests/test_serving.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from recae.cli import main
from recae.cli import serve as serve_cli
from recae.errors import UsageError
from recae.models import make_model
from recae.serving import CATALOG_FILE, MODEL_DIR, Catalog, ServingLimits, save_bundle
from recae.tracking import RecaeModel
from recae.tracking.pyfunc import ENTRY_POINT
from tests.conftest import planted_blocks

N_ITEMS = 20


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    X, _ = planted_blocks(n_users=40, n_items=N_ITEMS, n_blocks=2, density=0.5, seed=0)
    items = np.arange(N_ITEMS) + 100
    folder = tmp_path_factory.mktemp("bundle")
    return save_bundle(make_model("ease", l2=10.0).fit(X), Catalog.from_matrix(X, items), folder / "b")


def _served(bundle, **kwargs) -> RecaeModel:
    served = RecaeModel(**kwargs)
    served.load_context(SimpleNamespace(artifacts={"recae_model": str(bundle / MODEL_DIR), "catalog": str(bundle / CATALOG_FILE)}))
    return served


def _request(n_users: int, n_items: int = 3, seed: int = 0) -> pd.DataFrame:
    """``n_users`` users of ``n_items`` known items each; every fifth user has only unknown items."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(N_ITEMS, size=n_items, replace=False) + 100
        if u % 5 == 4:
            items = items + 1000  # unknown: the popularity fallback
        rows += [(f"u{u}", int(i)) for i in items]
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


# ----------------------------------------------------------------- ServingLimits
def test_limits_default_and_read_from_the_environment():
    assert ServingLimits() == ServingLimits(max_users=10_000, max_history=10_000, max_k=10_000, max_rows=1_000_000)
    env = {"RECAE_SERVE_MAX_USERS": " 50 ", "RECAE_SERVE_MAX_ROWS": "1_000", "RECAE_SERVE_MAX_K": ""}
    limits = ServingLimits.from_env(env)
    assert limits == ServingLimits(max_users=50, max_rows=1000)
    assert ServingLimits.from_env(limits.to_env()) == limits


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "1e6"])
def test_a_bad_limit_in_the_environment_is_one_line_naming_the_variable(value):
    with pytest.raises(UsageError, match=r"^RECAE_SERVE_MAX_HISTORY must be .*≥ 1") as err:
        ServingLimits.from_env({"RECAE_SERVE_MAX_HISTORY": value})
    assert "\n" not in str(err.value)


def test_limits_refuse_non_positive_values():
    with pytest.raises(UsageError, match="max_rows must be ≥ 1, got 0"):
        ServingLimits(max_rows=0)


# ------------------------------------------------------------ the served model
LIMIT_CASES = {
    # limits, request, params, message
    "users": (dict(max_users=4), _request(5), {"k": 3}, "the request holds 5 users; the limit is 4 users per request"),
    "history": (
        dict(max_history=3),
        pd.concat([_request(2), pd.DataFrame({"user_id": ["u1"] * 2, "item_id": [110, 111]})]),
        {},
        "user 'u1' has 5 items in the request; the limit is 3 items per history",
    ),
    "k": (dict(max_k=5), _request(2), {"k": 6}, "k=6 exceeds the limit of 5 items per list"),
    "rows": (
        dict(max_rows=10),
        _request(3),
        {"k": 4},
        "the answer would hold 12 rows (3 users × k=4); the limit is 10 rows per request: "
        "send fewer users or a smaller k",
    ),
}


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_a_request_over_a_limit_is_refused_with_http_400_before_any_scoring(bundle, case, monkeypatch):
    limits, request, params, message = LIMIT_CASES[case]
    served = _served(bundle, limits=ServingLimits(**limits))

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored a request over the limit")

    monkeypatch.setattr(served.topn.model, "score", no_scoring)
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        served.predict(None, request, params=params)
    assert err.value.get_http_status_code() == 400


def test_a_request_at_the_limits_is_answered(bundle):
    served = _served(bundle, limits=ServingLimits(max_users=3, max_history=3, max_k=4, max_rows=12))
    out = served.predict(None, _request(3), params={"k": 4})
    assert len(out) == 12


def test_the_limits_are_read_from_the_environment_when_the_model_is_loaded(bundle, monkeypatch):
    monkeypatch.setenv("RECAE_SERVE_MAX_USERS", "1")
    served = _served(bundle)
    monkeypatch.setenv("RECAE_SERVE_MAX_USERS", "100")  # read once, at load
    assert served.limits == ServingLimits(max_users=1)
    with pytest.raises(Exception, match="2 users; the limit is 1 users"):
        served.predict(None, _request(2), params={"k": 3})
    monkeypatch.setenv("RECAE_SERVE_MAX_USERS", "many")
    with pytest.raises(UsageError, match="RECAE_SERVE_MAX_USERS must be an integer ≥ 1, got 'many'"):
        _served(bundle)


@pytest.mark.filterwarnings("ignore:request. .* items the model does not know")
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_scoring_in_chunks_gives_exactly_the_lists_of_scoring_at_once(bundle, exclude_seen):
    request = _request(37, n_items=4, seed=1)
    params = {"k": 7, "exclude_seen": exclude_seen}
    whole = _served(bundle, batch_size=1000).predict(None, request, params=params)
    assert whole["user_id"].nunique() == 37 and whole["fallback"].any() and not whole["fallback"].all()
    for batch_size in (1, 5, 36):
        chunked = _served(bundle, batch_size=batch_size).predict(None, request, params=params)
        pd.testing.assert_frame_equal(chunked, whole)


# ------------------------------------------------------------ recae serve refusals
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_server(monkeypatch):
    """``recae serve`` must refuse before it starts anything."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a server was started: {args}")

    monkeypatch.setattr(serve_cli.subprocess, "Popen", refuse)


def _refusal(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["serve", *argv])
    err = capsys.readouterr().err.strip()
    assert err.startswith("recae: error:") and "\n" not in err and "Traceback" not in err, err
    return code, err


SERVE_REFUSALS = {
    # name: (arguments after --model MODEL, exit status, message fragment)
    "port 0": (["--port", "0"], 2, "--port must be between 1 and 65535, got 0"),
    "port too large": (["--port", "70000"], 2, "--port must be between 1 and 65535, got 70000"),
    "negative limit": (["--max-users", "-5"], 2, "--max-users must be ≥ 1, got -5"),
    "zero rows": (["--max-rows", "0"], 2, "--max-rows must be ≥ 1, got 0"),
    "no workers": (["--workers", "0"], 2, "--workers must be ≥ 1, got 0"),
    "empty host": (["--host", " "], 2, "--host is empty"),
    "unknown host": (["--host", "no-such-host.invalid"], 2, "--host no-such-host.invalid"),
}


@pytest.mark.parametrize("case", list(SERVE_REFUSALS))
def test_serve_refuses_bad_flags_in_one_line_before_starting(case, tmp_path, capsys, no_server):
    extra, status, fragment = SERVE_REFUSALS[case]
    code, err = _refusal(["--model", str(tmp_path), "--port", str(_free_port()), *extra], capsys)
    assert code == status and fragment in err


def test_serve_refuses_a_port_in_use(tmp_path, capsys, no_server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = _refusal(["--model", str(tmp_path), "--port", str(port)], capsys)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def test_serve_refuses_a_bad_limit_in_the_environment(tmp_path, capsys, no_server, monkeypatch):
    monkeypatch.setenv("RECAE_SERVE_MAX_ROWS", "lots")
    code, err = _refusal(["--model", str(tmp_path), "--port", str(_free_port())], capsys)
    assert code == 2 and "RECAE_SERVE_MAX_ROWS must be an integer ≥ 1, got 'lots'" in err
    # a flag overrides the variable
    monkeypatch.setenv("RECAE_SERVE_MAX_ROWS", "10")
    limits = serve_cli._limits(SimpleNamespace(max_users=None, max_history=7, max_k=None, max_rows=None))
    assert limits == ServingLimits(max_history=7, max_rows=10)


def test_serve_refuses_a_missing_store_and_a_missing_model(tmp_path, capsys, no_server):
    port = str(_free_port())
    store = f"sqlite:///{tmp_path / 'nope.db'}"
    code, err = _refusal(["--model", "runs:/0123/model", "--tracking-uri", store, "--port", port], capsys)
    assert code == 2 and "no MLflow store" in err
    assert not (tmp_path / "nope.db").exists()
    code, err = _refusal(["--model", str(tmp_path / "nowhere"), "--port", port], capsys)
    assert code == 2 and "no such folder, and not a model URI" in err
    code, err = _refusal(["--model", str(tmp_path), "--port", port], capsys)
    assert code == 1 and "not an MLflow model" in err


# -------------------------------------------------------------- stopping the group
def _start_group(script: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script], start_new_session=True)


def test_stop_group_ends_every_process_of_the_group():
    child = _start_group("sleep 60 & sleep 60 & wait")
    time.sleep(0.3)
    assert serve_cli.group_alive(child.pid)
    start = time.monotonic()
    serve_cli.stop_group(child, grace=10)
    assert time.monotonic() - start < 5
    assert not serve_cli.group_alive(child.pid)


def test_stop_group_kills_a_group_that_ignores_sigterm():
    child = _start_group("trap '' TERM; sleep 60 & sleep 60 & wait")
    time.sleep(0.3)
    start = time.monotonic()
    serve_cli.stop_group(child, grace=1)
    assert 1 <= time.monotonic() - start < 8
    assert not serve_cli.group_alive(child.pid)
    assert child.returncode == -signal.SIGKILL


def test_a_server_that_exits_by_itself_ends_serve_with_its_status(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RECAE_SERVE_MAX_USERS", raising=False)
    monkeypatch.setattr(serve_cli, "prepare_model", lambda *a: (tmp_path, "sqlite:///x.db"))
    monkeypatch.setattr(serve_cli, "server_command", lambda *a: [sys.executable, "-c", "raise SystemExit(3)"])
    assert main(["serve", "--model", str(tmp_path), "--port", str(_free_port())]) == 3
    monkeypatch.setattr(
        serve_cli, "server_command", lambda *a: [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    )
    assert main(["serve", "--model", str(tmp_path), "--port", str(_free_port())]) == 128 + signal.SIGKILL
    assert os.environ.get("RECAE_SERVE_MAX_USERS") is None  # the limits go to the child only


def test_the_readme_shows_the_entry_point_as_written():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = "\n".join(f"  {line}" if line else "" for line in ENTRY_POINT.splitlines())
    assert block in readme
