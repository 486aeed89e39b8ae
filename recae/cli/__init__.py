"""The ``recae`` command.

    recae benchmark --dataset ml-100k --models mult-vae,mult-dae --json results.json
    recae fetch ml-1m

Errors in the input end with one line on stderr naming the file, line or value,
and exit status 2 for usage errors or 1 otherwise; no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from recae.checks import check_k
from recae.errors import RecaeError, UsageError


def _parse_value(text: str) -> Any:
    """``"50"`` → 50, ``"1e-3"`` → 0.001, ``"[600]"`` → [600], ``"none"`` → None, else the string."""
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["mult-vae.epochs=50", ...]`` → ``{"mult-vae": {"epochs": 50}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or not model or not param:
            raise UsageError(f"--param {item!r}: expected MODEL.NAME=VALUE, e.g. mult-vae.epochs=50")
        out.setdefault(model, {})[param] = _parse_value(value)
    return out


def _csv_list(text: str) -> list[str]:
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


def _min_rating(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def build_parser() -> argparse.ArgumentParser:
    from recae.experiment.benchmark import DEFAULT_MODELS

    parser = argparse.ArgumentParser(
        prog="recae",
        description="Autoencoder recommenders (Mult-VAE, Mult-DAE) evaluated against baselines, tracked in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    bench.add_argument("--dataset", default="ml-100k", help="a data set name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest-small) or a path (default: %(default)s)")
    bench.add_argument("--models", type=_csv_list, default=list(DEFAULT_MODELS), help="comma-separated model names (default: %(default)s)")
    bench.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE", help="set a model parameter, e.g. mult-vae.epochs=50 (repeatable)")
    bench.add_argument("--tuned", action="store_true", help="use each model's best parameters from `recae tune` on this data set and protocol (--param still wins)")
    bench.add_argument("--register", metavar="NAME", help="register the best model (validation NDCG@100) in the MLflow model registry as NAME, alias @champion")
    _add_split_arguments(bench)
    bench.add_argument("--ks", type=lambda s: [int(k) for k in _csv_list(s)], default=[20, 50, 100], help="cut-offs K (default: 20,50,100)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    bench.add_argument("--data-dir", help="data set cache (default: $RECAE_DATA_DIR, else ./data)")
    bench.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    bench.add_argument("--no-tracking", dest="track", action="store_false", help="do not log to MLflow")
    bench.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    bench.set_defaults(func=cmd_benchmark)

    _add_tune_parser(sub)
    _add_recommend_parser(sub)

    fetch = sub.add_parser("fetch", help="download a named data set into the cache (checksum verified)")
    fetch.add_argument("name", help="a data set name")
    fetch.add_argument("--data-dir", help="data set cache (default: $RECAE_DATA_DIR, else ./data)")
    fetch.set_defaults(func=cmd_fetch)
    return parser


def _add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The split seed, protocol and preprocessing options ``benchmark`` and ``tune`` share."""
    parser.add_argument("--seed", type=int, default=98765, help="seed of the split (default: %(default)s, the reference code's)")
    parser.add_argument("--heldout-users", type=_heldout, default=0.1, help="validation and, separately, test users: a count or a fraction (default: %(default)s)")
    parser.add_argument("--test-prop", type=float, default=0.2, help="fraction of each held-out user's items used as targets (default: %(default)s)")
    parser.add_argument("--val-prop", type=float, default=0.2, help="given split: fraction of each user's train items held out for validation (default: %(default)s)")
    parser.add_argument("--no-refit", dest="refit", action="store_false", help="given split: do not refit on the full train rows after selection")
    parser.add_argument("--min-rating", type=_min_rating, default=3.5, help="keep ratings strictly above this ('none' keeps all; default: %(default)s)")
    parser.add_argument("--min-user-items", type=int, default=5, help="k-core: minimum items per user (default: %(default)s)")
    parser.add_argument("--min-item-users", type=int, default=0, help="k-core: minimum users per item (default: %(default)s)")
    parser.add_argument("--user-col", help="CSV/TSV/Parquet data: the user column (default: user)")
    parser.add_argument("--item-col", help="CSV/TSV/Parquet data: the item column (default: item)")
    parser.add_argument("--rating-col", help="CSV/TSV/Parquet data: the rating column (default: rating, when present)")
    parser.add_argument("--timestamp-col", help="CSV/TSV/Parquet data: the timestamp column (default: timestamp, when present)")
    parser.add_argument("--max-memory", type=_memory, metavar="SIZE", help="memory budget for models that estimate theirs (EASE), e.g. 4GB or 500MB (default: the available memory)")


