"""Batches onto an accelerator and top-k lists made there: the GPU path of the autoencoders.

On a GPU the costly transfers are the dense ones. A batch of histories goes
to the device as its CSR arrays (``nnz`` numbers, from pinned memory, without
waiting) and is densified there (:func:`dense_on_device`); a batch's scores
never come back: seen items are masked and the top ``k`` chosen on the device
(:func:`device_topk`), and only ``k`` items and scores per user return.

Both functions take any torch device, so the CPU test suite runs them
(``tests/models/test_device.py``) against the numpy path they replace: same
items, same order (ties by lower item index), same padding.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def _to_device(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)  # an asynchronous copy needs pinned memory
    return t.to(device)


def dense_on_device(X: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """The rows of ``X`` as a dense float32 tensor on ``device``, built there from the CSR arrays."""
    X = sp.csr_matrix(X)
    crow = _to_device(X.indptr, device, torch.int64)
    col = _to_device(X.indices, device, torch.int64)
    val = _to_device(X.data, device, torch.float32)
    return torch.sparse_csr_tensor(crow, col, val, size=X.shape, device=device).to_dense()


def device_topk(
    scores: torch.Tensor, k: int, exclude: sp.csr_matrix | None = None, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row of ``scores`` (on any device), as
    :func:`recae.evaluation.ranking.topk` gives them: best first, ties by lower
    item index, ``-1`` / ``-inf`` padding after the last eligible item.

    ``scores`` (n × n_items) is overwritten with ``-inf`` at the stored items of
    ``exclude``'s rows and at items ``allowed`` forbids. Returns int64 items
    and float32 scores as numpy arrays (n × k).
    """
    device = scores.device
    if exclude is not None and exclude.nnz:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[_to_device(rows, device, torch.int64), _to_device(exclude.indices, device, torch.int64)] = -torch.inf
    if allowed is not None:
        scores[:, ~_to_device(np.asarray(allowed, dtype=bool), device, torch.bool)] = -torch.inf
    if torch.isnan(scores).any():
        raise ValueError("a score is NaN")
    k = min(k, scores.shape[1])
    # a stable sort keeps equal scores in item order: ties go to the lower index
    top, items = torch.sort(scores, dim=1, descending=True, stable=True)
    top, items = top[:, :k], items[:, :k]
    items = torch.where(torch.isneginf(top), -1, items)
    return items.cpu().numpy().astype(np.int64), top.float().cpu().numpy()


__all__ = ["dense_on_device", "device_topk"]
