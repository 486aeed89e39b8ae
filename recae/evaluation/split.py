"""The matrices of one evaluation protocol, with their leakage checks and fingerprint.

A :class:`Split` is what :mod:`recae.evaluation.protocols` builds: train,
validation and test matrices over the same item columns, the raw ids of their
rows and columns, and the protocol's parameters and counts. :meth:`Split.check`
refuses a split that leaks targets into inputs or users across parts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recae.errors import DataError

__all__ = ["GIVEN", "ROWWISE", "STRONG", "TEMPORAL_GLOBAL", "TEMPORAL_USER", "WEAK", "Split"]

STRONG = "strong-generalization"
GIVEN = "given"
WEAK = "weak-generalization"
TEMPORAL_GLOBAL = "temporal-global"
TEMPORAL_USER = "temporal-last-k"
#: The protocols whose test input is each user's train row (and whose validation is
#: carved from the train rows): built by :func:`recae.evaluation.protocols.given_split`.
ROWWISE = (GIVEN, WEAK, TEMPORAL_GLOBAL, TEMPORAL_USER)


@dataclass(frozen=True)
class Split:
    """The matrices of one evaluation protocol, all over the same item columns.

    Attributes
    ----------
    protocol : str
        ``"strong-generalization"``, or one of :data:`ROWWISE` (``"given"``,
        ``"weak-generalization"``, ``"temporal-global"``, ``"temporal-last-k"``).
    train : CSR (n_train_users, n_items)
        What models are fitted on while they are selected.
    val_in, val_out : CSR (n_val_users, n_items)
        Validation users' input rows and held-out targets.
    test_in, test_out : CSR (n_test_users, n_items)
        Test users' input rows and targets.
    item_ids : array (n_items,)
        Raw item id of each column.
    train_users, val_users, test_users : arrays
        Raw user id of each row of the matching matrices.
    refit_train : CSR or None
        Given split only: the full train rows (train plus the validation
        holdout), for refitting after selection.
    info : dict
        Protocol parameters and counts (seed, fractions, dropped users/items).
    """

    protocol: str
    train: sp.csr_matrix
    val_in: sp.csr_matrix
    val_out: sp.csr_matrix
    test_in: sp.csr_matrix
    test_out: sp.csr_matrix
    item_ids: np.ndarray
    train_users: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray
    refit_train: sp.csr_matrix | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def matrices(self) -> dict[str, sp.csr_matrix]:
        out = {
            "train": self.train,
            "val_in": self.val_in,
            "val_out": self.val_out,
            "test_in": self.test_in,
            "test_out": self.test_out,
        }
        if self.refit_train is not None:
            out["refit_train"] = self.refit_train
        return out

    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the protocol, the matrices and the raw ids.

        Two splits with the same fingerprint hold the same interactions in the
        same rows and columns; MLflow runs carry it as the ``split_fingerprint`` tag.
        """
        h = hashlib.sha256(self.protocol.encode())
        for name, m in self.matrices().items():
            h.update(name.encode())
            h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.indices, dtype=np.int64).tobytes())
        for ids in (self.item_ids, self.train_users, self.val_users, self.test_users):
            h.update("\x1f".join(map(str, ids.tolist())).encode())
            h.update(b"\x1e")
        return h.hexdigest()[:16]

    def check(self) -> None:
        """Raise ``DataError`` if the split leaks or is malformed.

        Checks: every matrix has ``n_items`` columns and rows matching its user
        ids; input and target rows have the same users; no target is also an
        input item of the same user; every held-out user has at least one
        target; under strong generalization, training, validation and test
        users are disjoint; under the given split, validation targets come
        from the train rows and never from the test targets.
        """
        self._check_shapes()
        self._check_heldout()
        if self.protocol == STRONG:
            self._check_users_disjoint()
        elif self.protocol in ROWWISE:
            self._check_validation_from_train()
        else:
            raise DataError(f"split: unknown protocol {self.protocol!r}")

    def _check_shapes(self) -> None:
        for name, m in self.matrices().items():
            if m.shape[1] != self.n_items:
                raise DataError(f"split: {name} has {m.shape[1]} item columns, expected {self.n_items}")
        for name, m, users in (
            ("train", self.train, self.train_users),
            ("val_in", self.val_in, self.val_users),
            ("val_out", self.val_out, self.val_users),
            ("test_in", self.test_in, self.test_users),
            ("test_out", self.test_out, self.test_users),
        ):
            if m.shape[0] != len(users):
                raise DataError(f"split: {name} has {m.shape[0]} rows but {len(users)} user ids")

    def _check_heldout(self) -> None:
        for part, X_in, X_out in (("validation", self.val_in, self.val_out), ("test", self.test_in, self.test_out)):
            overlap = X_in.multiply(X_out).nnz
            if overlap:
                raise DataError(f"split leaks: {overlap} {part} targets are also input items of the same user")
            empty = int((np.diff(X_out.indptr) == 0).sum())
            if empty:
                raise DataError(f"split: {empty} {part} users have no held-out targets")

    def _check_users_disjoint(self) -> None:
        sets = {
            "train": set(self.train_users.tolist()),
            "validation": set(self.val_users.tolist()),
            "test": set(self.test_users.tolist()),
        }
        for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
            shared = sets[a] & sets[b]
            if shared:
                raise DataError(
                    f"split leaks: {len(shared)} users are both {a} and {b} users "
                    f"(e.g. {sorted(shared, key=str)[:3]})"
                )

    def _check_validation_from_train(self) -> None:
        if self.refit_train is None:
            raise DataError("split: the given protocol needs refit_train (the full train rows)")
        # Validation targets must come from the train rows, never from the test rows.
        # A validation user need not be a test user (a user without test items).
        rows = _positions(self.train_users, self.val_users)
        if (rows < 0).any():
            raise DataError("split: validation users missing from the train rows")
        test_rows = _positions(self.test_users, self.val_users)
        tested = test_rows >= 0
        if self.val_out[tested].multiply(self.test_out[test_rows[tested]]).nnz:
            raise DataError("split leaks: validation targets overlap the test targets")
        if (self.val_out - self.val_out.multiply(self.refit_train[rows])).nnz:
            raise DataError("split leaks: validation targets that are not train items")

    def describe(self) -> dict[str, Any]:
        """Counts and parameters, flat, for logging and printing."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "n_items": self.n_items,
            "n_train_users": self.train.shape[0],
            "n_train_interactions": self.train.nnz,
            "n_val_users": self.val_in.shape[0],
            "n_test_users": self.test_in.shape[0],
            "n_test_targets": self.test_out.nnz,
        }
        out.update(self.info)
        return out


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row of each of ``wanted`` in ``ids``, -1 where absent: int64 (len(wanted),)."""
    pos = {u: i for i, u in enumerate(ids.tolist())}
    return np.array([pos.get(u, -1) for u in wanted.tolist()], dtype=np.int64)