def _add_tune_parser(sub: argparse._SubParsersAction) -> None:
    """``recae tune``: hyperparameter search (see recae.experiment.tuning)."""
    tune = sub.add_parser(
        "tune",
        help="search one model's hyperparameters on validation NDCG@100, then test the best",
        description=(
            "Search a model's hyperparameters with Optuna (TPE), selecting on validation NDCG@100: "
            "the validation users under strong generalization, the holdout carved from the train rows "
            "under a given split (never the test targets). The best parameters are then fitted as in "
            "`recae benchmark` and evaluated once on test. Each trial is a nested MLflow run under one "
            "tuning run; `recae benchmark --tuned` reuses the best parameters."
        ),
    )
    tune.add_argument("--dataset", default="ml-100k", help="a data set name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest-small) or a path (default: %(default)s)")
    tune.add_argument("--model", required=True, help="the model to tune (a name from the registry, e.g. ease, als, item-knn, mult-vae)")
    tune.add_argument("--trials", type=int, default=30, help="number of trials (default: %(default)s)")
    tune.add_argument("--timeout", type=float, help="seconds after which no new trial is started")
    tune.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE", help="fix a parameter instead of searching it, e.g. mult-vae.epochs=50 (repeatable)")
    tune.add_argument("--sampler-seed", type=int, default=0, help="seed of Optuna's TPE sampler (default: %(default)s)")
    tune.add_argument("--no-pruning", dest="prune", action="store_false", help="iterative models: never stop a trial early")
    _add_split_arguments(tune)
    tune.add_argument("--ks", type=lambda s: [int(k) for k in _csv_list(s)], default=[20, 50, 100], help="cut-offs K (default: 20,50,100)")
    tune.add_argument("--json", metavar="PATH", help="also write the best parameters, validation and test metrics as JSON to PATH")
    tune.add_argument("--data-dir", help="data set cache (default: $RECAE_DATA_DIR, else ./data)")
    tune.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    tune.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    import pandas as pd

    from recae.experiment.tuning import tune, write_json

    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    config = _config(args, models=(args.model,))
    result = tune(
        config, args.model, n_trials=args.trials, timeout=args.timeout,
        sampler_seed=args.sampler_seed, prune=args.prune,
    )
    best, counts = result.best_trial, result.counts()
    epoch = f", epoch {best.best_epoch}" if best.best_epoch is not None else ""
    print()
    print(
        f"Best of {len(result.trials)} trials ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed): trial {best.number}, validation ndcg@100 {best.value:.4f}{epoch}"
    )
    params = pd.DataFrame({"parameter": list(result.best_params), "value": [repr(v) for v in result.best_params.values()]})
    print(params.to_string(index=False))
    print(f"\nTest metrics of the best parameters on {result.dataset} ({result.protocol}), mean ± half-width of the 95% CI:")
    print(result.table().to_string(index=False))
    return _finish(result, args, write_json, "tuning run")


