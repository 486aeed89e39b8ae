"""``recae embed``: users' codes (and items' vectors) from a logged model, with a 2-D map."""

from __future__ import annotations

import argparse

import numpy as np

from recae.cli.options import (
    add_min_rating_argument,
    add_model_arguments,
    check_history_options,
    histories_from_args,
)
from recae.errors import UsageError
from recae.files import atomic_path, check_output_path
from recae.serving import write_table
from recae.serving.embeddings import METHODS, item_table, map_2d, map_figure, user_table
from recae.tracking import load_topn, log_files_to_run


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    cmd = sub.add_parser(
        "embed",
        help=help,
        description=(
            "Each user's code (user_id, z0 …; var0 … for the variational models: the latent mean and "
            "variance), folded in from the stored training histories or --history; with --items, each "
            "item's vector (the decoder's row; item factors for ALS and BPR). --map draws the users "
            "(or --map-items the items) in two dimensions, coloured by activity. A model from a run "
            "(runs:/...) gets the files as artifacts under embeddings/."
        ),
    )
    add_model_arguments(cmd)
    cmd.add_argument("--out", required=True, metavar="PATH", help="the users' codes: .parquet or .csv")
    cmd.add_argument("--items", metavar="PATH", help="also the items' vectors: .parquet or .csv")
    cmd.add_argument("--history", metavar="FILE", help="histories to embed (as for recae recommend); default: the stored training users")
    add_min_rating_argument(cmd, None, "with --history: keep ratings strictly above this")
    cmd.add_argument("--map", metavar="PNG", help="a 2-D map of the users' codes (or of the items' vectors with --map-items)")
    cmd.add_argument("--map-items", action="store_true", help="map the items instead of the users")
    cmd.add_argument("--map-method", choices=METHODS, default="pca", help="pca (default) or tsne (needs scikit-learn)")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the tables (and the map); log them to the model's run when it has one."""
    check_history_options(args)
    if args.map_items and not args.map:
        raise UsageError("--map-items draws the map --map names; give --map PNG")
    outputs = [write_table(args.out)] + ([write_table(args.items)] if args.items else [])
    if args.map:
        check_output_path(args.map)
    topn = load_topn(args.model, args.tracking_uri)
    histories = histories_from_args(topn, args)
    users = user_table(topn.model, histories)
    items = item_table(topn.model, topn.catalog.item_ids) if (args.items or args.map_items) else None
    with outputs[0] as write:
        write(users)
    if args.items and items is not None:
        with outputs[1] as write:
            write(items)
    if args.map:
        _draw(args, users, items, histories.X, topn.catalog.popularity)
    written = [p for p in (args.out, args.items, args.map) if p]
    log_files_to_run(args.model, written, "embeddings", args.tracking_uri)
    print(f"wrote {len(users)} users' codes ({users.shape[1] - 1} columns) to {', '.join(written)}")
    return 0


def _draw(args: argparse.Namespace, users, items, X, popularity) -> None:  # noqa: ANN001
    if args.map_items:
        points, activity, title = map_2d(items.iloc[:, 1:].to_numpy(), args.map_method), popularity, "items"
    else:
        codes = users[[c for c in users.columns if c.startswith("z")]].to_numpy()
        points, activity, title = map_2d(codes, args.map_method), np.diff(X.indptr), "users"
    fig = map_figure(points, np.asarray(activity), f"{title} ({args.map_method.upper()}), coloured by activity")
    with atomic_path(args.map) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
