"""Top-k lists made where the scores are: the GPU path of the autoencoders' ranking.

On a GPU the costly transfers are the dense ones. A batch of histories goes
to the device as its CSR arrays (``nnz`` numbers, from pinned memory, without
waiting: :class:`recae.models.nn.SparseBatch`), and a batch's scores never come
back: seen items are masked and the top ``k`` chosen on the device
(:func:`device_topk`), and only ``k`` items and scores per user return.

:func:`device_topk` takes any torch device, so the CPU test suite runs it
(``tests/models/test_device.py``) against the numpy path it replaces: same
items, same order (ties by lower item index), same padding; on CUDA too where
a GPU is present.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recae.evaluation.ranking import check_no_nan
from recae.models.nn import SparseBatch, to_device


def device_topk(
    scores: torch.Tensor, k: int, exclude: sp.csr_matrix | SparseBatch | None = None, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row of ``scores`` (on any device), as
    :func:`recae.evaluation.ranking.topk` gives them: best first, ties by lower
    item index, ``-1`` / ``-inf`` padding after the last eligible item.

    ``scores`` (n × n_items) is overwritten with ``-inf`` at the stored items of
    ``exclude``'s rows and at items ``allowed`` forbids. ``exclude`` may be the
    batch already on the device (a :class:`~recae.models.nn.SparseBatch`): its
    rows and items mask the scores there, with nothing sent again. Returns int64 items
    and float32 scores as numpy arrays (n × k). ``DataError`` when a row holds NaN.

    One partial selection (``torch.topk`` of k + 1) per row, not a sort of the
    catalogue: where the (k+1)-th score is below the k-th, the k selected items
    are the top k whatever the tie rule, and only their order is settled here
    (equal scores by item index). Rows whose k-th score ties the next one (a
    cut inside a run of equal scores, or fewer than k eligible items) are
    sorted whole, stably, as before.
    """
    device = scores.device
    if exclude is not None:
        if not isinstance(exclude, SparseBatch):
            exclude = SparseBatch.from_scipy(exclude, device)
        scores[exclude.rows, exclude.indices] = -torch.inf
    if allowed is not None:
        scores[:, ~to_device(np.asarray(allowed, dtype=bool), device, torch.bool)] = -torch.inf
    n_items = scores.shape[1]
    k = min(k, n_items)
    if k == n_items or scores.shape[0] == 0:
        top, items = torch.sort(scores, dim=1, descending=True, stable=True)
        tied = torch.zeros(scores.shape[0], dtype=torch.bool, device=device)
    else:
        top, items = torch.topk(scores, k + 1, dim=1)  # NaN counts as the largest: it comes first
        tied = top[:, k - 1] == top[:, k]
        top, items = top[:, :k], items[:, :k]
    check_no_nan(top[:, :1].float().cpu().numpy())
    # within the list, equal scores in item order: sort by item, then stably by score
    items, order = torch.sort(items, dim=1)
    top, order = torch.sort(top.gather(1, order), dim=1, descending=True, stable=True)
    items = items.gather(1, order)
    if tied.any():
        rows_t = tied.nonzero().squeeze(1)
        whole, whole_items = torch.sort(scores[rows_t], dim=1, descending=True, stable=True)
        top[rows_t], items[rows_t] = whole[:, :k], whole_items[:, :k]
    items = torch.where(torch.isneginf(top), -1, items)
    return items.cpu().numpy().astype(np.int64), top.float().cpu().numpy()


__all__ = ["device_topk"]
