"""Baselines: most-popular, EASE, and adapters over ``implicit`` (ALS, BPR, item-kNN).

Every model here scores from a history alone (fold-in), like the autoencoders:
a user never seen in ``fit`` is scored the same way as one that was. The
``implicit`` models are built and fitted inside ``_fit`` (float32 CSR in, CPU
only); what they learned is copied out as plain arrays, and scoring is done
with numpy from those arrays. So a model loaded from ``np.load(...,
allow_pickle=False)`` scores exactly like the one that was saved, and no
``implicit`` object is kept.

==============  ===========================================  ====================================
model           learned state                                score of a history ``x`` (1 × items)
==============  ===========================================  ====================================
``popularity``  users per item                               the same count vector for everyone
``ease``        ``B`` (items × items, zero diagonal)         ``x @ B``
``als``         item factors ``Y``                           ``x_u @ Yᵀ``, ``x_u`` solved from ``x``
``bpr``         item factors + item bias, item counts        ``[x_u, 1] @ Yᵀ``, ``x_u`` fitted to ``x``
``item-knn``    sparse item–item similarity ``S``            ``x @ S``
==============  ===========================================  ====================================

Threads: the ``implicit`` models take ``num_threads`` (0 = every core), and
their fits run with BLAS limited to one thread, as ``implicit`` asks
(``implicit.utils.check_blas_config``: a threaded OpenBLAS under ``implicit``'s
own OpenMP threads is much slower).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recae.errors import MemoryBudgetError, ModelFitError, UsageError
from recae.models.base import EpochCallback, Recommender, Validation

# ----------------------------------------------------------------- checks


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise UsageError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_float(
    name: str,
    value: Any,
    minimum: float,
    *,
    strict: bool = False,
    maximum: float | None = None,
) -> float:
    bound = f"> {minimum:g}" if strict else f"≥ {minimum:g}"
    if maximum is not None:
        bound += f" and ≤ {maximum:g}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > minimum if strict else value >= minimum
        if maximum is not None:
            ok = ok and value <= maximum
    if not ok:
        raise UsageError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_seed(name: str, value: Any) -> int | None:
    if value is None:
        return None
    return _check_int(name, value, 0)


def _blas_threads(n: int) -> contextlib.AbstractContextManager[Any]:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


@contextlib.contextmanager
def _implicit_fit_context() -> Iterator[None]:
    """One BLAS thread while ``implicit`` fits, and its CSR-conversion notices silenced.

    ``implicit`` warns when BLAS is threaded (and runs much slower); its item-kNN
    weighting functions return COO, which its own ``check_csr`` then converts
    with a ``ParameterWarning`` that says nothing about the caller's input.
    """
    from implicit.utils import ParameterWarning

    with _blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        yield


def _fit_implicit(model: Any, X: sp.csr_matrix, what: str, **kwargs: Any) -> None:
    """``model.fit(X)``, with ``implicit``'s NaN error turned into ``ModelFitError``."""
    from implicit.recommender_base import ModelFitError as ImplicitFitError

    try:
        model.fit(X, show_progress=False, **kwargs)
    except ImplicitFitError as e:
        raise ModelFitError(
            f"{what}: {e}; try a smaller learning rate or more regularization"
        ) from None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or ``None`` when unknown.

    ``MemAvailable`` from ``/proc/meminfo`` (Linux), else ``psutil`` if it is
    installed; recae does not depend on ``psutil``.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


# ------------------------------------------------------------- popularity


class Popularity(Recommender):
    """Most popular items: the score of an item is the number of training users who have it.

    Every history gets the same scores; ties are broken by the ranking code
    (lower item index first). Takes no parameters.
    """

    name = "popularity"

    def __init__(self) -> None:
        pass

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        # Count users, not interaction values: an explicit zero is not an interaction.
        self.item_counts_ = np.bincount(X.indices[X.data > 0], minlength=X.shape[1]).astype(
            np.int64
        )

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return np.repeat(self.item_counts_.astype(np.float32)[None, :], X.shape[0], axis=0)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_counts_ = np.asarray(state["item_counts"], dtype=np.int64)


# ------------------------------------------------------------------- EASE


