"""Hyperparameter search with Optuna, selected on validation NDCG@100, tracked in MLflow.

:func:`tune` is what ``recae tune`` runs. For one model on one split:

1. each trial draws parameters from the model's own ``search_space(trial)``
   (declared next to its code), with the fixed parameters (``--param``) put in
   place of their draws; it fits on ``split.train`` and is scored on the
   validation users, ``split.val_in`` → ``split.val_out`` — under strong
   generalization the validation users, under the given split the holdout
   carved from the train rows. The test targets are never seen by a trial.
   Iterative models (the autoencoders) select their epoch on the same
   validation NDCG@100 inside each trial and report it per epoch, so that
   the pruner can stop unpromising trials early;
2. the best trial's parameters go through
   :func:`recae.experiment.benchmark.fit_and_evaluate`, exactly as in a benchmark
   (under the given split refit on ``split.refit_train``, iterative models for
   the best trial's selected number of epochs), and are evaluated once on test.

In MLflow (experiment ``"<data set>/<protocol>"``, as for benchmarks) one parent
run per search, tagged ``recae.kind=tune``, ``model``, ``dataset``, ``protocol``
and ``split_fingerprint``, holds the best parameters (as parameters
``best.<name>`` and as ``best_params.json``), the validation (``val_selected/*``)
and test (``test/*``) metrics of the refit model, ``trials.csv`` and the model;
one nested run per trial (``recae.kind=tune-trial``) holds its parameters, its
per-epoch curves (``val/*`` at step = epoch), its validation metrics
(``val_selected/*``), ``fit_seconds``, ``trial_number``, ``best_epoch`` and its
outcome as the tag ``trial_state`` (``COMPLETE``, ``PRUNED``, ``FAIL``; a failed
trial's run ends FAILED, with its error as the tag ``error``).

:func:`best_params` reads the best parameters back for ``recae benchmark
--tuned`` (:func:`with_tuned_params`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from recae.errors import MemoryBudgetError, ModelFitError, UsageError
from recae.evaluation.metrics import evaluate
from recae.evaluation.protocols import Split
from recae.experiment.benchmark import (
    PRIMARY_METRIC,
    BenchmarkConfig,
    BenchmarkResult,
    ModelResult,
    dataset_label,
    fit_and_evaluate,
    prepare_split,
)
from recae.models import get_model_class, make_model

#: Parent runs of searches carry ``recae.kind`` = this; their trials ``tune-trial``.
TUNE_KIND = "tune"
TRIAL_KIND = "tune-trial"
#: Errors that fail one trial (recorded, the search goes on); any other error ends the search.
TRIAL_ERRORS: tuple[type[Exception], ...] = (ModelFitError, MemoryBudgetError)
#: Prefix of the best parameters among the parent run's MLflow parameters.
BEST_PREFIX = "best."
#: Pruning of iterative models: no pruning in the first trials, nor in a trial's first epochs.
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_EPOCHS = 10


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
        The trial's nested MLflow run.
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
        return dataclasses.asdict(self)


@dataclass
class TuningResult:
    """What :func:`tune` found and how the best parameters did on test.

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
        Every trial, in order.
    parent_run_id, experiment : str or None, str
        The MLflow parent run and experiment (None when not tracked).
    split_info : dict
        The split's description.
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

    def counts(self) -> dict[str, int]:
        """Trials per state: ``{"COMPLETE": n, "PRUNED": n, "FAIL": n}``."""
        out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data: the best parameters, validation and test metrics, every trial."""
        bench = self._benchmark().to_json()["models"][self.model]
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "split_fingerprint": self.fingerprint,
            "split": self.split_info,
            "model": self.model,
            "best_params": self.best_params,
            "best_trial": self.best_trial.number,
            "best_epoch": self.best_trial.best_epoch,
            "val": {k: _finite(v) for k, v in self.best_trial.val.items()},
            "test": bench["test"],
            "test_ci": bench["test_ci"],
            "n_test_users": bench["n_test_users"],
            "fit_seconds": self.final.fit_seconds,
            "n_trials": self.counts(),
            "trials": [t.to_json() for t in self.trials],
            "mlflow_run_id": self.parent_run_id,
            "experiment": self.experiment,
        }

    def table(self) -> pd.DataFrame:
        """Test Recall@K / NDCG@K (K = 20, 100) of the best parameters with 95% intervals."""
        return self._benchmark().table()

    def _benchmark(self) -> BenchmarkResult:
        return BenchmarkResult(
            self.dataset, self.protocol, self.fingerprint, self.split_info, {self.model: self.final},
            parent_run_id=self.parent_run_id, experiment=self.experiment,
        )


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


# ------------------------------------------------------------ search space


class _FixedTrial:
    """An Optuna trial whose ``suggest_*`` return the fixed value for a fixed name.

    A fixed parameter is then not drawn at all, so the sampler does not spend
    a dimension on it. (Parameters whose Optuna name differs from the model's,
    such as the autoencoders' ``hidden_dim`` → ``hidden_dims``, are drawn and
    then overridden.)
    """

    def __init__(self, trial: Any, fixed: Mapping[str, Any]):
        self._trial = trial
        self._fixed = fixed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._fixed[name] if name in self._fixed else self._trial.suggest_float(name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._fixed[name] if name in self._fixed else self._trial.suggest_int(name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self._fixed:
            return self._fixed[name]
        return self._trial.suggest_categorical(name, *args, **kwargs)


def draw_params(model: str, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model parameters for one trial: ``search_space(trial)`` with ``fixed`` put in place.

    Parameters
    ----------
    model : str
        A registry name.
    trial : optuna.trial.Trial
    fixed : mapping, optional
        Parameters that are not searched.

    Returns
    -------
    dict
        Keyword arguments for :func:`recae.models.make_model`.
    """
    fixed = dict(fixed or {})
    return {**get_model_class(model).search_space(_FixedTrial(trial, fixed)), **fixed}


