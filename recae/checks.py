"""Checks of values that enter recae from outside: each rule lives here, once.

Every check returns the value converted to its canonical type, or raises
:class:`~recae.errors.UsageError` with a one-line message naming the value and
what was expected.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recae.errors import UsageError


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` ≥ 1 (an integer type, not a bool or float), else ``UsageError``."""
    if isinstance(value, bool):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise UsageError(f"{name} must be an integer, got {value!r}") from None
    if value < 1:
        raise UsageError(f"{name} must be ≥ 1, got {value}")
    return value


def check_k(k: Any, n_items: int | None = None, max_k: int | None = None) -> int:
    """The length of a top-N list: an int in ``[1, min(n_items, max_k)]``, else ``UsageError``.

    Integral floats (``20.0``, as JSON request parameters may carry them) are
    accepted as their integer; bools, other floats and non-numbers are not.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        if isinstance(k, float | np.floating) and float(k).is_integer():
            k = int(k)
        else:
            raise UsageError(f"k must be an integer ≥ 1, got {k!r}")
    k = int(k)
    if k < 1:
        raise UsageError(f"k must be an integer ≥ 1, got {k}")
    if n_items is not None and k > n_items:
        raise UsageError(f"k={k} exceeds the model's catalogue of {n_items} items")
    if max_k is not None and k > max_k:
        raise UsageError(f"k={k} exceeds the limit of {max_k} items per list")
    return k


# ------------------------------------------------------------- parameter tables
#
# A model declares, per constructor parameter, the values it accepts (after
# scikit-learn's ``_parameter_constraints``); :func:`check_params` checks a dict
# of values against such a table and returns nothing (a model keeps its
# parameters as given). A value is valid when it satisfies any one of its
# parameter's constraints: ``None`` (the value ``None``), a type such as
# ``str``, an :class:`Interval`, :class:`Options` or :class:`ListOf`.


@dataclass(frozen=True)
class Interval:
    """Numbers of ``type`` (``int`` or ``float``) between ``left`` and ``right``.

    ``None`` leaves that side open-ended. ``closed`` says which ends belong to
    the interval: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``. An
    ``int`` interval takes integer types only (not bools, not ``2.0``); a
    ``float`` interval takes any finite real number, integers included.
    """

    type: type
    left: float | None
    right: float | None
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.type not in (int, float):
            raise TypeError(f"Interval type must be int or float, got {self.type!r}")
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval closed must be both, left, right or neither, got {self.closed!r}")

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.type is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not (isinstance(value, numbers.Real) and math.isfinite(value)):
            return False
        left_in = self.closed in ("both", "left")
        right_in = self.closed in ("both", "right")
        if self.left is not None and not (value >= self.left if left_in else value > self.left):
            return False
        return self.right is None or (value <= self.right if right_in else value < self.right)

    def __str__(self) -> str:
        bounds = []
        if self.left is not None:
            bounds.append(f"{'≥' if self.closed in ('both', 'left') else '>'} {self.left:g}")
        if self.right is not None:
            bounds.append(f"{'≤' if self.closed in ('both', 'right') else '<'} {self.right:g}")
        what = "an integer" if self.type is int else "a finite number"
        return " ".join([what, " and ".join(bounds)]).strip()


@dataclass(frozen=True, init=False)
class Options:
    """One of a fixed set of values, named in the order given (a set is sorted)."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        ordered = sorted(values) if isinstance(values, set | frozenset) else tuple(values)
        object.__setattr__(self, "values", tuple(ordered))

    def accepts(self, value: Any) -> bool:
        # isinstance first: == alone lets True match 1 and compares arrays element-wise
        return any(
            isinstance(value, type(v)) and isinstance(value, bool) == isinstance(v, bool) and value == v
            for v in self.values
        )

    def __str__(self) -> str:
        return f"one of {', '.join(map(repr, self.values))}"


@dataclass(frozen=True)
class ListOf:
    """A list or tuple whose every item satisfies ``item`` (an empty one included)."""

    item: Interval | Options

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(self.item.accepts(v) for v in value)

    def __str__(self) -> str:
        return f"a list whose items are each {self.item}"


#: One entry of a parameter table's list: see the comment above :class:`Interval`.
Constraint = Interval | Options | ListOf | type | None


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.accepts(value)


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return "a string" if constraint is str else f"a {constraint.__name__}"
    return str(constraint)


def check_params(
    params: Mapping[str, Any],
    constraints: Mapping[str, Sequence[Constraint]],
    owner: str = "",
) -> None:
    """Raise ``UsageError`` for the first of ``params`` that meets none of its constraints.

    Parameters
    ----------
    params : mapping of name → value
        The values to check; every name must have an entry in ``constraints``
        (a missing one is a programming error: ``KeyError``).
    constraints : mapping of name → list of constraints
        The declared table, e.g. ``{"l2": [Interval(float, 0, None, closed="neither")],
        "random_state": [Interval(int, 0, None), None]}``.
    owner : str
        Prefixes the message (a model's name), e.g. ``"als: factors must be an
        integer ≥ 1, got 0"``.
    """
    prefix = f"{owner}: " if owner else ""
    for name, value in params.items():
        allowed = constraints[name]
        if not any(_accepts(c, value) for c in allowed):
            # "an integer ≥ 0 or None" reads better than "None or an integer ≥ 0"
            expected = " or ".join(_describe(c) for c in sorted(allowed, key=lambda c: c is None))
            raise UsageError(f"{prefix}{name} must be {expected}, got {value!r}")
