"""What determines a benchmark's result: one frozen, validated :class:`BenchmarkConfig`.

The command line builds it with :meth:`BenchmarkConfig.create`, which puts the
options in their one canonical form; constructing the class directly checks
that the fields are already in that form. Either way nothing is rewritten
after construction, and an unknown model or parameter fails here, before any
data is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from recae.checks import Constraint, Interval, ListOf, check_params
from recae.errors import UsageError
from recae.evaluation.beyond import check_beyond_metrics
from recae.evaluation.inputs import check_heldout_users, check_probability, check_seed
from recae.experiment.config_file import merge_params, read_config_file
from recae.models import REGISTRY, get_model_class, make_model
from recae.models.autoencoder import resolve_device

#: The models a benchmark trains when none are named: the autoencoders and every baseline.
DEFAULT_MODELS: tuple[str, ...] = ("mult-vae", "mult-dae", "ease", "als", "bpr", "item-knn", "popularity")
#: The metric that selects epochs, trials and the registered model, and ranks the printed table.
PRIMARY_METRIC = "ndcg_at_100"
#: The cut-off of :data:`PRIMARY_METRIC`: every benchmark evaluates it.
SELECTION_K = 100
#: Ratings kept as positives when no threshold is given: strictly above 3.5 (the paper's).
DEFAULT_MIN_RATING = 3.5


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that determines a benchmark's result (logged as ``config.json``).

    Preprocessing applies to rating files (not to given train/test splits):
    keep ratings strictly above ``min_rating`` (the paper: 3.5; ``None`` keeps
    all), then iterative k-core with ``min_user_items`` / ``min_item_users``
    (the paper: users with at least 5 items).

    The canonical form, which :meth:`create` produces and the constructor
    checks: ``models`` a tuple of registry names; ``ks`` sorted, distinct and
    holding 100 (the selection metric is NDCG@100); ``model_params`` one dict
    per model, with ``max_memory`` filled in for the models that take it.

    Raises
    ------
    UsageError
        No model, an unknown model or parameter, a setting or parameter value
        out of range, ``register`` without ``track``, a ``config_file`` that
        cannot be read or does not check (:meth:`create`), or fields not in
        canonical form.
    """

    dataset: str = "ml-100k"
    models: tuple[str, ...] = DEFAULT_MODELS
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_rating: float | None = DEFAULT_MIN_RATING
    min_user_items: int = 5
    min_item_users: int = 0
    heldout_users: int | float = 0.1
    #: Rating files only: ``None`` or ``"strong"`` (strong generalization), ``"weak"``
    #: (every user trains; a random share of each user's items tests) or ``"temporal"``
    #: (``time_cut``: a quantile in (0, 1) or a date; or ``last_k``: each user's last k).
    protocol: str | None = None
    time_cut: float | str | None = None
    last_k: int | None = None
    test_prop: float = 0.2
    val_prop: float = 0.2
    refit: bool = True
    seed: int = 98765
    ks: tuple[int, ...] = (20, 50, 100)
    #: Beyond-accuracy metrics to evaluate too (``--metrics``; see
    #: :mod:`recae.evaluation.beyond`): novelty, arp, long_tail, ild, gini, aggregate_diversity.
    metrics: tuple[str, ...] = ()
    topn_sample_users: int = 20
    #: Column names for CSV/TSV/Parquet data: ``user_col``, ``item_col``,
    #: ``rating_col``, ``timestamp_col`` (see :func:`recae.data.read_table`).
    columns: dict[str, str] = field(default_factory=dict)
    #: Memory budget in bytes for models that estimate theirs (EASE's ``max_memory``).
    max_memory: float | None = None
    #: The torch device of every model that takes one (``"cpu"``, ``"cuda"``,
    #: ``"cuda:1"``, ``"auto"``); None leaves each model's own default.
    device: str | None = None
    data_dir: str | None = None
    tracking_uri: str | None = None
    track: bool = True
    progress: bool = True
    #: Use the best parameters ``recae tune`` found on this data set and protocol
    #: (``model_params`` still win); see :func:`recae.experiment.tuned.with_tuned_params`.
    tuned: bool = False
    #: Register the best model (validation NDCG@100) in the MLflow model registry
    #: under this name and point the alias ``champion`` at it.
    register: str | None = None
    #: The TOML file of model parameters the run was given (``--config``), as
    #: given, and the SHA-256 of its content; its tables for ``models`` are
    #: already in ``model_params`` (see :mod:`recae.experiment.config_file`).
    config_file: str | None = None
    config_file_sha256: str | None = None
    #: Whether the user chose ``min_rating`` (``--min-rating``); when not, a run
    #: on ratings says which threshold it applies. Changes no result, so it is
    #: neither compared nor part of ``config.json``.
    min_rating_given: bool = field(default=False, compare=False)

    @classmethod
    def create(cls, **options: Any) -> BenchmarkConfig:
        """A config from loosely typed options (any sequences, ks without 100, ``max_memory``).

        ``models`` becomes a tuple; ``ks`` sorted and distinct, with 100 added;
        ``model_params`` copied, with ``max_memory`` (when given) set for every
        model of ``models`` that takes it and was not given its own;
        ``min_rating_given`` says whether ``min_rating`` is among ``options``.

        ``config_file`` (a path) is read and checked here
        (:func:`~recae.experiment.config_file.read_config_file`): its tables
        for ``models`` go under ``model_params``, which win parameter by
        parameter, and ``config_file_sha256`` is set to the hash of its content.
        """
        options.setdefault("min_rating_given", "min_rating" in options)
        defaults = {f.name: f.default for f in fields(cls)}
        models = tuple(options.get("models", defaults["models"]))
        options["metrics"] = tuple(options.get("metrics", ()))
        ks = canonical_ks(options.get("ks", defaults["ks"]))
        params = options.get("model_params", {})
        if options.get("config_file") is not None:
            file = read_config_file(options["config_file"])
            params = merge_params(file.params_for(models), params)
            options.update(config_file=file.path, config_file_sha256=file.sha256)
        params = _params_with_memory(params, models, options.get("max_memory"), options.get("device"))
        return cls(**{**options, "models": models, "ks": ks, "model_params": params})

    def __post_init__(self) -> None:
        if not self.models:
            raise UsageError("no model to run: name at least one (--models)")
        repeated = [name for i, name in enumerate(self.models) if name in self.models[:i]]
        if repeated:
            raise UsageError(f"model {repeated[0]!r} is named more than once (--models)")
        if self.register is not None and not self.track:
            raise UsageError("registering a model needs tracking; drop --no-tracking or --register")
        if (self.config_file is None) != (self.config_file_sha256 is None):
            raise UsageError("BenchmarkConfig.config_file and config_file_sha256 go together; "
                             "BenchmarkConfig.create(config_file=...) sets both")
        _check_settings(self)
        for name in self.models:
            get_model_class(name)  # an unknown model fails here, naming the known ones
        for name, params in self.model_params.items():
            make_model(name, **params)  # an unknown parameter fails here, before any work
            # ... and a value outside the model's declared table (checked again by fit)
            check_params(params, get_model_class(name)._parameter_constraints, owner=name)
        expected = {
            "models": tuple(self.models),
            "ks": canonical_ks(self.ks),
            "model_params": _params_with_memory(self.model_params, self.models, self.max_memory, self.device),
        }
        for name, value in expected.items():
            if getattr(self, name) != value:
                raise UsageError(
                    f"BenchmarkConfig.{name} is {getattr(self, name)!r}, expected {value!r}; "
                    "BenchmarkConfig.create(...) puts the options in that form"
                )

    def to_dict(self) -> dict[str, Any]:
        """Every field that determines the result, as plain data: the keys of ``config.json``."""
        out = asdict(self)
        del out["min_rating_given"]
        return out

    @property
    def default_min_rating(self) -> bool:
        """Whether ratings are kept above :data:`DEFAULT_MIN_RATING` without the user choosing it."""
        return not self.min_rating_given and self.min_rating == DEFAULT_MIN_RATING

    def config_file_params(self) -> dict[str, str]:
        """``config_file`` and ``config_file_sha256`` as a run's parameters; empty without a file."""
        if self.config_file is None:
            return {}
        return {"config_file": self.config_file, "config_file_sha256": str(self.config_file_sha256)}

    def params_for(self, name: str) -> dict[str, Any]:
        """The explicit parameters of model ``name`` (a copy; empty when none were given)."""
        return dict(self.model_params.get(name, {}))


