"""recae models as MLflow pyfunc models: log, fetch, serve.

Registering a logged model and finding it again is :mod:`recae.tracking.registry`.

What a logged model holds (``mlflow.pyfunc.log_model`` with :class:`RecaeModel`)::

    MLmodel                   signature (below), metadata, pip requirements
    recae_pyfunc.py           the entry point ("models from code"): imports
                              recae.tracking.pyfunc.RecaeModel and hands it to MLflow
    artifacts/recae-model/    the Recommender: recae-model.json + state.npz
    artifacts/catalog.npz     raw item ids, item popularity, the training users'
                              raw ids and histories (CSR arrays)

What runs when it is loaded
---------------------------
Nothing is pickled. MLflow (:func:`load_pyfunc`, ``recae serve``, ``mlflow
models serve``) executes the folder's ``recae_pyfunc.py``, whatever it holds;
recae writes :data:`ENTRY_POINT` there (four lines importing :class:`RecaeModel`
from the installed recae), and ``recae serve`` refuses a model whose file differs
(:mod:`recae.tracking.server`). :meth:`RecaeModel.load_context` then reads the
weights and catalogue (JSON + npz, ``allow_pickle=False``). ``recae recommend``
and :func:`load_topn` read only those files, with the installed recae, and never
import ``recae_pyfunc.py``.

The signature
-------------
Input: rows ``user_id, item_id`` — one row per (user, item) of each user's
history, raw ids of the training data's types (integers for MovieLens). The
signature declares both columns as ``Any``, so that MLflow passes the values as
sent rather than casting them (a JSON ``50.9`` would become the integer 50);
``predict`` checks them itself by the one rule of
:func:`recae.serving.ids.convert_ids`: an integer-id model takes integers (and
``50.0``, ``"50"``), and refuses ``50.9``, ``true`` or ``"abc"`` naming the row.
Params: ``k`` (long, default 20; 1 ≤ k ≤ min(n_items, max_k), else HTTP 400)
and ``exclude_seen`` (boolean, default true).
Output: rows ``user_id, rank, item_id, score, fallback`` — each user's top-k,
best first; ``fallback`` is true for users none of whose items the model
knows, who get the most popular items (``score`` is then the item's number of
training users). Items the model does not know are ignored (and counted in a
warning in the server log).

The request is always the history: the served model scores what it is sent
(fold-in), for a training user and a new user alike. The stored training
histories are for ``recae recommend`` (batch lists without an input file).

Bad input — a missing or misnamed column, ids of the wrong type, a null id,
no rows, ``k`` out of range, a malformed body — raises an ``MlflowException``
with ``INVALID_PARAMETER_VALUE`` (or MLflow's own ``BAD_REQUEST``), which the
scoring server answers with HTTP 400 and the message; the server keeps serving.

Requests over a limit (:class:`recae.serving.ServingLimits`, read from
``RECAE_SERVE_*`` at load: users, rows per user's history, ``k``, users × k) are
refused the same way, before any scoring; users are scored
:data:`SCORE_BATCH_USERS` at a time (memory O(batch × n_items) + the answer).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from recae.checks import check_positive_int
from recae.errors import DataError, RecaeError, UsageError
from recae.models import Recommender
from recae.serving import (
    CATALOG_FILE,
    MODEL_DIR,
    OUTPUT_COLUMNS,
    Catalog,
    ServingLimits,
    TopN,
    load_model,
    require_ids,
    save_bundle,
)
from recae.tracking.store import open_store, use_store

__all__ = [
    "DEFAULT_K",
    "ENTRY_FILE",
    "ENTRY_POINT",
    "MAX_K",
    "SCORE_BATCH_USERS",
    "RecaeModel",
    "download_model",
    "load_pyfunc",
    "load_topn",
    "log_catalog_model",
    "log_model",
    "model_info",
    "signature_for",
]

#: List length when a request gives no ``k``.
DEFAULT_K = 20
#: The longest list a request may ask for by default (also never more than the
#: catalogue); ``RECAE_SERVE_MAX_K`` changes it (:class:`~recae.serving.ServingLimits`).
MAX_K = ServingLimits().max_k
#: Users scored at once by the served model: peak memory O(this × n_items) + the answer.
SCORE_BATCH_USERS = 1000

#: The file MLflow runs to build the pyfunc model when loading it ("models from
#: code"): it imports :class:`RecaeModel` from the installed recae and hands an
#: instance to MLflow; no pickle is written. MLflow executes whatever this file
#: of the model folder holds: ``recae serve`` checks it is exactly these lines.
ENTRY_POINT = (
    '"""The pyfunc entry point of a recae model, written by recae.tracking.pyfunc.log_model."""\n'
    "from mlflow.models import set_model\n\n"
    "from recae.tracking.pyfunc import RecaeModel\n\n"
    "set_model(RecaeModel())\n"
)
#: The entry point's file name in the model folder.
ENTRY_FILE = "recae_pyfunc.py"
_ARTIFACT_MODEL = "recae_model"
_ARTIFACT_CATALOG = "catalog"


@contextmanager
def _no_artifact_bars() -> Iterator[None]:
    """Silence MLflow's per-file download bars (log_model validates by loading the model
    back) unless the user asked for them; recae prints its own progress."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class RecaeModel(PythonModel):
    """The pyfunc model: histories in, top-N lists out (see the module docstring).

    Logged as a model from code (:data:`ENTRY_POINT`), so no pickle is
    written; :meth:`load_context` reads the artifacts.

    Parameters
    ----------
    limits : ServingLimits, optional
        What one request may ask for; by default read from the
        ``RECAE_SERVE_*`` variables when the model is loaded
        (:meth:`ServingLimits.from_env`).
    batch_size : int
        Users scored at once (:data:`SCORE_BATCH_USERS`).
    """

    def __init__(self, limits: ServingLimits | None = None, batch_size: int = SCORE_BATCH_USERS) -> None:
        self.limits = limits
        self.batch_size = check_positive_int(batch_size, "batch_size")

    def load_context(self, context: Any) -> None:
        model = load_model(context.artifacts[_ARTIFACT_MODEL])
        self.topn = TopN(model, Catalog.load(context.artifacts[_ARTIFACT_CATALOG]))
        if self.limits is None:
            self.limits = ServingLimits.from_env()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self._predict(model_input, params or {})
        except RecaeError as e:
            raise _invalid(str(e)) from None

    def _predict(self, frame: Any, params: dict[str, Any]) -> pd.DataFrame:
        topn: TopN = self.topn
        if not isinstance(frame, pd.DataFrame):
            try:
                frame = pd.DataFrame(frame)
            except (ValueError, TypeError) as e:
                raise DataError(f"the input must be a table of user_id, item_id rows ({e})") from None
        missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
        if missing:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(f"the input has no column {' and '.join(missing)}; expected user_id, item_id (found {found})")
        if len(frame) == 0:
            raise DataError("the input holds no rows; send one user_id, item_id row per item of each history")
        for column in ("user_id", "item_id"):
            bad = np.asarray(pd.isna(frame[column]), dtype=bool)
            if bad.any():
                raise DataError(f"the input's {column} is empty in row {int(np.flatnonzero(bad)[0]) + 1}")
        unknown_params = set(params) - {"k", "exclude_seen"}
        if unknown_params:
            raise UsageError(f"unknown parameter(s) {', '.join(sorted(unknown_params))}; known: k, exclude_seen")
        limits: ServingLimits = self.limits or ServingLimits()
        # users, history lengths, k and the answer's size, before any scoring
        k = limits.check_request(frame["user_id"].to_numpy(), params.get("k", DEFAULT_K), topn.n_items)
        exclude_seen = params.get("exclude_seen", True)
        if not isinstance(exclude_seen, bool | np.bool_):
            raise UsageError(f"exclude_seen must be true or false, got {exclude_seen!r}")
        # the signature declares the id columns as Any, so the values arrive as sent:
        # an item id that is no id of the model's type (50.9 or true for integer
        # ids) is refused here, naming its row, rather than cast or ignored
        require_ids(frame["item_id"].to_numpy(), topn.catalog.item_ids.dtype, "item_id", "request")
        history = pd.DataFrame({"user": frame["user_id"].to_numpy(), "item": frame["item_id"].to_numpy()})
        hist = topn.fold_in(history, source="request")
        # Chunks of users: scores for batch_size × n_items at a time; the answer is
        # at most limits.max_rows rows.
        out = topn.frame(hist, k, exclude_seen=bool(exclude_seen), batch_size=self.batch_size)
        return out[list(OUTPUT_COLUMNS)]


