"""The ``Recommender`` interface every model implements.

A recommender maps a user's history (one row of a users × items matrix) to a
score per item. Every model here, the autoencoders and the baselines alike,
scores from the history alone: a user it never saw in training is scored the
same way as one it did ("fold-in"), which is what strong generalization and
top-N lists for new users need.

Public methods check, private methods compute: ``fit`` → ``_fit``, ``score`` →
``_score``. Shapes, dtypes, the fitted state and each model's parameters
(against the table it declares) are checked here, once.
``recommend`` is written once, on top of ``score`` and :func:`recae.evaluation.ranking.topk`,
so that every model goes through the same ranking path.
"""

from __future__ import annotations

import abc
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recae.checks import Constraint, check_k, check_params, check_positive_int
from recae.errors import DataError, NotFittedError, UsageError
from recae.evaluation.ranking import topk
from recae.models.checkpoint import Checkpoint
from recae.models.outputs import ModelOutputs
from recae.models.persistence import jsonable, read_model_dir, write_model_dir

#: Called by iterative models once per epoch with a record such as
#: ``{"epoch": 3, "loss": 412.5, "val/ndcg_at_100": 0.41, "epoch_seconds": 1.2}``.
EpochCallback = Callable[[dict[str, float]], None]

#: ``(X_in, X_out)``: validation users' input rows and their held-out targets.
Validation = tuple[sp.csr_matrix, sp.csr_matrix]


