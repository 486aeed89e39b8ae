"""The model registry: every model ``recae benchmark --models`` and ``recae tune`` know.

``make_model("mult-vae", epochs=50)`` builds one by name; an unknown name or a
parameter a model does not take raises ``UsageError`` naming it.
"""

from __future__ import annotations

from typing import Any

from recae.errors import UsageError
from recae.models.autoencoder import MultDAE, MultVAE
from recae.models.base import Recommender
from recae.models.baselines import ALS, BPR, EASE, ItemKNN, Popularity

REGISTRY: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (MultVAE, MultDAE, EASE, ALS, BPR, ItemKNN, Popularity)
}


def get_model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``, or ``UsageError`` listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown model {name!r}; known models: {', '.join(REGISTRY)}"
        ) from None


def make_model(name: str, **params: Any) -> Recommender:
    """Build the model ``name`` with ``params`` (each checked against its constructor)."""
    cls = get_model_class(name)
    model = cls()
    model.set_params(**params)
    return model


__all__ = ["REGISTRY", "Recommender", "get_model_class", "make_model"]