def _col_type(ids: np.ndarray | None) -> str:
    return "string" if ids is not None and np.asarray(ids).dtype.kind not in "iu" else "long"


def signature_for(catalog: Catalog) -> ModelSignature:
    """The model signature: ``user_id, item_id`` in; ``user_id, rank, item_id, score, fallback`` out;
    params ``k`` and ``exclude_seen``. Id columns take the training ids' types."""
    user_type = _col_type(catalog.user_ids)
    item_type = _col_type(catalog.item_ids)
    return ModelSignature(
        # Any: MLflow would cast a JSON 50.9 to the long 50 before predict sees it;
        # predict checks the ids itself, exactly (recae.serving.ids.convert_ids)
        inputs=Schema([ColSpec(AnyType(), "user_id"), ColSpec(AnyType(), "item_id")]),
        outputs=Schema(
            [
                ColSpec(user_type, "user_id"),
                ColSpec("long", "rank"),
                ColSpec(item_type, "item_id"),
                ColSpec("float", "score"),
                ColSpec("boolean", "fallback"),
            ]
        ),
        params=ParamSchema([ParamSpec("k", "long", DEFAULT_K), ParamSpec("exclude_seen", "boolean", True)]),
    )


def _input_example(catalog: Catalog, n_items: int = 5) -> pd.DataFrame:
    """A real history: the first known user's first items, else the most popular items."""
    if catalog.histories is not None and catalog.histories.shape[0]:
        lengths = np.diff(catalog.histories.indptr)
        row = int(np.argmax(lengths > 0))
        cols = catalog.histories[row].indices[:n_items]
        user = catalog.user_ids[row]
    else:
        cols = np.argsort(-catalog.popularity, kind="stable")[:n_items]
        user = 0 if _col_type(catalog.user_ids) == "long" else "new-user"
    return pd.DataFrame({"user_id": np.repeat(np.asarray([user]), len(cols)), "item_id": catalog.item_ids[cols]})


