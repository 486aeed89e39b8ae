"""The data layer: from a data set name or a file to an ``Interactions`` matrix.

The flow, one module per step::

    spec ──load (sources)──▶ RawData: ratings, or a given train/test split
         a name is fetched into the cache first (datasets, download)
         a path is read by its format's reader (readers, tables)
    ratings ──binarize, kcore (filters)──▶ ──to_interactions (interactions)──▶ Interactions

Every reader returns a DataFrame with the columns ``user``, ``item`` and, when
the file has them, ``rating`` (float64) and ``timestamp`` (int64)
(:mod:`recae.data.schema`). Bad input raises :class:`~recae.errors.DataError`
with a one-line message that names the file, the line (or row, or column) and
what was expected. Text ids are stripped of surrounding whitespace wherever
they come in (:func:`normalize_ids`, the one rule, for other layers too). Raw
ids exist only here and where top-N lists are written out; everything
downstream works on contiguous integer indices and CSR matrices. A file named
``.gz``, ``.bz2`` or ``.xz`` is decompressed as it is read
(:mod:`recae.data.compression`). A cached data
file is checked against its recorded digest every time it is opened
(:mod:`recae.data.integrity`).

The names below are the layer's public interface; import them from ``recae.data``.
"""

from __future__ import annotations

from recae.data.compression import read_text
from recae.data.datasets import (
    DATA_DIR_ENV,
    DATASET_URL_ENV,
    DATASETS,
    DatasetInfo,
    data_dir,
    fetch,
)
from recae.data.filters import binarize, kcore
from recae.data.interactions import Interactions, to_interactions
from recae.data.readers import (
    read_adjacency,
    read_ml100k,
    read_ml_csv,
    read_ml_dat,
    read_train_test_dir,
)
from recae.data.schema import ITEM, RATING, TIMESTAMP, USER, PathLike, normalize_ids
from recae.data.sources import RawData, load, load_ratings
from recae.data.tables import read_table

__all__ = [
    "DATASETS",
    "DATASET_URL_ENV",
    "DATA_DIR_ENV",
    "ITEM",
    "RATING",
    "TIMESTAMP",
    "USER",
    "DatasetInfo",
    "Interactions",
    "PathLike",
    "RawData",
    "binarize",
    "data_dir",
    "fetch",
    "kcore",
    "load",
    "load_ratings",
    "normalize_ids",
    "read_adjacency",
    "read_ml100k",
    "read_ml_csv",
    "read_ml_dat",
    "read_table",
    "read_text",
    "read_train_test_dir",
    "to_interactions",
]
