"""What a fitted model gives beyond scores: codes, item similarity, samples, reconstruction likelihoods.

:class:`ModelOutputs` is a base of :class:`~recae.models.base.Recommender`:
each method refuses with a one-line ``UsageError`` unless the model defines
the hook behind it (``_embed``, ``item_vectors`` or ``item_similarity``,
``_sample``, ``_multinomial_scores``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recae.checks import check_k
from recae.errors import DataError, UsageError
from recae.evaluation.anomalies import mean_log_loss
from recae.evaluation.ranking import topk


class ModelOutputs:
    """The model outputs beyond scores; see the module docstring."""

    name: str
    n_items_: int

    # hooks that Recommender provides
    def _check_fitted(self) -> None:
        raise NotImplementedError

    def _checked_input(self, X: Any) -> sp.csr_matrix:
        raise NotImplementedError

    def score(self, X: sp.spmatrix) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------- embeddings
    def embed_users(self, X: sp.spmatrix) -> tuple[np.ndarray, np.ndarray | None]:
        """Each history's code: float32 (n × d), and for variational models the code's
        variance (n × d; None otherwise). ``UsageError`` for a model without codes."""
        self._check_fitted()
        X = self._checked_input(X)
        codes, variances = self._embed(X)
        return np.asarray(codes, dtype=np.float32), None if variances is None else np.asarray(variances, dtype=np.float32)

    def _embed(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
        raise UsageError(
            f"model {self.name!r} gives no user codes; embeddings come from Mult-VAE, Mult-DAE, "
            "RecVAE, CDAE, ELSA, ALS and BPR"
        )

    # ------------------------------------------------------ reconstruction
    def reconstruction_nll(self, X: sp.spmatrix, batch_size: int = 1000) -> np.ndarray:
        """Each history's mean −log p(i | x) over its own items, p the model's multinomial
        reconstruction given the whole history: float64 (n,), NaN for an empty history.
        ``UsageError`` for a model whose scores are not a multinomial's logits."""
        self._check_fitted()
        if not self._multinomial_scores():
            raise UsageError(
                f"model {self.name!r} has no multinomial reconstruction; reconstruction likelihoods "
                "come from Mult-VAE, Mult-DAE (likelihood = multinomial) and RecVAE"
            )
        X = self._checked_input(X)
        out = np.empty(X.shape[0], dtype=np.float64)
        for start in range(0, X.shape[0], batch_size):
            rows = slice(start, min(start + batch_size, X.shape[0]))
            scores = self.score(X[rows]).astype(np.float64)
            scores -= scores.max(axis=1, keepdims=True)
            log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
            out[rows] = mean_log_loss(log_probs, X[rows])
        return out

    def _multinomial_scores(self) -> bool:
        """Whether :meth:`score` gives the logits of a multinomial over the items."""
        return False

    # -------------------------------------------------------- synthetic users
    def sample_histories(self, lengths: Any, seed: int = 0) -> sp.csr_matrix:
        """Synthetic histories drawn from a generative model: for each requested length n,
        a code from the prior p(z), then n distinct items drawn from the decoder's
        multinomial p(x|z) without replacement. ``UsageError`` for other models."""
        self._check_fitted()
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if (lengths < 1).any():
            raise DataError(f"a synthetic history needs at least one item, got length {int(lengths.min())}")
        return self._sample(np.minimum(lengths, self.n_items_), seed)

    def _sample(self, lengths: np.ndarray, seed: int) -> sp.csr_matrix:
        raise UsageError(
            f"model {self.name!r} is not generative; synthetic users come from Mult-VAE and RecVAE "
            "(a code from the prior through the decoder)"
        )

    # ---------------------------------------------------------- similar items
    def item_vectors(self) -> np.ndarray:
        """One vector per item, (n_items × d), whose cosine similarity is this model's item
        similarity (an autoencoder's decoder rows, a factor model's item factors);
        ``UsageError`` for a model that has none."""
        raise UsageError(
            f"model {self.name!r} has no item vectors; similar items come from the autoencoders "
            "(but VASP and the blend), EASE, EDLAE, ALS, BPR and item-kNN"
        )

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """How similar each of ``items`` (indices) is to every item: float32 (len(items), n_items).

        The cosine of :meth:`item_vectors`; linear models override it with their
        item × item weights.
        """
        V = np.asarray(self.item_vectors(), dtype=np.float64)
        norms = np.linalg.norm(V, axis=1)
        U = V / np.where(norms > 0, norms, 1.0)[:, None]
        return (U[items] @ U.T).astype(np.float32)

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each of ``items`` (indices), the item itself left out.

        Returns items (int64, len(items) × k, best first, ``-1`` padding) and
        their similarities (float32), as :meth:`recommend` does for users.
        """
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        bad = items[(items < 0) | (items >= self.n_items_)]
        if len(bad):
            raise DataError(f"item index {int(bad[0])} is outside the model's {self.n_items_} items")
        k = min(check_k(k), max(self.n_items_ - 1, 1))
        scores = np.array(self.item_similarity(items), dtype=np.float32)
        scores[np.arange(len(items)), items] = -np.inf  # an item is not its own neighbour
        return topk(scores, k)



__all__ = ["ModelOutputs"]