def _pip_requirements() -> list[str]:
    """recae and its runtime dependencies pinned to the installed versions.

    Given explicitly, so that logging skips MLflow's requirement inference
    (which loads the model in a subprocess: seconds per model).
    """
    reqs = []
    for spec in requires("recae") or []:
        if "extra ==" in spec:
            continue
        name = re.match(r"[A-Za-z0-9_.\-]+", spec).group(0)  # type: ignore[union-attr]
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            reqs.append(spec.split(";")[0].strip())
    try:
        reqs.insert(0, f"recae=={version('recae')}")
    except PackageNotFoundError:  # pragma: no cover - recae runs from a checkout
        pass
    return reqs


def log_model(
    model: Recommender,
    item_ids: Any,
    popularity: Any,
    name: str = "model",
    *,
    user_ids: Any | None = None,
    histories: Any | None = None,
    registered_model_name: str | None = None,
    input_example: pd.DataFrame | None = None,
) -> Any:
    """Log ``model`` as a pyfunc model into the active MLflow run.

    Parameters
    ----------
    model : Recommender
        Fitted.
    item_ids : 1-D array (n_items,)
        Raw id of each item column (numbers or text; stored as a plain array).
    popularity : 1-D int array (n_items,)
        Training users per item (:func:`recae.serving.item_popularity`): the
        fallback list for users with no known item.
    name : str
        The model's name in the run (``runs:/<run_id>/<name>``).
    user_ids, histories : optional
        The training users' raw ids and their rows (CSR, n_users × n_items),
        stored so that ``recae recommend`` lists every known user without an
        input file. Give both or neither.
    registered_model_name : str, optional
        Also register the model under this name.
    input_example : DataFrame, optional
        ``user_id, item_id`` rows; by default the first stored history.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``.model_uri`` loads it back (``models:/<model_id>``).
    """
    catalog = Catalog(item_ids, popularity, user_ids, histories)
    return log_catalog_model(
        model, catalog, name, registered_model_name=registered_model_name, input_example=input_example
    )


