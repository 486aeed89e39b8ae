"""The Optuna study a search runs in: in memory, or shared by workers through a storage."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend
from tqdm.auto import tqdm

from recae.errors import DataError, MemoryBudgetError, ModelFitError, UsageError

#: How long a worker of a shared study waits for the others' running trials before
#: choosing the best one.
OTHERS_WAIT_S = 600.0
#: Errors that fail one trial (recorded, the search goes on); any other error ends the search.
TRIAL_ERRORS: tuple[type[Exception], ...] = (ModelFitError, MemoryBudgetError)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own log (a line per trial, a traceback per caught error) off for a while."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def open_study(
    storage: str | None, study_name: str | None, sampler_seed: int, pruner: optuna.pruners.BasePruner
) -> tuple[optuna.Study, int]:
    """The study the trials go into, and the seed of its TPE sampler.

    Without ``storage``, a new study in memory, sampled with ``sampler_seed``.
    With it, the study ``study_name`` in ``storage``, created by the first
    worker and joined by the others: ``journal:PATH`` (Optuna's journal file,
    safe for processes on one machine or on a shared file system) or a
    database URL (``sqlite:///tune.db``, ``postgresql://...``). Each worker's
    sampler is seeded with ``sampler_seed`` and its process id, so that
    workers started at once do not draw the same parameters; a shared search
    is therefore not repeatable draw for draw.

    Raises ``UsageError`` for one of ``storage`` and ``study_name`` without the
    other, and ``DataError`` naming ``storage`` when it cannot be opened.
    """
    if (storage is None) != (study_name is None):
        raise UsageError("--storage and --study go together: the storage of a shared study and its name")
    if storage is None:
        sampler = optuna.samplers.TPESampler(seed=sampler_seed)
        with quiet_optuna():
            return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner), sampler_seed
    seed = (sampler_seed * 1_000_003 + os.getpid()) % 2**32
    try:
        if storage.startswith("journal:"):
            backend: Any = optuna.storages.JournalStorage(JournalFileBackend(storage.removeprefix("journal:")))
        else:
            backend = optuna.storages.RDBStorage(storage)
        with quiet_optuna():
            study = optuna.create_study(
                storage=backend, study_name=study_name, load_if_exists=True, direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner,
            )
    except Exception as e:  # Optuna, SQLAlchemy and the file system each raise their own
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"--storage {storage}: cannot open the study {study_name!r} ({first})") from None
    return study, seed


def optimize(
    objective: Callable[[optuna.trial.Trial], float], model: str, best_values: Callable[[], list[float]],
    study: optuna.Study, n_trials: int, timeout: float | None, progress: bool,
) -> None:
    """Run trials (maximising the objective) until ``study`` holds ``n_trials`` of them (in any
    state, from any worker), with a progress bar showing this worker's best value."""
    # an enqueued trial (``--start``) waits to be run: it is one of this search's trials
    remaining = n_trials - sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
    bar = tqdm(total=max(remaining, 0), desc=f"tune {model}", unit="trial", disable=not progress)

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        best = best_values()
        if best:
            bar.set_postfix({"best val ndcg@100": f"{max(best):.4f}"})

    if remaining <= 0:
        return
    with bar, quiet_optuna():
        # the callback stops a worker of a shared study once the study holds n_trials trials
        study.optimize(
            objective, n_trials=remaining, timeout=timeout, catch=TRIAL_ERRORS,
            callbacks=[after_trial, optuna.study.MaxTrialsCallback(n_trials, states=None)],
        )


def wait_for_others(study: optuna.Study, limit_s: float = OTHERS_WAIT_S, poll_s: float = 1.0) -> None:
    """Wait until no trial of ``study`` is still running (another worker's last trials), at
    most ``limit_s`` seconds (a worker that died leaves its trial running for ever), so that
    every worker of a shared study reads the same best trial."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not any(t.state == optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False)):
            return
        time.sleep(poll_s)
    warnings.warn(f"a trial of the shared study was still running after {limit_s:.0f} s; "
                  "the best of the finished trials is used", stacklevel=2)


__all__ = ["OTHERS_WAIT_S", "TRIAL_ERRORS", "open_study", "optimize", "quiet_optuna", "wait_for_others"]
