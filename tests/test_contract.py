"""The registry and the model contract: every registered model has its contract test class.

The contract itself is :class:`tests.models.contract.ModelContract`; each model's
test module under ``tests/models/`` subclasses it.
"""

from __future__ import annotations

import pytest

from recae.errors import UsageError
from recae.models import REGISTRY, make_model
from recae.models.base import model_class
from tests.models.contract import contract_classes

#: Each registered model's fast settings (from its contract class), for tests
#: that fit every model on small planted data.
FAST: dict[str, dict] = {name: dict(cls.fast_params) for name, cls in contract_classes().items()}


def test_every_registered_model_has_a_contract_test_class():
    missing = sorted(set(REGISTRY) - set(contract_classes()))
    assert not missing, f"no ModelContract subclass under tests/models/ for {missing}"
    assert set(FAST) == set(REGISTRY)


def test_saved_models_find_their_registered_class_by_name():
    assert {name: model_class(name) for name in REGISTRY} == REGISTRY
    with pytest.raises(UsageError, match="unknown model 'mult-gan'"):
        model_class("mult-gan")


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown model 'mult-gan'.*mult-vae"):
        make_model("mult-gan")
