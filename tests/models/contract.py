"""The contract every registered model keeps, as a test class each model's tests subclass.

A model's test module declares::

    class TestEASEContract(ModelContract):
        model_class = EASE
        fast_params = {"l2": 10.0}
        bad_params = [{"l2": 0.0}, ...]

and pytest runs every test below for it. ``contract_classes`` finds them all,
so that a model in the registry without such a class fails a test.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recae.errors import DataError, NotFittedError, UsageError
from recae.models import Recommender
from tests.conftest import planted_blocks

N_ITEMS, N_BLOCKS = 60, 3


class ModelContract:
    """Tests every model must pass; subclasses set the class attributes below."""

    #: The model under test.
    model_class: ClassVar[type[Recommender]]
    #: Settings that make it fit the planted data in about a second.
    fast_params: ClassVar[dict[str, Any]] = {}
    #: Parameter settings (one each) that ``fit`` must refuse before any work,
    #: with a ``UsageError`` naming the parameter and the value.
    bad_params: ClassVar[list[dict[str, Any]]] = []
    #: Whether the model declares a search space for tuning.
    tunable: ClassVar[bool] = True
    #: The dtype kinds its saved state may hold (numbers only: no objects, no pickles).
    state_kinds: ClassVar[str] = "biuf"

    @classmethod
    def make(cls, **params: Any) -> Recommender:
        """The model with the fast settings, overridden by ``params``."""
        return cls.model_class(**{**cls.fast_params, **params})

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """Training users, new users (unseen in training) and each new user's block."""
        X, _ = planted_blocks(n_users=150, n_items=N_ITEMS, n_blocks=N_BLOCKS, density=0.5, seed=0)
        new, new_blocks = planted_blocks(n_users=30, n_items=N_ITEMS, n_blocks=N_BLOCKS, density=0.3, seed=1)
        return X, new, new_blocks

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data) -> Recommender:
        return cls.make().fit(data[0])

    # ------------------------------------------------------------ parameters
    def test_the_parameter_table_covers_every_constructor_parameter(self):
        assert set(self.model_class._parameter_constraints) == set(self.model_class.param_names())

    def test_the_defaults_and_the_fast_settings_are_valid(self):
        self.model_class()._validate_params()
        self.make()._validate_params()

    def test_bad_parameters_are_refused_before_any_work(self, data):
        assert self.bad_params or not self.model_class.param_names()
        for params in self.bad_params:
            (name, value), = params.items()
            model = self.make(**params)  # the constructor only stores
            model._fit = lambda *args, name=name: pytest.fail(f"{name}: fit started work")
            with pytest.raises(UsageError, match=name) as err:
                model.fit(data[0])
            assert repr(value) in str(err.value)
            assert not model.is_fitted

    def test_an_unknown_parameter_is_named(self):
        with pytest.raises(UsageError, match="no parameter 'bogus'"):
            self.model_class().set_params(bogus=1)

    def test_search_space_draws_valid_parameters(self):
        optuna = pytest.importorskip("optuna")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        if not self.tunable:
            with pytest.raises(UsageError, match="no search space"):
                self.model_class.search_space(study.ask())
            return
        for _ in range(5):
            params = self.model_class.search_space(study.ask())
            assert params and set(params) <= set(self.model_class.param_names())
            self.model_class(**params)._validate_params()

    # --------------------------------------------------------------- fitting
    def test_fit_returns_self_and_refits_from_scratch(self, data, fitted):
        X, new, _ = data
        model = self.make()
        assert not model.is_fitted
        other, _ = planted_blocks(n_users=40, n_items=N_ITEMS - 20, n_blocks=N_BLOCKS, seed=2)
        assert model.fit(other) is model
        assert model.is_fitted and model.n_items_ == N_ITEMS - 20
        assert model.fit(X) is model
        assert model.n_items_ == N_ITEMS
        np.testing.assert_array_equal(model.score(new), fitted.score(new))

    def test_a_fixed_seed_repeats_exactly(self, data, fitted):
        X, new, _ = data
        np.testing.assert_array_equal(self.make().fit(X).score(new), fitted.score(new))

    # --------------------------------------------------------------- scoring
    def test_unfitted_model_raises_a_clear_error(self, data):
        with pytest.raises(NotFittedError, match="not fitted"):
            self.model_class().score(data[0])

    def test_scores_have_one_float32_row_per_history(self, data, fitted):
        _, new, _ = data
        scores = fitted.score(new)
        assert scores.shape == new.shape and scores.dtype == np.float32
        assert np.isfinite(scores).all()
        assert fitted.score(new[:0]).shape == (0, N_ITEMS)

    def test_wrong_catalogue_width_is_rejected(self, fitted):
        with pytest.raises(DataError, match=f"fitted on {N_ITEMS} items"):
            fitted.score(sp.csr_matrix((2, N_ITEMS - 1), dtype=np.float32))

    def test_input_items_are_never_recommended(self, data, fitted):
        _, new, _ = data
        items, _ = fitted.recommend(new, k=40)
        for u in range(new.shape[0]):
            assert not set(items[u][items[u] >= 0]) & set(new[u].indices)

    def test_batch_scores_equal_single_user_scores(self, data, fitted):
        _, new, _ = data
        batch = fitted.score(new)
        for u in (0, 7, 29):
            np.testing.assert_allclose(fitted.score(new[u]), batch[u : u + 1], rtol=1e-5, atol=1e-6)
        items_batch, _ = fitted.recommend(new, k=10, batch_size=7)
        items_whole, _ = fitted.recommend(new, k=10, batch_size=1000)
        np.testing.assert_array_equal(items_batch, items_whole)

    def test_a_planted_pattern_is_recovered(self, data, fitted):
        """New users' top-5 lists come mostly from their own block (≈ 14 unseen items each)."""
        _, new, blocks = data
        items, _ = fitted.recommend(new, k=5)
        own = (items % N_BLOCKS) == blocks[:, None]
        assert own.mean() > 0.9, f"only {own.mean():.0%} of recommendations from the user's block"

    # ----------------------------------------------------------- persistence
    def test_save_load_round_trip_gives_identical_scores(self, data, fitted, tmp_path):
        _, new, _ = data
        path = fitted.save(tmp_path / "model")
        # the state file is plain numbers: it loads with pickling disabled
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            assert all(npz[k].dtype.kind in self.state_kinds for k in npz.files)
        loaded = Recommender.load(path)
        assert type(loaded) is self.model_class
        assert loaded.get_params() == json.loads(json.dumps(fitted.get_params()))
        np.testing.assert_array_equal(loaded.score(new), fitted.score(new))


def contract_classes() -> dict[str, type[ModelContract]]:
    """Each model's contract test class, by the model's registry name.

    Imports every ``tests/models/test_*.py`` first, so that the answer does not
    depend on which test files pytest was asked to run.
    """
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        importlib.import_module(f"{__package__}.{path.stem}")
    found: dict[str, type[ModelContract]] = {}
    stack = [ModelContract]
    while stack:
        for cls in stack.pop().__subclasses__():
            if "model_class" in cls.__dict__:
                assert cls.model_class.name not in found, f"two contract classes for {cls.model_class.name}"
                found[cls.model_class.name] = cls
            stack.append(cls)
    return found
