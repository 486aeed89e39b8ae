"""``recae serve``: MLflow's scoring server for a logged model, with request limits, stopped whole.

Everything that can be refused is refused before the server starts (one line,
exit 2 for a bad flag or a missing store): the limits, the address, the
workers, the model and its store (:func:`recae.tracking.server.prepare_model`).
The server is MLflow's (``python -m mlflow models serve --env-manager local``),
run by this interpreter as a child in its own process group: MLflow starts
``uvicorn`` (found beside the interpreter) and uvicorn its workers, all in that
group. On SIGTERM or Ctrl-C the whole group gets SIGTERM, then SIGKILL after
:data:`STOP_GRACE_S` seconds (a worker busy with a long request would otherwise
outlive the command); ``recae serve`` then exits 143 or 130. A server that
exits by itself ends the command with its status.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from recae.checks import check_positive_int
from recae.errors import UsageError
from recae.serving import ServingLimits
from recae.tracking.server import prepare_model, server_command, server_env

__all__ = ["STOP_GRACE_S", "add_parser", "run"]

#: Seconds the server's processes get to stop after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
#: Seconds to wait for the processes to go after SIGKILL.
_KILL_WAIT_S = 5.0
_POLL_S = 0.1
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_LIMIT_HELP = {
    "max_users": "the most users in one request",
    "max_history": "the most items in one user's history",
    "max_k": "the largest k (items per list)",
    "max_rows": "the most rows in one answer (users × k)",
}


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    srv = sub.add_parser(
        "serve",
        help=help,
        description=(
            "Serve a model logged by recae with MLflow's scoring server: POST user_id,item_id rows to "
            "/invocations and get each user's top-k (see the README). Requests over a limit are answered "
            "with HTTP 400 before any scoring. The model, its store, the address and the limits are checked "
            "before the server starts. SIGTERM or Ctrl-C stops the server and all its processes."
        ),
    )
    srv.add_argument("--model", required=True, metavar="MODEL_URI", help="an MLflow model URI (runs:/<run_id>/model, models:/<name>@champion) or a local model folder")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only; the server has no authentication)")
    srv.add_argument("--port", type=int, default=5000, help="port to listen on (default: %(default)s)")
    srv.add_argument("--workers", type=int, default=1, help="server processes; each holds the model in memory (default: %(default)s)")
    srv.add_argument("--tracking-uri", help="MLflow store that resolves runs:/ and models:/ URIs (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    defaults = ServingLimits()
    for f in dataclasses.fields(ServingLimits):
        srv.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=int, metavar="N",
            help=f"{_LIMIT_HELP[f.name]} (default: ${ServingLimits.variable(f.name)}, else {getattr(defaults, f.name):,})",
        )  # fmt: skip
    srv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check everything, start the server, and wait for it or for a signal; the exit status."""
    limits = _limits(args)
    workers = check_positive_int(args.workers, "--workers")
    _check_address(args.host, args.port)
    with tempfile.TemporaryDirectory(prefix="recae-serve-") as tmp:
        folder, store = prepare_model(args.model, args.tracking_uri, tmp)
        command = server_command(folder, args.host, args.port, workers)
        child = subprocess.Popen(command, env=server_env(store, limits), start_new_session=True)
        try:
            print(
                f"recae: serving {args.model} on http://{_url_host(args.host)}:{args.port}/invocations "
                f"(process group {child.pid}, {workers} worker(s); per request at most {limits.max_users:,} users, "
                f"{limits.max_history:,} items per history, k={limits.max_k:,}, {limits.max_rows:,} rows); "
                "Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            status = child.wait()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (recae.errors.Terminated)
            stop_group(child)
            raise
        stop_group(child)  # what the server left behind, if anything
    return status if status >= 0 else 128 - status


def _limits(args: argparse.Namespace) -> ServingLimits:
    """``RECAE_SERVE_*`` from the environment, overridden by the flags given."""
    limits = ServingLimits.from_env()
    given = {
        f.name: check_positive_int(getattr(args, f.name), "--" + f.name.replace("_", "-"))
        for f in dataclasses.fields(ServingLimits)
        if getattr(args, f.name) is not None
    }
    return dataclasses.replace(limits, **given)


def _check_address(host: str, port: int) -> None:
    """``UsageError`` unless the server could listen on ``host:port`` now (a free port, a local address)."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    if not host.strip():
        raise UsageError("--host is empty; give an address such as 127.0.0.1")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as e:
            raise UsageError(f"cannot listen on {host}:{port} ({e.strerror}); give another --port or --host") from None
    if host not in _LOOPBACK:
        warnings.warn(
            f"--host {host}: anyone who can reach this address can use the server (it has no authentication)",
            stacklevel=2,
        )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -------------------------------------------------------------- the process group
def stop_group(child: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """End every process of ``child``'s group (``child`` leads it): SIGTERM, then
    SIGKILL after ``grace`` seconds, or at once on a second Ctrl-C or SIGTERM."""
    pgid = child.pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        gone = _wait_group(child, grace)
    except KeyboardInterrupt:
        gone = False
    if not gone:
        _signal_group(pgid, signal.SIGKILL)
        try:
            _wait_group(child, _KILL_WAIT_S)
        except KeyboardInterrupt:
            pass


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group(child: subprocess.Popen, timeout: float) -> bool:
    """Wait until no process of ``child``'s group runs; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        child.poll()  # reaps the leader once it exits
        if not group_alive(child.pid):
            try:
                child.wait(timeout=1)  # the leader may have died (a zombie) since the poll above
            except subprocess.TimeoutExpired:
                pass
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs.

    Zombies do not count: a process whose parent exited first is adopted by
    PID 1, which in a container may never reap it, so ``killpg(pgid, 0)``
    alone would report a stopped server as running forever. Where ``/proc``
    exists, the group's members are read there.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while being read
        # after the command name: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
