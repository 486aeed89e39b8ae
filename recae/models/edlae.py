"""EDLAE, the emphasized denoising linear autoencoder (Steck, NeurIPS 2020), in closed form."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg

from recae.checks import Constraint, Interval
from recae.models.base import EpochCallback, Recommender, Validation
from recae.models.gram import DTYPE_CONSTRAINT, dense_gram, spd_inverse_inplace
from recae.models.gram import memory_estimate as full_rank_memory
from recae.models.memory import check_memory_budget

#: The rank the refusal of an over-budget full-rank fit suggests (the authors'
#: notebook trains its low-rank models with 1,000 dimensions).
SUGGESTED_RANK = 1000


class EDLAE(Recommender):
    """Emphasized denoising linear autoencoder (Steck, "Autoencoders that don't overfit
    towards the identity", NeurIPS 2020), full rank or low rank.

    The item × item matrix ``B`` minimises the expected emphasized denoising loss

        E_Δ Σ_u Σ_k ω_uk (x_uk − (x̃_u B)_k)² + l2·‖B‖²,

    where x̃ = Δ ⊙ x / (1 − p) drops each input entry with probability p
    (``dropout``), and an output entry's error is weighted ω = a/ν when its
    input entry was dropped and b/ν when it was kept, ν = a·p + b·(1 − p) (so
    that the mean weight is 1 and ``l2`` keeps its meaning whatever the
    emphasis; only a/b matters). The expectation has a closed form. With
    G = XᵀX, Λ = p/(1 − p)·diag(G) and C = (G + Λ + l2·I)⁻¹, column k of ``B``
    is −φ_k·C_{:,k}/C_kk off the diagonal and β_k on it, where φ_k and β_k are
    scalars of G_kk, C_kk, p, a, b and l2 (see :func:`emphasis_scales`):

    - full emphasis, b = 0 (the default): φ = 1, β = 0, i.e. EASE with the
      diagonal penalty Λ + l2·I; this is the full-rank EDLAE of the paper's
      Eqs. 8 and 9 and of the authors' notebook (``learn_EDLAE_fullrank``);
    - no emphasis, a = b: the denoising linear autoencoder, B = (G + Λ + l2·I)⁻¹ G.

    ``rank=None`` computes C exactly (n_items² floats, like EASE). With
    ``rank=r``, C is approximated from the top r singular vectors W (σ their
    singular values) of X·Γ^{-1/2}, Γ = Λ + l2·I: C ≈ Γ⁻¹ − Γ^{-1/2} W
    diag(σ²/(1 + σ²)) Wᵀ Γ^{-1/2}, exact when r reaches the rank of X. The
    model is then a rank-r matrix with its diagonal replaced by β, kept as two
    n_items × r factors, and memory is O(n_items·r). This differs from the
    paper's low-rank EDLAE (B = UVᵀ fitted by ADMM, or by the alternating least
    squares of the notebook), whose every step needs an n_items × n_items inverse.

    Parameters
    ----------
    dropout : float
        p, the input dropout probability, in (0, 1). Default 0.33 and
        ``l2=300`` are the notebook's full-rank values for ML-20M.
    a, b : float
        The emphasis: weights of the errors on dropped-out (a > 0) and on kept
        (b ≥ 0) input entries.
    l2 : float
        L2 penalty on ``B`` (> 0).
    rank : int, optional
        ``None``: full rank. Else the rank of the low-rank variant.
    max_memory : float, optional
        Memory budget in bytes (``None``: the memory available now); fitting
        refuses with ``MemoryBudgetError`` when :meth:`memory_estimate` exceeds it.
    random_state : int
        Seed of the start vector of the truncated SVD (low rank only).
    dtype : {"float32", "float64"}
        Full rank: the precision of the Gram matrix and its in-place inverse
        (:mod:`recae.models.gram`); float32 (default) needs half the memory.
    """

    name = "edlae"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "dropout": [Interval(float, 0, 1, closed="neither")],
        "a": [Interval(float, 0, None, closed="neither")],
        "b": [Interval(float, 0, None)],
        "l2": [Interval(float, 0, None, closed="neither")],
        "rank": [Interval(int, 1, None), None],
        "max_memory": [Interval(float, 0, None, closed="neither"), None],
        "random_state": [Interval(int, 0, None)],
        "dtype": DTYPE_CONSTRAINT,
    }

    def __init__(
        self,
        dropout: float = 0.33,
        a: float = 1.0,
        b: float = 0.0,
        l2: float = 300.0,
        rank: int | None = None,
        max_memory: float | None = None,
        random_state: int = 0,
        dtype: str = "float32",
    ) -> None:
        self.dropout = dropout
        self.a = a
        self.b = b
        self.l2 = l2
        self.rank = rank
        self.max_memory = max_memory
        self.random_state = random_state
        self.dtype = dtype

    @staticmethod
    def memory_estimate(n_items: int, rank: int | None = None, n_users: int = 0, dtype: str = "float32") -> int:
        """Peak bytes ``fit`` needs, about: at full rank one n_items × n_items ``dtype``
        matrix and its workspace (:func:`recae.models.gram.memory_estimate`); at rank
        r, the truncated SVD's Lanczos vectors (≈ 2r + 1 of the longer side) and four
        n_items × r float64 arrays."""
        if rank is None:
            return full_rank_memory(n_items, dtype)
        return int(8 * rank * ((2 * max(n_users, n_items) + 1) + 4 * n_items))

    def check_resources(self, n_users: int, n_items: int) -> None:
        """Refuse, naming the estimate, when fitting this shape would exceed the memory budget."""
        self._validate_params()
        need = self.memory_estimate(n_items, self.rank, n_users, self.dtype)
        if self.rank is None:
            low = self.memory_estimate(n_items, min(SUGGESTED_RANK, n_items), n_users)
            explain = (
                f"full-rank EDLAE on n_items={n_items} needs about {need / 1e9:.3g} GB ({need} bytes: "
                f"one {n_items}×{n_items} {self.dtype} matrix and its workspace; the low-rank variant "
                f"needs about {low / 1e9:.3g} GB with rank={min(SUGGESTED_RANK, n_items)})"
            )
        else:
            explain = f"EDLAE with rank={self.rank} on {n_users}×{n_items} needs about {need / 1e9:.3g} GB ({need} bytes)"
        check_memory_budget(need, self.max_memory, explain)

    def _fit(self, X: sp.csr_matrix, validation: Validation | None, callback: EpochCallback | None) -> None:
        self.check_resources(*X.shape)
        X64 = X.astype(np.float64)
        gram_diag = np.asarray(X64.multiply(X64).sum(axis=0)).ravel()
        penalty = self.dropout / (1 - self.dropout) * gram_diag + self.l2  # Γ = Λ + l2·I
        if self.rank is None:
            self._fit_full_rank(X, gram_diag, penalty)
        else:
            self._fit_low_rank(X64, gram_diag, penalty)

    def _fit_full_rank(self, X: sp.csr_matrix, gram_diag: np.ndarray, penalty: np.ndarray) -> None:
        n = X.shape[1]
        Q = dense_gram(X, self.dtype, penalty)
        q_diag = np.diag(Q).astype(np.float64)
        C = spd_inverse_inplace(Q, "EDLAE", self.l2)  # overwrites Q
        c_diag = np.diag(C).astype(np.float64)
        phi, beta = emphasis_scales(gram_diag, q_diag, c_diag, self.dropout, self.a, self.b, self.l2)
        C *= -(phi / c_diag)[None, :].astype(C.dtype)  # column k: −φ_k C_{:,k} / C_kk
        C[np.diag_indices(n)] = beta
        self.weights_ = C if C.dtype == np.float32 else C.astype(np.float32)

    def _fit_low_rank(self, X64: sp.csr_matrix, gram_diag: np.ndarray, penalty: np.ndarray) -> None:
        scale = 1.0 / np.sqrt(penalty)
        sigma2, W = _top_right_singular(X64 @ sp.diags(scale), self.rank, self.random_state)
        E = scale[:, None] * W  # Γ^{-1/2} W
        shrink = sigma2 / (1.0 + sigma2)
        low_diag = (E * E) @ shrink  # diag(E diag(shrink) Eᵀ)
        c_diag = 1.0 / penalty - low_diag
        q_diag = gram_diag + penalty
        phi, beta = emphasis_scales(gram_diag, q_diag, c_diag, self.dropout, self.a, self.b, self.l2)
        column = phi / c_diag
        # B = E Dᵀ off the diagonal, β on it: the decoder's row k is E_k diag(shrink) φ_k / C_kk
        self.encoder_ = E.astype(np.float32)
        self.decoder_ = (E * shrink[None, :] * column[:, None]).astype(np.float32)
        self.diagonal_ = (beta - low_diag * column).astype(np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Row i of B: how much a history holding item i adds to each item's score
        (low rank: its encoder row against the decoder; the diagonal is left out)."""
        if self.rank is None:
            return self.weights_[items]
        return self.encoder_[items] @ self.decoder_.T

    def _score(self, X: sp.csr_matrix) -> np.ndarray:
        if self.rank is None:
            return np.asarray(X @ self.weights_, dtype=np.float32)
        scores = np.asarray(X @ self.encoder_) @ self.decoder_.T
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        scores[rows, X.indices] += X.data * self.diagonal_[X.indices]
        return scores

    def _get_state(self) -> dict[str, np.ndarray]:
        if self.rank is None:
            return {"weights": self.weights_}
        return {"encoder": self.encoder_, "decoder": self.decoder_, "diagonal": self.diagonal_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        for key, value in state.items():
            setattr(self, f"{key}_", np.asarray(value, dtype=np.float32))

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            "dropout": trial.suggest_float("dropout", 0.05, 0.8),
            "l2": trial.suggest_float("l2", 1.0, 3e3, log=True),
            "b": trial.suggest_float("b", 0.0, 1.0),
        }


