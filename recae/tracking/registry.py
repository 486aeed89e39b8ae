"""Finding things again in an MLflow store: logged models, registered versions, tuning runs.

:func:`register_model` registers a logged model and points the alias
``champion`` at it; :func:`model_uri_of_run` is the address of the model a run
logged; :func:`find_tuning_run` reads back the best parameters of the most
recent search (``recae benchmark --tuned``); :func:`search_runs` lists the runs
of an experiment as a table, to compare them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from recae.errors import UsageError
from recae.experiment.tracker import BEST_PREFIX, CHAMPION, TUNE_KIND, TunedParams
from recae.tracking.store import open_store, use_store
from recae.tracking.store import tracking_uri as tracking_uri_of


def model_uri_of_run(run_id: str, name: str = "model") -> str:
    """The URI of the model ``name`` logged in run ``run_id`` (``models:/<model_id>``).

    MLflow 3 stores logged models apart from the run's artifacts; ``runs:/<run_id>/<name>``
    still resolves, but the model id is the direct address.
    """
    run = mlflow.MlflowClient().get_run(run_id)
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
        output_format="list",
    )
    if len(models) == 1:
        return f"models:/{models[0].model_id}"
    return f"runs:/{run_id}/{name}"


def register_model(model_uri: str, name: str, alias: str = CHAMPION) -> str:
    """Register ``model_uri`` as a new version of ``name`` and point ``alias`` at it.

    Returns the version (as text). ``models:/<name>@<alias>`` then loads it.
    """
    try:
        version = mlflow.register_model(model_uri, name, await_registration_for=0)
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version.version)
    except MlflowException as e:
        raise UsageError(f"cannot register {model_uri} as {name!r}: {e.message}") from None
    return str(version.version)


def parse_param(text: str) -> Any:
    """An MLflow parameter string back to its value: ``"64"`` → 64, ``"1000.0"`` → 1000.0,
    ``"[600]"`` → [600], ``"None"`` → None, ``"True"`` → True, ``"bm25"`` → ``"bm25"``.

    MLflow stores parameters as text (``str(value)``, lists as JSON; see
    :func:`recae.tracking.tracker.flatten`); this inverts that for plain values.
    """
    if text in ("None", "null"):
        return None
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    if text.lower() in ("inf", "-inf", "nan", "+inf"):
        return float(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def find_tuning_run(
    model: str,
    dataset: str,
    protocol: str,
    fingerprint: str | None = None,
    tracking_uri: str | None = None,
) -> TunedParams | None:
    """The most recent finished search for ``model`` on ``dataset`` / ``protocol``.

    Runs on the split ``fingerprint`` are preferred; when only runs on other
    splits exist the most recent of them is returned with ``same_split=False``.

    Parameters
    ----------
    model : str
        Registry name.
    dataset : str
        The data set's label (:func:`recae.experiment.runs.dataset_label`), as tagged.
    protocol : str
        ``"strong-generalization"`` or ``"given"``.
    fingerprint : str, optional
        The split to prefer.
    tracking_uri : str, optional
        The MLflow store (see :func:`recae.tracking.store.tracking_uri`).

    Returns
    -------
    TunedParams or None
        None when no finished search with best parameters exists. Nothing is
        written to the store (a missing SQLite store is not created).
    """
    runs = _finished_searches(model, dataset, protocol, tracking_uri)
    if runs.empty:
        return None
    best_cols = [c for c in runs.columns if c.startswith(f"params.{BEST_PREFIX}")]
    fp_col = "tags.split_fingerprint"
    same = runs[runs[fp_col] == fingerprint] if fingerprint and fp_col in runs else runs.iloc[:0]
    row = (same if not same.empty else runs).iloc[0]
    params = {
        col[len(f"params.{BEST_PREFIX}"):]: parse_param(row[col])
        for col in best_cols
        if isinstance(row[col], str)
    }
    run_fp = str(row.get(fp_col, ""))
    return TunedParams(
        model=model, params=params, run_id=str(row["run_id"]), fingerprint=run_fp,
        same_split=fingerprint is None or run_fp == fingerprint,
    )


def search_runs(experiment: str, filter_string: str = "", tracking_uri: str | None = None) -> pd.DataFrame:
    """The runs of ``experiment`` (e.g. ``"ml-100k/strong-generalization"``) as one table, newest first.

    One row per run with ``run_id``, ``status``, ``tags.*``, ``params.*`` and
    ``metrics.*`` columns (``mlflow.search_runs``); ``filter_string`` is MLflow's
    search syntax, e.g. ``"tags.split_fingerprint = '325923d1b8f1ded4'"``.
    An experiment that does not exist gives an empty table.
    """
    use_store(tracking_uri)
    return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string, max_results=100_000)


def checkpoint_folder_of_run(run_id: str, tag: str, dest: Path, tracking_uri: str | None = None) -> Path:
    """The checkpoint folder of the interrupted benchmark run ``run_id``.

    The folder its tag ``tag`` names when it is still on this machine; else a
    copy of the run's ``checkpoints`` artifacts downloaded into ``dest/<run_id>``.
    ``UsageError`` for a store that cannot be opened, an unknown run, a run that
    finished, or one that kept no checkpoints.
    """
    uri = open_store(tracking_uri, create=False)
    mlflow_client = mlflow.MlflowClient(uri)
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        raise UsageError(f"--resume {run_id}: no such run in {uri}") from None
    if run.info.status == "FINISHED":
        raise UsageError(f"--resume {run_id}: that run finished; there is nothing to resume")
    folder = run.data.tags.get(tag)
    if folder is None:
        raise UsageError(f"--resume {run_id}: that run kept no checkpoints (was it a benchmark with --checkpoint-every 0?)")
    if (Path(folder) / "benchmark.json").is_file():
        return Path(folder)
    target = dest / run_id
    target.mkdir(parents=True, exist_ok=True)
    try:
        mlflow_client.download_artifacts(run_id, "checkpoints", str(target))
    except (MlflowException, OSError) as e:
        raise UsageError(f"--resume {run_id}: {folder} is gone and its logged copy cannot be read ({e})") from None
    return target / "checkpoints"


def log_files_to_run(model_uri: str, files: list[str], directory: str, tracking_uri: str | None = None) -> str | None:
    """Add ``files`` as artifacts under ``directory`` of the run that logged the model
    ``model_uri`` (``runs:/...`` or ``models:/...``; outputs made from that model:
    embeddings, maps). Returns that run's id, or None (nothing logged) for a local folder
    or a model no run logged."""
    if not re.match(r"^(runs|models):/", model_uri):
        return None
    use_store(open_store(tracking_uri, create=False))
    run_id = mlflow.models.get_model_info(model_uri).run_id
    if run_id is None:
        return None
    mlflow_client = mlflow.MlflowClient(tracking_uri_of(tracking_uri))
    for file in files:
        mlflow_client.log_artifact(run_id, file, directory)
    return run_id


def _finished_searches(model: str, dataset: str, protocol: str, tracking_uri: str | None) -> pd.DataFrame:
    """The finished searches for ``model`` that logged best parameters, newest first
    (``mlflow.search_runs`` rows; empty when there is no store, experiment or search)."""
    uri = use_store(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return pd.DataFrame()  # no store, no searches: do not create one just to look
    experiment = mlflow.get_experiment_by_name(f"{dataset}/{protocol}")
    if experiment is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED' AND tags.`recae.kind` = '{}' AND tags.model = '{}' "
        "AND tags.dataset = '{}' AND tags.protocol = '{}'".format(
            TUNE_KIND, *(_quote(v) for v in (model, dataset, protocol))
        ),
        max_results=1000,
    )
    best_cols = [c for c in runs.columns if c.startswith(f"params.{BEST_PREFIX}")]
    if runs.empty or not best_cols:
        return pd.DataFrame()
    return runs[runs[best_cols].notna().any(axis=1)].sort_values("start_time", ascending=False)


def _quote(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


__all__ = ["CHAMPION", "find_tuning_run", "model_uri_of_run", "parse_param", "register_model", "search_runs"]
