"""``recae fetch``: download a named data set into the cache."""

from __future__ import annotations

import argparse

from recae.cli.options import DATA_DIR_HELP
from recae.data import fetch


def add_parser(sub: argparse._SubParsersAction, help: str) -> None:
    """Declare the command and its options on the ``recae`` parser's subcommands."""
    parser = sub.add_parser("fetch", help=help)
    parser.add_argument("name", help="a data set name")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the path of the fetched (or already cached) data set."""
    print(fetch(args.name, args.data_dir))
    return 0
