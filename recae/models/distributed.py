"""Data-parallel training over ``torch.distributed``: each process trains on its shard of every batch.

Started by ``torchrun`` (``torchrun --nproc-per-node 2 -m recae.cli benchmark
--distributed ...``), every process (a *rank*) holds the whole network and the
whole training matrix; the autoencoders' training loop
(:meth:`recae.models.autoencoder._Autoencoder._train_epoch`) gives each rank
the rows ``rank, rank + world, ...`` of each global batch of ``batch_size``
users, weights each rank's loss by its share of the batch, and sums the
gradients over the ranks (:func:`average_gradients`) before every optimiser
step. The result is the gradient of the mean loss over the global batch, as in
one process with the same ``batch_size``; every rank applies it, so the
weights stay identical on every rank. What differs from one process is the
random noise (dropout, sampling), drawn per shard, and the order of the sums.

Nothing here starts processes: ``torchrun`` (or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``) does.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn

from recae.errors import UsageError

#: The variables a launcher sets for every rank.
RENDEZVOUS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def session(device: str = "cpu", timeout_s: float = 300.0) -> Iterator[tuple[int, int]]:
    """Join the process group the launcher's variables describe; leave it at the end.

    Yields ``(rank, world size)``. ``UsageError`` naming the first variable of
    :data:`RENDEZVOUS` that is not set (the command was not started by
    ``torchrun``), before any work. The backend is gloo on the CPU, NCCL on CUDA.
    """
    missing = [name for name in RENDEZVOUS if not os.environ.get(name)]
    if missing:
        raise UsageError(
            f"--distributed needs the launcher's variable {missing[0]}; start the command with "
            "torchrun, e.g. torchrun --nproc-per-node 2 -m recae.cli benchmark --distributed ..."
        )
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


def average_gradients(net: nn.Module) -> None:
    """Sum every trainable parameter's gradient over the ranks (a parameter this rank gave
    no gradient counts as zero), so that every rank steps with the same gradient."""
    for p in net.parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)


def sum_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """``values`` summed key by key over the ranks (the same keys on every rank)."""
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


__all__ = ["RENDEZVOUS", "average_gradients", "session", "sum_over_ranks", "world"]
