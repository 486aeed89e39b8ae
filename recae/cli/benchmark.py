"""``recae benchmark``: train and evaluate models on one data set and protocol."""

from __future__ import annotations

import argparse

from recae.cli import options
from recae.evaluation.compare import format_comparison
from recae.experiment.benchmark import run_benchmark
from recae.experiment.config import DEFAULT_MODELS, PRIMARY_METRIC
from recae.files import check_output_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    bench = sub.add_parser(
        "benchmark",
        help="train and evaluate models on one data set and protocol",
        description=(
            "Train and evaluate models under one protocol, print test metrics with 95%% confidence "
            "intervals, and log every run to MLflow ($MLFLOW_TRACKING_URI, default sqlite:///mlflow.db). "
            "A directory holding train.txt and test.txt is evaluated under its given split; any other "
            "data set under strong generalization (Liang et al. 2018)."
        ),
    )
    options.add_dataset_argument(bench)
    bench.add_argument("--models", type=options.csv_list, default=list(DEFAULT_MODELS), help="comma-separated model names (default: %(default)s)")
    bench.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE", help="set a model parameter, e.g. mult-vae.epochs=50 (repeatable)")
    options.add_config_argument(bench, help="model parameters from a TOML file, one [MODEL] table each, e.g. configs/ml-1m-lcfn.toml (--param wins over it)")
    bench.add_argument("--tuned", action="store_true", help="use each model's best parameters from `recae tune` on this data set and protocol (--param and --config still win)")
    bench.add_argument("--register", metavar="NAME", help="register the best model (validation NDCG@100) in the MLflow model registry as NAME, alias @champion")
    options.add_split_arguments(bench)
    options.add_output_arguments(bench, json_help="also write the results as JSON to PATH", no_tracking=True)
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the test metrics (and the comparison), write ``--json``."""
    config = options.config_from_args(args, models=tuple(args.models), track=args.track, tuned=args.tuned, register=args.register)
    if args.json:
        check_output_path(args.json)  # before any work: a bad path must not cost the run
    tracker = options.tracker_for(config)
    result = run_benchmark(config, tracker)
    print()
    print(f"Test metrics on {result.dataset} ({result.protocol}), mean ± half-width of the 95% CI:")
    print(result.table().to_string(index=False))
    if result.comparison is not None:
        print(f"\nEach model against the best on {PRIMARY_METRIC} (paired over test users; Holm-corrected p-values):")
        print(format_comparison(result.comparison, PRIMARY_METRIC).to_string(index=False))
    return options.finish(result, args, "parent run", tracker)
