"""``recae similar``: the items most like given items, from a logged model's item similarity."""

from __future__ import annotations

import argparse

from recae.checks import check_k
from recae.cli.options import add_model_arguments
from recae.serving import write_table
from recae.tracking import load_topn


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    cmd = sub.add_parser(
        "similar",
        help=help,
        description=(
            "For each --item (a raw id), the k items the model finds most similar (item_id, rank, "
            "similar_item_id, score): the cosine of the decoder's item vectors for the autoencoders, of "
            "the item factors for ALS and BPR; the item × item weights for EASE and EDLAE; the kept "
            "neighbours for item-kNN. Printed, or written to --out (.csv or .parquet)."
        ),
    )
    add_model_arguments(cmd)
    cmd.add_argument("--item", required=True, action="append", metavar="ID", help="an item id as in the training data (repeatable)")
    cmd.add_argument("--k", type=int, default=10, help="similar items per item (default: %(default)s)")
    cmd.add_argument("--out", metavar="PATH", help="write the table to a .csv or .parquet file instead of printing it")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print (or write) the similar items of every ``--item``."""
    out = write_table(args.out) if args.out else None  # the output path is checked before any work
    check_k(args.k)
    topn = load_topn(args.model, args.tracking_uri)  # a local folder needs no store
    frame = topn.similar(args.item, args.k)  # text ids match integer ids by the one rule (convert_ids)
    if out is None:
        print(frame.to_string(index=False))
        return 0
    with out as write:
        write(frame)
    print(f"wrote {len(frame)} rows to {args.out}")
    return 0
