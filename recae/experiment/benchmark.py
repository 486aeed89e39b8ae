"""The benchmark: config → data → split → models → metrics → tracking → report.

:func:`run_benchmark` is what ``recae benchmark`` and ``make run`` execute.
Every model goes through the same steps under the same split:

1. fit on ``split.train`` (iterative models select their epoch on the
   validation users' NDCG@100 and restore the best weights);
2. evaluate on the validation users (fold-in → held-out);
3. given split only, with ``refit``: fit again on the full train rows (for
   iterative models, for the selected number of epochs);
4. evaluate on the test users, ranking every item not in their input.

Each model gets its own nested MLflow run under one parent run per benchmark.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recae import data as datalib
from recae.errors import UsageError
from recae.evaluation.compare import compare, format_comparison
from recae.evaluation.metrics import EvaluationResult, evaluate
from recae.evaluation.protocols import GIVEN, Split, given_split, strong_generalization
from recae.models import REGISTRY, Recommender, make_model

#: The models a benchmark trains when none are named: the autoencoders and every baseline.
DEFAULT_MODELS: tuple[str, ...] = ("mult-vae", "mult-dae", "ease", "als", "bpr", "item-knn", "popularity")
#: The metric that ranks models in the printed table.
PRIMARY_METRIC = "ndcg_at_100"


@dataclass
class BenchmarkConfig:
    """Everything that determines a benchmark's result (logged as ``config.json``).

    Preprocessing applies to rating files (not to given train/test splits):
    keep ratings strictly above ``min_rating`` (the paper: 3.5; ``None`` keeps
    all), then iterative k-core with ``min_user_items`` / ``min_item_users``
    (the paper: users with at least 5 items).
    """

    dataset: str = "ml-100k"
    models: tuple[str, ...] = DEFAULT_MODELS
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_rating: float | None = 3.5
    min_user_items: int = 5
    min_item_users: int = 0
    heldout_users: int | float = 0.1
    test_prop: float = 0.2
    val_prop: float = 0.2
    refit: bool = True
    seed: int = 98765
    ks: tuple[int, ...] = (20, 50, 100)
    topn_sample_users: int = 20
    #: Column names for CSV/TSV/Parquet data: ``user_col``, ``item_col``,
    #: ``rating_col``, ``timestamp_col`` (see :func:`recae.data.read_table`).
    columns: dict[str, str] = field(default_factory=dict)
    #: Memory budget in bytes for models that estimate theirs (EASE's ``max_memory``).
    max_memory: float | None = None
    data_dir: str | None = None
    tracking_uri: str | None = None
    track: bool = True
    progress: bool = True
    #: Use the best parameters ``recae tune`` found on this data set and protocol
    #: (``model_params`` still win); see :func:`recae.experiment.tuning.with_tuned_params`.
    tuned: bool = False
    #: Register the best model (validation NDCG@100) in the MLflow model registry
    #: under this name and point the alias ``champion`` at it.
    register: str | None = None

    def __post_init__(self) -> None:
        if self.register is not None and not self.track:
            raise UsageError("registering a model needs tracking; drop --no-tracking or --register")
        self.models = tuple(self.models)
        self.model_params = {name: dict(params) for name, params in self.model_params.items()}
        self.ks = tuple(sorted(set(int(k) for k in self.ks)))
        for name in self.models:
            if name not in REGISTRY:
                raise UsageError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
        if self.max_memory is not None:
            for name in self.models:
                if "max_memory" in REGISTRY[name].param_names():
                    self.model_params.setdefault(name, {}).setdefault("max_memory", self.max_memory)
        for name, params in self.model_params.items():
            make_model(name, **params)  # an unknown parameter fails here, before any work
        if 100 not in self.ks:
            self.ks = tuple(sorted({*self.ks, 100}))  # the selection metric is NDCG@100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelResult:
    """One model's outcome in a benchmark."""

    name: str
    params: dict[str, Any]
    test: EvaluationResult
    val: dict[str, float]
    fit_seconds: float
    best_epoch: int | None = None
    run_id: str | None = None
    model: Recommender | None = field(default=None, repr=False)

    def test_means(self) -> dict[str, float]:
        return self.test.means()


