"""``recae recommend``: top-N lists from a logged model (see recae.tracking.pyfunc)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recae.checks import check_k
from recae.cli.options import (
    add_min_rating_argument,
    add_model_arguments,
    check_history_options,
    histories_from_args,
)
from recae.errors import UsageError
from recae.serving import TopN, read_id_list, write_table
from recae.tracking import load_topn


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    rec = sub.add_parser(
        "recommend",
        help=help,
        description=(
            "Write each user's top-k items (user_id, rank, item_id, score, fallback) to a Parquet or CSV "
            "file. Without --history, every training user the model stores is listed; with --history, "
            "the file's histories (raw ids) are folded in: items the model does not know are ignored, and "
            "users with no known item get the most popular items (fallback = true). The file is written "
            "under a temporary name and renamed when complete."
        ),
    )
    add_model_arguments(rec)
    rec.add_argument("--out", required=True, metavar="PATH", help="output file: .parquet or .csv")
    rec.add_argument("--k", type=int, default=20, help="items per user (default: %(default)s)")
    rec.add_argument("--history", metavar="FILE", help="histories to score: a user,item table (CSV/TSV/Parquet), a MovieLens ratings file, an adjacency list (.txt), or JSON {user: [items]}; default: the training users' stored histories")
    rec.add_argument("--users", metavar="FILE", help="only these users (one id per line, or a CSV with a 'user' column); unknown users get the popularity list")
    add_min_rating_argument(rec, None, "with --history: keep ratings strictly above this (e.g. 3.5, as in training)")
    seen = rec.add_mutually_exclusive_group()
    seen.add_argument("--exclude-seen", dest="exclude_seen", action="store_true", default=True, help="never recommend a user's own items (default)")
    seen.add_argument("--include-seen", dest="exclude_seen", action="store_false", help="rank the user's own items too")
    rec.add_argument("--items-allow", metavar="FILE", help="recommend only these items (one id per line, or a CSV with an 'item' column)")
    rec.add_argument("--items-deny", metavar="FILE", help="never recommend these items (same format)")
    rec.add_argument("--batch-size", type=int, default=1000, help="users scored at once; memory grows with batch size × items (default: %(default)s)")
    rec.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    rec.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the lists batch by batch into ``--out`` and print how many and how fast."""
    start = time.perf_counter()
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    check_history_options(args)
    out = write_table(args.out)  # checks the output format and path before any work
    if Path(args.model).expanduser().is_dir():
        topn = TopN.load(Path(args.model).expanduser())  # a local folder: no MLflow store needed
    else:
        topn = load_topn(args.model, args.tracking_uri)
    k = check_k(args.k, topn.n_items)
    users = read_id_list(args.users, "user") if args.users else None
    allowed = topn.allowed_items(
        read_id_list(args.items_allow, "item") if args.items_allow else None,
        read_id_list(args.items_deny, "item") if args.items_deny else None,
        allow_source=str(args.items_allow),
        deny_source=str(args.items_deny),
    )
    histories = histories_from_args(topn, args, users)
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
