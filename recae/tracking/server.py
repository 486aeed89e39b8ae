"""MLflow's scoring server for a recae model: the model checked, and the command that serves it.

``recae serve`` (:mod:`recae.cli.serve`) calls :func:`prepare_model` before
anything starts, then runs :func:`server_command` with :func:`server_env` as a
child process; how that child is started and stopped is the command's business.

What runs when MLflow loads the model: ``recae_pyfunc.py`` from the model
folder (:data:`recae.tracking.pyfunc.ENTRY_POINT`, four lines that import
:class:`~recae.tracking.pyfunc.RecaeModel` from the installed recae), then
``RecaeModel.load_context``, which reads the weights and the catalogue (JSON +
npz, ``allow_pickle=False``). :func:`check_loader` makes sure that is all: a
model whose entry point differs from those lines, which names other code
folders (``code_paths``, put first on ``sys.path`` by MLflow) or another loader,
is refused before the server starts. A model given by URI is downloaded once,
checked, and the checked copy is what the server loads.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from recae.errors import DataError, UsageError
from recae.serving import ServingLimits, find_bundle
from recae.tracking.pyfunc import ENTRY_FILE, ENTRY_POINT, download_model
from recae.tracking.store import open_store, tracking_uri

__all__ = ["CODE_LOADER", "check_loader", "prepare_model", "server_command", "server_env"]

#: The pyfunc loader of a model logged from code, the only one recae writes.
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:/")


def prepare_model(model_uri: str, explicit_store: str | None, dst: str | Path) -> tuple[Path, str]:
    """The local folder of the model to serve, checked, and the MLflow store's URI.

    Parameters
    ----------
    model_uri : str
        A local model folder (served in place), or ``runs:/<run_id>/model``,
        ``models:/<name>@<alias>``, ``models:/<name>/<version>``,
        ``models:/<model_id>`` (downloaded into ``dst``).
    explicit_store : str, optional
        ``--tracking-uri`` (else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    dst : path
        An empty folder for the download.

    Raises
    ------
    UsageError
        Neither a folder nor a model URI; a SQLite store that does not exist.
    DataError
        A store that does not answer, a model that cannot be fetched, not a
        recae model, or one whose loader is not recae's (:func:`check_loader`).
    """
    folder = _local_folder(model_uri)
    if folder is None:
        if not _URI.match(model_uri):
            raise UsageError(
                f"{model_uri}: no such folder, and not a model URI (runs:/<run_id>/model, models:/<name>@champion, ...)"
            )
        store = open_store(explicit_store, create=False)
        folder = download_model(model_uri, dst, store)
    else:
        store = tracking_uri(explicit_store)
    check_loader(folder, model_uri)
    return folder, store


def _local_folder(model_uri: str) -> Path | None:
    path = Path(model_uri[len("file://") :] if model_uri.startswith("file://") else model_uri).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise UsageError(f"{model_uri}: a file; expected a model folder or a model URI")
    return None


def check_loader(folder: Path, name: str | None = None) -> None:
    """``DataError`` unless ``folder`` is a pyfunc model recae logged, loaded by recae's entry point alone.

    The ``python_function`` flavour must load from code (:data:`CODE_LOADER`),
    through ``recae_pyfunc.py`` holding exactly :data:`~recae.tracking.pyfunc.ENTRY_POINT`,
    with no code folders and no pickled model; the folder must hold the
    weights and catalogue (``artifacts/``).
    """
    name = name or str(folder)
    if not (folder / "MLmodel").is_file():
        raise DataError(f"{name}: not an MLflow model (no MLmodel file)")
    find_bundle(folder)  # the weights and the catalogue
    try:
        flavor = mlflow.models.Model.load(str(folder)).flavors.get("python_function") or {}
    except (MlflowException, OSError, ValueError) as e:
        raise DataError(f"{name}: cannot read its MLmodel file ({str(e).splitlines()[0]})") from None
    code_path = flavor.get("model_code_path")
    problems = []
    if flavor.get("loader_module") != CODE_LOADER or not code_path or Path(code_path).name != ENTRY_FILE:
        problems.append(f"it is not loaded through {ENTRY_FILE}")
    if flavor.get("code"):
        problems.append("it adds code folders to the import path")
    if flavor.get("python_model"):
        problems.append("it holds a pickled model")
    entry = folder / ENTRY_FILE
    if not problems and (not entry.is_file() or entry.read_text(errors="replace") != ENTRY_POINT):
        problems.append(f"its {ENTRY_FILE} is not the entry point this recae writes")
    if problems:
        raise DataError(
            f"{name}: refusing to serve it: {'; '.join(problems)} (log it again with this recae: recae benchmark)"
        )


def server_command(folder: Path, host: str, port: int, workers: int) -> list[str]:
    """MLflow's scoring server for the model in ``folder``, run by this interpreter, in this environment."""
    return [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder), "--env-manager", "local",
        "-h", host, "-p", str(port), "-w", str(workers),
    ]  # fmt: skip


def server_env(store: str, limits: ServingLimits, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``environ`` (default ``os.environ``) with this interpreter's
    ``bin`` folder first on ``PATH`` (MLflow starts ``uvicorn`` by name), ``MLFLOW_TRACKING_URI``
    set to ``store``, the ``RECAE_SERVE_*`` variables of ``limits``, and no download progress bars
    (unless asked for)."""
    env = dict(os.environ if environ is None else environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + (os.pathsep + env["PATH"] if env.get("PATH") else "")
    env["MLFLOW_TRACKING_URI"] = store
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # MLflow copies the model folder first
    env.update(limits.to_env())
    return env
