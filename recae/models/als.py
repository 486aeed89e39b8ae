"""Implicit-feedback matrix factorization by alternating least squares, fitted by ``implicit``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recae.checks import Constraint, Interval
from recae.models._implicit import blas_threads, fit_implicit, implicit_fit_context
from recae.models.base import EpochCallback, Recommender, Validation


class ALS(Recommender):
    """Implicit-feedback matrix factorization by alternating least squares (Hu, Koren & Volinsky 2008).

    Fitted by ``implicit.cpu.als.AlternatingLeastSquares`` (conjugate-gradient
    solver, 3 steps per user/item, as ``implicit`` does by default). Only the
    item factors ``Y`` are kept; a history is scored by solving its user factors
    with ``Y`` fixed — exactly ``implicit``'s user step (its Cholesky
    ``recalculate_user``), see :meth:`fold_in`.

    Confidence, as ``implicit`` 0.7 defines it: an observed entry with value
    ``r`` has confidence ``c = alpha · r`` (so ``alpha`` multiplies the whole
    matrix), an unobserved entry has confidence 1 and preference 0. With
    binary data and ``alpha = 1`` every entry weighs the same. (Hu et al.'s
    ``c = 1 + alpha · r`` is ``alpha' = 1 + alpha`` here for binary data.)
    The penalty is ``regularization · (‖x_u‖² + ‖y_i‖²)``, not scaled by counts.

    Parameters
    ----------
    factors : int
        Latent dimensions (``implicit``'s default is 100; 64 here, the low end
        of the search space).
    regularization : float
        λ ≥ 0 (``implicit``'s default 0.01).
    alpha : float
        Confidence scale > 0 (``implicit``'s default 1.0).
    iterations : int
        ALS sweeps (``implicit``'s default 15).
    random_state : int, optional
        Seeds the initial factors; the fit is deterministic for any
        ``num_threads`` (each user's and item's solve is independent).
    num_threads : int
        Threads for ``implicit``'s fit; 0 = every core.
    """

    name = "als"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "factors": [Interval(int, 1, None)],
        "regularization": [Interval(float, 0, None)],
        "alpha": [Interval(float, 0, None, closed="neither")],
        "iterations": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, None), None],
        "num_threads": [Interval(int, 0, None)],
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        def on_epoch(iteration: int, elapsed: float, loss: float | None) -> None:
            if callback is not None:
                callback({"epoch": iteration + 1, "epoch_seconds": float(elapsed)})

        with implicit_fit_context():
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                random_state=self.random_state,
            )
            fit_implicit(model, X, "ALS", callback=on_epoch)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        """User factors for histories ``X`` (n × n_items), item factors held fixed.

        For each row, with ``Y`` the item factors, ``c_i = alpha · x_i`` on the
        history's items and ``p_i = 1`` there::

            x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ · Yᵀ C_u p_u

        in float64. Rows whose confidences are all 1 share one matrix (a single
        Cholesky); the others are solved as a stack of factors × factors systems.

        Returns
        -------
        ndarray of float32, shape (n, factors)
        """
        Y = self.item_factors_.astype(np.float64)
        f = Y.shape[1]
        A0 = Y.T @ Y
        A0[np.diag_indices(f)] += float(self.regularization)
        C = sp.csr_matrix(X, dtype=np.float64) * float(self.alpha)
        rhs = np.asarray(C @ Y)  # (n, f): Σ_i c_i y_i
        users = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A0), rhs.T).T
        # Rows with some c_i ≠ 1 need their own matrix A0 + Σ_i (c_i − 1) y_i y_iᵀ.
        w = C.data - 1.0
        row_of = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
        special = np.unique(row_of[w != 0.0])
        chunk = max(1, min(len(special), (64 << 20) // (8 * f * f)))  # ≤ 64 MB of stacked systems
        # Many small products and solves: one BLAS thread is as fast as several
        # and does not collapse when other processes load the cores.
        with blas_threads(1):
            for start in range(0, len(special), chunk):
                rows = special[start : start + chunk]
                A = np.repeat(A0[None], len(rows), axis=0)
                for k, u in enumerate(rows):
                    lo, hi = C.indptr[u], C.indptr[u + 1]
                    Yu = Y[C.indices[lo:hi]]
                    A[k] += Yu.T @ (Yu * w[lo:hi, None])
                users[rows] = np.linalg.solve(A, rhs[rows][:, :, None])[:, :, 0]
        return users.astype(np.float32)

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return self.fold_in(X) @ self.item_factors_.T

    def _embed(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
        return self.fold_in(X), None  # the user factors, item factors held fixed

    def item_vectors(self) -> np.ndarray:
        """The item factors (n_items × factors)."""
        self._check_fitted()
        return self.item_factors_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_factors_ = np.asarray(state["item_factors"], dtype=np.float32)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        # Ranges where 30 TPE trials find strong settings on ML-1M-sized data
        # (with 64 factors in the space, TPE settled there and missed 256 factors
        # with strong regularisation, the best setting on ml-1m-lcfn).
        return {
            "factors": trial.suggest_categorical("factors", [128, 256]),
            "regularization": trial.suggest_float("regularization", 10.0, 500.0, log=True),
            # implicit's confidence is alpha·r, so alpha < 1 would trust an observed
            # entry less than an unobserved one.
            "alpha": trial.suggest_float("alpha", 2.0, 30.0, log=True),
            "iterations": trial.suggest_int("iterations", 10, 20),
        }