def check_search_space(model: str, fixed: Mapping[str, Any] | None = None) -> None:
    """Raise ``UsageError`` when ``model`` has nothing to tune.

    That is: the name is unknown, a fixed parameter is one the model does not
    take, its ``search_space`` raises ``UsageError`` or returns nothing, or
    every parameter it draws is fixed. One throwaway trial is drawn to find out.
    """
    import optuna

    cls = get_model_class(model)
    fixed = dict(fixed or {})
    make_model(model, **fixed)  # an unknown parameter fails here, naming it
    with _quiet_optuna():
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        space = cls.search_space(_FixedTrial(trial, fixed))
    if not space:
        raise UsageError(f"model {model!r} has an empty search space; there is nothing to tune")
    make_model(model, **space)  # the space names only parameters the model takes
    if set(space) <= set(fixed):
        raise UsageError(
            f"every parameter model {model!r} searches is fixed by --param ({', '.join(sorted(space))}); "
            "there is nothing to tune"
        )


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's own log (a line per trial, a traceback per caught error) off for a while."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


# -------------------------------------------------------------- tracking


def _epoch_logger(run: Any) -> Callable[[dict[str, float]], None]:
    """Per-epoch records → metrics at step = epoch, named as in benchmark runs."""

    def log(record: dict[str, float]) -> None:
        run.log_metrics(
            {(k if k.startswith("val/") or k == "epoch_seconds" else f"train/{k}"): v
             for k, v in record.items() if k != "epoch"},
            step=int(record["epoch"]),
        )

    return log


# ------------------------------------------------------------------ search


def _fit_on_validation(
    name: str,
    params: Mapping[str, Any],
    split: Split,
    ks: tuple[int, ...],
    callback: Callable[[dict[str, float]], None],
) -> tuple[dict[str, float], int | None, float]:
    """Fit on ``split.train``, evaluate on ``split.val_in`` → ``split.val_out`` only.

    Returns the validation metric means, the selected epoch (iterative models)
    and the fit seconds.
    """
    model = make_model(name, **params)
    start = time.perf_counter()
    model.fit(split.train, validation=(split.val_in, split.val_out), callback=callback)
    fit_seconds = time.perf_counter() - start
    val = evaluate(model, split.val_in, split.val_out, ks=ks).means()
    best_epoch = getattr(model, "best_epoch_", None)
    return val, (int(best_epoch) if best_epoch is not None else None), fit_seconds


