"""The benchmark: config → data → split → models → metrics → tracker → report.

:func:`run_benchmark` is what ``recae benchmark`` and ``make run`` execute.
Every model goes through the steps of :mod:`recae.experiment.runs` under the
same split; each gets its own nested run under one run per benchmark, in the
tracker the caller passes in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from recae.evaluation.beyond import PER_USER
from recae.evaluation.compare import DEFAULT_METRICS, compare
from recae.evaluation.protocols import Split
from recae.experiment import plots
from recae.experiment.config import DEFAULT_MODELS, PRIMARY_METRIC, BenchmarkConfig
from recae.experiment.results import BenchmarkResult, ModelResult
from recae.experiment.resume import FOLDER_TAG, BenchmarkCheckpoints
from recae.experiment.runs import (
    check_measurable,
    dataset_label,
    describe_split,
    epoch_logger,
    fit_and_evaluate,
    log_model_run,
    prepare_split,
)
from recae.experiment.tracker import BENCHMARK_KIND, CHAMPION, MODEL_KIND, Run, Tracker
from recae.experiment.tuned import with_tuned_params
from recae.models import get_model_class, make_model


def run_benchmark(
    config: BenchmarkConfig,
    tracker: Tracker,
    echo: Callable[[str], None] = print,
    checkpoints: BenchmarkCheckpoints | None = None,
) -> BenchmarkResult:
    """Train and evaluate ``config.models`` on one split; log everything to ``tracker``.

    Parameters
    ----------
    config : BenchmarkConfig
        What to run. With ``config.track`` False the per-model artifacts
        (tables, figures, the model) are not built at all.
    tracker : Tracker
        Receives one run per benchmark (experiment ``"<data set>/<protocol>"``)
        and one nested run per model; with ``config.tuned`` it also supplies
        the best parameters of earlier searches. ``NullTracker()`` stores nothing.
    echo : callable
        Receives the one-line description of the split, the rating threshold
        when the user chose none (and the tuned parameters and the registered
        model, when asked for).
    checkpoints : BenchmarkCheckpoints, optional
        Where the iterative models save their training state as they go
        (:mod:`recae.experiment.resume`). One that already holds a benchmark's
        record resumes it: its finished models are read back, the interrupted
        one continues in its own run, the parent run is reopened. The folder is
        removed when the benchmark completes.

    Returns
    -------
    BenchmarkResult
        The caller prints or saves it.
    """
    split = prepare_split(config, echo)
    label = dataset_label(config.dataset)
    fingerprint = split.fingerprint()
    if config.tuned:  # each model's best parameters from `recae tune`; explicit ones still win
        config = with_tuned_params(config, tracker, split.protocol, fingerprint, echo=echo)
    info = split.describe()
    echo(describe_split(label, info, fingerprint))
    selects = bool(config.register) or any(get_model_class(name).uses_validation for name in config.models)
    check_measurable(split, label, validation=selects)
    for name in config.models:  # refuse an impossible run before any is started
        make_model(name, **config.params_for(name)).check_resources(*split.train.shape)
    experiment = f"{label}/{split.protocol}"
    tags = {"dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint}
    resumed = checkpoints.parent_run_id if checkpoints is not None else None
    parent_tags = {**tags, "recae.kind": BENCHMARK_KIND}
    if checkpoints is not None:
        parent_tags[FOLDER_TAG] = str(checkpoints.folder)
    with tracker.run(experiment, f"benchmark {label}", tags=parent_tags, run_id=resumed) as parent:
        if resumed is None:
            parent.log_params(info, prefix="split.")
            parent.log_params({"models": list(config.models), "seed": config.seed, "ks": list(config.ks)})
            parent.log_params(config.config_file_params())
            parent.log_dict(config.to_dict(), "config.json")
        if checkpoints is not None:
            checkpoints.mirror = lambda path: parent.log_file(path, checkpoints.artifact_dir(path))
            checkpoints.start(config, parent.run_id)
            echo(f"checkpoints in {checkpoints.folder} (after an interruption: recae benchmark --resume {parent.run_id or checkpoints.folder})")
        results = {name: _run_or_reload(parent, name, split, config, tags, checkpoints) for name in config.models}
        bench = BenchmarkResult(
            label, split.protocol, fingerprint, info, results, parent_run_id=parent.run_id, experiment=experiment
        )
        _log_summary(parent, bench, config)
    if config.register and results:
        _register_best(tracker, results, config.register, echo)
    if checkpoints is not None:
        checkpoints.remove()
    return bench


def _run_or_reload(
    parent: Run, name: str, split: Split, config: BenchmarkConfig, tags: dict[str, str],
    checkpoints: BenchmarkCheckpoints | None,
) -> ModelResult:
    """Model ``name``'s result: read back when an earlier, interrupted run of this benchmark
    finished it; otherwise fitted (from its checkpoint, if any) in its own nested run."""
    done = checkpoints.result(name) if checkpoints is not None else None
    if done is not None:
        return done
    run_id = checkpoints.run_id(name) if checkpoints is not None else None
    with parent.nested(name, tags={**tags, "model": name, "recae.kind": MODEL_KIND}, run_id=run_id) as run:
        if checkpoints is not None and run_id is None:
            checkpoints.set_run_id(name, run.run_id)
        result = _run_model(run, name, split, config, checkpoints)
    if checkpoints is not None:
        checkpoints.save_result(result)
    return result


def _run_model(
    run: Run, name: str, split: Split, config: BenchmarkConfig, checkpoints: BenchmarkCheckpoints | None
) -> ModelResult:
    """Fit and evaluate model ``name`` inside its own ``run``."""
    params = config.params_for(name)
    run.log_params(make_model(name, **params).get_params())
    run.log_params(split.describe(), prefix="split.")
    result = fit_and_evaluate(
        name, params, split, config.ks, config.refit, on_epoch=epoch_logger(run), progress=config.progress,
        metrics=config.metrics,
        checkpoint=None if checkpoints is None else functools.partial(checkpoints.checkpoint, name),
    )
    result.run_id = run.run_id
    if config.track:
        log_model_run(run, result, split, config)
    return result


def _log_summary(parent: Run, bench: BenchmarkResult, config: BenchmarkConfig) -> None:
    """The benchmark's own artifacts: the comparison (two or more models), summary and results."""
    results = bench.models
    if len(results) > 1:
        tests = {n: r.test for n, r in results.items()}
        # --ks may leave out 20; NDCG@100 is always evaluated
        k = 20 if 20 in config.ks else min(config.ks)
        wanted = [*DEFAULT_METRICS, *(f"{m}_at_{k}" for m in config.metrics if m in PER_USER)]
        given = {m: {n: t for n, t in tests.items() if m in t.per_user and np.isfinite(t.per_user[m]).any()} for m in wanted}
        shared = [m for m in wanted if len(given[m]) == len(tests)]
        # a per-user metric some models cannot give (ILD without item vectors) compares the
        # models that give it (each metric's tests and Holm correction are its own anyway)
        partial = [compare(given[m], metrics=[m], seed=config.seed) for m in wanted if 0 < len(given[m]) < len(tests)]
        bench.comparison = pd.concat([compare(tests, metrics=shared, seed=config.seed), *partial], ignore_index=True)
        parent.log_frame(bench.comparison, "comparison.csv")
        parent.log_text(bench.comparison_markdown(), "comparison.md")
        primary = bench.comparison[bench.comparison["metric"] == PRIMARY_METRIC]
        fig = plots.comparison_chart(
            list(primary["model"]), list(primary["mean"]), list(primary["ci_low"]), list(primary["ci_high"]),
            metric=f"test {PRIMARY_METRIC} (95% bootstrap CI)", title=f"{bench.dataset}, {bench.protocol}",
        )
        parent.log_figure(fig, "comparison.png")
    parent.log_frame(bench.table(), "summary.csv")
    parent.log_dict(bench.to_json(), "results.json")
    for name, r in results.items():
        parent.log_metrics({f"{name}/test/{PRIMARY_METRIC}": r.test_means()[PRIMARY_METRIC]})


def _register_best(tracker: Tracker, results: dict[str, ModelResult], name: str, echo: Callable[[str], None]) -> None:
    """Register the model with the best validation :data:`PRIMARY_METRIC` as ``name``.

    Chosen on the validation users, like every other selection: the test
    metrics stay an unbiased report of the chosen model.
    """

    def selection_score(r: ModelResult) -> float:
        v = r.val.get(PRIMARY_METRIC, float("nan"))
        return v if v == v else float("-inf")

    best = max(results.values(), key=selection_score)
    assert best.run_id is not None
    version = tracker.register_model(best.run_id, name)
    echo(
        f"registered {best.name} (run {best.run_id}) as {name!r} version {version}; "
        f"load it as models:/{name}@{CHAMPION}"
    )


__all__ = [
    "DEFAULT_MODELS",
    "PRIMARY_METRIC",
    "BenchmarkConfig",
    "BenchmarkResult",
    "ModelResult",
    "dataset_label",
    "fit_and_evaluate",
    "prepare_split",
    "run_benchmark",
]
