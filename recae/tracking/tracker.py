"""Experiment tracking in MLflow: the tracker protocol of :mod:`recae.experiment.tracker` over MLflow.

Layout: one MLflow experiment per data set and protocol (``ml-100k/strong-generalization``);
one parent run per benchmark, holding the comparison table; one nested run per
trained model, holding its parameters, per-epoch curves (step = epoch), final
validation and test metrics, and artifacts. Every run carries the split's
fingerprint as the ``split_fingerprint`` tag, so runs on the same split can be
found together::

    mlflow.search_runs(filter_string="tags.split_fingerprint = '3f2a...'")

The store is ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in
the working directory (:mod:`recae.tracking.store`).
"""

from __future__ import annotations

import functools
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import pandas as pd

from recae.experiment.tracker import NullTracker, TunedParams
from recae.files import signals_deferred
from recae.models import Recommender
from recae.serving import Catalog
from recae.tracking.pyfunc import log_catalog_model
from recae.tracking.registry import find_tuning_run, model_uri_of_run, register_model
from recae.tracking.store import open_store, use_store

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value


def metric_key(name: str) -> str:
    """An MLflow-safe metric key: ``ndcg@100`` → ``ndcg_at_100`` (MLflow rejects ``@``)."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", name.replace("@", "_at_"))


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts → ``{"a.b": "value"}`` with string values, as MLflow parameters."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
            out[name] = text[:_MAX_PARAM_LENGTH]
    return out


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


#: Tracking URI schemes of database stores (SQLAlchemy's, with or without a ``+driver``).
_DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def _store_call() -> AbstractContextManager[None]:
    """Around one call into the store: Ctrl-C and SIGTERM held back until it returns, when
    the store is a database. A signal landing inside one of its transactions can leave
    the engine's shared connections unusable, and the runs could then not be marked
    KILLED; held back, it takes effect between two calls (a database call takes
    milliseconds). An HTTP store's calls stay interruptible: a server that went away
    is retried for up to half a minute (:mod:`recae.tracking.store`), and the server
    keeps its store whole whatever the client does."""
    scheme = urlparse(mlflow.get_tracking_uri()).scheme.split("+")[0]
    return signals_deferred() if scheme in _DATABASE_SCHEMES else nullcontext()


@contextmanager
def _start_run(
    experiment_id: str | None, name: str, tags: Mapping[str, Any], nested: bool, unlogged: list[str],
    run_id: str | None = None,
) -> Iterator[MlflowRun]:
    """An MLflow run (nested under the active one when ``nested``; the existing run
    ``run_id`` reopened when given); it ends FINISHED, or FAILED (KILLED on Ctrl-C)
    if the block raises, leaving other runs untouched.

    When the store fails (at the start, while logging, or at the end), the block
    still runs to its end: the failure is added to ``unlogged`` and the run logs
    nothing more.
    """
    run = MlflowRun(None, experiment_id, name, unlogged)
    status = "FINISHED"
    try:
        _begin(run, nested, tags, run_id)  # inside the try: a Ctrl-C held back during the start ends it KILLED
        yield run
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        if run.run_id is not None:
            try:
                with _store_call():
                    mlflow.end_run(status)
            except Exception as e:  # the store went away during the run
                run.lose(e)


def _begin(run: MlflowRun, nested: bool, tags: Mapping[str, Any], run_id: str | None) -> None:
    """Start ``run`` in the store (``run_id`` reopened when given), or lose it: no
    experiment, or a store that failed (training goes on, the run reported as not logged)."""
    if run.experiment_id is None:
        run.lose(None)
        return
    try:
        with _store_call():
            run.run_id = mlflow.start_run(
                run_id=run_id, run_name=None if run_id else run.name,
                experiment_id=None if run_id else run.experiment_id,
                nested=nested, tags={k: str(v) for k, v in tags.items()},
            ).info.run_id
    except Exception as e:
        run.lose(e)


def _logging(method: Callable[..., Any]) -> Callable[..., Any]:
    """A logging call of :class:`MlflowRun`: nothing once the run is lost, and a failure loses it."""

    @functools.wraps(method)
    def call(self: MlflowRun, *args: Any, **kwargs: Any) -> Any:
        if self.lost:
            return None
        try:
            with _store_call():
                return method(self, *args, **kwargs)
        except Exception as e:  # the store failed: training goes on, the run is reported as not logged
            self.lose(e)
            return None

    return call


class MlflowRun:
    """Logging into one MLflow run (the active run while its ``with`` block lasts).

    A failure of the store loses the run: the error goes to the tracker's
    ``unlogged`` list once, and later calls log nothing (and nested runs are
    lost too), so that a store that went away costs one bounded timeout per
    run, never the training.
    """

    def __init__(self, run_id: str | None, experiment_id: str | None, name: str = "", unlogged: list[str] | None = None):
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.name = name
        self.lost = False
        self._unlogged = [] if unlogged is None else unlogged

    def lose(self, error: BaseException | None) -> None:
        """Stop logging into this run; name it and ``error`` in the tracker's ``unlogged`` list."""
        if not self.lost:
            self.lost = True
            if error is not None:
                self._unlogged.append(f"{self.name}: {_first_line(error)}")

    def nested(self, name: str, tags: Mapping[str, Any], run_id: str | None = None) -> AbstractContextManager[MlflowRun]:
        """A run nested under this one, in the same experiment (a context manager);
        with ``run_id``, that interrupted run reopened."""
        return _start_run(None if self.lost else self.experiment_id, name, tags, True, self._unlogged, run_id)

    @_logging
    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        items = list(flatten(params, prefix).items())
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[start : start + 100]))

    @_logging
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {
            metric_key(k): float(v)
            for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        if clean:
            mlflow.log_metrics(clean, step=step)

    @_logging
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    @_logging
    def log_text(self, text: str, path: str) -> None:
        mlflow.log_text(text, path)

    @_logging
    def log_dict(self, obj: Any, path: str) -> None:
        mlflow.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), path)

    @_logging
    def log_figure(self, figure: Any, path: str) -> None:
        mlflow.log_figure(figure, path)

    @_logging
    def log_frame(self, frame: pd.DataFrame, path: str) -> None:
        """Log a table as CSV (``.csv``), Parquet (``.parquet``) or markdown (``.md``)."""
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(path).name
            if path.endswith(".parquet"):
                frame.to_parquet(file, index=False)
            elif path.endswith(".md"):
                file.write_text(frame.to_markdown(index=False))
            else:
                frame.to_csv(file, index=False)
            parent = str(Path(path).parent)
            mlflow.log_artifact(str(file), None if parent == "." else parent)

    @_logging
    def log_file(self, path: Path, directory: str) -> None:
        """Copy ``path`` into this run's ``directory`` (by run id: also while a nested run is open)."""
        assert self.run_id is not None
        mlflow.MlflowClient().log_artifact(self.run_id, str(path), directory)

    @_logging
    def log_model(self, model: Recommender, catalog: Catalog, name: str = "model") -> str | None:
        """Log ``model`` as a pyfunc model (:mod:`recae.tracking.pyfunc`); returns its URI."""
        return log_catalog_model(model, catalog, name=name).model_uri


