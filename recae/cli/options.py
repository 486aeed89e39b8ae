"""What ``recae benchmark`` and ``recae tune`` share: their options, the config and tracker
they build from them, and how they end (the run's name, ``--json``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from recae.errors import UsageError
from recae.files import write_json

# What the functions below build (configs, trackers, histories) pulls in torch and
# MLflow: imported where used, so that a command that needs none of it (``fetch``)
# and every ``--help`` start without them.
if TYPE_CHECKING:
    from recae.experiment.config import BenchmarkConfig
    from recae.experiment.tracker import Tracker
    from recae.serving import Histories, TopN

DATA_DIR_HELP = "data set cache (default: $RECAE_DATA_DIR, else ./data)"


def parse_value(text: str) -> Any:
    """``"50"`` → 50, ``"1e-3"`` → 0.001, ``"[600]"`` → [600], ``"none"`` → None, else the string.

    Text that opens a list or an object (``[``, ``{``) must be valid JSON:
    ``UsageError`` naming where it breaks, rather than the text taken as a string.
    """
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith(("[", "{")):
            raise UsageError(f"{text!r} is not valid JSON ({e.msg} at character {e.pos + 1})") from None
        return text


def parse_model_params(items: Sequence[str], option: str = "--param") -> dict[str, dict[str, Any]]:
    """``["mult-vae.epochs=50", ...]`` → ``{"mult-vae": {"epochs": 50}}``; errors name ``option``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or not model or not param:
            raise UsageError(f"{option} {item!r}: expected MODEL.NAME=VALUE, e.g. mult-vae.epochs=50")
        try:
            out.setdefault(model, {})[param] = parse_value(value)
        except UsageError as e:
            raise UsageError(f"{option} {item!r}: {e}") from None
    return out


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _heldout(text: str) -> int | float:
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def _memory(text: str) -> float:
    """``"4GB"`` → 4e9 bytes; ``"500MB"``, ``"2.5G"``, ``"123456"`` (bytes) likewise."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 4GB, 500MB or 123456")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[match.group(2)]


def _time_cut(text: str) -> float | str:
    """``"0.8"`` → 0.8 (a quantile), anything else stays text (a date, checked with the split)."""
    try:
        return float(text)
    except ValueError:
        return text


def _min_rating(text: str) -> float | None:
    """``"none"`` → None (keep every rating), else the threshold as a float."""
    return None if text.lower() == "none" else float(text)


# argparse names a type's function in its error messages ("invalid _heldout value: 'x'"):
# the converters above keep their names, and --ks keeps its lambda, so those messages stay.


def add_min_rating_argument(parser: argparse.ArgumentParser, default: Any, help: str) -> None:
    """``--min-rating``: keep ratings strictly above it; ``none`` keeps all.

    ``default`` ``argparse.SUPPRESS`` leaves the option out of the parsed
    arguments when not given, so that the config can tell a chosen threshold
    from the default one.
    """
    parser.add_argument("--min-rating", type=_min_rating, default=default, help=help)


def add_config_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--config FILE``: model parameters from a TOML file (see :mod:`recae.experiment.config_file`)."""
    parser.add_argument("--config", metavar="FILE", help=help)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` (a logged model's URI or a local folder) and ``--tracking-uri``, for the
    commands that read a model (``recommend``, ``similar``)."""
    parser.add_argument("--model", required=True, metavar="MODEL_URI", help="an MLflow model URI (runs:/<run_id>/model, models:/<name>@champion) or a local model folder")
    parser.add_argument("--tracking-uri", help="MLflow store that resolves runs:/ and models:/ URIs (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")


def check_history_options(args: argparse.Namespace, option: str = "--history") -> None:
    """``--min-rating`` of the commands that read a model goes with the histories' file,
    ``option`` (``--history``; ``--data`` for ``anomalies``)."""
    if args.min_rating is not None and not args.history:
        raise UsageError(f"--min-rating applies to {option} files")


def histories_from_args(topn: TopN, args: argparse.Namespace, users: Any | None = None) -> Histories:
    """The histories a model-reading command scores: ``--history`` folded in, else the stored ones."""
    from recae.serving import read_history

    if args.history:
        return topn.fold_in(read_history(args.history, args.min_rating), users, source=args.history)
    return topn.known(users)


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    """``--dataset``: a named data set or a path."""
    parser.add_argument("--dataset", default="ml-100k", help="a data set name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest-small) or a path (default: %(default)s)")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The split seed, protocol and preprocessing options ``benchmark`` and ``tune`` share."""
    from recae.experiment.config import DEFAULT_MIN_RATING

    parser.add_argument("--seed", type=int, default=98765, help="seed of the split (default: %(default)s, the reference code's)")
    parser.add_argument("--heldout-users", type=_heldout, default=0.1, help="validation and, separately, test users: a count or a fraction (default: %(default)s)")
    parser.add_argument("--protocol", choices=["strong", "weak", "temporal"], help="rating files: strong generalization (default; Liang et al.), weak generalization (every user trains, a random share of each user's items tests), or temporal (with --time-cut or --last-k)")
    parser.add_argument("--time-cut", type=_time_cut, metavar="Q|DATE", help="--protocol temporal: interactions from this time on test, a quantile of the timestamps (0.8) or a date (2003-01-01)")
    parser.add_argument("--last-k", type=int, metavar="K", help="--protocol temporal: each user's last K interactions by timestamp test")
    parser.add_argument("--test-prop", type=float, default=0.2, help="fraction of each held-out user's items used as targets (default: %(default)s)")
    parser.add_argument("--val-prop", type=float, default=0.2, help="given split: fraction of each user's train items held out for validation (default: %(default)s)")
    parser.add_argument("--no-refit", dest="refit", action="store_false", help="given split: do not refit on the full train rows after selection")
    add_min_rating_argument(
        parser, argparse.SUPPRESS, f"keep ratings strictly above this ('none' keeps all; default: {DEFAULT_MIN_RATING:g})"
    )
    parser.add_argument("--min-user-items", type=int, default=5, help="k-core: minimum items per user (default: %(default)s)")
    parser.add_argument("--min-item-users", type=int, default=0, help="k-core: minimum users per item (default: %(default)s)")
    parser.add_argument("--user-col", help="CSV/TSV/Parquet data: the user column (default: user)")
    parser.add_argument("--item-col", help="CSV/TSV/Parquet data: the item column (default: item)")
    parser.add_argument("--rating-col", help="CSV/TSV/Parquet data: the rating column (default: rating, when present)")
    parser.add_argument("--timestamp-col", help="CSV/TSV/Parquet data: the timestamp column (default: timestamp, when present)")
    parser.add_argument("--device", help="torch device of every model that takes one: cpu (the default), cuda, cuda:1, or auto (CUDA when present)")
    parser.add_argument("--max-memory", type=_memory, metavar="SIZE", help="memory budget for models that estimate theirs (EASE), e.g. 4GB or 500MB (default: the available memory)")


def add_output_arguments(parser: argparse.ArgumentParser, json_help: str, no_tracking: bool) -> None:
    """``--ks``, ``--json``, ``--data-dir``, ``--tracking-uri``, (``--no-tracking``), ``--no-progress``."""
    parser.add_argument("--ks", type=lambda s: [int(k) for k in csv_list(s)], default=[20, 50, 100], help="cut-offs K (default: 20,50,100)")
    parser.add_argument("--json", metavar="PATH", help=json_help)
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    if no_tracking:
        parser.add_argument("--no-tracking", dest="track", action="store_false", help="do not log to MLflow")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def config_from_args(args: argparse.Namespace, **fields: Any) -> BenchmarkConfig:
    """The config shared by ``benchmark`` and ``tune``, from their common options and ``fields``."""
    from recae.experiment.config import BenchmarkConfig

    columns = {
        key: value
        for key, value in (
            ("user_col", args.user_col), ("item_col", args.item_col),
            ("rating_col", args.rating_col), ("timestamp_col", args.timestamp_col),
        )
        if value is not None
    }
    return BenchmarkConfig.create(
        dataset=args.dataset,
        model_params=parse_model_params(args.param),
        config_file=args.config,
        min_user_items=args.min_user_items,
        min_item_users=args.min_item_users,
        heldout_users=args.heldout_users,
        protocol=args.protocol,
        time_cut=args.time_cut,
        last_k=args.last_k,
        test_prop=args.test_prop,
        val_prop=args.val_prop,
        refit=args.refit,
        seed=args.seed,
        ks=tuple(args.ks),
        columns=columns,
        max_memory=args.max_memory,
        device=args.device,
        data_dir=args.data_dir,
        tracking_uri=args.tracking_uri,
        progress=args.progress,
        # absent unless given: the config then knows the threshold is its default
        **({"min_rating": args.min_rating} if "min_rating" in vars(args) else {}),
        **fields,
    )


def tracker_for(config: BenchmarkConfig) -> Tracker:
    """MLflow at ``config.tracking_uri`` when tracking; else a tracker that stores nothing
    (but still reads the store's tuning runs for ``--tuned``)."""
    from recae.experiment.tracker import NullTracker
    from recae.tracking import MlflowTracker, ReadOnlyTracker

    if config.track:
        return MlflowTracker(config.tracking_uri)
    if config.tuned:
        return ReadOnlyTracker(config.tracking_uri)
    return NullTracker()


def finish(result: Any, args: argparse.Namespace, run_kind: str, tracker: Tracker) -> int:
    """Name the tracked run and write ``--json``; the end of ``benchmark`` and ``tune``.

    Runs the store failed to record are named on stderr after the results are
    written, and the exit status is then 1.
    """
    if result.parent_run_id:
        print(f"\nMLflow: experiment {result.experiment!r}, {run_kind} {result.parent_run_id}")
    if args.json:
        write_json(args.json, result.to_json())
        print(f"results written to {args.json}")
    unlogged = tracker.unlogged()
    for line in unlogged:
        print(f"recae: error: not logged to MLflow: {line}", file=sys.stderr)
    return 1 if unlogged else 0
