"""A benchmark's checkpoint folder: what ``recae benchmark --resume`` continues from.

One folder per benchmark (``checkpoints/<UTC time>-<random>/`` by default)::

    benchmark.json          the run's config, its parent run id, the save interval
    <model>/run.json        the model's run id (its run is reopened on resume)
    <model>/select.pt       the fit on the training users (epochs selected on validation)
    <model>/refit.pt        the given split's refit on the full train rows
    <model>/result.npz      a finished model's per-user test metrics, then
    <model>/result.json     the rest of its result; written last: the model is done

The ``.pt`` files are :class:`recae.models.checkpoint.Checkpoint` files. Every
file is written atomically and, with tracking, also logged to the parent
run under ``checkpoints/`` (the ``mirror`` callback), so that a benchmark
whose machine is gone can be resumed from its run alone. A resumed benchmark
skips the finished models (their results are read back, bit for bit),
continues the interrupted one from its last checkpoint in the same MLflow
run, and runs the rest; the folder is removed when the benchmark completes.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recae.errors import UsageError
from recae.evaluation.metrics import EvaluationResult
from recae.experiment.config import BenchmarkConfig
from recae.experiment.results import ModelResult
from recae.files import atomic_path, write_json
from recae.models import Checkpoint

#: Epochs between two checkpoints when the user names no interval.
DEFAULT_EVERY = 10
#: The parent run's tag that holds the checkpoint folder's path.
FOLDER_TAG = "recae.checkpoints"


class BenchmarkCheckpoints:
    """The checkpoint folder of one benchmark; see the module docstring for its layout."""

    def __init__(self, folder: str | Path, every: int = DEFAULT_EVERY, parent_run_id: str | None = None,
                 config: BenchmarkConfig | None = None):
        self.folder = Path(folder).absolute()
        self.every = every
        self.parent_run_id = parent_run_id
        self.config = config
        #: Called with each file written (the benchmark logs it to the parent run).
        self.mirror: Callable[[Path], None] = lambda path: None

    @classmethod
    def new(cls, root: str | Path, every: int = DEFAULT_EVERY) -> BenchmarkCheckpoints:
        """A folder under ``root`` named after the time; nothing is written before the first save."""
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UsageError(f"--checkpoint-every {every!r}: expected a whole number of epochs ≥ 1 (0 turns checkpoints off)")
        name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        return cls(Path(root) / name, every)

    @classmethod
    def open(cls, folder: str | Path) -> BenchmarkCheckpoints:
        """The folder of an interrupted benchmark, or ``UsageError`` naming what is missing."""
        folder = Path(folder)
        file = folder / "benchmark.json"
        if not file.is_file():
            raise UsageError(f"{folder}: no benchmark.json; not the checkpoint folder of a benchmark")
        try:
            saved = json.loads(file.read_text())
            options = {**saved["config"], "models": tuple(saved["config"]["models"]), "ks": tuple(saved["config"]["ks"]),
                       "metrics": tuple(saved["config"].get("metrics", ()))}
            config = BenchmarkConfig(**options)
            return cls(folder, int(saved["every"]), saved.get("parent_run_id"), config)
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"{file}: not a benchmark's checkpoint record ({type(e).__name__}: {e})") from None

    # ------------------------------------------------------------------ writing
    def start(self, config: BenchmarkConfig, parent_run_id: str | None) -> None:
        """Record the run's config (the first write; a resumed benchmark keeps its record)."""
        self.config = config
        self.parent_run_id = parent_run_id
        if not (self.folder / "benchmark.json").exists():
            record = {"config": {**config.to_dict(), "min_rating_given": config.min_rating_given},
                      "every": self.every, "parent_run_id": parent_run_id}
            self._write_json(self.folder / "benchmark.json", record)

    def checkpoint(self, model: str, phase: str) -> Checkpoint:
        """The checkpoint of ``model``'s ``phase`` (``select`` or ``refit``)."""
        return Checkpoint(self.folder / model / f"{phase}.pt", self.every, on_save=self.mirror)

    def run_id(self, model: str) -> str | None:
        """The run ``model`` was logged in before the interruption, if any."""
        file = self.folder / model / "run.json"
        return json.loads(file.read_text()).get("run_id") if file.is_file() else None

    def set_run_id(self, model: str, run_id: str | None) -> None:
        self._write_json(self.folder / model / "run.json", {"run_id": run_id})

    def save_result(self, result: ModelResult) -> None:
        """Record a finished model; its ``result.json`` is written last, marking it done."""
        folder = self.folder / result.name
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "result.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **result.test.per_user)
        self.mirror(folder / "result.npz")
        record = {
            "name": result.name, "params": result.params, "val": result.val, "fit_seconds": result.fit_seconds,
            "fit_peak_rss": result.fit_peak_rss,
            "best_epoch": result.best_epoch, "run_id": result.run_id, "coverage": result.test.coverage,
            "n_users": result.test.n_users, "n_skipped": result.test.n_skipped,
        }
        self._write_json(folder / "result.json", record)

    def artifact_dir(self, path: Path) -> str:
        """Where the folder's file ``path`` goes among the parent run's artifacts."""
        relative = path.parent.relative_to(self.folder)
        return "checkpoints" if relative == Path() else f"checkpoints/{relative.as_posix()}"

    def remove(self) -> None:
        """Delete the folder (the benchmark completed)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_json(self, path: Path, obj: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, obj)
        self.mirror(path)

    # ------------------------------------------------------------------ reading
    def result(self, model: str) -> ModelResult | None:
        """A model's result as it was recorded when it finished; None when it did not."""
        folder = self.folder / model
        if not (folder / "result.json").is_file():
            return None
        record = json.loads((folder / "result.json").read_text())
        with np.load(folder / "result.npz") as arrays:
            per_user = {key: arrays[key] for key in arrays.files}
        test = EvaluationResult(per_user, record["coverage"], record["n_users"], record["n_skipped"])
        return ModelResult(
            name=record["name"], params=record["params"], test=test, val=record["val"],
            fit_seconds=record["fit_seconds"], best_epoch=record["best_epoch"], run_id=record["run_id"],
            fit_peak_rss=record.get("fit_peak_rss"),
        )


__all__ = ["DEFAULT_EVERY", "FOLDER_TAG", "BenchmarkCheckpoints"]
