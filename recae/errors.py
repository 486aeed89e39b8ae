"""The exceptions recae raises on bad input.

The command line turns each of them into a one-line message and an exit status:
``UsageError`` exits with 2 (the command was asked for something it cannot do),
every other ``RecaeError`` with 1.
"""

from __future__ import annotations


class RecaeError(Exception):
    """Base class: an error whose message is meant for the user, without a traceback."""

    exit_code = 1


class UsageError(RecaeError, ValueError):
    """The request names something that does not exist (a model, a data set, a parameter)."""

    exit_code = 2


class DataError(RecaeError, ValueError):
    """A data file or matrix is malformed; the message names the file, line or value."""


class ModelFitError(RecaeError, RuntimeError):
    """Training diverged (a NaN loss) or cannot proceed."""


class NotFittedError(RecaeError, RuntimeError):
    """A model was asked to score before ``fit`` was called."""


class MemoryBudgetError(RecaeError, MemoryError):
    """A model's estimated memory exceeds what is available or allowed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, a scheduler, a container stop), handled like Ctrl-C.

    A subclass of ``KeyboardInterrupt``, so that every place that cleans up
    after Ctrl-C (runs marked KILLED, temporary files removed) does so for
    SIGTERM too; the command then exits 143 (128 + SIGTERM).
    """
