"""What a benchmark and a search return.

A benchmark: each model's :class:`ModelResult`, and all of them on one split
(:class:`BenchmarkResult`). A search: each trial's :class:`TrialOutcome`, and
the best parameters with their test result (:class:`TuningResult`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recae.evaluation.beyond import AGGREGATE
from recae.evaluation.compare import format_comparison
from recae.evaluation.metrics import EvaluationResult
from recae.experiment.config import PRIMARY_METRIC, SELECTION_K
from recae.models import Recommender


@dataclass
class ModelResult:
    """One model's outcome in a benchmark.

    ``params`` are the fitted model's parameters; ``test`` its evaluation on
    the test users; ``val`` the validation metric means of the selected
    model; ``best_epoch`` the selected epoch of iterative models; ``run_id``
    the model's run in the tracker (None when nothing is stored);
    ``fit_seconds`` and ``fit_peak_rss`` the time and the process's peak
    resident bytes of the fit (selection and refit; :class:`~recae.models.memory.PeakRSS`,
    None where it cannot be measured).
    """

    name: str
    params: dict[str, Any]
    test: EvaluationResult
    val: dict[str, float]
    fit_seconds: float
    best_epoch: int | None = None
    run_id: str | None = None
    model: Recommender | None = field(default=None, repr=False)
    fit_peak_rss: int | None = None

    def test_means(self) -> dict[str, float]:
        """Mean of each test metric over the test users with targets."""
        return self.test.means()

    def to_json(self) -> dict[str, Any]:
        """Plain data: test means and 95% intervals, validation means, fit time, parameters."""
        return {
            "test": {k: json_number(v) for k, v in self.test_means().items()},
            "test_ci": {k: [json_number(s.ci_low), json_number(s.ci_high)] for k, s in self.test.summary().items()},
            "val": {k: json_number(v) for k, v in self.val.items()},
            "fit_seconds": self.fit_seconds,
            "fit_peak_rss_bytes": self.fit_peak_rss,
            "best_epoch": self.best_epoch,
            "params": self.params,
            "n_test_users": self.test.n_users - self.test.n_skipped,
            "mlflow_run_id": self.run_id,
        }


@dataclass
class BenchmarkResult:
    """All models' results on one split."""

    dataset: str
    protocol: str
    fingerprint: str
    split_info: dict[str, Any]
    models: dict[str, ModelResult]
    parent_run_id: str | None = None
    experiment: str = ""
    comparison: pd.DataFrame | None = field(default=None, repr=False)

    def comparison_markdown(self) -> str:
        """The comparison with the best model, one markdown table per metric."""
        if self.comparison is None:
            return ""
        parts = []
        for metric in dict.fromkeys(self.comparison["metric"]):
            parts.append(f"### {metric}\n\n" + format_comparison(self.comparison, metric).to_markdown(index=False))
        parts.append(
            "\nMean [95% bootstrap CI]; Δ = model − best, paired over test users; p-values Holm-corrected "
            "across the comparisons on each metric; * = both tests significant at 0.05. A metric some "
            "models cannot give (intra-list diversity without item vectors) compares the models that give it."
        )
        overall = catalogue_table(self.models.values())
        if not overall.empty:
            parts.append(
                "### over all lists\n\n" + overall.to_markdown(index=False)
                + "\n\nOne value per model over all test users' lists (no per-user values: no interval, no test)."
            )
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """``{"dataset", "protocol", "split_fingerprint", "split", "models": {name: {"test": {...}, ...}}}``."""
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "split_fingerprint": self.fingerprint,
            "split": self.split_info,
            "models": {name: r.to_json() for name, r in self.models.items()},
        }

    def table(self, ks: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per model: test Recall@K and NDCG@K with 95% intervals, fit seconds."""
        return results_table(self.models.values(), ks)


def results_table(results: Iterable[ModelResult], ks: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per result, best :data:`PRIMARY_METRIC` first: ``recall@K``, ``ndcg@K``
    as ``mean ± half-width of the 95% interval``, the beyond-accuracy metrics over all
    lists that were evaluated (``gini@K``, ``aggregate_diversity@K``, at the first K,
    plain values: they have no per-user values, hence no interval), ``fit s`` and
    ``peak GB`` (the process's peak resident memory during the fit).

    ``ks`` defaults to 20 and 100, or, when 20 was not evaluated, to the
    smallest cut-off evaluated and 100.
    """
    rows = []
    for r in results:
        summary = r.test.summary()
        row: dict[str, Any] = {"model": r.name}
        table_ks = ks or _table_ks(summary)
        for k in table_ks:
            for metric in ("recall", "ndcg"):
                s = summary[f"{metric}_at_{k}"]
                row[f"{metric}@{k}"] = f"{s.mean:.4f} ± {(s.ci_high - s.ci_low) / 2:.4f}"
        row.update({key.replace("_at_", "@"): _plain(v) for key, v in _catalogue_values(r, table_ks[0]).items()})
        row["fit s"] = round(r.fit_seconds, 1)
        row["peak GB"] = round(r.fit_peak_rss / 1e9, 2) if r.fit_peak_rss is not None else float("nan")
        row["_sort"] = summary[PRIMARY_METRIC].mean
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("_sort", ascending=False).drop(columns="_sort").reset_index(drop=True)


def catalogue_table(results: Iterable[ModelResult]) -> pd.DataFrame:
    """One row per result: the beyond-accuracy metrics over all lists that were evaluated
    (:data:`~recae.evaluation.beyond.AGGREGATE`, e.g. ``gini_at_20``), at the cut-off of
    the comparison (20, else the smallest evaluated); no columns but ``model`` when none was."""
    rows = [{"model": r.name, **_catalogue_values(r, _table_ks(r.test.per_user)[0])} for r in results]
    frame = pd.DataFrame(rows)
    return frame if frame.shape[1] > 1 else pd.DataFrame()


def _catalogue_values(r: ModelResult, k: int) -> dict[str, float]:
    """``{f"{name}_at_{k}": value}`` of the :data:`~recae.evaluation.beyond.AGGREGATE` metrics ``r`` has."""
    keys = (f"{name}_at_{k}" for name in AGGREGATE)
    return {key: r.test.coverage[key] for key in keys if key in r.test.coverage}


def _plain(value: float) -> float | int:
    """A count as an int (``aggregate_diversity``), other values to 4 decimals, as the intervals."""
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _table_ks(summary: Mapping[str, Any]) -> tuple[int, ...]:
    """The default cut-offs of :func:`results_table`, among those in ``summary``."""
    evaluated = sorted(int(key.rpartition("_")[2]) for key in summary if key.startswith("ndcg_at_"))
    smallest = 20 if 20 in evaluated else evaluated[0]
    return tuple(sorted({smallest, SELECTION_K}))


def json_number(x: float | None) -> float | None:
    """``x`` as a JSON number; None for a missing or non-finite value (JSON has no NaN)."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


@dataclass
class TrialOutcome:
    """One trial of a search.

    Attributes
    ----------
    number : int
        Optuna's trial number (0-based).
    state : str
        ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
    params : dict
        The model parameters the trial used (drawn and fixed ones).
    value : float or None
        Validation NDCG@100 (None unless complete).
    val : dict[str, float]
        All validation metrics (empty unless complete).
    best_epoch : int or None
        Iterative models: the epoch selected on validation (or the last one
        reported, when pruned).
    fit_seconds : float
    run_id : str or None
        The trial's nested run.
    error : str or None
        Why a failed trial failed.
    """

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    val: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    fit_seconds: float = 0.0
    run_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every attribute as plain data."""
        return dataclasses.asdict(self)


@dataclass
class TuningResult:
    """What a search found and how the best parameters did on test.

    Attributes
    ----------
    model, dataset, protocol, fingerprint : str
        What was tuned, on which data set (its label), protocol and split.
    best_params : dict
        The best trial's model parameters (drawn and fixed ones; defaults left out).
    best_trial : TrialOutcome
    final : ModelResult
        The best parameters fitted as in a benchmark and evaluated once on test.
    trials : list of TrialOutcome
        Every trial this process ran, in order.
    parent_run_id, experiment : str or None, str
        The search's run and experiment (None when nothing is stored).
    split_info : dict
        The split's description.
    study_trials : int or None
        The trials of the whole study when it was shared with other processes
        (``--storage``, ``--workers``); None when this process ran them all.
    """

    model: str
    dataset: str
    protocol: str
    fingerprint: str
    best_params: dict[str, Any]
    best_trial: TrialOutcome
    final: ModelResult
    trials: list[TrialOutcome]
    parent_run_id: str | None
    experiment: str
    split_info: dict[str, Any]
    study_trials: int | None = None

    def counts(self) -> dict[str, int]:
        """Trials per state: ``{"COMPLETE": n, "PRUNED": n, "FAIL": n}``."""
        return trial_counts(self.trials)

    def to_json(self) -> dict[str, Any]:
        """Plain data: the best parameters, validation and test metrics, every trial."""
        final = self.final.to_json()
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "split_fingerprint": self.fingerprint,
            "split": self.split_info,
            "model": self.model,
            "best_params": self.best_params,
            "best_trial": self.best_trial.number,
            "best_epoch": self.best_trial.best_epoch,
            "val": {k: json_number(v) for k, v in self.best_trial.val.items()},
            "test": final["test"],
            "test_ci": final["test_ci"],
            "n_test_users": final["n_test_users"],
            "fit_seconds": self.final.fit_seconds,
            "n_trials": self.counts(),
            "trials": [t.to_json() for t in self.trials],
            "mlflow_run_id": self.parent_run_id,
            "experiment": self.experiment,
        }

    def table(self) -> pd.DataFrame:
        """Test Recall@K / NDCG@K (K = 20, 100) of the best parameters with 95% intervals."""
        return results_table([self.final])


def trial_counts(trials: Iterable[TrialOutcome]) -> dict[str, int]:
    """Trials per state: ``{"COMPLETE": n, "PRUNED": n, "FAIL": n}``."""
    out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    for t in trials:
        out[t.state] = out.get(t.state, 0) + 1
    return out


__all__ = [
    "BenchmarkResult",
    "ModelResult",
    "TrialOutcome",
    "TuningResult",
    "json_number",
    "results_table",
    "trial_counts",
]