def tune(
    config: BenchmarkConfig,
    model: str,
    n_trials: int = 30,
    timeout: float | None = None,
    *,
    sampler_seed: int = 0,
    prune: bool = True,
    echo: Callable[[str], None] = print,
) -> TuningResult:
    """Search ``model``'s hyperparameters on validation NDCG@100, then test the best once.

    Parameters
    ----------
    config : BenchmarkConfig
        The data set, preprocessing, protocol and split seed (``dataset``,
        ``min_rating``, ``min_user_items``, ``min_item_users``,
        ``heldout_users``, ``test_prop``, ``val_prop``, ``seed``), the cut-offs
        ``ks``, ``refit``, ``data_dir``, ``tracking_uri``, ``track`` and
        ``progress``, as for a benchmark. ``config.model_params[model]`` are
        fixed parameters, not searched; ``config.models`` is ignored.
    model : str
        A registry name whose class declares a non-empty ``search_space``.
    n_trials : int
        Trials to run (≥ 1); fewer when ``timeout`` comes first.
    timeout : float, optional
        Seconds after which no new trial is started (the running one finishes).
    sampler_seed : int
        Seeds Optuna's ``TPESampler``: the same seed on the same split draws
        the same parameters in the same order.
    prune : bool
        Iterative models: stop a trial whose validation NDCG@100 at an epoch is
        below the median of earlier trials at that epoch (Optuna's
        ``MedianPruner``, after 5 trials and 10 epochs).
    echo : callable
        Receives the one-line description of the split.

    Returns
    -------
    TuningResult

    Raises
    ------
    UsageError
        An unknown model, a parameter the model does not take, a model with
        nothing to tune, ``n_trials < 1`` or ``timeout <= 0``.
    ModelFitError
        When no trial completed.
    """
    import optuna

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise UsageError(f"the number of trials must be an integer ≥ 1, got {n_trials!r}")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
    others = sorted(set(config.model_params) - {model})
    if others:
        raise UsageError(f"--param names model(s) {', '.join(others)}, but {model!r} is being tuned")
    fixed = dict(config.model_params.get(model, {}))
    check_search_space(model, fixed)  # fails before any data is read
    cls = get_model_class(model)
    ks = tuple(config.ks)

    split = prepare_split(config)
    label = dataset_label(config.dataset)
    fingerprint = split.fingerprint()
    info = split.describe()
    echo(
        f"{label}: {info['protocol']}, {info['n_items']} items, {info['n_train_users']} train / "
        f"{info['n_val_users']} validation / {info['n_test_users']} test users, split {fingerprint}"
    )
    experiment = f"{label}/{split.protocol}"
    tags = {"dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint, "model": model}
    if config.track:
        from recae.tracking.tracker import Tracker

        tracker: Any = Tracker(experiment, config.tracking_uri)
    else:
        from recae.tracking.tracker import NullTracker

        tracker = NullTracker()

    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if prune and cls.uses_validation:
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
        )
    trials: list[TrialOutcome] = []
    start = time.perf_counter()

    with tracker.run(f"tune {model} on {label}", tags={**tags, "recae.kind": TUNE_KIND}) as parent:
        parent.log_params(info, prefix="split.")
        parent.log_params(
            {
                "n_trials": n_trials,
                "timeout": timeout,
                "sampler": "TPESampler",
                "sampler_seed": sampler_seed,
                "pruner": type(pruner).__name__,
                "selection_metric": f"val/{PRIMARY_METRIC}",
                "seed": config.seed,
                "ks": list(ks),
            },
            prefix="tune.",
        )
        if fixed:
            parent.log_params(fixed, prefix="fixed.")

        def objective(trial: optuna.trial.Trial) -> float:
            params = draw_params(model, trial, fixed)
            outcome = TrialOutcome(number=trial.number, state="FAIL", params=params)
            trials.append(outcome)
            trial.set_user_attr("params", params)
            run_tags = {**tags, "recae.kind": TRIAL_KIND, "trial_number": trial.number}
            pruned: optuna.TrialPruned | None = None
            with tracker.run(f"{model} trial {trial.number}", tags=run_tags, nested=True) as run:
                outcome.run_id = run.run_id
                run.log_params(make_model(model, **params).get_params())
                run.log_metrics({"trial_number": trial.number})
                log_epoch = _epoch_logger(run)
                fit_start = time.perf_counter()

                def on_epoch(record: dict[str, float]) -> None:
                    log_epoch(record)
                    score = record.get(f"val/{PRIMARY_METRIC}")
                    if score is None or not math.isfinite(score):
                        return
                    outcome.best_epoch = int(record["epoch"])
                    trial.report(float(score), step=int(record["epoch"]))
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {int(record['epoch'])}")

                try:
                    val, best_epoch, fit_seconds = _fit_on_validation(model, params, split, ks, on_epoch)
                    value = val[PRIMARY_METRIC]
                    if not math.isfinite(value):
                        raise ModelFitError(f"validation {PRIMARY_METRIC} is {value}")
                except optuna.TrialPruned as e:
                    # Pruning is an outcome, not an error: the run ends FINISHED, tagged PRUNED.
                    outcome.state, outcome.fit_seconds = "PRUNED", time.perf_counter() - fit_start
                    run.set_tags({"trial_state": "PRUNED"})
                    run.log_metrics({"fit_seconds": outcome.fit_seconds, "pruned_at_epoch": outcome.best_epoch})
                    pruned = e
                except TRIAL_ERRORS as e:
                    outcome.error = str(e)
                    outcome.fit_seconds = time.perf_counter() - fit_start
                    run.set_tags({"trial_state": "FAIL", "error": str(e)[:5000]})
                    warnings.warn(f"{model} trial {trial.number} failed: {e}", stacklevel=2)
                    raise  # the run ends FAILED; Optuna records the trial as failed and goes on
                else:
                    outcome.state, outcome.value, outcome.val = "COMPLETE", value, val
                    outcome.best_epoch, outcome.fit_seconds = best_epoch, fit_seconds
                    trial.set_user_attr("best_epoch", best_epoch)
                    run.set_tags({"trial_state": "COMPLETE"})
                    # "val/" is the per-epoch curve, as in benchmark runs; this is the selected model
                    run.log_metrics({f"val_selected/{k}": v for k, v in val.items()})
                    run.log_metrics({"fit_seconds": fit_seconds, "best_epoch": best_epoch})
            if pruned is not None:
                raise pruned
            return value

        bar = tqdm(total=n_trials, desc=f"tune {model}", unit="trial", disable=not config.progress)

        def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            bar.update(1)
            best = [t.value for t in trials if t.state == "COMPLETE"]
            if best:
                bar.set_postfix({f"best val {PRIMARY_METRIC}": f"{max(best):.4f}"})

        with bar, _quiet_optuna():
            study = optuna.create_study(
                direction="maximize", sampler=optuna.samplers.TPESampler(seed=sampler_seed), pruner=pruner
            )
            study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=TRIAL_ERRORS, callbacks=[after_trial])

        frame = pd.DataFrame(
            [{"number": t.number, "state": t.state, "value": t.value, "best_epoch": t.best_epoch,
              "fit_seconds": t.fit_seconds, "params": json.dumps(t.params), "run_id": t.run_id,
              "error": t.error} for t in trials]
        )
        parent.log_frame(frame, "trials.csv")
        counts = {s: sum(t.state == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
        parent.log_metrics({f"n_trials_{s.lower()}": n for s, n in counts.items()})
        complete = [t for t in trials if t.state == "COMPLETE"]
        if not complete:
            raise ModelFitError(
                f"{model}: none of the {len(trials)} trials completed "
                f"({counts['PRUNED']} pruned, {counts['FAIL']} failed); see the trial runs in MLflow"
            )
        # Optuna's best trial (the first of the maximal ones), read through our own records.
        best = next(t for t in complete if t.number == study.best_trial.number)
        best_params = dict(best.params)
        parent.log_params(best_params, prefix=BEST_PREFIX)
        parent.log_metrics({"best_trial": best.number})

        # Refit and test exactly as a benchmark does; an iterative model needs no
        # more epochs than the best trial selected (its fit is seeded, so it
        # reaches that epoch's weights again).
        final_params = dict(best_params)
        if best.best_epoch is not None and "epochs" in cls.param_names():
            final_params["epochs"] = best.best_epoch
        final = fit_and_evaluate(
            model, final_params, split, ks, config.refit, on_epoch=_epoch_logger(parent), progress=config.progress
        )
        final.run_id = parent.run_id
        result = TuningResult(
            model=model,
            dataset=label,
            protocol=split.protocol,
            fingerprint=fingerprint,
            best_params=best_params,
            best_trial=best,
            final=final,
            trials=trials,
            parent_run_id=parent.run_id,
            experiment=experiment,
            split_info=info,
        )
        parent.log_metrics({"tune_seconds": time.perf_counter() - start})
        if config.track:
            from recae.experiment import plots
            from recae.experiment.benchmark import _log_model_run

            _log_model_run(parent, final, split, config, plots)
        parent.log_dict(
            {"model": model, "dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint,
             "params": best_params, "best_trial": best.number, "best_epoch": best.best_epoch,
             "val": best.val, "test": final.test_means()},
            "best_params.json",
        )
    return result


def write_json(result: TuningResult, path: str | Path) -> None:
    """Write ``result.to_json()`` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2, default=str))
    tmp.replace(path)


# ------------------------------------------------------------------ lookup


@dataclass
class TunedParams:
    """The best parameters of one finished search, as read back from MLflow."""

    model: str
    params: dict[str, Any]
    run_id: str
    fingerprint: str
    same_split: bool


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
        The data set's label (:func:`recae.experiment.benchmark.dataset_label`), as tagged.
    protocol : str
        ``"strong-generalization"`` or ``"given"``.
    fingerprint : str, optional
        The split to prefer.
    tracking_uri : str, optional
        The MLflow store (see :func:`recae.tracking.tracker.tracking_uri`).

    Returns
    -------
    TunedParams or None
        None when no finished search with best parameters exists.
    """
    from recae.tracking.tracker import Tracker
    from recae.tracking.tracker import tracking_uri as resolve_uri

    uri = resolve_uri(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # no store, no searches: do not create one just to look
    tracker = Tracker(f"{dataset}/{protocol}", uri)
    runs = tracker.find_runs(
        "attributes.status = 'FINISHED' AND tags.`recae.kind` = '{}' AND tags.model = '{}' "
        "AND tags.dataset = '{}' AND tags.protocol = '{}'".format(
            TUNE_KIND, *(_quote(v) for v in (model, dataset, protocol))
        )
    )
    best_cols = [c for c in runs.columns if c.startswith(f"params.{BEST_PREFIX}")]
    if runs.empty or not best_cols:
        return None
    runs = runs[runs[best_cols].notna().any(axis=1)].sort_values("start_time", ascending=False)
    if runs.empty:
        return None
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


def _quote(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def best_params(
    model: str,
    dataset: str,
    protocol: str,
    fingerprint: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any] | None:
    """The best parameters ``recae tune`` found for ``model`` on ``dataset`` / ``protocol``.

    Reads the most recent finished search (preferring the split
    ``fingerprint``; warns when the run found was on another split). Values
    come back with their types (ints, floats, lists such as ``hidden_dims``).

    Returns
    -------
    dict or None
        None when no search was found.
    """
    found = find_tuning_run(model, dataset, protocol, fingerprint, tracking_uri)
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
    protocol: str,
    fingerprint: str,
    echo: Callable[[str], None] = print,
) -> BenchmarkConfig:
    """``config`` with each model's parameters replaced by its tuned ones.

    For each of ``config.models`` the best parameters of the most recent
    finished search on this data set and protocol (see :func:`best_params`)
    are used; parameters in ``config.model_params`` still win. A model never
    tuned keeps its defaults, with a warning; a tuned parameter the model no
    longer takes is dropped, with a warning.
    """
    label = dataset_label(config.dataset)
    merged: dict[str, dict[str, Any]] = {}
    for name in config.models:
        explicit = dict(config.model_params.get(name, {}))
        cls = get_model_class(name)
        if not cls.param_names():
            continue  # nothing to tune (popularity), nothing to warn about
        found = best_params(name, label, protocol, fingerprint, config.tracking_uri)
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


__all__ = [
    "TrialOutcome",
    "TunedParams",
    "TuningResult",
    "best_params",
    "check_search_space",
    "draw_params",
    "find_tuning_run",
    "parse_param",
    "tune",
    "with_tuned_params",
    "write_json",
]