class EASE(Recommender):
    """EASE^R, the embarrassingly shallow autoencoder (Steck, WWW 2019).

    Closed form: with ``P = (XᵀX + l2·I)⁻¹``, the item–item weights are
    ``B = I − P · diag(1 / diag(P))``, so ``B_ij = −P_ij / P_jj`` and
    ``diag(B) = 0``. A history ``x`` (1 × n_items) scores ``x @ B``.

    Parameters
    ----------
    l2 : float
        λ, the L2 penalty on ``B`` (> 0). The default 500 is the value Steck
        reports for ML-20M (Sec. 4: λ = 500 on ML-20M, 1,000 on Netflix, 200 on
        MSD); smaller catalogues usually want it tuned (ML-1M-sized data: ~1000).
    max_memory : float, optional
        Memory budget in bytes. ``None``: the memory available now
        (``MemAvailable`` in ``/proc/meminfo``, or ``psutil``); when neither can
        be read the check is skipped. Fitting refuses with ``MemoryBudgetError``
        when :meth:`memory_estimate` exceeds the budget.

    Notes
    -----
    The inverse is computed in float64 by Cholesky (LAPACK ``potrf`` then
    ``potri``, in place: ``XᵀX + λI`` is symmetric positive definite for λ > 0);
    ``B`` is stored as float32 (4·n_items² bytes).
    """

    name = "ease"

    #: Peak memory in units of one n_items × n_items float64 matrix: the dense
    #: Gram matrix (inverted in place) plus the sparse product it comes from
    #: (≤ 1.5 such matrices: float64 values and int32 indices), then the float32
    #: copy of ``B`` beside the float64 inverse (1.5). Three is an upper bound.
    MEMORY_FACTOR = 3

    def __init__(self, l2: float = 500.0, max_memory: float | None = None) -> None:
        self.l2 = l2
        self.max_memory = max_memory

    @classmethod
    def memory_estimate(cls, n_items: int) -> int:
        """Peak bytes ``fit`` needs for ``n_items`` items: ``MEMORY_FACTOR × 8 × n_items²``."""
        return int(cls.MEMORY_FACTOR * 8 * int(n_items) ** 2)

    def _check_params(self) -> None:
        _check_float("l2", self.l2, 0.0, strict=True)
        if self.max_memory is not None:
            _check_float("max_memory", self.max_memory, 0.0, strict=True)

    def check_resources(self, n_users: int, n_items: int) -> None:
        """Refuse, naming the estimate, when the items × items matrices exceed the budget."""
        self._check_params()
        budget: float | None
        if self.max_memory is not None:
            budget = float(self.max_memory)
            source = "max_memory"
        else:
            budget = available_memory()
            source = "available memory"
        need = self.memory_estimate(n_items)
        if budget is not None and need > budget:
            raise MemoryBudgetError(
                f"EASE on n_items={n_items} needs about {need / 1e9:.3g} GB "
                f"({self.MEMORY_FACTOR} × {n_items}×{n_items} float64 matrices: Gram, inverse, weights), "
                f"over the budget of {budget / 1e9:.3g} GB ({source}); "
                "drop rare items (k-core) or raise max_memory"
            )

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        self.check_resources(*X.shape)
        l2 = float(self.l2)
        n = X.shape[1]
        X64 = X.astype(np.float64)
        gram = (X64.T @ X64).toarray()
        del X64
        gram[np.diag_indices(n)] += l2
        P = _spd_inverse_inplace(gram, l2)
        # B_ij = −P_ij / P_jj: scale column j by −1/P_jj, then zero the diagonal.
        P /= -np.diag(P)[None, :]
        np.fill_diagonal(P, 0.0)
        self.weights_ = P.astype(np.float32)
        del P, gram

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.weights_, dtype=np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = np.asarray(state["weights"], dtype=np.float32)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"l2": trial.suggest_float("l2", 10.0, 1e4, log=True)}


