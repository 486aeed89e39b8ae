"""How much one scoring request may ask for: users, items per history, ``k``, rows of the answer.

A served model answers each request in memory: the request's histories, the
scores of one chunk of users at a time (chunk × n_items floats) and the
answer, users × k rows, which the scoring server then turns into JSON (a few
hundred bytes a row). Without a bound, one request for 20,000 users with
``k=1000`` holds gigabytes and ties up a worker for minutes. The limits below
refuse such a request before anything is scored, with a message that says
what to send instead; the server answers HTTP 400 and goes on serving.

The limits are read once, when the model is loaded, from the environment
(:meth:`ServingLimits.from_env`); ``recae serve`` sets the variables from its
flags.

- users per request: ``RECAE_SERVE_MAX_USERS``, ``--max-users`` (default 10,000);
- items per user's history: ``RECAE_SERVE_MAX_HISTORY``, ``--max-history`` (default 10,000);
- ``k``: ``RECAE_SERVE_MAX_K``, ``--max-k`` (default 10,000, and never more than the catalogue);
- rows of the answer, users × k: ``RECAE_SERVE_MAX_ROWS``, ``--max-rows`` (default 1,000,000).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from recae.checks import check_k, check_positive_int
from recae.data import normalize_ids
from recae.errors import UsageError

__all__ = ["ENV_PREFIX", "ServingLimits"]

#: The limits' environment variables are this prefix and the field's name in capitals.
ENV_PREFIX = "RECAE_SERVE_"


@dataclass(frozen=True)
class ServingLimits:
    """The most one request may ask for; every value an integer ≥ 1.

    Attributes
    ----------
    max_users : int
        Distinct users in one request.
    max_history : int
        Rows (items) of one user's history in one request.
    max_k : int
        Items per list (never more than the catalogue either).
    max_rows : int
        Rows of the answer, users × k: what the answer and its JSON cost.
    """

    max_users: int = 10_000
    max_history: int = 10_000
    max_k: int = 10_000
    max_rows: int = 1_000_000

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_positive_int(getattr(self, f.name), f.name))

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of the limit ``name`` (``max_users`` → ``RECAE_SERVE_MAX_USERS``)."""
        return ENV_PREFIX + name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingLimits:
        """The limits from ``RECAE_SERVE_MAX_*`` (``os.environ`` by default); unset or blank: the default.

        A value that is not an integer ≥ 1 raises ``UsageError`` naming the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            var = cls.variable(f.name)
            text = environ.get(var, "").strip()
            if not text:
                continue
            try:
                value = int(text)
            except ValueError:
                raise UsageError(f"{var} must be an integer ≥ 1, got {text!r}") from None
            values[f.name] = check_positive_int(value, var)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads back as these limits."""
        return {self.variable(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def check_request(self, user_ids: Any, k: Any, n_items: int) -> int:
        """Check one request against the limits before anything is scored; its ``k``.

        Parameters
        ----------
        user_ids : 1-D array-like
            The request's user id column, one entry per (user, item) row; ids
            are counted as :func:`recae.data.normalize_ids` leaves them, the
            way the request is then read.
        k : Any
            The request's ``k`` (checked by :func:`recae.checks.check_k`).
        n_items : int
            The model's catalogue.

        Raises
        ------
        UsageError
            Too many users, a history too long (naming its user), ``k`` out
            of range, or an answer of more than :attr:`max_rows` rows.
        """
        codes, users = pd.factorize(normalize_ids(np.asarray(user_ids)), sort=False)
        n_users = len(users)
        if n_users > self.max_users:
            raise UsageError(
                f"the request holds {n_users:,} users; the limit is {self.max_users:,} users per request: "
                "send them in several requests"
            )
        lengths = np.bincount(codes[codes >= 0], minlength=n_users)
        if n_users and lengths.max() > self.max_history:
            longest = int(np.argmax(lengths))
            raise UsageError(
                f"user {_plain(users[longest])!r} has {int(lengths[longest]):,} items in the request; the limit is "
                f"{self.max_history:,} items per history"
            )
        k = check_k(k, n_items, self.max_k)
        rows = n_users * k
        if rows > self.max_rows:
            raise UsageError(
                f"the answer would hold {rows:,} rows ({n_users:,} users × k={k}); the limit is "
                f"{self.max_rows:,} rows per request: send fewer users or a smaller k"
            )
        return k


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (so that a message shows ``7``, not ``np.int64(7)``)."""
    return value.item() if isinstance(value, np.generic) else value