def _add_recommend_parser(sub: argparse._SubParsersAction) -> None:
    """``recae recommend``: top-N lists from a logged model (see recae.tracking.pyfunc)."""
    rec = sub.add_parser(
        "recommend",
        help="write top-N lists for known or new users from a logged model",
        description=(
            "Write each user's top-k items (user_id, rank, item_id, score, fallback) to a Parquet or CSV "
            "file. Without --history, every training user the model stores is listed; with --history, "
            "the file's histories (raw ids) are folded in: items the model does not know are ignored, and "
            "users with no known item get the most popular items (fallback = true). The file is written "
            "under a temporary name and renamed when complete."
        ),
    )
    rec.add_argument("--model", required=True, metavar="MODEL_URI", help="an MLflow model URI (runs:/<run_id>/model, models:/<name>@champion) or a local model folder")
    rec.add_argument("--out", required=True, metavar="PATH", help="output file: .parquet or .csv")
    rec.add_argument("--k", type=int, default=20, help="items per user (default: %(default)s)")
    rec.add_argument("--history", metavar="FILE", help="histories to score: a user,item table (CSV/TSV/Parquet), a MovieLens ratings file, an adjacency list (.txt), or JSON {user: [items]}; default: the training users' stored histories")
    rec.add_argument("--users", metavar="FILE", help="only these users (one id per line, or a CSV with a 'user' column); unknown users get the popularity list")
    rec.add_argument("--min-rating", type=_min_rating, default=None, help="with --history: keep ratings strictly above this (e.g. 3.5, as in training)")
    seen = rec.add_mutually_exclusive_group()
    seen.add_argument("--exclude-seen", dest="exclude_seen", action="store_true", default=True, help="never recommend a user's own items (default)")
    seen.add_argument("--include-seen", dest="exclude_seen", action="store_false", help="rank the user's own items too")
    rec.add_argument("--items-allow", metavar="FILE", help="recommend only these items (one id per line, or a CSV with an 'item' column)")
    rec.add_argument("--items-deny", metavar="FILE", help="never recommend these items (same format)")
    rec.add_argument("--batch-size", type=int, default=1000, help="users scored at once; memory grows with batch size × items (default: %(default)s)")
    rec.add_argument("--tracking-uri", help="MLflow store that resolves runs:/ and models:/ URIs (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    rec.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    rec.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from recae import serving as rec

    start = time.perf_counter()
    out = rec.write_table(args.out)  # checks the output format before any work
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    if args.min_rating is not None and not args.history:
        raise UsageError("--min-rating applies to --history files")
    if Path(args.model).expanduser().is_dir():
        topn = rec.TopN.load(Path(args.model).expanduser())  # a local folder: no MLflow needed
    else:
        from recae.tracking.pyfunc import load_topn

        topn = load_topn(args.model, args.tracking_uri)
    k = check_k(args.k, topn.n_items)
    users = rec.read_id_list(args.users, "user") if args.users else None
    allowed = topn.allowed_items(
        rec.read_id_list(args.items_allow, "item") if args.items_allow else None,
        rec.read_id_list(args.items_deny, "item") if args.items_deny else None,
        allow_source=str(args.items_allow),
        deny_source=str(args.items_deny),
    )
    if args.history:
        histories = topn.fold_in(rec.read_history(args.history, args.min_rating), users, source=args.history)
    else:
        histories = topn.known(users)
    n_fallback = int((histories.X.getnnz(axis=1) == 0).sum())
    scoring = time.perf_counter()
    with out as write:
        for frame in topn.iter_frames(
            histories, k, exclude_seen=args.exclude_seen, allowed=allowed, batch_size=args.batch_size, progress=args.progress
        ):
            write(frame)
        if write.rows == 0:
            write(topn.empty_frame())
    done = time.perf_counter()
    rate = histories.n_users / max(done - scoring, 1e-9)
    print(
        f"wrote {out.rows} rows for {histories.n_users} users ({n_fallback} with the popularity fallback) "
        f"to {args.out} in {done - start:.1f}s ({rate:,.0f} users/s scoring)"
    )
    return 0


def _config(args: argparse.Namespace, **fields: Any) -> Any:
    """The BenchmarkConfig shared by ``benchmark`` and ``tune``, from their common options."""
    from recae.experiment.benchmark import BenchmarkConfig

    columns = {
        key: value
        for key, value in (
            ("user_col", args.user_col), ("item_col", args.item_col),
            ("rating_col", args.rating_col), ("timestamp_col", args.timestamp_col),
        )
        if value is not None
    }
    return BenchmarkConfig(
        dataset=args.dataset,
        model_params=parse_model_params(args.param),
        min_rating=args.min_rating,
        min_user_items=args.min_user_items,
        min_item_users=args.min_item_users,
        heldout_users=args.heldout_users,
        test_prop=args.test_prop,
        val_prop=args.val_prop,
        refit=args.refit,
        seed=args.seed,
        ks=tuple(args.ks),
        columns=columns,
        max_memory=args.max_memory,
        data_dir=args.data_dir,
        tracking_uri=args.tracking_uri,
        progress=args.progress,
        **fields,
    )


def cmd_benchmark(args: argparse.Namespace) -> int:
    from recae.experiment.benchmark import run_benchmark, write_json

    config = _config(args, models=tuple(args.models), track=args.track, tuned=args.tuned, register=args.register)
    result = run_benchmark(config)
    print()
    print(f"Test metrics on {result.dataset} ({result.protocol}), mean ± half-width of the 95% CI:")
    print(result.table().to_string(index=False))
    if result.comparison is not None:
        from recae.evaluation.compare import format_comparison
        from recae.experiment.benchmark import PRIMARY_METRIC

        print(f"\nEach model against the best on {PRIMARY_METRIC} (paired over test users; Holm-corrected p-values):")
        print(format_comparison(result.comparison, PRIMARY_METRIC).to_string(index=False))
    return _finish(result, args, write_json, "parent run")


def _finish(result: Any, args: argparse.Namespace, write_json: Any, run_kind: str) -> int:
    """Name the MLflow run and write ``--json``; the end of ``benchmark`` and ``tune``."""
    if result.parent_run_id:
        print(f"\nMLflow: experiment {result.experiment!r}, {run_kind} {result.parent_run_id}")
    if args.json:
        write_json(result, args.json)
        print(f"results written to {args.json}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from recae.data import fetch

    print(fetch(args.name, args.data_dir))
    return 0


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"recae: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _warning_line
    try:
        return args.func(args)
    except RecaeError as e:
        print(f"recae: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("recae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
