"""The model registry: every model ``recae benchmark --models`` and ``recae tune`` know.

``make_model("mult-vae", epochs=50)`` builds one by name; an unknown name or a
parameter a model does not take raises ``UsageError`` naming it. Adding a model
is one new module beside this one and one entry in :data:`REGISTRY`.
"""

from __future__ import annotations

from typing import Any

from recae.errors import UsageError
from recae.models.als import ALS
from recae.models.base import Recommender
from recae.models.blend import Blend
from recae.models.bpr import BPR
from recae.models.cdae import CDAE
from recae.models.ease import EASE
from recae.models.edlae import EDLAE
from recae.models.elsa import ELSA
from recae.models.item_knn import ItemKNN
from recae.models.mult_dae import MultDAE
from recae.models.mult_vae import MultVAE
from recae.models.popularity import Popularity
from recae.models.recvae import RecVAE
from recae.models.vasp import VASP

#: Name → class, in the order commands list them.
REGISTRY: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (MultVAE, MultDAE, RecVAE, CDAE, VASP, EASE, EDLAE, ELSA, Blend, ALS, BPR, ItemKNN, Popularity)
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
