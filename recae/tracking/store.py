"""Which MLflow store to use, and MLflow kept quiet while using it.

The store is the explicit URI when given, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///mlflow.db`` in the working directory.
"""

from __future__ import annotations

import logging
import os

import mlflow

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


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
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri(explicit)
    mlflow.set_tracking_uri(uri)
    return uri


__all__ = ["DEFAULT_TRACKING_URI", "client", "tracking_uri", "use_store"]
