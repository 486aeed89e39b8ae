"""A model's search space with some parameters fixed: what each trial of a search draws.

Each model declares ``search_space(trial)`` next to its code, calling the
trial's ``suggest_*`` methods; the trial here is duck-typed (an Optuna trial
or anything with those methods), so this module needs no Optuna itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recae.errors import UsageError
from recae.models import get_model_class


class FixedTrial:
    """An Optuna trial whose ``suggest_*`` return the fixed value for a fixed name.

    A fixed parameter is then not drawn at all, so the sampler does not spend
    a dimension on it. (Parameters whose Optuna name differs from the model's,
    such as the autoencoders' ``hidden_dim`` → ``hidden_dims``, are drawn and
    then overridden.)
    """

    def __init__(self, trial: Any, fixed: Mapping[str, Any]):
        self._trial = trial
        self._fixed = fixed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._fixed[name] if name in self._fixed else self._trial.suggest_float(name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._fixed[name] if name in self._fixed else self._trial.suggest_int(name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self._fixed:
            return self._fixed[name]
        return self._trial.suggest_categorical(name, *args, **kwargs)


def draw_params(model: str, trial: Any, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model parameters for one trial: ``search_space(trial)`` with ``fixed`` put in place.

    Parameters
    ----------
    model : str
        A registry name.
    trial : optuna.trial.Trial
    fixed : mapping, optional
        Parameters that are not searched.

    Returns
    -------
    dict
        Keyword arguments for :func:`recae.models.make_model`.
    """
    fixed = dict(fixed or {})
    return {**get_model_class(model).search_space(FixedTrial(trial, fixed)), **fixed}


class _StartTrial:
    """A trial whose ``suggest_*`` answer with a start point's values, recording them.

    ``values`` are the model's parameters (defaults with the user's in their
    place); ``given`` the names the user set, whose values must lie in the
    searched range. An Optuna name that is not a model parameter but the
    singular of a one-element list parameter (``hidden_dim`` of
    ``hidden_dims=[600]``) takes that element.
    """

    def __init__(self, model: str, values: Mapping[str, Any], given: Mapping[str, Any]):
        self.model = model
        self.values = values
        self.given = given
        self.params: dict[str, Any] = {}  # Optuna's names → the start's values
        self.used: set[str] = set()  # the model parameter names consulted

    def _lookup(self, name: str) -> tuple[str | None, Any]:
        if name in self.values:
            return name, self.values[name]
        listed = self.values.get(name + "s")
        if isinstance(listed, list | tuple) and len(listed) == 1:
            return name + "s", listed[0]
        return None, None

    def _answer(self, name: str, value_ok: Any, fallback: Any, wanted: str) -> Any:
        key, value = self._lookup(name)
        if key is None:
            return fallback
        self.used.add(key)
        if value_ok(value):
            self.params[name] = value
            return value
        if key in self.given:
            raise UsageError(f"--start {self.model}.{key}={self.given[key]!r}: outside the searched {wanted}")
        return fallback  # a default outside the range: left to the sampler

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> Any:
        ok = lambda v: isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high  # noqa: E731
        return self._answer(name, ok, low, f"range [{low:g}, {high:g}]")

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> Any:
        ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high  # noqa: E731
        return self._answer(name, ok, low, f"range [{low}, {high}] of integers")

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        ok = lambda v: any(type(v) is type(c) and v == c for c in choices)  # noqa: E731
        return self._answer(name, ok, choices[0], f"choices {list(choices)}")


def start_point(model: str, start: Mapping[str, Any], fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A search's first trial: the model's defaults with ``start`` in their place, as the
    values of the trial's parameters (Optuna's names, for ``study.enqueue_trial``).

    Each parameter the search draws (those ``fixed`` are not drawn) takes
    ``start[name]``, else the model's default. A default outside the searched
    range, or not among its choices, is left to the sampler. Raises
    ``UsageError`` for a ``start`` value outside its range, and for a name in
    ``start`` the search does not draw (a fixed one, or one its other values
    leave out).
    """
    fixed = dict(fixed or {})
    cls = get_model_class(model)
    values = {**cls().get_params(), **start}
    trial = _StartTrial(model, values, start)
    cls.search_space(FixedTrial(trial, fixed))
    unused = sorted(set(start) - trial.used)
    if unused:
        raise UsageError(
            f"--start {', '.join(f'{model}.{name}' for name in unused)}: not drawn by the search of {model!r} "
            "(fixed by --param or --config, not a parameter it searches, or left out by the other values)"
        )
    return trial.params


__all__ = ["FixedTrial", "draw_params", "start_point"]
