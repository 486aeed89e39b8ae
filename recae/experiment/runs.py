"""The steps a benchmark and a search share: read and split, fit and evaluate, log a model's run.

Every model goes through the same steps under the same split
(:func:`fit_and_evaluate`):

1. fit on ``split.train`` (iterative models select their epoch on the
   validation users' NDCG@100 and restore the best weights);
2. evaluate on the validation users (fold-in → held-out);
3. given split only, with ``refit``: fit again on the full train rows (for
   iterative models, for the selected number of epochs);
4. evaluate on the test users, ranking every item not in their input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recae import data as datalib
from recae.errors import UsageError
from recae.evaluation.metrics import Beyond, EvaluationResult, evaluate
from recae.evaluation.protocols import ROWWISE, Split, given_split, strong_generalization
from recae.evaluation.temporal import temporal_split, weak_generalization
from recae.experiment import plots
from recae.experiment.config import PRIMARY_METRIC, BenchmarkConfig
from recae.experiment.results import ModelResult
from recae.experiment.tracker import Run
from recae.models import Checkpoint, Recommender, make_model
from recae.models.memory import PeakRSS
from recae.serving import Catalog, item_popularity


def dataset_label(spec: str) -> str:
    """A short name for experiment names: the data set name, or the path's last part."""
    return spec if spec in datalib.DATASETS else Path(spec).resolve().name


def prepare_split(config: BenchmarkConfig, echo: Callable[[str], None] = print) -> Split:
    """Read the data set named in ``config`` and apply its protocol.

    ``echo`` receives one line naming the parameter file and the start of its
    hash when the run has one (``--config``), and one naming the rating
    threshold when the data has ratings and the user chose none
    (``config.default_min_rating``).
    """
    if config.config_file is not None:
        echo(f"model parameters from {config.config_file} (sha256 {config.config_file_sha256[:12]})")
    raw = datalib.load(config.dataset, data_dir=config.data_dir, **config.columns)
    if raw.is_given_split:
        if config.protocol is not None:
            raise UsageError(f"{raw.source} has its own train/test split; --protocol applies to rating files")
        return given_split(raw.train, raw.test, val_prop=config.val_prop, seed=config.seed, source=raw.source)
    ratings = raw.ratings
    if raw.rating_column is not None and config.default_min_rating:
        echo(
            f"{raw.source}: keeping ratings > {config.min_rating:g} from column {raw.rating_column!r} "
            "(the default --min-rating; 'none' keeps all)"
        )
    if config.min_rating is not None:
        ratings = datalib.binarize(ratings, threshold=config.min_rating)
    ratings = datalib.kcore(ratings, min_user=config.min_user_items, min_item=config.min_item_users)
    if config.protocol == "weak":
        return weak_generalization(ratings, config.test_prop, config.val_prop, config.seed, source=raw.source)
    if config.protocol == "temporal":
        return temporal_split(ratings, config.time_cut, config.last_k, config.val_prop, config.seed, source=raw.source)
    interactions = datalib.to_interactions(ratings, source=raw.source)
    return strong_generalization(
        interactions, heldout_users=config.heldout_users, test_prop=config.test_prop, seed=config.seed
    )


def check_measurable(split: Split, label: str, validation: bool) -> None:
    """Refuse, before any training, a split on which the run would measure nothing.

    ``UsageError`` when no test user has held-out items, or, with
    ``validation`` (the run selects epochs, trials or a model on it), when no
    validation user has.
    """
    parts = [("test", split.test_out)] + ([("validation", split.val_out)] if validation else [])
    for part, targets in parts:
        if targets.nnz == 0:
            n_items = split.info.get("min_items_to_split")
            raise UsageError(
                f"{label}: no {part} user has held-out items, so the run would measure nothing "
                f"(held-out users need at least {n_items} items after preprocessing)"
            )


def describe_split(label: str, info: dict[str, Any], fingerprint: str) -> str:
    """One line: the data set, protocol, sizes and fingerprint of a split (``split.describe()``)."""
    return (
        f"{label}: {info['protocol']}, {info['n_items']} items, {info['n_train_users']} train / "
        f"{info['n_val_users']} validation / {info['n_test_users']} test users, split {fingerprint}"
    )


def fit_and_evaluate(
    name: str,
    params: dict[str, Any],
    split: Split,
    ks: Sequence[int],
    refit: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: bool = False,
    checkpoint: Callable[[str], Checkpoint] | None = None,
    metrics: Sequence[str] = (),
) -> ModelResult:
    """Fit one model on ``split`` as described in the module docstring; evaluate it on test.

    ``on_epoch`` receives each epoch's record of iterative models (see
    :func:`epoch_logger`). ``checkpoint``, given a phase (``"select"``,
    ``"refit"``), returns the checkpoint that phase's fit saves into and
    resumes from (resumable models only). The result holds the fitted
    (refitted) model.
    """
    model = make_model(name, **params)

    def checkpoint_of(phase: str) -> dict[str, Checkpoint]:
        return {"checkpoint": checkpoint(phase)} if checkpoint is not None and model.resumable else {}

    start = time.perf_counter()
    bar = tqdm(total=getattr(model, "epochs", 0), desc=f"train {name}", unit="epoch", leave=False, disable=not progress or not model.uses_validation)

    def callback(record: dict[str, float]) -> None:
        bar.update(1)
        if f"val/{PRIMARY_METRIC}" in record:
            bar.set_postfix({"val ndcg@100": f"{record[f'val/{PRIMARY_METRIC}']:.4f}"})
        if on_epoch is not None:
            on_epoch(record)

    with PeakRSS() as peak:
        with bar:
            model.fit(split.train, validation=(split.val_in, split.val_out), callback=callback, **checkpoint_of("select"))
        val = evaluate(model, split.val_in, split.val_out, ks=ks).means()
        best_epoch = getattr(model, "best_epoch_", None)
        history = getattr(model, "history_", None)
        if split.protocol in ROWWISE and refit and split.refit_train is not None:
            refit_model = make_model(name, **params).set_params(**model.selected_params())
            refit_model.fit(split.refit_train, **checkpoint_of("refit"))
            if history is not None:
                refit_model.history_ = history  # keep the selection run's learning curve
                refit_model.best_epoch_ = best_epoch
            model = refit_model
    fit_seconds = time.perf_counter() - start
    test = evaluate(model, split.test_in, split.test_out, ks=ks, progress=progress, desc=f"test {name}",
                    beyond=_beyond(model, split, metrics) if metrics else None)
    return ModelResult(
        name=name,
        params=model.get_params(),
        test=test,
        val=val,
        fit_seconds=fit_seconds,
        best_epoch=int(best_epoch) if best_epoch is not None else None,
        model=model,
        fit_peak_rss=peak.bytes,
    )


