"""An ensemble of autoencoders: each member's scores standardized per user, then weighted.

A deep autoencoder (RecVAE, Mult-VAE) and a linear one (EDLAE, EASE) make
different mistakes: the deep model generalizes across users through its
latent code, the linear one keeps item-to-item detail. Blending their scores
is the simplest way to have both, and the weights are chosen on validation,
like an autoencoder's best epoch.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recae.checks import Constraint, Interval, ListOf, Options
from recae.errors import UsageError
from recae.evaluation.metrics import evaluate
from recae.models.base import EpochCallback, Recommender, Validation, model_class

#: The models a blend may hold: the autoencoders, deep and linear.
MEMBERS = ("mult-vae", "mult-dae", "recvae", "cdae", "vasp", "ease", "edlae")
#: The metric the weights are selected on (as the autoencoders' epochs).
SELECTION_METRIC = "ndcg_at_100"


class Blend(Recommender):
    """Weighted sum of per-user standardized scores of fitted autoencoders.

    Each member is fitted on the same training matrix (the iterative ones
    select their epoch on the validation users, as on their own). A user's
    score of item *i* is Σ_m w_m · z_m(i), where z_m is member *m*'s scores of
    that user standardized over the catalogue (mean 0, standard deviation 1),
    so that members whose scores live on different scales (logits, linear
    reconstructions) weigh as their weights say.

    Parameters
    ----------
    members : list of str
        Registered autoencoders to blend (two or more, each once): any of
        ``mult-vae``, ``mult-dae``, ``recvae``, ``cdae``, ``vasp``, ``ease``,
        ``edlae``. Default RecVAE and EDLAE, the best deep and linear models
        on ml-1m-lcfn.
    member_params : dict of member name → dict, optional
        Each member's parameters (its defaults otherwise), e.g.
        ``{"edlae": {"l2": 664.0}}``; in a config file, a table
        ``[blend.member_params.edlae]``.
    weights : list of float, optional
        One non-negative weight per member (not all zero). When None (the
        default), the weights are chosen on the validation users among the
        points of the simplex with step ``grid_step`` (validation NDCG@100);
        without validation users, equal weights.
    grid_step : float
        Step of that grid (0.1: 11 candidates for two members, 66 for three).
    random_state : int
        Passed to every member that takes one.
    """

    name = "blend"
    uses_validation = True
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "members": [ListOf(Options(MEMBERS))],
        "member_params": [dict, None],
        "weights": [ListOf(Interval(float, 0, None)), None],
        "grid_step": [Interval(float, 0, 0.5, closed="right")],
        "random_state": [Interval(int, 0, None)],
    }

    def __init__(
        self,
        members: list[str] | tuple[str, ...] = ("recvae", "edlae"),
        member_params: dict[str, dict[str, Any]] | None = None,
        weights: list[float] | None = None,
        grid_step: float = 0.1,
        random_state: int = 0,
    ):
        self.members = members
        self.member_params = member_params
        self.weights = weights
        self.grid_step = grid_step
        self.random_state = random_state

    # ----------------------------------------------------------- parameters
    def _validate_params(self, names: Any = None) -> None:
        super()._validate_params(names)
        members = list(self.members)
        if len(members) < 2 or len(set(members)) != len(members):
            raise UsageError(f"{self.name}: members must name two or more different autoencoders, got {members}")
        unknown = set(self.member_params or {}) - set(members)
        if unknown:
            raise UsageError(
                f"{self.name}: member_params names {', '.join(sorted(unknown))}, not among members {members}; "
                f"got {self.member_params!r}"
            )
        if self.weights is not None:
            if len(self.weights) != len(members) or not any(w > 0 for w in self.weights):
                raise UsageError(
                    f"{self.name}: weights must give one non-negative weight per member ({len(members)}), "
                    f"not all zero; got {list(self.weights)}"
                )
        try:
            for member in self._build_members():
                member._validate_params()
        except UsageError as e:
            raise UsageError(f"{self.name}: member_params={self.member_params!r}: {e}") from None

    def _build_members(self) -> list[Recommender]:
        built = []
        for name in self.members:
            cls = model_class(name)
            params = dict((self.member_params or {}).get(name, {}))
            if "random_state" in cls.param_names():
                params.setdefault("random_state", self.random_state)
            built.append(cls().set_params(**params))
        return built

    def check_resources(self, n_users: int, n_items: int) -> None:
        for member in self._build_members():
            member.check_resources(n_users, n_items)

    # ------------------------------------------------------------- training
    def _fit(self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None) -> None:
        members = self._build_members()
        for member in members:
            member.fit(X, validation=validation if member.uses_validation else None)
        self.members_ = members
        if self.weights is not None:
            self.weights_ = self._normalized(self.weights)
            return
        if validation is None:
            self.weights_ = self._normalized([1.0] * len(members))
            return
        best_score, best = -np.inf, None
        self.selection_ = []
        for candidate in self._grid(len(members)):
            self.weights_ = candidate
            score = evaluate(self, *validation, ks=(100,)).means()[SELECTION_METRIC]
            self.selection_.append({"weights": candidate.tolist(), f"val/{SELECTION_METRIC}": score})
            if score > best_score:
                best_score, best = score, candidate
        self.weights_ = best
        self.best_score_ = best_score

    def selected_params(self) -> dict[str, Any]:
        """The chosen weights, and each member's own choice (its best epoch)."""
        chosen = {
            name: {**(self.member_params or {}).get(name, {}), **member.selected_params()}
            for name, member in zip(self.members, self.members_, strict=True)
        }
        return {"weights": self.weights_.tolist(), "member_params": {k: v for k, v in chosen.items() if v}}

    def _grid(self, n: int) -> list[np.ndarray]:
        """The points of the simplex with step ``grid_step`` (each a weight vector summing to 1)."""
        steps = int(round(1 / self.grid_step))
        points = [c for c in itertools.product(range(steps + 1), repeat=n) if sum(c) == steps]
        return [np.asarray(c, dtype=np.float64) / steps for c in points]

    @staticmethod
    def _normalized(weights: Any) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        return w / w.sum()

    # -------------------------------------------------------------- scoring
    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        out = np.zeros(X.shape, dtype=np.float32)
        for weight, member in zip(self.weights_, self.members_, strict=True):
            if weight == 0:
                continue
            out += np.float32(weight) * standardized(member.score(X))
        return out

    # ---------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        state = {"weights": np.asarray(self.weights_, dtype=np.float64)}
        for i, member in enumerate(self.members_):
            state.update({f"member{i}/{key}": value for key, value in member._get_state().items()})
            state[f"member{i}/n_items"] = np.asarray(member.n_items_)
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        members = self._build_members()
        for i, member in enumerate(members):
            prefix = f"member{i}/"
            member._set_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k != f"{prefix}n_items"})
            member.n_items_ = int(state[f"{prefix}n_items"])
        self.members_ = members
        self.weights_ = np.asarray(state["weights"], dtype=np.float64)

    # --------------------------------------------------------------- tuning
    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """The members' own spaces, each parameter named ``<member>.<name>`` in the search;
        the weights are chosen on validation inside each fit."""
        default_members = cls().members
        return {
            "member_params": {
                name: model_class(name).search_space(_Prefixed(trial, f"{name}.")) for name in default_members
            }
        }


def standardized(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, divided by its standard deviation (rows with none left as zeros)."""
    scores = np.asarray(scores, dtype=np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.divide(scores - mean, std, out=np.zeros_like(scores), where=std > 0)


class _Prefixed:
    """An Optuna trial whose parameter names get ``prefix`` (members' spaces side by side)."""

    def __init__(self, trial: Any, prefix: str):
        self._trial = trial
        self._prefix = prefix

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._trial.suggest_float(self._prefix + name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._trial.suggest_int(self._prefix + name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._trial.suggest_categorical(self._prefix + name, *args, **kwargs)


__all__ = ["MEMBERS", "Blend", "standardized"]
