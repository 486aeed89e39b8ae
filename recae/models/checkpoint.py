"""Training checkpoints: where an iterative fit saves its whole state, and resumes from it.

A :class:`Checkpoint` is one file. The training loop
(:meth:`recae.models.autoencoder._Autoencoder._fit`) saves into it every
``every`` epochs, at each new best validation epoch and at the last epoch:
the network, the optimiser (Adam's moments and step counts), the step count
that drives KL annealing, numpy's and torch's random states, the epoch, the
learning curve so far and the best epoch's weights. A fit given a checkpoint
that holds a state continues after that state's epoch and ends exactly where
an uninterrupted fit with the same seed ends.

Each save writes a temporary file beside the checkpoint and renames it over
the old one, so a process killed at any moment (``kill -9`` included) leaves
the previous checkpoint or the new one, never a torn file. The file is read
with ``torch.load(weights_only=True)``: tensors and plain Python values only,
never pickled code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recae.errors import DataError, UsageError
from recae.files import atomic_path, signals_deferred


class Checkpoint:
    """One checkpoint file of one fit.

    Parameters
    ----------
    path : path
        The file; its folder is created on the first save.
    every : int
        Save every ``every`` epochs (≥ 1); the loop also saves at each new best
        validation epoch and at its last epoch.
    on_save : callable, optional
        Called with ``path`` after each save (the benchmark logs the file to
        its MLflow run).
    """

    def __init__(self, path: str | Path, every: int = 10, on_save: Callable[[Path], None] | None = None):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UsageError(f"checkpoint every={every!r}: expected a whole number of epochs ≥ 1")
        self.path = Path(path)
        self.every = every
        self.on_save = on_save

    def due(self, epoch: int, improved: bool, last: bool) -> bool:
        """Whether the loop saves after ``epoch``: every ``every`` epochs, at a new best, at the end."""
        return improved or last or epoch % self.every == 0

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (temporary file, fsync, rename), then call ``on_save``.

        Ctrl-C or SIGTERM during the write is handled once the file is in place
        (:func:`~recae.files.signals_deferred`): torch's zip writer, stopped
        between two records, would fail as it closes and hide the interruption.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with signals_deferred(), atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
        if self.on_save is not None:
            self.on_save(self.path)

    def load(self, key: str) -> dict[str, Any] | None:
        """The saved state, or None when nothing was saved yet.

        ``key`` identifies the fit (:func:`fit_key`); a checkpoint written by
        another fit (other parameters or data) is refused with ``UsageError``,
        an unreadable file with ``DataError``, both naming the file.
        """
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a file that is not a checkpoint of this program
            raise DataError(f"{self.path}: not a readable recae checkpoint ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict) or state.get("key") != key:
            raise UsageError(
                f"{self.path}: this checkpoint was written by a fit with other parameters or data; "
                "resume with the settings that wrote it, or remove the file to start again"
            )
        return state


def fit_key(name: str, params: dict[str, Any], X: sp.csr_matrix) -> str:
    """A digest of what determines a fit: the model's name and parameters, and the matrix."""
    digest = hashlib.sha256()
    digest.update(json.dumps([name, params], sort_keys=True, default=str).encode())
    digest.update(json.dumps(list(X.shape)).encode())
    for part in (X.indptr, X.indices, X.data):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


__all__ = ["Checkpoint", "fit_key"]
