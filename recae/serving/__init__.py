"""Top-N lists in raw ids, for known users and for new users from their history alone.

Nothing here imports MLflow: :mod:`recae.tracking.pyfunc` wraps this package as
an MLflow model. The names below are the package's public API; the layers above
import them from here, not from its modules.
"""

from recae.serving.topn import (
    CATALOG_FILE,
    MODEL_DIR,
    OUTPUT_COLUMNS,
    Catalog,
    Histories,
    TopN,
    item_popularity,
    plain_ids,
    read_history,
    read_id_list,
    save_bundle,
    write_table,
)

__all__ = [
    "CATALOG_FILE",
    "MODEL_DIR",
    "OUTPUT_COLUMNS",
    "Catalog",
    "Histories",
    "TopN",
    "item_popularity",
    "plain_ids",
    "read_history",
    "read_id_list",
    "save_bundle",
    "write_table",
]