def _spd_inverse_inplace(A: np.ndarray, l2: float) -> np.ndarray:
    """Invert a symmetric positive definite float64 matrix, overwriting ``A``; returns it.

    ``potrf`` + ``potri`` work in place, so unlike ``np.linalg.inv`` or
    ``cho_solve`` against the identity no second n × n buffer is needed; the
    speed is about the same (1.5 s for n = 3,043 on 2 cores).
    """
    n = A.shape[0]
    # A is C-ordered and symmetric, so A.T is the same matrix in Fortran order:
    # LAPACK works on it in place. Its upper triangle is A's lower one.
    F = A.T
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (F,))
    c, info = potrf(F, lower=False, overwrite_a=True, clean=False)
    if info > 0:
        raise ModelFitError(
            f"EASE: XᵀX + l2·I is not positive definite (leading minor {info} of {n}) "
            f"with l2={l2:g}; increase l2"
        )
    if info < 0:
        raise ModelFitError(f"EASE: LAPACK potrf rejected argument {-info}")
    inv, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelFitError(
            f"EASE: the inverse of XᵀX + l2·I failed (LAPACK potri info={info}) with l2={l2:g}"
        )
    if not (inv is F or np.shares_memory(inv, A)):  # LAPACK made a copy after all
        A[...] = inv.T
    # Only F's upper triangle (A's lower triangle) holds the inverse: mirror it,
    # a block of rows at a time so that no second n × n buffer is needed.
    block = 512
    for start in range(0, n, block):
        stop = min(start + block, n)
        # rows start:stop, columns right of the diagonal block ← lower triangle below it
        A[start:stop, stop:] = A[stop:, start:stop].T
        d = A[start:stop, start:stop]
        iu = np.triu_indices(stop - start, 1)
        d[iu] = d.T[iu]
    return A


# -------------------------------------------------------------------- ALS


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

    def _check_params(self) -> None:
        _check_int("factors", self.factors, 1)
        _check_float("regularization", self.regularization, 0.0)
        _check_float("alpha", self.alpha, 0.0, strict=True)
        _check_int("iterations", self.iterations, 1)
        _check_seed("random_state", self.random_state)
        _check_int("num_threads", self.num_threads, 0)

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self._check_params()

        def on_epoch(iteration: int, elapsed: float, loss: float | None) -> None:
            if callback is not None:
                callback({"epoch": iteration + 1, "epoch_seconds": float(elapsed)})

        with _implicit_fit_context():
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                random_state=self.random_state,
            )
            _fit_implicit(model, X, "ALS", callback=on_epoch)
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
        with _blas_threads(1):
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


# -------------------------------------------------------------------- BPR


