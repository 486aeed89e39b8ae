"""The on-disk form of a fitted model: a folder with its parameters and its arrays.

::

    model/
      recae-model.json   {"format": "recae-model/1", "model": "ease", "params": {...}, "n_items": 1682}
      state.npz          the learned arrays, read back with ``allow_pickle=False``

Nothing in the folder is code, so reading a model executes nothing from it.
Which class the parameters belong to is decided by the caller
(:meth:`recae.models.base.Recommender.load`), from the ``model`` name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recae.errors import DataError
from recae.files import atomic_path

MODEL_FORMAT = "recae-model/1"
META_FILE = "recae-model.json"
STATE_FILE = "state.npz"


def write_model_dir(path: str | Path, meta: dict[str, Any], state: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (plus the format tag) and ``state`` to the folder ``path``; return it.

    The folder is written beside its destination and renamed into place
    (:func:`recae.files.atomic_path`), so a failed write leaves any earlier
    model at ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": MODEL_FORMAT, **meta}
    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        # np.asarray keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
        np.savez(tmp / STATE_FILE, **{k: np.asarray(v, order="C") for k, v in state.items()})
    return path


def read_model_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and the arrays of a folder written by :func:`write_model_dir`.

    Raises ``DataError`` naming the file when the folder is not a saved model,
    its JSON is broken or its format is unknown.
    """
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise DataError(f"{path}: not a saved recae model (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_file}: not valid JSON ({e})") from None
    if meta.get("format") != MODEL_FORMAT:
        raise DataError(f"{meta_file}: unknown format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
    with np.load(path / STATE_FILE, allow_pickle=False) as npz:
        state = {k: npz[k] for k in npz.files}
    return meta, state


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with tuples as lists and numpy scalars as Python numbers; fails on anything else."""
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    json.dumps(out)  # fails loudly if a parameter is not plain data
    return out
