"""Hyperparameter search with Optuna, selected on validation NDCG@100, logged to a tracker.

:func:`tune` is what ``recae tune`` runs. For one model on one split:

1. each trial (:class:`Objective`) draws parameters from the model's own
   ``search_space(trial)`` (declared next to its code), with the fixed
   parameters (``--param``) put in place of their draws; it fits on
   ``split.train`` and is scored on the validation users, ``split.val_in`` →
   ``split.val_out`` — under strong generalization the validation users,
   under the given split the holdout carved from the train rows. The test
   targets are never seen by a trial. Iterative models (the autoencoders)
   select their epoch on the same validation NDCG@100 inside each trial and
   report it per epoch, so that the pruner can stop unpromising trials early;
2. the best trial's parameters go through
   :func:`recae.experiment.runs.fit_and_evaluate`, exactly as in a benchmark
   (under the given split refit on ``split.refit_train``, iterative models for
   the best trial's selected number of epochs), and are evaluated once on test.

In the tracker (experiment ``"<data set>/<protocol>"``, as for benchmarks) one
run per search, tagged ``recae.kind=tune``, ``model``, ``dataset``, ``protocol``
and ``split_fingerprint``, holds the best parameters (as parameters
``best.<name>`` and as ``best_params.json``), the validation (``val_selected/*``)
and test (``test/*``) metrics of the refit model, ``trials.csv`` and the model;
one nested run per trial (``recae.kind=tune-trial``) holds its parameters, its
per-epoch curves (``val/*`` at step = epoch), its validation metrics
(``val_selected/*``), ``fit_seconds``, ``trial_number``, ``best_epoch`` and its
outcome as the tag ``trial_state`` (``COMPLETE``, ``PRUNED``, ``FAIL``; a failed
trial's run ends FAILED, with its error as the tag ``error``).

``recae benchmark --tuned`` reads the best parameters back through the tracker
(:mod:`recae.experiment.tuned`), without this module.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import pandas as pd

from recae.errors import ModelFitError, UsageError
from recae.evaluation.inputs import check_seed
from recae.evaluation.metrics import evaluate
from recae.evaluation.protocols import Split
from recae.experiment import runs
from recae.experiment.config import PRIMARY_METRIC, BenchmarkConfig
from recae.experiment.results import ModelResult, TrialOutcome, TuningResult, trial_counts
from recae.experiment.search_space import FixedTrial, draw_params, start_point
from recae.experiment.tracker import BEST_PREFIX, TRIAL_KIND, TUNE_KIND, Run, Tracker
from recae.experiment.tuning.study import (
    TRIAL_ERRORS,
    open_study,
    optimize,
    quiet_optuna,
    wait_for_others,
)
from recae.models import get_model_class, make_model

#: Pruning of iterative models: no pruning in the first trials, nor in a trial's first epochs.
PRUNER_STARTUP_TRIALS = 5
PRUNER_WARMUP_EPOCHS = 10


# ------------------------------------------------------------ search space


def check_search_space(model: str, fixed: Mapping[str, Any] | None = None) -> None:
    """Raise ``UsageError`` when ``model`` has nothing to tune.

    That is: the name is unknown, a fixed parameter is one the model does not
    take, its ``search_space`` raises ``UsageError`` or returns nothing, or
    every parameter it draws is fixed. One throwaway trial is drawn to find out.
    """
    cls = get_model_class(model)
    fixed = dict(fixed or {})
    make_model(model, **fixed)  # an unknown parameter fails here, naming it
    with quiet_optuna():
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        space = cls.search_space(FixedTrial(trial, fixed))
    if not space:
        raise UsageError(f"model {model!r} has an empty search space; there is nothing to tune")
    make_model(model, **space)  # the space names only parameters the model takes
    if set(space) <= set(fixed):
        raise UsageError(
            f"every parameter model {model!r} searches is fixed by --param or --config ({', '.join(sorted(space))}); "
            "there is nothing to tune"
        )


# ---------------------------------------------------------------- a trial


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


class Objective:
    """Optuna's objective: one trial's validation NDCG@100, each trial in a run nested under ``parent``.

    Every trial is appended to :attr:`trials` as a :class:`TrialOutcome` (the
    record of failed and pruned trials too). A pruned trial's run ends
    finished, tagged ``PRUNED``; a trial that fails with one of
    :data:`TRIAL_ERRORS` ends its run failed, and Optuna goes on.
    """

    def __init__(
        self, model: str, fixed: Mapping[str, Any], split: Split, ks: tuple[int, ...], parent: Run, tags: Mapping[str, Any]
    ):
        self.model = model
        self.fixed = fixed
        self.split = split
        self.ks = ks
        self.parent = parent
        self.tags = tags
        self.trials: list[TrialOutcome] = []

    def __call__(self, trial: optuna.trial.Trial) -> float:
        params = draw_params(self.model, trial, self.fixed)
        outcome = TrialOutcome(number=trial.number, state="FAIL", params=params)
        self.trials.append(outcome)
        trial.set_user_attr("params", params)
        trial.set_user_attr("worker_pid", os.getpid())  # which process of a shared search ran it
        run_tags = {**self.tags, "recae.kind": TRIAL_KIND, "trial_number": trial.number}
        pruned: optuna.TrialPruned | None = None
        with self.parent.nested(f"{self.model} trial {trial.number}", tags=run_tags) as run:
            outcome.run_id = run.run_id
            run.log_params(make_model(self.model, **params).get_params())
            run.log_metrics({"trial_number": trial.number})
            fit_start = time.perf_counter()
            try:
                value = self._fit(trial, run, outcome)
            except optuna.TrialPruned as e:
                # Pruning is an outcome, not an error: the run ends FINISHED, tagged PRUNED.
                outcome.state, outcome.fit_seconds = "PRUNED", time.perf_counter() - fit_start
                run.set_tags({"trial_state": "PRUNED"})
                run.log_metrics({"fit_seconds": outcome.fit_seconds, "pruned_at_epoch": outcome.best_epoch})
                pruned = e
            except TRIAL_ERRORS as e:
                outcome.error, outcome.fit_seconds = str(e), time.perf_counter() - fit_start
                run.set_tags({"trial_state": "FAIL", "error": str(e)[:5000]})
                warnings.warn(f"{self.model} trial {trial.number} failed: {e}", stacklevel=2)
                raise  # the run ends FAILED; Optuna records the trial as failed and goes on
        if pruned is not None:
            raise pruned
        return value

    def _fit(self, trial: optuna.trial.Trial, run: Run, outcome: TrialOutcome) -> float:
        """Fit the trial's parameters, record the outcome in ``run``; the validation value."""
        log_epoch = runs.epoch_logger(run)

        def on_epoch(record: dict[str, float]) -> None:
            log_epoch(record)
            score = record.get(f"val/{PRIMARY_METRIC}")
            if score is None or not math.isfinite(score):
                return
            outcome.best_epoch = int(record["epoch"])
            trial.report(float(score), step=int(record["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {int(record['epoch'])}")

        val, best_epoch, fit_seconds = _fit_on_validation(self.model, outcome.params, self.split, self.ks, on_epoch)
        value = val[PRIMARY_METRIC]
        if not math.isfinite(value):
            raise ModelFitError(f"validation {PRIMARY_METRIC} is {value}")
        outcome.state, outcome.value, outcome.val = "COMPLETE", value, val
        outcome.best_epoch, outcome.fit_seconds = best_epoch, fit_seconds
        # what another worker of a shared study needs to use this trial as its best
        trial.set_user_attr("best_epoch", best_epoch)
        trial.set_user_attr("val", {k: float(v) for k, v in val.items()})
        trial.set_user_attr("run_id", outcome.run_id)
        run.set_tags({"trial_state": "COMPLETE"})
        # "val/" is the per-epoch curve, as in benchmark runs; this is the selected model
        run.log_metrics({f"val_selected/{k}": v for k, v in val.items()})
        run.log_metrics({"fit_seconds": fit_seconds, "best_epoch": best_epoch})
        return value


# ------------------------------------------------------------------ search


def tune(
    config: BenchmarkConfig,
    model: str,
    n_trials: int = 30,
    timeout: float | None = None,
    *,
    tracker: Tracker,
    sampler_seed: int = 0,
    prune: bool = True,
    echo: Callable[[str], None] = print,
    storage: str | None = None,
    study_name: str | None = None,
    start: Mapping[str, Any] | None = None,
    split: Split | None = None,
) -> TuningResult:
    """Search ``model``'s hyperparameters on validation NDCG@100, then test the best once.

    Parameters
    ----------
    config : BenchmarkConfig
        The data set, preprocessing, protocol and split seed (``dataset``,
        ``min_rating``, ``min_user_items``, ``min_item_users``,
        ``heldout_users``, ``test_prop``, ``val_prop``, ``seed``), the cut-offs
        ``ks``, ``refit``, ``data_dir``, ``track`` and ``progress``, as for a
        benchmark. ``config.model_params[model]`` are fixed parameters, not
        searched; ``config.models`` is ignored.
    model : str
        A registry name whose class declares a non-empty ``search_space``.
    n_trials : int
        Trials to run (≥ 1); fewer when ``timeout`` comes first.
    timeout : float, optional
        Seconds after which no new trial is started (the running one finishes).
    tracker : Tracker
        Receives the search's run and one nested run per trial;
        ``NullTracker()`` stores nothing.
    sampler_seed : int
        Seeds Optuna's ``TPESampler``: the same seed on the same split draws
        the same parameters in the same order.
    prune : bool
        Iterative models: stop a trial whose validation NDCG@100 at an epoch is
        below the median of earlier trials at that epoch (Optuna's
        ``MedianPruner``, after 5 trials and 10 epochs).
    echo : callable
        Receives the one-line description of the split, and the rating
        threshold when the user chose none.
    storage, study_name : str, optional
        Share one study among several processes or machines (see
        :func:`open_study`): every worker started with the same ``storage`` and
        ``study_name`` draws its trials from, and records them in, the same
        study, until it holds ``n_trials`` trials; each worker then fits and
        tests the study's best trial.
    start : mapping, optional
        Evaluate this point first (Optuna's ``enqueue_trial``; see
        :func:`~recae.experiment.search_space.start_point`): the model's
        defaults with ``start``'s values in their place, for every parameter
        the search draws. ``{}`` starts from the defaults, so that the search
        never ends below them on validation; ``None`` (default): every trial
        is drawn.
    split : Split, optional
        ``config``'s split when the caller has prepared it already (``recae tune
        --workers`` prepares it once for every process); read and split here when
        None (default).

    Returns
    -------
    TuningResult

    Raises
    ------
    UsageError
        An unknown model, a parameter the model does not take, a model with
        nothing to tune, ``n_trials < 1``, ``timeout <= 0``, ``sampler_seed < 0``,
        or a ``start`` value the search cannot draw.
    ModelFitError
        When no trial completed.
    """
    # Long only by its docstring: the body is the search's outline, each step a function below.
    fixed = _check_search(config, model, n_trials, timeout)
    check_seed(sampler_seed, "sampler_seed")
    first = start_point(model, start, fixed) if start is not None else None
    study, seed_used = _open_and_start(storage, study_name, sampler_seed, _pruner(model, prune), first)
    split = split if split is not None else runs.prepare_split(config, echo)
    label, fingerprint, info = runs.dataset_label(config.dataset), split.fingerprint(), split.describe()
    echo(runs.describe_split(label, info, fingerprint))
    runs.check_measurable(split, label, validation=True)
    experiment = f"{label}/{split.protocol}"
    tags = {"dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint, "model": model}
    start = time.perf_counter()
    with tracker.run(experiment, f"tune {model} on {label}", tags={**tags, "recae.kind": TUNE_KIND}) as parent:
        parent.log_params(info, prefix="split.")
        parent.log_params(_settings(config, study, n_trials, timeout, seed_used, storage, study_name, first),
                          prefix="tune.")
        parent.log_params(config.config_file_params())
        if fixed:
            parent.log_params(fixed, prefix="fixed.")
        objective = Objective(model, fixed, split, config.ks, parent, tags)
        optimize(objective, model, lambda: [t.value for t in objective.trials if t.state == "COMPLETE" and t.value is not None],
                 study, n_trials, timeout, config.progress)
        if storage is not None:
            wait_for_others(study)  # every worker then reads the same best trial
        best = _best_trial(parent, objective.trials, study, model)
        final = _refit_best(parent, model, best, split, config)
        result = TuningResult(
            model=model, dataset=label, protocol=split.protocol, fingerprint=fingerprint,
            best_params=dict(best.params), best_trial=best, final=final, trials=objective.trials,
            parent_run_id=parent.run_id, experiment=experiment, split_info=info,
            study_trials=len(study.trials) if storage is not None else None,
        )
        parent.log_metrics({"tune_seconds": time.perf_counter() - start})
        if config.track:
            runs.log_model_run(parent, final, split, config)
        parent.log_dict(
            {"model": model, "dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint,
             "params": result.best_params, "best_trial": best.number, "best_epoch": best.best_epoch,
             "val": best.val, "test": final.test_means()},
            "best_params.json",
        )
    return result


def _settings(
    config: BenchmarkConfig, study: optuna.Study, n_trials: int, timeout: float | None, sampler_seed: int,
    storage: str | None, study_name: str | None, first: dict[str, Any] | None,
) -> dict[str, Any]:
    """The search's settings, as the tuning run logs them (``tune.*`` parameters)."""
    return {"n_trials": n_trials, "timeout": timeout, "sampler": "TPESampler", "sampler_seed": sampler_seed,
            "pruner": type(study.pruner).__name__, "selection_metric": f"val/{PRIMARY_METRIC}",
            "seed": config.seed, "ks": list(config.ks), "storage": storage, "study": study_name,
            "start": json.dumps(first) if first is not None else None}


def run_trials(
    config: BenchmarkConfig, model: str, n_trials: int, timeout: float | None, *, tracker: Tracker,
    sampler_seed: int, prune: bool, storage: str, study_name: str | None, split: Split | None = None,
) -> None:
    """Trials only, into the shared study ``study_name`` of ``storage``, until it holds
    ``n_trials``: what the helper processes of ``recae tune --workers`` run (the process
    that started them tracks the search and fits the best trial, :func:`tune`), on
    ``split`` when given, else on ``config``'s, read and split here."""
    fixed = _check_search(config, model, n_trials, timeout)
    study, _ = open_study(storage, study_name, sampler_seed, _pruner(model, prune))
    split = split if split is not None else runs.prepare_split(config, lambda _: None)
    label = runs.dataset_label(config.dataset)
    tags = {"dataset": label, "protocol": split.protocol, "model": model}
    with tracker.run(f"{label}/{split.protocol}", f"tune {model} (worker)", tags={**tags, "recae.kind": TUNE_KIND}) as parent:
        objective = Objective(model, fixed, split, config.ks, parent, tags)
        optimize(objective, model, lambda: [], study, n_trials, timeout, progress=False)


def _open_and_start(
    storage: str | None, study_name: str | None, sampler_seed: int, pruner: optuna.pruners.BasePruner,
    first: dict[str, Any] | None,
) -> tuple[optuna.Study, int]:
    """:func:`open_study` (an unreachable storage fails here), with ``first`` enqueued as the
    next trial when given (each worker of a shared study enqueues it: it runs once)."""
    study, seed_used = open_study(storage, study_name, sampler_seed, pruner)
    if first is not None:
        with quiet_optuna():
            study.enqueue_trial(first, skip_if_exists=True)
    return study, seed_used


def _check_search(config: BenchmarkConfig, model: str, n_trials: Any, timeout: float | None) -> dict[str, Any]:
    """Check the search's settings before any data is read; the parameters ``--param`` fixes."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise UsageError(f"the number of trials must be an integer ≥ 1, got {n_trials!r}")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
    others = sorted(set(config.model_params) - {model})
    if others:
        raise UsageError(f"--param names model(s) {', '.join(others)}, but {model!r} is being tuned")
    fixed = config.params_for(model)
    check_search_space(model, fixed)
    return fixed


def _pruner(model: str, prune: bool) -> optuna.pruners.BasePruner:
    """The median pruner for iterative models when ``prune``; else none."""
    if prune and get_model_class(model).uses_validation:
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS)
    return optuna.pruners.NopPruner()


def _best_trial(parent: Run, trials: list[TrialOutcome], study: optuna.Study, model: str) -> TrialOutcome:
    """Log ``trials.csv`` and the counts per state; the study's best trial, logged as ``best.*``.

    Raises ``ModelFitError`` when no trial completed.
    """
    frame = pd.DataFrame(
        [{"number": t.number, "state": t.state, "value": t.value, "best_epoch": t.best_epoch,
          "fit_seconds": t.fit_seconds, "params": json.dumps(t.params), "run_id": t.run_id,
          "error": t.error} for t in trials]
    )
    parent.log_frame(frame, "trials.csv")
    counts = trial_counts(trials)
    parent.log_metrics({f"n_trials_{s.lower()}": n for s, n in counts.items()})
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise ModelFitError(
            f"{model}: none of the {len(study.trials)} trials completed "
            f"({counts['PRUNED']} pruned, {counts['FAIL']} failed here); see the trial runs in MLflow"
        )
    # Optuna's best trial (the first of the maximal ones): one of ours, or, in a
    # shared study, possibly another worker's, read back from its attributes.
    frozen = study.best_trial
    best = next((t for t in trials if t.state == "COMPLETE" and t.number == frozen.number), None)
    if best is None:
        best = TrialOutcome(
            number=frozen.number, state="COMPLETE", params=dict(frozen.user_attrs["params"]), value=frozen.value,
            val=dict(frozen.user_attrs.get("val", {})), best_epoch=frozen.user_attrs.get("best_epoch"),
            run_id=frozen.user_attrs.get("run_id"),
        )
    parent.log_params(best.params, prefix=BEST_PREFIX)
    parent.log_metrics({"best_trial": best.number})
    return best


def _refit_best(parent: Run, model: str, best: TrialOutcome, split: Split, config: BenchmarkConfig) -> ModelResult:
    """The best parameters fitted and tested exactly as a benchmark does, logged into ``parent``.

    An iterative model needs no more epochs than the best trial selected (its
    fit is seeded, so it reaches that epoch's weights again).
    """
    final_params = dict(best.params)
    if best.best_epoch is not None and "epochs" in get_model_class(model).param_names():
        final_params["epochs"] = best.best_epoch
    final = runs.fit_and_evaluate(
        model, final_params, split, config.ks, config.refit, on_epoch=runs.epoch_logger(parent), progress=config.progress
    )
    final.run_id = parent.run_id
    return final


__all__ = [
    "PRUNER_STARTUP_TRIALS",
    "PRUNER_WARMUP_EPOCHS",
    "TRIAL_ERRORS",
    "Objective",
    "TrialOutcome",
    "TuningResult",
    "check_search_space",
    "draw_params",
    "open_study",
    "optimize",
    "run_trials",
    "tune",
]