def _beyond(model: Recommender, split: Split, metrics: Sequence[str]) -> Beyond:
    """What the beyond-accuracy ``metrics`` need: the training users' item counts and, for
    intra-list diversity, the model's item vectors (None for a model without them)."""
    known = split.refit_train if split.refit_train is not None else split.train
    vectors = None
    if "ild" in metrics:
        try:
            vectors = model.item_vectors()
        except UsageError:
            vectors = None  # its ILD is NaN: the model has no item vectors
    return Beyond(tuple(metrics), np.asarray(known.getnnz(axis=0)), int(known.shape[0]), vectors)


def epoch_logger(run: Run) -> Callable[[dict[str, float]], None]:
    """Per-epoch records → metrics of ``run`` at step = epoch.

    Keys starting with ``val/`` and ``epoch_seconds`` keep their names; the
    training figures (``loss``, ``kl``, ``beta``...) become ``train/<key>``.
    """

    def log(record: dict[str, float]) -> None:
        run.log_metrics(
            {(k if k.startswith("val/") or k == "epoch_seconds" else f"train/{k}"): v
             for k, v in record.items() if k != "epoch"},
            step=int(record["epoch"]),
        )

    return log


def topn_frame(model: Recommender, split: Split, n_users: int, k: int = 20) -> pd.DataFrame:
    """Top-``k`` lists with raw ids for the first ``n_users`` test users."""
    X = split.test_in[:n_users]
    items, scores = model.recommend(X, k)
    users = np.repeat(split.test_users[: X.shape[0]], items.shape[1])
    ranks = np.tile(np.arange(1, items.shape[1] + 1), X.shape[0])
    flat = items.ravel()
    keep = flat >= 0
    return pd.DataFrame(
        {
            "user_id": users[keep],
            "rank": ranks[keep],
            "item_id": split.item_ids[flat[keep]],
            "score": scores.ravel()[keep],
        }
    )


def per_user_frame(result: EvaluationResult, user_ids: np.ndarray) -> pd.DataFrame:
    """The per-user test metrics with raw user ids (users without targets have NaN)."""
    frame = pd.DataFrame(result.per_user)
    frame.insert(0, "user_id", user_ids)
    return frame


def log_model_run(run: Run, result: ModelResult, split: Split, config: BenchmarkConfig) -> None:
    """Log a fitted model's metrics, tables, learning curve and the model itself into ``run``."""
    model = result.model
    assert model is not None
    # The selected model on the validation users; "val/" holds the per-epoch curve.
    run.log_metrics({f"val_selected/{k}": v for k, v in result.val.items()})
    run.log_metrics({f"test/{k}": v for k, v in result.test_means().items()})
    for key, s in result.test.summary().items():
        run.log_metrics({f"test/{key}_ci_low": s.ci_low, f"test/{key}_ci_high": s.ci_high})
    run.log_metrics(
        {
            "fit_seconds": result.fit_seconds,
            **({"fit_peak_rss_mb": result.fit_peak_rss / 2**20} if result.fit_peak_rss is not None else {}),
            "test/n_users": result.test.n_users - result.test.n_skipped,
            "test/n_skipped_users": result.test.n_skipped,
        }
    )
    if result.best_epoch is not None:
        run.log_metrics({"best_epoch": result.best_epoch})
    run.log_frame(per_user_frame(result.test, split.test_users), "per_user_metrics.csv")
    run.log_frame(topn_frame(model, split, config.topn_sample_users), "topn_sample.csv")
    run.log_dict(
        {**config.to_dict(), "model": result.name, "model_params": result.params, "split": split.describe()},
        "config.json",
    )
    history = getattr(model, "history_", None)
    if history:
        run.log_figure(
            plots.learning_curve(history, title=f"{result.name} on {dataset_label(config.dataset)}"),
            "learning_curve.png",
        )
    # The logged model (`runs:/<run_id>/model`) carries the training users' full
    # histories, so that `recae recommend` lists every known user without a file;
    # under the given split that is the full train rows, not the validation-trimmed ones.
    known = split.refit_train if split.refit_train is not None else split.train
    run.log_model(model, Catalog(split.item_ids, item_popularity(known), split.train_users, known), name="model")


__all__ = [
    "check_measurable",
    "describe_split",
    "dataset_label",
    "epoch_logger",
    "fit_and_evaluate",
    "log_model_run",
    "per_user_frame",
    "prepare_split",
    "topn_frame",
]
