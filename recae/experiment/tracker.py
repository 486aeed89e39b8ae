"""What an experiment needs from experiment tracking, and a tracker that records nothing.

Benchmarks and searches log through the two protocols below and never import
a tracking library: :mod:`recae.tracking` implements them over MLflow, and
:class:`NullTracker` (``--no-tracking``, and the test double) implements them
by doing nothing. The command line chooses one and passes it in.

The run layout both sides agree on: one top-level run per benchmark or search
(tag ``recae.kind`` = :data:`BENCHMARK_KIND` or :data:`TUNE_KIND`), one nested
run per model or trial (:data:`MODEL_KIND`, :data:`TRIAL_KIND`); a search's
best parameters are the run's parameters named ``best.<name>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from recae.errors import UsageError
from recae.models import Recommender
from recae.serving import Catalog

#: ``recae.kind`` of a benchmark's run and of each model's nested run.
BENCHMARK_KIND = "benchmark"
MODEL_KIND = "model"
#: ``recae.kind`` of a search's run and of each trial's nested run.
TUNE_KIND = "tune"
TRIAL_KIND = "tune-trial"
#: Prefix of the best parameters among a search run's parameters.
BEST_PREFIX = "best."
#: The registry alias that ``recae benchmark --register`` points at the chosen model.
CHAMPION = "champion"


@dataclass(frozen=True)
class TunedParams:
    """The best parameters of one finished search, as read back from the tracker.

    ``same_split`` is False when no search on the requested split was found
    and these come from the most recent search on another split.
    """

    model: str
    params: dict[str, Any]
    run_id: str
    fingerprint: str
    same_split: bool


class Run(Protocol):
    """One open run: what is logged into it while its ``with`` block lasts."""

    #: The run's id in the store (None when nothing is stored).
    run_id: str | None

    def nested(self, name: str, tags: Mapping[str, Any], run_id: str | None = None) -> AbstractContextManager[Run]:
        """Open a run nested under this one; with ``run_id``, reopen that (interrupted) run."""

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        """Parameters (nested dicts flattened to ``a.b``), each name prefixed with ``prefix``."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Metric values (None and NaN skipped), at ``step`` (the epoch) when given."""

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags, as text."""

    def log_text(self, text: str, path: str) -> None:
        """A text artifact at ``path`` in the run."""

    def log_dict(self, obj: Any, path: str) -> None:
        """A JSON artifact at ``path``."""

    def log_figure(self, figure: Any, path: str) -> None:
        """A matplotlib figure as an image artifact at ``path``."""

    def log_frame(self, frame: pd.DataFrame, path: str) -> None:
        """A table artifact: CSV, Parquet or markdown after ``path``'s suffix."""

    def log_model(self, model: Recommender, catalog: Catalog, name: str = "model") -> str | None:
        """A fitted model with its catalogue, loadable for top-N lists; returns its URI."""

    def log_file(self, path: Path, directory: str) -> None:
        """A copy of the local file ``path`` as an artifact under ``directory`` of this run
        (of this run even while a nested run is open), replacing an earlier copy."""


class Tracker(Protocol):
    """A store of runs, grouped into named experiments (``"<data set>/<protocol>"``)."""

    def run(
        self, experiment: str, name: str, tags: Mapping[str, Any], run_id: str | None = None
    ) -> AbstractContextManager[Run]:
        """Open a top-level run (with ``run_id``, reopen that interrupted run); it ends
        finished, or failed when its block raises."""

    def register_model(self, run_id: str, name: str) -> str:
        """Register the model logged in run ``run_id`` as a new version of ``name``, alias
        :data:`CHAMPION`; returns the version."""

    def find_tuning_run(
        self, model: str, dataset: str, protocol: str, fingerprint: str | None = None
    ) -> TunedParams | None:
        """The most recent finished search for ``model`` on ``dataset`` / ``protocol``,
        preferring the split ``fingerprint``; None when there is none."""

    def unlogged(self) -> list[str]:
        """``"<run name>: <reason>"`` for each run the store failed to record; training
        goes on when the store fails, and the command line reports these at the end."""


class NullRun:
    """A run that records nothing: every call is accepted and dropped."""

    run_id: str | None = None

    @contextmanager
    def nested(self, name: str, tags: Mapping[str, Any], run_id: str | None = None) -> Iterator[NullRun]:
        yield NullRun()

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

    def log_model(self, model: Recommender, catalog: Catalog, name: str = "model") -> str | None:
        return None

    def log_file(self, path: Path, directory: str) -> None:
        pass


class NullTracker:
    """A tracker that stores nothing (``--no-tracking``); the test double of :class:`Tracker`.

    It finds no tuning runs and cannot register a model (there is no run to
    register).
    """

    @contextmanager
    def run(
        self, experiment: str, name: str, tags: Mapping[str, Any], run_id: str | None = None
    ) -> Iterator[NullRun]:
        yield NullRun()

    def register_model(self, run_id: str, name: str) -> str:
        raise UsageError("registering a model needs tracking; drop --no-tracking or --register")

    def find_tuning_run(
        self, model: str, dataset: str, protocol: str, fingerprint: str | None = None
    ) -> TunedParams | None:
        return None

    def unlogged(self) -> list[str]:
        return []


__all__ = [
    "BENCHMARK_KIND",
    "BEST_PREFIX",
    "CHAMPION",
    "MODEL_KIND",
    "TRIAL_KIND",
    "TUNE_KIND",
    "NullRun",
    "NullTracker",
    "Run",
    "Tracker",
    "TunedParams",
]
