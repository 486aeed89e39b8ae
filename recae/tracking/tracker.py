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

import json
import math
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from recae.experiment.tracker import NullTracker, TunedParams
from recae.models import Recommender
from recae.serving import Catalog
from recae.tracking.pyfunc import log_catalog_model
from recae.tracking.registry import find_tuning_run, model_uri_of_run, register_model
from recae.tracking.store import use_store

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


@contextmanager
def _start_run(experiment_id: str, name: str, tags: Mapping[str, Any], nested: bool) -> Iterator[MlflowRun]:
    """An MLflow run (nested under the active one when ``nested``); it ends FINISHED,
    or FAILED (KILLED on Ctrl-C) if the block raises, leaving other runs untouched."""
    with mlflow.start_run(
        run_name=name,
        experiment_id=experiment_id,
        nested=nested,
        tags={k: str(v) for k, v in tags.items()},
    ) as active:
        try:
            yield MlflowRun(active.info.run_id, experiment_id)
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise


class MlflowRun:
    """Logging into one MLflow run (the active run while its ``with`` block lasts)."""

    def __init__(self, run_id: str, experiment_id: str):
        self.run_id = run_id
        self.experiment_id = experiment_id

    def nested(self, name: str, tags: Mapping[str, Any]) -> AbstractContextManager[MlflowRun]:
        """A run nested under this one, in the same experiment (a context manager)."""
        return _start_run(self.experiment_id, name, tags, nested=True)

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        items = list(flatten(params, prefix).items())
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            mlflow.log_params(dict(items[start : start + 100]))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {
            metric_key(k): float(v)
            for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        if clean:
            mlflow.log_metrics(clean, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_text(self, text: str, path: str) -> None:
        mlflow.log_text(text, path)

    def log_dict(self, obj: Any, path: str) -> None:
        mlflow.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), path)

    def log_figure(self, figure: Any, path: str) -> None:
        mlflow.log_figure(figure, path)

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

    def log_model(self, model: Recommender, catalog: Catalog, name: str = "model") -> str | None:
        """Log ``model`` as a pyfunc model (:mod:`recae.tracking.pyfunc`); returns its URI."""
        return log_catalog_model(model, catalog, name=name).model_uri


class MlflowTracker:
    """Runs in an MLflow store (``uri``; see :func:`recae.tracking.store.tracking_uri`).

    The store is opened when the first run starts, not on construction.
    """

    def __init__(self, uri: str | None = None):
        self.uri = uri

    @contextmanager
    def run(self, experiment: str, name: str, tags: Mapping[str, Any]) -> Iterator[MlflowRun]:
        """A top-level run in ``experiment`` (created when missing)."""
        use_store(self.uri)
        experiment_id = mlflow.set_experiment(experiment).experiment_id
        with _start_run(experiment_id, name, tags, nested=False) as run:
            yield run

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
