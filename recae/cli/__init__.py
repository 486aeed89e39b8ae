"""The ``recae`` command: one module per subcommand, wired together here.

    recae benchmark --dataset ml-100k --models mult-vae,mult-dae --json results.json
    recae tune --model ease --trials 30
    recae recommend --model models:/movielens@champion --out top.parquet
    recae serve --model models:/movielens@champion --port 5000
    recae fetch ml-1m

This package is the one place that builds the pieces (config, tracker, models)
and hands them to the layers below. Errors in the input end with one line on
stderr naming the file, line or value, and exit status 2 for usage errors or 1
otherwise; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Collection, Sequence
from typing import NoReturn

from recae.errors import RecaeError, Terminated

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``recae --help`` lists them, with their one-line help.
#: Each is the module ``recae.cli.<name>``, which imports what its command needs
#: (torch, MLflow, pandas): only the command being run is imported, so that
#: ``recae --help`` and ``recae fetch`` start in a fraction of a second.
COMMANDS: dict[str, str] = {
    "benchmark": "train and evaluate models on one data set and protocol",
    "tune": "search one model's hyperparameters on validation NDCG@100, then test the best",
    "recommend": "write top-N lists for known or new users from a logged model",
    "similar": "list the items most similar to given items, from a logged model",
    "embed": "write users' codes (and items' vectors) from a logged model, with a 2-D map",
    "sample": "draw synthetic users from a variational model (Mult-VAE, RecVAE)",
    "anomalies": "score users by how anomalous their history is under a logged model",
    "serve": "serve a logged model over HTTP (MLflow's scoring server), with request limits",
    "fetch": "download a named data set into the cache (checksum verified)",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error of ``recae``.

    argparse prints the usage before the message; here the message alone names the
    command and the option (``recae similar: error: argument --k: invalid int value: '1.5'``),
    and ``--help`` still shows the usage. The subcommands' parsers are of this class too
    (argparse makes them of the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``recae`` parser: each subcommand's options, and its ``func`` to run.

    ``commands`` given: only those subcommands get their options (their modules
    are imported); the others are listed by name and help, which is all that
    ``recae --help`` and a usage error naming them need. ``None``: all of them.
    """
    parser = _Parser(
        prog="recae",
        description="Autoencoder recommenders (Mult-VAE, Mult-DAE) evaluated against baselines, tracked in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help in COMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(f"recae.cli.{name}").add_parser(sub, help)
        else:
            sub.add_parser(name, help=help)
    return parser


def _named_commands(argv: Sequence[str]) -> list[str]:
    """The subcommand ``argv`` runs, as a list of none or one: its first word that is not
    an option (``recae`` itself has no option that takes a value), when that is a command."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return [first] if first in COMMANDS else []


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"recae: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``recae`` with ``argv`` (default: the process's arguments); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_named_commands(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a usage error (2), or --help (0): the status, as for every other end
        return e.code if isinstance(e.code, int) else 2
    warnings.showwarning = _warning_line
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return args.func(args)
    except RecaeError as e:
        print(f"recae: error: {e}", file=sys.stderr)
        return e.exit_code
    except Terminated:
        print("recae: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("recae: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM raises :class:`~recae.errors.Terminated` (a ``KeyboardInterrupt``): the
    run in progress is marked KILLED and partial outputs are removed, as on Ctrl-C."""
    raise Terminated()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
