"""``recae tune --workers N``: one search run by N processes of this machine at once.

The processes share one Optuna study (the ``--storage`` given, or a journal
file in a temporary folder), so every trial is drawn once and every process
sees the others' results. This process runs trials like the others and then,
alone, tracks the search, fits the best trial and tests it; the helpers only
run trials. Each process gets ``cores // N`` threads (at least one), so that
N single-threaded trials do not fight over the cores: this pays for models
whose fit does not use every core well (the baselines ``implicit`` fits, EASE
and EDLAE on small catalogues, short autoencoder trials).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from recae.errors import UsageError
from recae.evaluation.protocols import Split
from recae.experiment.config import BenchmarkConfig
from recae.experiment.tracker import NullTracker


@dataclass(frozen=True)
class SharedSearch:
    """Where the workers' study lives, and how many threads each worker gets."""

    storage: str
    study_name: str | None  # None with a storage given alone: open_study refuses it
    threads: int


def threads_per_worker(workers: int) -> int:
    """The cores of this machine (those this process may use) shared among ``workers``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


@contextlib.contextmanager
def shared_search(workers: int, storage: str | None, study_name: str | None, model: str) -> Iterator[SharedSearch]:
    """The study the workers share: ``storage`` / ``study_name`` when given, else a journal
    file in a temporary folder, removed afterwards."""
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    threads = threads_per_worker(workers)
    if storage is not None:
        yield SharedSearch(storage, study_name, threads)
        return
    folder = tempfile.mkdtemp(prefix="recae-tune-")
    try:
        yield SharedSearch(f"journal:{os.path.join(folder, 'study.log')}", f"tune-{model}-{os.getpid()}", threads)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _helper(config: BenchmarkConfig, split: Split, model: str, n_trials: int, timeout: float | None,
            sampler_seed: int, prune: bool, search: SharedSearch) -> None:
    """One helper process: its threads, then trials until the study holds ``n_trials``."""
    import torch

    from recae.experiment.tuning import run_trials

    torch.set_num_threads(search.threads)
    run_trials(replace(config, track=False, progress=False), model, n_trials, timeout, tracker=NullTracker(),
               sampler_seed=sampler_seed, prune=prune, storage=search.storage, study_name=search.study_name,
               split=split)


@contextlib.contextmanager
def helpers(n: int, config: BenchmarkConfig, split: Split, model: str, n_trials: int, timeout: float | None,
            sampler_seed: int, prune: bool, search: SharedSearch) -> Iterator[None]:
    """``n`` helper processes running trials on ``split`` (``config``'s, prepared once by the
    caller and handed to each: no helper reads or splits the data again) while the body
    runs; joined (or, on an error in the body, stopped) when it ends. A helper that fails
    is named in a warning: the search goes on in the other processes."""
    context = mp.get_context("spawn")  # a fresh interpreter: no inherited threads or torch state
    procs: list[Any] = [
        context.Process(target=_helper,
                        args=(config, split, model, n_trials, timeout, sampler_seed + i, prune, search),
                        name=f"recae-tune-worker-{i}", daemon=True)
        for i in range(1, n + 1)
    ]
    for p in procs:
        p.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        for p in procs:
            if not ok:
                p.terminate()
            p.join()
        failed = [p.name for p in procs if p.exitcode not in (0, None)] if ok else []
        if failed:
            warnings.warn(f"tuning worker(s) {', '.join(failed)} ended with an error; "
                          "the trials they finished are in the study", stacklevel=3)


__all__ = ["SharedSearch", "helpers", "shared_search", "threads_per_worker"]
