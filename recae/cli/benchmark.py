"""``recae benchmark``: train and evaluate models on one data set and protocol."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
from pathlib import Path

from recae.cli import options
from recae.errors import UsageError
from recae.evaluation.compare import format_comparison
from recae.experiment.benchmark import run_benchmark
from recae.experiment.config import DEFAULT_MODELS, PRIMARY_METRIC, BenchmarkConfig
from recae.experiment.resume import DEFAULT_EVERY, FOLDER_TAG, BenchmarkCheckpoints
from recae.files import check_output_path
from recae.models import distributed
from recae.tracking import checkpoint_folder_of_run


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    bench = sub.add_parser(
        "benchmark",
        help=help,
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
    bench.add_argument("--metrics", type=options.csv_list, default=[], metavar="NAMES", help="beyond-accuracy metrics too, e.g. novelty,arp,long_tail,ild,gini,aggregate_diversity (logged, and the per-user ones compared)")
    bench.add_argument("--tuned", action="store_true", help="use each model's best parameters from `recae tune` on this data set and protocol (--param and --config still win)")
    bench.add_argument("--register", metavar="NAME", help="register the best model (validation NDCG@100) in the MLflow model registry as NAME, alias @champion")
    options.add_split_arguments(bench)
    options.add_output_arguments(bench, json_help="also write the results as JSON to PATH", no_tracking=True)
    bench.add_argument("--checkpoint-every", type=int, default=DEFAULT_EVERY, metavar="N", help="iterative models save their training state every N epochs, at each new best and at the end; 0: no checkpoints (default: %(default)s)")
    bench.add_argument("--checkpoint-dir", default="checkpoints", metavar="DIR", help="where each benchmark's checkpoint folder is made; removed when the benchmark completes (default: %(default)s)")
    bench.add_argument("--distributed", action="store_true", help="data-parallel training over the processes torchrun starts (torchrun --nproc-per-node N -m recae.cli benchmark --distributed ...); rank 0 alone logs and writes; no checkpoints")
    bench.add_argument("--resume", metavar="RUN_ID|DIR", help="continue an interrupted benchmark from its checkpoints: its parent run id, or its checkpoint folder; its settings are the earlier command's")
    bench.set_defaults(func=run)
    _DEFAULTS.update({action.dest: action.default for action in bench._actions})


#: Every option's default (filled in by add_parser), to tell what a --resume command sets.
_DEFAULTS: dict[str, object] = {}
#: Options that do not change what a resumed benchmark computes.
_RESUME_OPTIONS = {"resume", "distributed", "json", "tracking_uri", "data_dir", "progress", "checkpoint_dir", "func", "help", "command"}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; with ``--distributed``, as one rank of a data-parallel run."""
    if not args.distributed:
        return _run(args)
    if args.resume:
        raise UsageError("--resume continues a benchmark in one process; drop --distributed")
    args.checkpoint_every = 0  # every rank would write the same state; a distributed run is not resumed
    with distributed.session() as (rank, size):
        if rank == 0:
            print(f"data-parallel training over {size} processes (torch.distributed)")
            return _run(args)
        # the other ranks train and evaluate alike, and say and store nothing
        quiet = argparse.Namespace(**{**vars(args), "track": False, "register": None, "json": None, "progress": False})
        with contextlib.redirect_stdout(io.StringIO()):
            _run(quiet)
        return 0


def _run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the test metrics (and the comparison), write ``--json``."""
    if args.json:
        check_output_path(args.json)  # before any work: a bad path must not cost the run
    if args.resume:
        config, checkpoints = _resumed(args)
    else:
        config = options.config_from_args(args, models=tuple(args.models), track=args.track, tuned=args.tuned,
                                          register=args.register, metrics=tuple(args.metrics))
        if args.checkpoint_every < 0:
            raise UsageError(f"--checkpoint-every {args.checkpoint_every}: expected a number of epochs ≥ 0 (0: no checkpoints)")
        checkpoints = None
        if args.checkpoint_every:
            checkpoints = BenchmarkCheckpoints.new(args.checkpoint_dir, args.checkpoint_every)
            # a folder the first save could not write would cost the epochs before it;
            # the folders made to find out are removed (the first save makes them again)
            made = [p for p in (checkpoints.folder, *checkpoints.folder.parents) if not p.exists()]
            check_output_path(checkpoints.folder / "benchmark.json")
            for folder in made:
                folder.rmdir()
    tracker = options.tracker_for(config)
    result = run_benchmark(config, tracker, checkpoints=checkpoints)
    print()
    print(f"Test metrics on {result.dataset} ({result.protocol}), mean ± half-width of the 95% CI:")
    print(result.table().to_string(index=False))
    if result.comparison is not None:
        print(f"\nEach model against the best on {PRIMARY_METRIC} (paired over test users; Holm-corrected p-values):")
        print(format_comparison(result.comparison, PRIMARY_METRIC).to_string(index=False))
    return options.finish(result, args, "parent run", tracker)


def _resumed(args: argparse.Namespace) -> tuple[BenchmarkConfig, BenchmarkCheckpoints]:
    """The config and checkpoints of the benchmark ``--resume`` names (a folder or a run id)."""
    changed = sorted(
        dest for dest, value in vars(args).items()
        if dest not in _RESUME_OPTIONS and (dest not in _DEFAULTS or value != _DEFAULTS[dest])
    )
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise UsageError(f"--resume continues the earlier benchmark with its own settings; drop {flag}")
    if Path(args.resume).is_dir():
        folder = Path(args.resume)
    elif re.fullmatch(r"[0-9a-f]{32}", args.resume):
        folder = checkpoint_folder_of_run(args.resume, FOLDER_TAG, Path(args.checkpoint_dir), args.tracking_uri)
    else:
        raise UsageError(f"--resume {args.resume!r}: neither a checkpoint folder nor an MLflow run id")
    checkpoints = BenchmarkCheckpoints.open(folder)
    assert checkpoints.config is not None
    config = dataclasses.replace(
        checkpoints.config, tracking_uri=args.tracking_uri or checkpoints.config.tracking_uri,
        data_dir=args.data_dir or checkpoints.config.data_dir, progress=args.progress,
    )
    return config, checkpoints