def log_catalog_model(
    model: Recommender,
    catalog: Catalog,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    input_example: pd.DataFrame | None = None,
) -> Any:
    """:func:`log_model` with the ids, popularity and histories already in a :class:`Catalog`."""
    with tempfile.TemporaryDirectory(prefix="recae-model-") as tmp, _no_artifact_bars():
        bundle = save_bundle(model, catalog, Path(tmp) / "bundle")
        entry = Path(tmp) / ENTRY_FILE
        entry.write_text(ENTRY_POINT)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(entry),
            artifacts={_ARTIFACT_MODEL: str(bundle / MODEL_DIR), _ARTIFACT_CATALOG: str(bundle / CATALOG_FILE)},
            signature=signature_for(catalog),
            input_example=(input_example if input_example is not None else _input_example(catalog), {"k": min(5, catalog.n_items)}),
            pip_requirements=_pip_requirements(),
            registered_model_name=registered_model_name,
            metadata={
                "recae_model": model.name,
                "n_items": catalog.n_items,
                "n_known_users": 0 if catalog.user_ids is None else int(catalog.user_ids.shape[0]),
            },
        )


def _is_local(uri: str) -> Path | None:
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:/", uri):
        return None
    path = Path(uri).expanduser()
    return path if path.exists() else None


def download_model(model_uri: str, dst_path: str | Path, tracking_uri: str | None = None) -> Path:
    """Download the logged model at ``model_uri`` into ``dst_path``; its local folder.

    ``model_uri`` is any MLflow model URI: ``runs:/<run_id>/model``,
    ``models:/<name>@champion``, ``models:/<name>/<version>``, ``models:/<model_id>``.
    A model that cannot be fetched raises ``DataError`` naming the URI; a
    SQLite store that does not exist is named, and not created.
    """
    use_store(open_store(tracking_uri, create=False))
    with _no_artifact_bars():
        try:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst_path)))
        except MlflowException as e:
            raise DataError(f"{model_uri}: cannot fetch the model ({e.message.splitlines()[0]})") from None
        except OSError as e:
            raise DataError(f"{model_uri}: cannot fetch the model ({e})") from None


def load_pyfunc(model_uri: str, tracking_uri: str | None = None) -> mlflow.pyfunc.PyFuncModel:
    """The logged model as MLflow serves it: ``predict(rows, params={"k": 20})``.

    The rows and the answer are the signature's (see this module's docstring);
    bad input raises an ``MlflowException`` whose HTTP status is 400.
    """
    use_store(tracking_uri)
    return mlflow.pyfunc.load_model(model_uri)


def model_info(model_uri: str, tracking_uri: str | None = None) -> mlflow.models.model.ModelInfo:
    """What MLflow recorded about a logged model: signature, flavors, metadata."""
    use_store(tracking_uri)
    return mlflow.models.get_model_info(model_uri)


def load_topn(model_uri: str, tracking_uri: str | None = None) -> TopN:
    """Read a model logged by :func:`log_model` from any MLflow model URI.

    ``runs:/<run_id>/model``, ``models:/<name>@champion``, ``models:/<name>/<version>``,
    ``models:/<model_id>`` or a local folder. The artifacts are downloaded into
    a temporary folder and read into memory.
    """
    local = _is_local(model_uri)
    if local is not None:
        return TopN.load(local)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:/", model_uri):
        raise UsageError(
            f"{model_uri}: no such folder, and not a model URI (runs:/<run_id>/model, models:/<name>@champion, ...)"
        )
    with tempfile.TemporaryDirectory(prefix="recae-fetch-") as tmp:
        return TopN.load(download_model(model_uri, tmp, tracking_uri))
