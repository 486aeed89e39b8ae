"""``recae tune``: search one model's hyperparameters, then test the best (see recae.experiment.tuning)."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from recae.cli import options
from recae.errors import UsageError
from recae.experiment import runs
from recae.experiment.config import BenchmarkConfig
from recae.experiment.results import TuningResult
from recae.experiment.search_space import start_point
from recae.experiment.tracker import Tracker
from recae.experiment.tuning import tune
from recae.experiment.tuning.workers import helpers, shared_search
from recae.files import check_output_path


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    parser = sub.add_parser(
        "tune",
        help=help,
        description=(
            "Search a model's hyperparameters with Optuna (TPE), selecting on validation NDCG@100: "
            "the validation users under strong generalization, the holdout carved from the train rows "
            "under a given split (never the test targets). The best parameters are then fitted as in "
            "`recae benchmark` and evaluated once on test. Each trial is a nested MLflow run under one "
            "tuning run; `recae benchmark --tuned` reuses the best parameters."
        ),
    )
    options.add_dataset_argument(parser)
    parser.add_argument("--model", required=True, help="the model to tune (a name from the registry, e.g. ease, als, item-knn, mult-vae)")
    parser.add_argument("--trials", type=int, default=30, help="number of trials (default: %(default)s)")
    parser.add_argument("--timeout", type=float, help="seconds after which no new trial is started")
    parser.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE", help="fix a parameter instead of searching it, e.g. mult-vae.epochs=50 (repeatable)")
    options.add_config_argument(parser, help="fix the parameters the TOML file's [MODEL] table sets, as --param does (--param wins over it); other tables are ignored")
    parser.add_argument("--start", action="append", metavar="defaults|MODEL.NAME=VALUE", help="run this point first: the model's defaults, with the values given in their place (repeatable; 'defaults' alone: the defaults), so that the search never ends below it on validation (default: every trial drawn)")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seed of Optuna's TPE sampler (default: %(default)s)")
    parser.add_argument("--no-pruning", dest="prune", action="store_false", help="iterative models: never stop a trial early")
    parser.add_argument("--storage", metavar="URL", help="share the search among processes or machines: journal:PATH (a journal file) or a database URL such as sqlite:///tune.db; with --study")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="run trials in N processes of this machine at once, sharing one study (--storage, or a temporary journal file) and the cores (each gets cores // N threads); this process tracks the search and fits the best (default: %(default)s)")
    parser.add_argument("--study", metavar="NAME", help="the shared study's name; every worker started with the same --storage and --study adds trials to it until it holds --trials")
    options.add_split_arguments(parser)
    options.add_output_arguments(
        parser, json_help="also write the best parameters, validation and test metrics as JSON to PATH", no_tracking=False
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the search, print the best trial, its parameters and test metrics, write ``--json``."""
    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    config = options.config_from_args(args, models=(args.model,))
    start = _start(args.start, args.model, config)
    if args.json:
        check_output_path(args.json)  # before any work: a bad path must not cost the search
    tracker = options.tracker_for(config)
    if args.workers == 1:
        result = tune(
            config, args.model, n_trials=args.trials, timeout=args.timeout, tracker=tracker,
            sampler_seed=args.sampler_seed, prune=args.prune, storage=args.storage, study_name=args.study,
            start=start,
        )
    else:
        result = _tune_in_workers(args, config, tracker, start)
    best, counts = result.best_trial, result.counts()
    epoch = f", epoch {best.best_epoch}" if best.best_epoch is not None else ""
    here = (f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed"
            + (f", of the {len(result.trials)} run by this process" if result.study_trials is not None else ""))
    print()
    print(
        f"Best of {result.study_trials or len(result.trials)} trials ({here}): "
        f"trial {best.number}, validation ndcg@100 {best.value:.4f}{epoch}"
    )
    params = pd.DataFrame({"parameter": list(result.best_params), "value": [repr(v) for v in result.best_params.values()]})
    print(params.to_string(index=False))
    print(f"\nTest metrics of the best parameters on {result.dataset} ({result.protocol}), mean ± half-width of the 95% CI:")
    print(result.table().to_string(index=False))
    return options.finish(result, args, "tuning run", tracker)


def _start(items: list[str] | None, model: str, config: BenchmarkConfig) -> dict[str, Any] | None:
    """``--start``'s values for ``model`` (``{}`` for ``defaults``), or None when not given;
    checked against the search before any work (the helpers of ``--workers`` start first)."""
    if items is None:
        return None
    params = options.parse_model_params([item for item in items if item != "defaults"], option="--start")
    others = sorted(set(params) - {model})
    if others:
        raise UsageError(f"--start names model(s) {', '.join(others)}, but {model!r} is being tuned")
    start = params.get(model, {})
    start_point(model, start, config.params_for(model))
    return start


def _tune_in_workers(
    args: argparse.Namespace, config: BenchmarkConfig, tracker: Tracker, start: dict[str, Any] | None
) -> TuningResult:
    """``tune`` here while ``--workers`` − 1 helper processes run trials of the same study."""
    import torch

    # read and split once, here (a bad data set fails before any helper starts), for every process
    split = runs.prepare_split(config)
    with shared_search(args.workers, args.storage, args.study, args.model) as search:
        torch.set_num_threads(search.threads)
        print(f"{args.workers} workers of {search.threads} thread(s) each, sharing the study "
              f"{search.study_name!r} in {search.storage}")
        with helpers(args.workers - 1, config, split, args.model, args.trials, args.timeout, args.sampler_seed,
                     args.prune, search):
            return tune(
                config, args.model, n_trials=args.trials, timeout=args.timeout, tracker=tracker,
                sampler_seed=args.sampler_seed, prune=args.prune, storage=search.storage,
                study_name=search.study_name, start=start, split=split,
            )