#: The protocols a rating file can be split by (None: strong generalization).
PROTOCOLS = (None, "strong", "weak", "temporal")

#: The values of the settings that no lower layer's check function covers
#: (see :func:`recae.checks.check_params`).
_SETTING_CONSTRAINTS: dict[str, list[Constraint]] = {
    "min_rating": [Interval(float, None, None), None],
    "min_user_items": [Interval(int, 0, None)],
    "min_item_users": [Interval(int, 0, None)],
    "ks": [ListOf(Interval(int, 1, None))],
    "topn_sample_users": [Interval(int, 0, None)],
    "max_memory": [Interval(float, 0, None, closed="neither"), None],
    "last_k": [Interval(int, 1, None), None],
}


def _check_settings(config: BenchmarkConfig) -> None:
    """``UsageError`` naming the first setting the run cannot take, before any data is read."""
    check_seed(config.seed)
    check_heldout_users(config.heldout_users)
    check_probability(config.test_prop, "test_prop")
    check_probability(config.val_prop, "val_prop")
    check_params({name: getattr(config, name) for name in _SETTING_CONSTRAINTS}, _SETTING_CONSTRAINTS)
    check_beyond_metrics(config.metrics)
    if config.protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {config.protocol!r}: expected one of {', '.join(p for p in PROTOCOLS if p)}")
    temporal = config.protocol == "temporal"
    if temporal and (config.time_cut is None) == (config.last_k is None):
        raise UsageError("--protocol temporal takes either --time-cut (a quantile or a date) or --last-k")
    if not temporal and (config.time_cut is not None or config.last_k is not None):
        raise UsageError("--time-cut and --last-k apply to --protocol temporal")
    if config.device is not None:
        resolve_device(config.device)  # --device cuda without a GPU is refused here, before any work


def canonical_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """The cut-offs sorted and distinct, with :data:`SELECTION_K` among them."""
    return tuple(sorted({*(int(k) for k in ks), SELECTION_K}))


def _params_with_memory(
    model_params: Mapping[str, Mapping[str, Any]], models: Sequence[str], max_memory: float | None,
    device: str | None = None,
) -> dict[str, dict[str, Any]]:
    """``model_params`` copied, with ``max_memory`` and ``device`` (when given) set for each
    of ``models`` that takes them and has none of its own (an unknown model is left for
    the registry to name)."""
    out = {name: dict(params) for name, params in model_params.items()}
    for key, value in (("max_memory", max_memory), ("device", device)):
        if value is None:
            continue
        for name in models:
            if name in REGISTRY and key in REGISTRY[name].param_names():
                out.setdefault(name, {}).setdefault(key, value)
    return out


__all__ = ["DEFAULT_MIN_RATING", "DEFAULT_MODELS", "PRIMARY_METRIC", "SELECTION_K", "BenchmarkConfig", "canonical_ks"]
