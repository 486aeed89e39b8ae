"""Top-N lists in raw ids, for known users and for new users from their history alone.

One job per module: :mod:`~recae.serving.ids` (raw id conversion and lookup:
:func:`convert_ids` is the one rule by which ids given from outside match a
model's ids), :mod:`~recae.serving.catalog` (the catalogue of raw ids and
popularity, and the bundle folder), :mod:`~recae.serving.histories` (history
files and id lists into :class:`Histories`), :mod:`~recae.serving.topn`
(:class:`TopN`: scoring in batches into frames),
:mod:`~recae.serving.output` (frames to a file) and
:mod:`~recae.serving.limits` (:class:`ServingLimits`: what one served request
may ask for).

Nothing here imports MLflow: :mod:`recae.tracking.pyfunc` wraps this package as
an MLflow model. The names below are the package's public API; the layers above
import them from here, not from its modules.
"""

from recae.serving.catalog import (
    CATALOG_FILE,
    MODEL_DIR,
    Catalog,
    find_bundle,
    item_popularity,
    load_model,
    save_bundle,
)
from recae.serving.histories import Histories, read_history, read_id_list
from recae.serving.ids import convert_ids, plain_ids, require_ids
from recae.serving.limits import ServingLimits
from recae.serving.output import write_table
from recae.serving.topn import OUTPUT_COLUMNS, TopN

__all__ = [
    "CATALOG_FILE",
    "MODEL_DIR",
    "OUTPUT_COLUMNS",
    "Catalog",
    "Histories",
    "ServingLimits",
    "TopN",
    "convert_ids",
    "find_bundle",
    "item_popularity",
    "load_model",
    "plain_ids",
    "read_history",
    "read_id_list",
    "require_ids",
    "save_bundle",
    "write_table",
]
