"""``recae anomalies``: users ranked by how far their history's likelihood lies from the bulk."""

from __future__ import annotations

import argparse

from recae.cli.options import (
    add_min_rating_argument,
    add_model_arguments,
    check_history_options,
    histories_from_args,
)
from recae.serving import write_table
from recae.serving.embeddings import anomaly_table
from recae.tracking import load_topn


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    cmd = sub.add_parser(
        "anomalies",
        help=help,
        description=(
            "For each user (the stored training users, or the histories of --data), the mean "
            "reconstruction −log-likelihood per item under the model (Mult-VAE, Mult-DAE with the "
            "multinomial likelihood, RecVAE) and under item popularity, and the score: the robust "
            "Mahalanobis distance of that pair from the bulk of users. Written as user_id, score, nll, "
            "popularity_nll, most anomalous first."
        ),
    )
    add_model_arguments(cmd)
    # --data is the name; --history, as recommend and embed call it, still works
    cmd.add_argument("--data", "--history", dest="history", metavar="FILE", help="histories to score (any --history file of recae recommend); default: the users the model was trained on")
    add_min_rating_argument(cmd, None, "with --data: keep ratings strictly above this")
    cmd.add_argument("--out", required=True, metavar="PATH", help="user_id, score, nll, popularity_nll rows, most anomalous first: .csv or .parquet")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the scores, most anomalous first."""
    check_history_options(args, "--data")
    out = write_table(args.out)
    topn = load_topn(args.model, args.tracking_uri)
    histories = histories_from_args(topn, args)
    frame = anomaly_table(topn.model, histories, topn.catalog.popularity)
    with out as write:
        write(frame)
    print(f"wrote {len(frame)} users' anomaly scores to {args.out}; the highest: {frame['score'].iloc[0]:.2f}")
    return 0