def emphasis_scales(
    gram_diag: np.ndarray,
    q_diag: np.ndarray,
    c_diag: np.ndarray,
    p: float,
    a: float,
    b: float,
    l2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """φ and β of each column of the EDLAE solution, each of shape (n_items,).

    Inputs: diag(G), diag(Q) with Q = G + Λ + l2·I, and diag(Q⁻¹). Minimising
    column k's expected loss over its diagonal entry β_k first leaves, over the
    off-diagonal entries, the zero-diagonal problem plus a rank-one term of
    weight κ_k; by Sherman–Morrison its solution is the zero-diagonal one
    (−C_{:,k}/C_kk) times φ_k = (1 − κ_k G_kk) / (1 − κ_k τ_k), where
    τ_k = Q_kk − 1/C_kk. With w = b(1 − p)/ν the kept entries' share of the loss,
    κ_k = w² / (w G_kk + l2 (1 − p)²) and β_k = w (1 − p)(G_kk − φ_k τ_k) / (w G_kk + l2 (1 − p)²).
    """
    w = b * (1 - p) / (a * p + b * (1 - p))
    denominator = w * gram_diag + l2 * (1 - p) ** 2
    kappa = w * w / denominator
    tau = q_diag - 1.0 / c_diag
    phi = (1.0 - kappa * gram_diag) / (1.0 - kappa * tau)
    beta = w * (1 - p) * (gram_diag - phi * tau) / denominator
    return phi, beta


def _top_right_singular(Z: sp.csr_matrix, rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest ``rank`` squared singular values of ``Z`` (descending) and their right
    singular vectors (n_cols × rank); fewer when ``Z`` has fewer.

    ARPACK (``svds``) with a seeded start vector; a dense decomposition where
    it cannot be used (``rank`` within one of the smaller side), which then
    costs no more memory than the factors themselves.
    """
    n_rows, n_cols = Z.shape
    rank = min(rank, n_rows, n_cols)
    if rank < min(n_rows, n_cols) - 1:
        _, sigma, Vt = scipy.sparse.linalg.svds(Z, k=rank, random_state=seed, return_singular_vectors="vh")
        sigma2, V = sigma**2, Vt.T
    elif n_cols <= n_rows:
        sigma2, V = np.linalg.eigh((Z.T @ Z).toarray())
    else:
        _, sigma, Vt = np.linalg.svd(Z.toarray(), full_matrices=False)
        sigma2, V = sigma**2, Vt.T
    order = np.argsort(sigma2)[::-1][:rank]
    return np.maximum(sigma2[order], 0.0), np.ascontiguousarray(V[:, order])