@dataclass
class BenchmarkResult:
    """All models' results on one split."""

    dataset: str
    protocol: str
    fingerprint: str
    split_info: dict[str, Any]
    models: dict[str, ModelResult]
    parent_run_id: str | None = None
    experiment: str = ""
    comparison: pd.DataFrame | None = field(default=None, repr=False)

    def comparison_markdown(self) -> str:
        """The comparison with the best model, one markdown table per metric."""
        if self.comparison is None:
            return ""
        parts = []
        for metric in dict.fromkeys(self.comparison["metric"]):
            parts.append(f"### {metric}\n\n" + format_comparison(self.comparison, metric).to_markdown(index=False))
        parts.append(
            "\nMean [95% bootstrap CI]; Δ = model − best, paired over test users; p-values Holm-corrected "
            "across the comparisons on each metric; * = both tests significant at 0.05."
        )
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """``{"dataset", "protocol", "split_fingerprint", "models": {name: {"test": {...}, "fit_seconds"}}}``."""
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "split_fingerprint": self.fingerprint,
            "split": self.split_info,
            "models": {
                name: {
                    "test": {k: _finite(v) for k, v in r.test_means().items()},
                    "test_ci": {
                        k: [_finite(s.ci_low), _finite(s.ci_high)] for k, s in r.test.summary().items()
                    },
                    "val": {k: _finite(v) for k, v in r.val.items()},
                    "fit_seconds": r.fit_seconds,
                    "best_epoch": r.best_epoch,
                    "params": r.params,
                    "n_test_users": r.test.n_users - r.test.n_skipped,
                    "mlflow_run_id": r.run_id,
                }
                for name, r in self.models.items()
            },
        }

    def table(self, ks: Sequence[int] = (20, 100)) -> pd.DataFrame:
        """One row per model: test Recall@K and NDCG@K with 95% intervals, fit seconds."""
        rows = []
        for name, r in self.models.items():
            summary = r.test.summary()
            row: dict[str, Any] = {"model": name}
            for k in ks:
                for metric in ("recall", "ndcg"):
                    s = summary[f"{metric}_at_{k}"]
                    row[f"{metric}@{k}"] = f"{s.mean:.4f} ± {(s.ci_high - s.ci_low) / 2:.4f}"
            row["fit s"] = round(r.fit_seconds, 1)
            row["_sort"] = summary[PRIMARY_METRIC].mean
            rows.append(row)
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        return frame.sort_values("_sort", ascending=False).drop(columns="_sort").reset_index(drop=True)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def dataset_label(spec: str) -> str:
    """A short name for experiment names: the data set name, or the path's last part."""
    return spec if spec in datalib.DATASETS else Path(spec).resolve().name


def prepare_split(config: BenchmarkConfig) -> Split:
    """Read the data set named in ``config`` and apply its protocol."""
    raw = datalib.load(config.dataset, data_dir=config.data_dir, **config.columns)
    if raw.is_given_split:
        return given_split(raw.train, raw.test, val_prop=config.val_prop, seed=config.seed, source=raw.source)
    ratings = raw.ratings
    if config.min_rating is not None:
        ratings = datalib.binarize(ratings, threshold=config.min_rating)
    ratings = datalib.kcore(ratings, min_user=config.min_user_items, min_item=config.min_item_users)
    interactions = datalib.to_interactions(ratings, source=raw.source)
    return strong_generalization(
        interactions, heldout_users=config.heldout_users, test_prop=config.test_prop, seed=config.seed
    )


def fit_and_evaluate(
    name: str,
    params: dict[str, Any],
    split: Split,
    ks: Sequence[int],
    refit: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: bool = False,
) -> ModelResult:
    """Fit one model on ``split`` as described in the module docstring; evaluate it on test."""
    model = make_model(name, **params)
    start = time.perf_counter()
    bar = tqdm(total=getattr(model, "epochs", 0), desc=f"train {name}", unit="epoch", leave=False, disable=not progress or not model.uses_validation)

    def callback(record: dict[str, float]) -> None:
        bar.update(1)
        if f"val/{PRIMARY_METRIC}" in record:
            bar.set_postfix({"val ndcg@100": f"{record[f'val/{PRIMARY_METRIC}']:.4f}"})
        if on_epoch is not None:
            on_epoch(record)

    with bar:
        model.fit(split.train, validation=(split.val_in, split.val_out), callback=callback)
    val = evaluate(model, split.val_in, split.val_out, ks=ks).means()
    best_epoch = getattr(model, "best_epoch_", None)
    history = getattr(model, "history_", None)
    if split.protocol == GIVEN and refit and split.refit_train is not None:
        refit_model = make_model(name, **params)
        if best_epoch is not None:
            refit_model.set_params(epochs=int(best_epoch))
        refit_model.fit(split.refit_train)
        if history is not None:
            refit_model.history_ = history  # keep the selection run's learning curve
            refit_model.best_epoch_ = best_epoch
        model = refit_model
    fit_seconds = time.perf_counter() - start
    test = evaluate(model, split.test_in, split.test_out, ks=ks, progress=progress, desc=f"test {name}")
    return ModelResult(
        name=name,
        params=model.get_params(),
        test=test,
        val=val,
        fit_seconds=fit_seconds,
        best_epoch=int(best_epoch) if best_epoch is not None else None,
        model=model,
    )


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


