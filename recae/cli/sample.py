"""``recae sample``: synthetic users drawn from a variational model, and how close they are to the real ones."""

from __future__ import annotations

import argparse

from recae.checks import check_positive_int
from recae.cli.options import add_model_arguments
from recae.errors import UsageError
from recae.evaluation.samples import length_ks, popularity_js, uniform_histories
from recae.serving import write_table
from recae.serving.embeddings import synthetic_users
from recae.tracking import load_topn


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    cmd = sub.add_parser(
        "sample",
        help=help,
        description=(
            "Draw --n histories: a code from the prior N(0, I) through the decoder, then as many distinct "
            "items from its multinomial as a training history drawn at random holds. Writes user_id, "
            "item_id rows (raw item ids) and prints how close the sample is to the training users: the "
            "Jensen–Shannon divergence of item popularity and the Kolmogorov–Smirnov statistic of history "
            "length, beside those of items drawn uniformly."
        ),
    )
    add_model_arguments(cmd)
    cmd.add_argument("--n", type=int, default=1000, help="synthetic users (default: %(default)s)")
    cmd.add_argument("--out", required=True, metavar="PATH", help="user_id, item_id rows: .csv or .parquet")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the draws (default: %(default)s)")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the sample and print its distances to the training data."""
    check_positive_int(args.n, "--n")
    if args.seed < 0:
        raise UsageError(f"--seed must be ≥ 0, got {args.seed}")
    out = write_table(args.out)
    topn = load_topn(args.model, args.tracking_uri)
    training = topn.catalog.histories
    if training is None or training.nnz == 0:
        raise UsageError(f"{args.model}: the model stores no training histories to draw lengths from")
    frame, X = synthetic_users(topn.model, training, args.n, topn.catalog.item_ids, seed=args.seed)
    with out as write:
        write(frame)
    uniform = uniform_histories(X.getnnz(axis=1), X.shape[1], seed=args.seed)
    print(f"wrote {args.n} synthetic users ({X.nnz} interactions) to {args.out}")
    print(f"item popularity, Jensen–Shannon divergence to the training users: {popularity_js(X, training):.4f} "
          f"(uniform items: {popularity_js(uniform, training):.4f})")
    print(f"history length, Kolmogorov–Smirnov statistic: {length_ks(X, training):.4f}")
    return 0