class BPR(Recommender):
    """Bayesian personalized ranking (Rendle et al., UAI 2009), fitted by ``implicit``.

    ``implicit.cpu.bpr.BayesianPersonalizedRanking`` learns user factors
    ``x_u`` and item factors ``y_i`` plus an item bias ``b_i`` (stored as an
    extra last column of the item factors, with a constant 1 in the user
    factors) by SGD on ``ln σ(x_u·(y_i − y_j) + b_i − b_j)`` with an L2 penalty,
    one sampled (user, positive i, negative j) triple per interaction per
    epoch. Interaction values are ignored (any stored value > 0 is a positive).
    ``implicit`` draws the positive pair (u, i) uniformly among interactions
    and the negative j as the item of another uniformly drawn interaction, i.e.
    in proportion to item popularity, skipping j the user has.

    ``implicit`` cannot score a user it did not train on, so every history is
    scored by *folding in*: its user factors are fitted with the item factors
    and biases fixed, on the same objective (see :meth:`fold_in`). Only the
    item side is kept from ``fit``.

    Parameters
    ----------
    factors : int
        Latent dimensions, not counting the bias column (``implicit``'s default
        is 100; 64 here, the low end of the search space, as for ALS).
    learning_rate : float
        SGD step of ``implicit``'s fit (> 0; ``implicit``: 0.01).
    regularization : float
        L2 penalty per SGD update (≥ 0; ``implicit``: 0.01); also the fold-in's
        unless ``fold_in_regularization`` is set.
    iterations : int
        Epochs (``implicit``: 100).
    random_state : int, optional
        Seeds ``implicit`` and the fold-in. ``None`` draws a seed once per fit.
    num_threads : int
        Threads for ``implicit``'s fit. Default 1, unlike ``implicit``'s 0
        (every core): with more than one thread its SGD updates race (Hogwild)
        and one RNG is seeded per thread, so the fit is not reproducible and
        depends on the core count. Use 0 or n > 1 for speed when exact repeats
        do not matter.
    fold_in_steps : int
        Adam steps of the fold-in (≥ 1). Scoring costs about
        ``fold_in_steps × fold_in_samples × factors`` per history: with the
        defaults, ~10 s for 6,000 ML-1M histories at 64 factors on 2 cores.
    fold_in_samples : int
        (positive, negative) pairs drawn per history per fold-in step.
    fold_in_lr : float
        Initial Adam step size of the fold-in; it decays linearly to 0.
    fold_in_regularization : float, optional
        L2 penalty of the fold-in; ``None`` (default) uses ``regularization``,
        i.e. the objective ``implicit`` trained the users on. Tune it: the
        user side of BPR overfits, and a larger value (more weight on the
        item biases) ranks much better. On ML-1M (6,022 users, lcfn split) the
        other defaults give Recall@20 0.162 with the default fold-in, 0.173
        with the user factors ``implicit`` itself learned, and 0.249 with
        ``fold_in_regularization=0.2``.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int | None = 0,
        num_threads: int = 1,
        fold_in_steps: int = 100,
        fold_in_samples: int = 128,
        fold_in_lr: float = 0.05,
        fold_in_regularization: float | None = None,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.fold_in_steps = fold_in_steps
        self.fold_in_samples = fold_in_samples
        self.fold_in_lr = fold_in_lr
        self.fold_in_regularization = fold_in_regularization

    def _check_params(self) -> None:
        _check_int("factors", self.factors, 1)
        _check_float("learning_rate", self.learning_rate, 0.0, strict=True)
        _check_float("regularization", self.regularization, 0.0)
        _check_int("iterations", self.iterations, 1)
        _check_seed("random_state", self.random_state)
        _check_int("num_threads", self.num_threads, 0)
        self._check_fold_in_params()

    def _check_fold_in_params(self) -> None:
        _check_int("fold_in_steps", self.fold_in_steps, 1)
        _check_int("fold_in_samples", self.fold_in_samples, 1)
        _check_float("fold_in_lr", self.fold_in_lr, 0.0, strict=True)
        if self.fold_in_regularization is not None:
            _check_float("fold_in_regularization", self.fold_in_regularization, 0.0)

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self._check_params()
        if self.random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
        else:
            seed = int(self.random_state)
        positives = X.copy()
        positives.data = (positives.data > 0).astype(np.float32)
        positives.eliminate_zeros()
        total = positives.nnz

        def on_epoch(epoch: int, elapsed: float, correct: int, skipped: int) -> None:
            if callback is not None:
                sampled = total - skipped
                callback(
                    {
                        "epoch": epoch + 1,
                        "epoch_seconds": float(elapsed),
                        "train_auc": correct / sampled if sampled else float("nan"),
                        "skipped": skipped / total,
                    }
                )

        with _implicit_fit_context():
            model = BayesianPersonalizedRanking(
                factors=int(self.factors),
                learning_rate=float(self.learning_rate),
                regularization=float(self.regularization),
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=int(self.num_threads),
                verify_negative_samples=True,
                random_state=seed,
            )
            _fit_implicit(model, positives, "BPR", callback=on_epoch)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.item_counts_ = np.bincount(positives.indices, minlength=X.shape[1]).astype(np.int64)
        self.seed_ = seed

    def fold_in(self, X: sp.csr_matrix) -> np.ndarray:
        """User factors (bias column excluded) for histories ``X``, item side held fixed.

        For a history with positive items ``P`` this minimizes, over ``x``
        (``factors`` values; the user's bias weight stays 1 as in ``implicit``)::

            E[ softplus(−(x·(y_i − y_j) + b_i − b_j)) ] + λ/2 · ‖x‖²

        with i uniform over ``P`` and j drawn in proportion to its training
        popularity among items not in ``P`` — the distribution ``implicit``'s
        SGD samples for that user — and λ = ``fold_in_regularization`` (default:
        ``regularization``, whose per-update penalty in ``implicit`` is this
        one). The problem is convex; it is solved by ``fold_in_steps`` Adam
        steps on ``fold_in_samples`` fresh pairs each, with a linearly decaying
        step, from ``implicit``'s initialization (uniform in ±0.5/factors).
        Pairs whose j falls in ``P`` are dropped, as ``implicit`` skips them.
        The result is a sampled solution, not the exact optimum: on ML-1M with
        ``fold_in_regularization=0.2`` the defaults land within ~10% (relative
        L2) of a run with 15× the steps and 4× the samples.

        The random draws of a history come from a generator seeded by
        ``(seed, hash of its item set)``, so a history gets the same factors
        alone or in any batch, and for every fit with the same seed. An empty
        history gets zero factors (its scores are the item biases).

        Returns
        -------
        ndarray of float32, shape (n, factors)
        """
        self._check_fold_in_params()
        f = self.item_factors_.shape[1] - 1
        steps, m = int(self.fold_in_steps), int(self.fold_in_samples)
        n_items = self.item_factors_.shape[0]
        out = np.zeros((X.shape[0], f), dtype=np.float32)
        # users per batch: their draws (steps × m × 9 bytes), gathered item
        # factors (4 × m × f × 4 bytes) and seen-mask stay within ~64 MB
        batch = max(1, (64 << 20) // (steps * m * 9 + 16 * m * f + n_items))
        with _blas_threads(1):  # many small stacked products, as in ALS.fold_in
            for start in range(0, X.shape[0], batch):
                rows = slice(start, min(start + batch, X.shape[0]))
                out[rows] = self._fold_in_batch(X[rows])
        return out

    def _fold_in_batch(self, X: sp.csr_matrix) -> np.ndarray:
        """:meth:`fold_in` of one batch of histories, all at once."""
        f = self.item_factors_.shape[1] - 1
        Y = np.ascontiguousarray(self.item_factors_[:, :f], dtype=np.float32)
        bias = np.ascontiguousarray(self.item_factors_[:, f], dtype=np.float32)
        cum = np.cumsum(self.item_counts_, dtype=np.float64)
        n_items = Y.shape[0]
        steps, m = int(self.fold_in_steps), int(self.fold_in_samples)
        reg = (
            self.regularization
            if self.fold_in_regularization is None
            else self.fold_in_regularization
        )
        reg, lr = np.float32(reg), float(self.fold_in_lr)
        beta1, beta2, eps = 0.9, 0.999, np.float32(1e-8)

        out = np.zeros((X.shape[0], f), dtype=np.float32)
        histories = [
            X.indices[X.indptr[u] : X.indptr[u + 1]][X.data[X.indptr[u] : X.indptr[u + 1]] > 0]
            for u in range(X.shape[0])
        ]
        live = [u for u, h in enumerate(histories) if len(h)]
        if not live:
            return out
        B = len(live)
        x = np.empty((B, f), dtype=np.float32)
        pos = np.empty((B, steps, m), dtype=np.int32)
        neg = np.empty((B, steps, m), dtype=np.int32)
        seen = np.zeros((B, n_items), dtype=bool)
        for b, u in enumerate(live):
            items = histories[u]
            x[b], rng = self._init_user(items, f)
            draws = rng.random((2, steps, m))
            pos[b] = items[(draws[0] * len(items)).astype(np.int64)]
            neg[b] = np.searchsorted(cum, draws[1] * cum[-1], side="right")
            seen[b, items] = True
        np.minimum(neg, n_items - 1, out=neg)  # in case draws[1] * cum[-1] rounds up to cum[-1]
        valid = ~seen[np.arange(B)[:, None, None], neg]
        inv_valid = (1.0 / np.maximum(valid.sum(axis=2), 1)).astype(np.float32)

        m1 = np.zeros_like(x)
        m2 = np.zeros_like(x)
        for t in range(steps):
            Yp, Yn = Y[pos[:, t]], Y[neg[:, t]]  # (B, m, f)
            s = (Yp @ x[:, :, None])[..., 0] - (Yn @ x[:, :, None])[..., 0]
            s += bias[pos[:, t]] - bias[neg[:, t]]
            # d/dx softplus(−s) = −σ(−s)·(y_i − y_j), σ(−s) = (1 − tanh(s/2)) / 2
            z = np.where(valid[:, t], 0.5 * (1.0 - np.tanh(0.5 * s)), 0.0).astype(np.float32)
            z *= inv_valid[:, t, None]
            grad = (z[:, None, :] @ Yn)[:, 0] - (z[:, None, :] @ Yp)[:, 0] + reg * x
            m1 = beta1 * m1 + (1 - beta1) * grad
            m2 = beta2 * m2 + (1 - beta2) * grad * grad
            step = lr * math.sqrt(1 - beta2 ** (t + 1)) / (1 - beta1 ** (t + 1))
            step *= 1.0 - t / steps  # linear decay to 0: the sampling noise dies out
            x -= np.float32(step) * m1 / (np.sqrt(m2) + eps)
        out[live] = x
        return out

    def _init_user(self, items: np.ndarray, f: int) -> tuple[np.ndarray, np.random.Generator]:
        """``implicit``'s initial user factors and the generator for this history's draws."""
        digest = hashlib.blake2b(
            np.ascontiguousarray(items, dtype=np.int64).tobytes(), digest_size=16
        ).digest()
        rng = np.random.default_rng([int(self.seed_), int.from_bytes(digest, "little")])
        return (rng.random(f) - 0.5) / f, rng

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        users = self.fold_in(X)
        f = users.shape[1]
        return users @ self.item_factors_[:, :f].T + self.item_factors_[:, f][None, :]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "item_factors": self.item_factors_,
            "item_counts": self.item_counts_,
            "seed": np.array([self.seed_], dtype=np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_factors_ = np.asarray(state["item_factors"], dtype=np.float32)
        self.item_counts_ = np.asarray(state["item_counts"], dtype=np.int64)
        self.seed_ = int(np.asarray(state["seed"]).reshape(-1)[0])

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "factors": trial.suggest_categorical("factors", [64, 128, 256]),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.1, log=True),
            "regularization": trial.suggest_float("regularization", 1e-4, 0.1, log=True),
            "iterations": trial.suggest_int("iterations", 50, 400, log=True),
            "fold_in_regularization": trial.suggest_float(
                "fold_in_regularization", 1e-3, 1.0, log=True
            ),
        }


# --------------------------------------------------------------- item-kNN


class ItemKNN(Recommender):
    """Item–item nearest neighbours from ``implicit.nearest_neighbours``.

    ``implicit`` weights the training matrix (``cosine``: rows of Xᵀ
    L2-normalized; ``tfidf``: TF-IDF then normalized; ``bm25``: BM25 with
    ``bm25_k1``, ``bm25_b``; in each case items are the documents and users the
    terms), keeps for every item its ``neighbors`` most similar items by dot
    product of the weighted columns — the item itself included — and scores a
    user's *raw* history row against that sparse similarity ``S``::

        score = x @ S        # x: (n, n_items) unweighted, S: (n_items, n_items)

    which is what ``implicit``'s own ``recommend`` computes, so the two agree
    for any history. ``S`` is not symmetric (row i holds i's neighbours).

    Parameters
    ----------
    weighting : {"cosine", "tfidf", "bm25"}
    neighbors : int
        ``implicit``'s ``K`` (its default is 20).
    bm25_k1, bm25_b : float
        BM25's term-frequency saturation (≥ 0) and length normalization (in
        [0, 1]); ``implicit``'s ``BM25Recommender`` defaults. Used by ``bm25`` only.
    num_threads : int
        Threads for the similarity computation; 0 = every core.
    """

    name = "item-knn"
    WEIGHTINGS = ("cosine", "tfidf", "bm25")

    def __init__(
        self,
        weighting: str = "bm25",
        neighbors: int = 100,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 0,
    ) -> None:
        self.weighting = weighting
        self.neighbors = neighbors
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def _check_params(self) -> None:
        if not isinstance(self.weighting, str) or self.weighting not in self.WEIGHTINGS:
            raise UsageError(
                f"weighting must be one of {', '.join(map(repr, self.WEIGHTINGS))}; got {self.weighting!r}"
            )
        _check_int("neighbors", self.neighbors, 1)
        _check_float("bm25_k1", self.bm25_k1, 0.0)
        _check_float("bm25_b", self.bm25_b, 0.0, maximum=1.0)
        _check_int("num_threads", self.num_threads, 0)

    def _fit(
        self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None
    ) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

        self._check_params()
        k, k1, b = int(self.neighbors), float(self.bm25_k1), float(self.bm25_b)
        threads = int(self.num_threads)
        if self.weighting == "bm25":
            model = BM25Recommender(K=k, K1=k1, B=b, num_threads=threads)
        elif self.weighting == "tfidf":
            model = TFIDFRecommender(K=k, num_threads=threads)
        else:
            model = CosineRecommender(K=k, num_threads=threads)
        with _implicit_fit_context():
            model.fit(X, show_progress=False)
        S = sp.csr_matrix(model.similarity, dtype=np.float64)
        S.sort_indices()
        self.similarity_ = S

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        return (X @ self.similarity_).toarray().astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        S = self.similarity_
        return {
            "similarity_data": S.data,
            "similarity_indices": S.indices,
            "similarity_indptr": S.indptr,
            "similarity_shape": np.array(S.shape, dtype=np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in state["similarity_shape"])
        self.similarity_ = sp.csr_matrix(
            (state["similarity_data"], state["similarity_indices"], state["similarity_indptr"]),
            shape=shape,
        )

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        # BM25's k1 and b stay at their defaults: searched only on the BM25 branch,
        # they left that branch too few of 30 trials to be found.
        return {
            "weighting": trial.suggest_categorical("weighting", list(cls.WEIGHTINGS)),
            "neighbors": trial.suggest_int("neighbors", 10, 1000, log=True),
        }