def check_matrix(X: Any, name: str = "X", n_items: int | None = None) -> sp.csr_matrix:
    """Return ``X`` as a float32 CSR matrix with sorted indices, or raise ``DataError``.

    Parameters
    ----------
    X : scipy sparse matrix or 2-D array, shape (n_users, n_items)
        Interactions; a dense array is converted (with a warning).
    name : str
        How the matrix is named in error messages.
    n_items : int, optional
        The number of columns the matrix must have (a fitted model's catalogue).
    """
    if isinstance(X, np.ndarray | list):
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise DataError(f"{name} must be 2-D (users × items), got an array of shape {arr.shape}")
        warnings.warn(f"{name} is dense; converting it to CSR", stacklevel=3)
        X = sp.csr_matrix(arr)
    if not sp.issparse(X):
        raise DataError(f"{name} must be a scipy sparse matrix, got {type(X).__name__}")
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (users × items), got shape {X.shape}")
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    X.sort_indices()
    if n_items is not None and X.shape[1] != n_items:
        raise DataError(
            f"{name} has {X.shape[1]} item columns, but the model was fitted on {n_items} items"
        )
    if X.nnz:
        if not np.isfinite(X.data).all():
            raise DataError(f"{name} contains NaN or infinite values")
        if (X.data < 0).any():
            raise DataError(f"{name} contains negative values (min {X.data.min():g}); expected ≥ 0")
    return X


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Yield consecutive row slices of at most ``batch_size`` rows covering ``range(n)``."""
    batch_size = check_positive_int(batch_size, "batch_size")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


class Recommender(ModelOutputs, abc.ABC):
    """Base class: settings in the constructor, learning in ``fit``, scoring from histories.

    Subclasses set ``name`` (the registry key), store their constructor arguments
    unchanged under the same names (scikit-learn's rule: the constructor does no
    work), declare the values each accepts in ``_parameter_constraints``, and
    implement ``_fit``, ``_score``, ``_get_state`` and ``_set_state``. Learned
    attributes end in ``_``; every call to ``fit`` starts from scratch.
    """

    #: The key of this model in :data:`recae.models.REGISTRY`.
    name: ClassVar[str] = ""
    #: Whether ``fit`` uses its ``validation`` argument (early stopping).
    uses_validation: ClassVar[bool] = False
    #: Whether ``fit`` takes a ``checkpoint`` to save its training state into and
    #: resume from (see :mod:`recae.models.checkpoint`).
    resumable: ClassVar[bool] = False
    #: Every constructor parameter → the values it accepts (any one of the
    #: constraints; see :func:`recae.checks.check_params`), e.g.
    #: ``{"factors": [Interval(int, 1, None)], "random_state": [Interval(int, 0, None), None]}``.
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}

    # ----------------------------------------------------------------- params
    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameter names, in order."""
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments as currently set."""
        return {p: getattr(self, p) for p in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change settings; an unknown name raises ``UsageError`` naming it."""
        known = self.param_names()
        for key, value in params.items():
            if key not in known:
                raise UsageError(
                    f"model {self.name!r} has no parameter {key!r}; it takes: {', '.join(known)}"
                )
            setattr(self, key, value)
        return self

    def _validate_params(self, names: Iterable[str] | None = None) -> None:
        """Raise ``UsageError`` naming the first parameter (of ``names``; default all)
        whose value is outside ``_parameter_constraints``."""
        names = self.param_names() if names is None else names
        check_params({n: getattr(self, n) for n in names}, self._parameter_constraints, owner=self.name)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- training
    def fit(
        self,
        X: sp.spmatrix,
        validation: Validation | None = None,
        callback: EpochCallback | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> Self:
        """Learn from the training users' histories.

        Parameters
        ----------
        X : sparse matrix, shape (n_users, n_items)
            Training interactions (binary for the paper's protocol).
        validation : (X_in, X_out), optional
            Validation users' fold-in rows and held-out targets, each
            (n_val_users, n_items). Iterative models select their epoch on it;
            the others ignore it.
        callback : callable, optional
            Receives one record per epoch (see :data:`EpochCallback`).
        checkpoint : Checkpoint, optional
            Resumable models only: the fit saves its training state there as it
            goes and, when it already holds one, continues from it (see
            :mod:`recae.models.checkpoint`).

        Returns
        -------
        self

        Raises
        ------
        DataError
            For a malformed matrix; ``UsageError`` for a parameter outside the
            model's ``_parameter_constraints``. Both before any training, and
            either leaves the model unfitted.
        """
        if checkpoint is not None and not self.resumable:
            raise UsageError(f"model {self.name!r} trains in one step and takes no checkpoint")
        X = check_matrix(X, "training matrix")
        if X.shape[0] == 0 or X.shape[1] == 0 or X.nnz == 0:
            raise DataError(f"training matrix is empty (shape {X.shape}, {X.nnz} interactions)")
        if validation is not None:
            v_in, v_out = validation
            v_in = check_matrix(v_in, "validation input", X.shape[1])
            v_out = check_matrix(v_out, "validation targets", X.shape[1])
            if v_in.shape[0] != v_out.shape[0]:
                raise DataError(
                    f"validation input has {v_in.shape[0]} rows but its targets have {v_out.shape[0]}"
                )
            validation = (v_in, v_out)
        self._forget()
        self._validate_params()  # after _forget: a refused refit leaves no earlier state behind
        # Set before _fit so that iterative models can score validation users
        # through the shared ranking path while they train.
        self.n_items_ = X.shape[1]
        try:
            if checkpoint is None:
                self._fit(X, validation, callback)
            else:
                self._fit(X, validation, callback, checkpoint=checkpoint)  # type: ignore[call-arg]
        except BaseException:
            self._forget()  # a failed fit leaves no half-fitted model behind
            raise
        return self

    def selected_params(self) -> dict[str, Any]:
        """Parameters that repeat what this fit chose on the validation users, for a refit
        without them: an iterative model's best epoch as ``epochs``; empty for models
        that choose nothing."""
        best = getattr(self, "best_epoch_", None)
        return {} if best is None or "epochs" not in self.param_names() else {"epochs": int(best)}

    def _forget(self) -> None:
        """Drop every learned attribute (public names ending in ``_``)."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)

    def check_resources(self, n_users: int, n_items: int) -> None:
        """Raise ``MemoryBudgetError`` now if fitting on this shape would not fit in memory.

        Called before any work starts, so that an impossible run fails at once;
        models whose memory does not grow beyond O(users + items) need not
        override it.
        """
        return None

    @abc.abstractmethod
    def _fit(self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None) -> None:
        """Learn from a checked float32 CSR matrix."""

    # --------------------------------------------------------------- scoring
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X) first")

    def score(self, X: sp.spmatrix) -> np.ndarray:
        """Score every item for each history.

        Parameters
        ----------
        X : sparse matrix, shape (n_users, n_items)
            Histories (fold-in rows); the users need not have been seen in ``fit``.

        Returns
        -------
        ndarray of float32, shape (n_users, n_items)
            Higher is better. Items in the history are *not* masked here; use
            :meth:`recommend` for top-N lists.
        """
        self._check_fitted()
        X = check_matrix(X, "input", self.n_items_)
        if X.shape[0] == 0:
            return np.zeros((0, self.n_items_), dtype=np.float32)
        scores = np.asarray(self._score(X), dtype=np.float32)
        if scores.shape != X.shape:
            raise AssertionError(f"{type(self).__name__}._score returned shape {scores.shape}, expected {X.shape}")
        return scores

    @abc.abstractmethod
    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        """Dense scores of shape ``X.shape`` for a checked batch of histories."""

    def recommend(
        self,
        X: sp.spmatrix,
        k: int,
        exclude_seen: bool = True,
        allowed: np.ndarray | None = None,
        batch_size: int = 1000,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per history, best first.

        Parameters
        ----------
        X : sparse matrix, shape (n_users, n_items)
            Histories. With ``exclude_seen`` their items are never recommended.
        k : int
            List length (≥ 1); capped at the number of items.
        allowed : bool array of shape (n_items,), optional
            Items that may be recommended (an allow/deny list); others never are.
        batch_size : int
            Users scored at once; memory is O(batch_size × n_items).

        Returns
        -------
        items : int64 array, shape (n_users, k)
            Item indices; ``-1`` pads lists of users with fewer than ``k`` eligible items.
        scores : float32 array, shape (n_users, k)
            Their scores; ``-inf`` where padded.
        """
        self._check_fitted()
        X = check_matrix(X, "input", self.n_items_)
        k = min(check_k(k), self.n_items_)
        items = np.empty((X.shape[0], k), dtype=np.int64)
        scores = np.empty((X.shape[0], k), dtype=np.float32)
        for rows in iter_batches(X.shape[0], batch_size):
            batch = X[rows]
            s = self.score(batch)
            items[rows], scores[rows] = topk(
                s, k, exclude=batch if exclude_seen else None, allowed=allowed
            )
        return items, scores

    def _checked_input(self, X: Any) -> sp.csr_matrix:
        """``X`` checked as histories over this model's items (for :class:`ModelOutputs`)."""
        return check_matrix(X, "input", self.n_items_)

    # ----------------------------------------------------------- persistence
    @abc.abstractmethod
    def _get_state(self) -> dict[str, np.ndarray]:
        """The learned state as plain numeric arrays (no objects, no pickles)."""

    @abc.abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``_get_state`` returned."""

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the directory ``path`` (created or replaced); return it.

        The directory holds ``recae-model.json`` (class, parameters) and
        ``state.npz`` (arrays only): see :mod:`recae.models.persistence`. A
        failed save leaves any earlier model at ``path`` intact.
        """
        self._check_fitted()
        meta = {"model": self.name, "params": jsonable(self.get_params()), "n_items": int(self.n_items_)}
        return write_model_dir(path, meta, self._get_state())

    @staticmethod
    def load(path: str | Path) -> Recommender:
        """Read a model written by :meth:`save`; its class is the one registered under its name."""
        meta, state = read_model_dir(path)
        model = model_class(meta["model"])(**meta["params"])
        model._set_state(state)
        model.n_items_ = int(meta["n_items"])
        return model

    # --------------------------------------------------------------- tuning
    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Hyperparameters for one tuning trial, drawn with an Optuna ``trial``.

        Models declare their space next to their code by overriding this.
        """
        raise UsageError(f"model {cls.name!r} declares no search space; there is nothing to tune")


def model_class(name: str) -> type[Recommender]:
    """The model class whose ``name`` is ``name``, or ``UsageError`` listing the known names.

    Found among the subclasses of :class:`Recommender` (every model in the
    registry is imported with the :mod:`recae.models` package, which any import
    of this module runs first), so that this module need not import the
    registry, which imports it. Only a class that sets ``name`` itself counts:
    a subclass that inherits its parent's name is not a second model of that name.
    """
    found: dict[str, type[Recommender]] = {}
    stack: list[type[Recommender]] = [Recommender]
    while stack:
        for cls in stack.pop().__subclasses__():
            if cls.__dict__.get("name") and not inspect.isabstract(cls):
                found.setdefault(cls.name, cls)
            stack.append(cls)
    try:
        return found[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(found)}") from None
