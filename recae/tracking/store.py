"""Which MLflow store to use, checked before any work, and MLflow kept quiet while using it.

The store is the explicit URI when given, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///mlflow.db`` in the working directory.

:func:`open_store` is called before a benchmark or a search starts, so that a
store that cannot be used costs one line and no training:

- an ``http(s)://`` server is asked for ``/health`` with a short timeout
  (:data:`PROBE_TIMEOUT_S`, or ``$MLFLOW_HTTP_REQUEST_TIMEOUT`` and
  ``$MLFLOW_HTTP_REQUEST_MAX_RETRIES`` when the user set them);
- a SQLite store is created and migrated under a file lock beside it
  (``.mlflow.db.lock``), so that two processes started at once in an empty
  folder do not race through MLflow's schema migration; a folder where it
  cannot be created is named.

It also bounds MLflow's HTTP retries for the rest of the process (unless the
user set them): by default MLflow retries a failing request 7 times with
exponential backoff, minutes in all, which would freeze a run whose server went
away; see :data:`BOUNDED_HTTP_RETRIES`.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
from filelock import FileLock, Timeout

from recae.errors import DataError, UsageError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

#: Seconds the first request to an HTTP store may take before the run is refused.
PROBE_TIMEOUT_S = 5.0
#: Seconds to wait for another process creating the same SQLite store.
CREATE_LOCK_TIMEOUT_S = 300.0
#: MLflow's HTTP retry settings for a tracked run, unless set in the environment:
#: a request to a server that went away gives up within about half a minute.
BOUNDED_HTTP_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def tracking_uri(explicit: str | None = None) -> str:
    """The MLflow store to use: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def client(explicit: str | None = None) -> mlflow.MlflowClient:
    """An MLflow client of the store :func:`tracking_uri` names, to read back what recae logged."""
    return mlflow.MlflowClient(tracking_uri(explicit))


def use_store(explicit: str | None = None) -> str:
    """Make the store :func:`tracking_uri` names MLflow's current one; returns its URI.

    MLflow's store migrations and experiment creation log at INFO; recae's own
    output is the progress bars and the final table, so those loggers are
    raised to WARNING here, when a store is first used (not at import).
    """
    _quiet()
    uri = tracking_uri(explicit)
    mlflow.set_tracking_uri(uri)
    return uri


def _quiet() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def open_store(explicit: str | None = None, *, create: bool = True) -> str:
    """Check that the store answers, before any work; returns its URI.

    Parameters
    ----------
    explicit : str, optional
        The store's URI (else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    create : bool
        Create (and migrate) a SQLite store that does not exist yet. When False
        (reading a logged model), a missing SQLite store is an error, and
        nothing is created.

    Raises
    ------
    UsageError
        A SQLite store that does not exist (``create=False``), or whose folder
        does not exist or cannot be written.
    DataError
        An HTTP store that does not answer within the timeout, or answers as
        something else than an MLflow server; a store MLflow cannot open.
    """
    # the probe follows the user's own MLflow settings, read before they are bounded
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or PROBE_TIMEOUT_S)
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 0)
    for name, value in BOUNDED_HTTP_RETRIES.items():
        os.environ.setdefault(name, value)
    uri = tracking_uri(explicit)
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        _probe_http(uri, timeout, retries)
    elif scheme == "sqlite":
        _open_sqlite(uri, create)
    return uri


def _probe_http(uri: str, timeout: float, retries: int) -> None:
    """``GET <uri>/health`` (``1 + retries`` tries); ``DataError`` naming the URI unless it answers."""
    tries = 1 + retries
    url = uri.rstrip("/") + "/health"
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=timeout):
                return
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                return  # it answers; the credentials are MLflow's business
            reason = f"it answers HTTP {e.code} to {url}; is it an MLflow tracking server?"
        except (urllib.error.URLError, OSError) as e:
            cause = getattr(e, "reason", e)
            timed_out = isinstance(cause, socket.timeout | TimeoutError)
            reason = f"no answer within {timeout:g} s" if timed_out else f"cannot connect ({cause})"
        if attempt == tries - 1:
            raise DataError(
                f"MLflow tracking server {uri}: {reason}; start it, give another --tracking-uri, "
                "or run with --no-tracking"
            )


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store (None for an in-memory one)."""
    path = uri.split("://", 1)[1].lstrip("/")
    if not path or path == ":memory:":
        return None
    return Path("/" + path) if uri.startswith("sqlite:////") else Path(path)


def _open_sqlite(uri: str, create: bool) -> None:
    """Create and migrate the store under a lock beside it (``create``), or check it exists."""
    path = sqlite_path(uri)
    if path is None:
        return
    if not create:
        if not path.is_file():
            raise UsageError(f"{uri}: no MLflow store at {path}; give the store with --tracking-uri")
        return
    if not path.parent.is_dir():
        raise UsageError(f"{uri}: folder {path.parent} does not exist; create it or give another --tracking-uri")
    _quiet()
    lock = FileLock(path.with_name(f".{path.name}.lock"), timeout=CREATE_LOCK_TIMEOUT_S)
    try:
        with lock:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates a new store
    except PermissionError as e:
        raise UsageError(f"{uri}: cannot create the store in {path.parent} ({e.strerror}); give another --tracking-uri") from None
    except Timeout:
        raise DataError(f"{uri}: another process held the store's lock {lock.lock_file} for {CREATE_LOCK_TIMEOUT_S:g} s") from None
    except Exception as e:  # SQLAlchemy/MLflow errors: a locked, corrupt or foreign database file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{uri}: MLflow cannot open this store ({first})") from None


__all__ = [
    "BOUNDED_HTTP_RETRIES",
    "DEFAULT_TRACKING_URI",
    "PROBE_TIMEOUT_S",
    "client",
    "open_store",
    "sqlite_path",
    "tracking_uri",
    "use_store",
]
