"""A model's search space with some parameters fixed: what each trial of a search draws.

Each model declares ``search_space(trial)`` next to its code, calling the
trial's ``suggest_*`` methods; the trial here is duck-typed (an Optuna trial
or anything with those methods), so this module needs no Optuna itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


__all__ = ["FixedTrial", "draw_params"]
