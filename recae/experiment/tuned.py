"""Reusing what ``recae tune`` found: ``recae benchmark --tuned``.

The searches themselves live in :mod:`recae.experiment.tuning`; reading their
results back needs only the tracker that stored them, so a benchmark never
imports the search code (nor Optuna).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

from recae.experiment.config import BenchmarkConfig
from recae.experiment.runs import dataset_label
from recae.experiment.tracker import Tracker
from recae.models import get_model_class


def best_params(
    tracker: Tracker, model: str, dataset: str, protocol: str, fingerprint: str | None = None
) -> dict[str, Any] | None:
    """The best parameters ``recae tune`` found for ``model`` on ``dataset`` / ``protocol``.

    Reads the most recent finished search in ``tracker`` (preferring the
    split ``fingerprint``; warns when the run found was on another split).
    Values come back with their types (ints, floats, lists such as
    ``hidden_dims``).

    Returns
    -------
    dict or None
        None when no search was found.
    """
    found = tracker.find_tuning_run(model, dataset, protocol, fingerprint)
    if found is None:
        return None
    if not found.same_split:
        warnings.warn(
            f"{model}: no tuning run on split {fingerprint}; using the best parameters of run "
            f"{found.run_id}, tuned on split {found.fingerprint}",
            stacklevel=2,
        )
    return found.params


def with_tuned_params(
    config: BenchmarkConfig,
    tracker: Tracker,
    protocol: str,
    fingerprint: str,
    echo: Callable[[str], None] = print,
) -> BenchmarkConfig:
    """``config`` with each model's parameters replaced by its tuned ones.

    For each of ``config.models`` the best parameters of the most recent
    finished search on this data set and protocol (see :func:`best_params`)
    are used; parameters in ``config.model_params`` (``--param`` and
    ``--config``) still win, parameter by parameter. A model never
    tuned keeps its defaults, with a warning; a tuned parameter the model no
    longer takes is dropped, with a warning.
    """
    label = dataset_label(config.dataset)
    merged: dict[str, dict[str, Any]] = {}
    for name in config.models:
        explicit = config.params_for(name)
        cls = get_model_class(name)
        if not cls.param_names():
            continue  # nothing to tune (popularity), nothing to warn about
        found = best_params(tracker, name, label, protocol, fingerprint)
        if found is None:
            warnings.warn(
                f"{name}: no finished tuning run for {label}/{protocol}; using its default parameters",
                stacklevel=2,
            )
            found = {}
        known = set(cls.param_names())
        unknown = sorted(set(found) - known)
        if unknown:
            warnings.warn(f"{name}: dropping tuned parameters it does not take: {', '.join(unknown)}", stacklevel=2)
        tuned = {k: v for k, v in found.items() if k in known}
        if tuned:
            shown = ", ".join(f"{k}={v!r}" for k, v in tuned.items() if k not in explicit)
            echo(f"{name}: tuned parameters {shown}" if shown else f"{name}: every tuned parameter overridden")
        merged[name] = {**tuned, **explicit}
    merged.update({k: v for k, v in config.model_params.items() if k not in merged})
    return dataclasses.replace(config, model_params=merged)


__all__ = ["best_params", "with_tuned_params"]
