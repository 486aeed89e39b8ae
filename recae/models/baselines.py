"""The baselines under their former module path, ``recae.models.baselines``.

Each now lives in its own module (:mod:`~recae.models.popularity`,
:mod:`~recae.models.ease`, :mod:`~recae.models.als`, :mod:`~recae.models.bpr`,
:mod:`~recae.models.item_knn`); import them from there or from :mod:`recae.models`.
"""

from __future__ import annotations

from recae.models.als import ALS
from recae.models.bpr import BPR
from recae.models.ease import EASE
from recae.models.item_knn import ItemKNN
from recae.models.popularity import Popularity

__all__ = ["ALS", "BPR", "EASE", "ItemKNN", "Popularity"]
