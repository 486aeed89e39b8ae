"""MLflow: the only package of recae that imports ``mlflow``.

:mod:`~recae.tracking.tracker` implements the tracker protocol of
:mod:`recae.experiment.tracker` over MLflow runs; :mod:`~recae.tracking.pyfunc`
logs and loads recae models as MLflow pyfunc models; :mod:`~recae.tracking.registry`
registers them and finds logged models and tuning runs again;
:mod:`~recae.tracking.store` says which store is used; :mod:`~recae.tracking.server`
checks a model before ``recae serve`` serves it and gives the server's command line.
"""

from recae.tracking.pyfunc import (
    RecaeModel,
    download_model,
    load_pyfunc,
    load_topn,
    log_model,
    model_info,
)
from recae.tracking.registry import (
    CHAMPION,
    checkpoint_folder_of_run,
    find_tuning_run,
    log_files_to_run,
    model_uri_of_run,
    register_model,
    search_runs,
)
from recae.tracking.store import client, open_store, tracking_uri, use_store
from recae.tracking.tracker import MlflowRun, MlflowTracker, ReadOnlyTracker

__all__ = [
    "CHAMPION",
    "MlflowRun",
    "MlflowTracker",
    "ReadOnlyTracker",
    "RecaeModel",
    "checkpoint_folder_of_run",
    "client",
    "download_model",
    "find_tuning_run",
    "load_pyfunc",
    "load_topn",
    "log_files_to_run",
    "log_model",
    "model_info",
    "model_uri_of_run",
    "open_store",
    "register_model",
    "search_runs",
    "tracking_uri",
    "use_store",
]
