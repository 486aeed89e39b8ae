"""Experiment tracking in MLflow: the only module of recae that imports mlflow.

Layout: one MLflow experiment per data set and protocol (``ml-100k/strong-generalization``);
one parent run per benchmark, holding the comparison table; one nested run per
trained model, holding its parameters, per-epoch curves (step = epoch), final
validation and test metrics, and artifacts. Every run carries the split's
fingerprint as the ``split_fingerprint`` tag, so runs on the same split can be
found together::

    mlflow.search_runs(filter_string="tags.split_fingerprint = '3f2a...'")

The store is ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in
the working directory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value

# MLflow's store migrations and experiment creation log at INFO; recae's own
# output is the progress bars and the final table.
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


def tracking_uri(explicit: str | None = None) -> str:
    """The MLflow store to use: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


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


class Run:
    """Logging into one MLflow run (the active run while its ``with`` block lasts)."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        flat = flatten(params, prefix)
        items = list(flat.items())
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

    def log_artifacts(self, directory: str | Path, path: str | None = None) -> None:
        mlflow.log_artifacts(str(directory), path)


class Tracker:
    """Opens MLflow runs in one experiment of one store.

    Parameters
    ----------
    experiment : str
        Experiment name; recae uses ``"<data set>/<protocol>"``.
    uri : str, optional
        Tracking URI (see :func:`tracking_uri`).
    """

    def __init__(self, experiment: str, uri: str | None = None):
        self.uri = tracking_uri(uri)
        self.experiment = experiment
        mlflow.set_tracking_uri(self.uri)
        self.experiment_id = mlflow.set_experiment(experiment).experiment_id

    @contextmanager
    def run(self, name: str, tags: Mapping[str, Any] | None = None, nested: bool = False) -> Iterator[Run]:
        """Start a run (nested under the active one when ``nested``); it ends FINISHED,
        or FAILED (KILLED on Ctrl-C) if the block raises, leaving other runs untouched."""
        with mlflow.start_run(
            run_name=name,
            experiment_id=self.experiment_id,
            nested=nested,
            tags={k: str(v) for k, v in (tags or {}).items()},
        ) as active:
            try:
                yield Run(active.info.run_id)
            except KeyboardInterrupt:
                mlflow.end_run("KILLED")
                raise

    def find_runs(self, filter_string: str = "", max_results: int = 1000) -> pd.DataFrame:
        """Runs of this experiment as a frame (``mlflow.search_runs``)."""
        return mlflow.search_runs(
            experiment_ids=[self.experiment_id], filter_string=filter_string, max_results=max_results
        )


class _NullRun(Run):
    """A run that records nothing (``--no-tracking``)."""

    def __init__(self) -> None:
        self.run_id = None  # type: ignore[assignment]

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def log_text(self, text: str, path: str) -> None:
        pass

    def log_dict(self, obj: Any, path: str) -> None:
        pass

    def log_figure(self, figure: Any, path: str) -> None:
        pass

    def log_frame(self, frame: pd.DataFrame, path: str) -> None:
        pass

    def log_artifacts(self, directory: str | Path, path: str | None = None) -> None:
        pass


class NullTracker:
    """Stands in for :class:`Tracker` when tracking is off: the same calls, nothing stored."""

    experiment = ""

    @contextmanager
    def run(self, name: str, tags: Mapping[str, Any] | None = None, nested: bool = False) -> Iterator[Run]:
        yield _NullRun()