class MlflowTracker:
    """Runs in an MLflow store (``uri``; see :func:`recae.tracking.store.tracking_uri`).

    The store is opened and checked when the first run starts, not on construction.
    Runs the store failed to record are listed by :meth:`unlogged`.
    """

    def __init__(self, uri: str | None = None):
        self.uri = uri
        self._opened = False
        self._unlogged: list[str] = []

    @contextmanager
    def run(
        self, experiment: str, name: str, tags: Mapping[str, Any], run_id: str | None = None
    ) -> Iterator[MlflowRun]:
        """A top-level run in ``experiment`` (created when missing); with ``run_id``, that
        interrupted run reopened.

        The store is checked (:func:`~recae.tracking.store.open_store`) when the
        first run starts: after the input is checked, before any model trains.
        """
        if not self._opened:
            self.uri = open_store(self.uri)
            self._opened = True
        use_store(self.uri)
        try:
            with _store_call():  # it may create the experiment: a write, like the run's
                experiment_id: str | None = mlflow.set_experiment(experiment).experiment_id
        except Exception as e:  # the store failed: the run below is lost from its start
            self._unlogged.append(f"{experiment}: {_first_line(e)}")
            experiment_id = None
        with _start_run(experiment_id, name, tags, False, self._unlogged, run_id) as run:
            yield run

    def unlogged(self) -> list[str]:
        """``"<run name>: <error>"`` for each run the store failed to record (fully)."""
        return list(self._unlogged)

    def register_model(self, run_id: str, name: str) -> str:
        """Register the model logged in run ``run_id`` as ``name``, alias ``champion``; the version."""
        use_store(self.uri)
        return register_model(model_uri_of_run(run_id), name)

    def find_tuning_run(
        self, model: str, dataset: str, protocol: str, fingerprint: str | None = None
    ) -> TunedParams | None:
        """See :func:`recae.tracking.registry.find_tuning_run`."""
        return find_tuning_run(model, dataset, protocol, fingerprint, self.uri)


class ReadOnlyTracker(NullTracker):
    """Records nothing, but finds tuning runs in an MLflow store (``--tuned --no-tracking``)."""

    def __init__(self, uri: str | None = None):
        self.uri = uri

    def find_tuning_run(
        self, model: str, dataset: str, protocol: str, fingerprint: str | None = None
    ) -> TunedParams | None:
        """See :func:`recae.tracking.registry.find_tuning_run`."""
        return find_tuning_run(model, dataset, protocol, fingerprint, self.uri)


__all__ = ["MlflowRun", "MlflowTracker", "ReadOnlyTracker", "flatten", "metric_key"]