def run_benchmark(config: BenchmarkConfig, echo: Callable[[str], None] = print) -> BenchmarkResult:
    """Train and evaluate ``config.models`` on one split; track everything in MLflow.

    Returns the results; the caller prints or saves them.
    """
    from recae.experiment import plots

    split = prepare_split(config)
    label = dataset_label(config.dataset)
    fingerprint = split.fingerprint()
    if config.tuned:  # each model's best parameters from `recae tune`; explicit ones still win
        from recae.experiment.tuning import with_tuned_params

        config = with_tuned_params(config, split.protocol, fingerprint, echo=echo)
    info = split.describe()
    echo(
        f"{label}: {info['protocol']}, {info['n_items']} items, {info['n_train_users']} train / "
        f"{info['n_val_users']} validation / {info['n_test_users']} test users, split {fingerprint}"
    )
    for name in config.models:  # refuse an impossible run before any is started
        make_model(name, **config.model_params.get(name, {})).check_resources(*split.train.shape)
    experiment = f"{label}/{split.protocol}"
    tags = {"dataset": label, "protocol": split.protocol, "split_fingerprint": fingerprint}
    results: dict[str, ModelResult] = {}

    if config.track:
        from recae.tracking.tracker import Tracker

        tracker: Any = Tracker(experiment, config.tracking_uri)
    else:
        from recae.tracking.tracker import NullTracker

        tracker = NullTracker()
    with tracker.run(f"benchmark {label}", tags={**tags, "recae.kind": "benchmark"}) as parent:
        parent.log_params(info, prefix="split.")
        parent.log_params({"models": list(config.models), "seed": config.seed, "ks": list(config.ks)})
        parent.log_dict(config.to_dict(), "config.json")
        for name in config.models:
            params = config.model_params.get(name, {})
            with tracker.run(name, tags={**tags, "model": name, "recae.kind": "model"}, nested=True) as run:
                run.log_params(make_model(name, **params).get_params())
                run.log_params(info, prefix="split.")

                def on_epoch(record: dict[str, float], run=run) -> None:
                    step = int(record["epoch"])
                    run.log_metrics(
                        {(k if k.startswith("val/") or k == "epoch_seconds" else f"train/{k}"): v
                         for k, v in record.items() if k != "epoch"},
                        step=step,
                    )

                result = fit_and_evaluate(
                    name, params, split, config.ks, config.refit, on_epoch=on_epoch, progress=config.progress
                )
                result.run_id = run.run_id
                if config.track:
                    _log_model_run(run, result, split, config, plots)
            results[name] = result
        bench = BenchmarkResult(
            label, split.protocol, fingerprint, info, results, parent_run_id=parent.run_id, experiment=experiment
        )
        if len(results) > 1:
            bench.comparison = compare({n: r.test for n, r in results.items()}, seed=config.seed)
            parent.log_frame(bench.comparison, "comparison.csv")
            parent.log_text(bench.comparison_markdown(), "comparison.md")
            primary = bench.comparison[bench.comparison["metric"] == PRIMARY_METRIC]
            fig = plots.comparison_chart(
                list(primary["model"]), list(primary["mean"]), list(primary["ci_low"]), list(primary["ci_high"]),
                metric=f"test {PRIMARY_METRIC} (95% bootstrap CI)", title=f"{label}, {split.protocol}",
            )
            parent.log_figure(fig, "comparison.png")
            plots.close(fig)
        parent.log_frame(bench.table(), "summary.csv")
        parent.log_dict(bench.to_json(), "results.json")
        for name, r in results.items():
            parent.log_metrics({f"{name}/test/{PRIMARY_METRIC}": r.test_means()[PRIMARY_METRIC]})
    if config.register and results:
        from recae.tracking.pyfunc import CHAMPION, model_uri_of_run, register_model

        # Chosen on the validation users, like every other selection: the test
        # metrics stay an unbiased report of the chosen model.
        def selection_score(r: ModelResult) -> float:
            v = r.val.get(PRIMARY_METRIC, float("nan"))
            return v if v == v else float("-inf")

        best = max(results.values(), key=selection_score)
        version = register_model(model_uri_of_run(best.run_id), config.register)
        echo(
            f"registered {best.name} (run {best.run_id}) as {config.register!r} version {version}; "
            f"load it as models:/{config.register}@{CHAMPION}"
        )
    return bench


def _log_model_run(run: Any, result: ModelResult, split: Split, config: BenchmarkConfig, plots: Any) -> None:
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
        fig = plots.learning_curve(history, title=f"{result.name} on {dataset_label(config.dataset)}")
        run.log_figure(fig, "learning_curve.png")
        plots.close(fig)
    from recae.serving import item_popularity
    from recae.tracking.pyfunc import log_model

    # The pyfunc model (`runs:/<run_id>/model`) carries the training users' full
    # histories, so that `recae recommend` lists every known user without a file;
    # under the given split that is the full train rows, not the validation-trimmed ones.
    known = split.refit_train if split.refit_train is not None else split.train
    log_model(
        model,
        split.item_ids,
        item_popularity(known),
        name="model",
        user_ids=split.train_users,
        histories=known,
    )


def write_json(result: BenchmarkResult, path: str | Path) -> None:
    """Write ``result.to_json()`` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2))
    tmp.replace(path)
