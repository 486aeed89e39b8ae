"""Reading a data set given by name or path: :func:`load` picks the source and the reader.

A name of :data:`~recae.data.datasets.DATASETS` is fetched into the cache (or
found there); a path, or a folder of that name in the cache, is read by the
reader its name or extension selects. :func:`load` returns :class:`RawData`:
one ratings frame, or a given train/test split.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recae.data.compression import plain_name
from recae.data.datasets import DATASETS, check_cached_folder, fetch
from recae.data.datasets import data_dir as resolve_data_dir
from recae.data.readers import (
    read_adjacency,
    read_ml100k,
    read_ml_csv,
    read_ml_dat,
    read_train_test_dir,
)
from recae.data.schema import RATING, PathLike
from recae.data.tables import read_table_columns
from recae.errors import DataError, UsageError


@dataclass(frozen=True, eq=False)
class RawData:
    """What :func:`load` read: either one ratings frame or a given train/test split.

    Attributes
    ----------
    source : str
        The data set name or path it came from, for messages and tracking.
    ratings : DataFrame or None
        ``user``, ``item`` and, when present, ``rating`` and ``timestamp``.
    train, test : DataFrame or None
        The given split's ``(user, item)`` pairs; set together, and only when
        ``ratings`` is None.
    rating_column : str or None
        The source's column the ``rating`` column was read from (``"rating"``
        for MovieLens files, whose third field it is); None when no ratings
        were read, and every row is a positive interaction. A caller that
        keeps ratings above a default threshold says so when this is set.
    """

    source: str
    ratings: pd.DataFrame | None = None
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    rating_column: str | None = None

    @property
    def is_given_split(self) -> bool:
        """Whether the source fixed the train/test split itself."""
        return self.train is not None


_READERS_BY_FILE_NAME: dict[str, Callable[[PathLike], pd.DataFrame]] = {
    "u.data": read_ml100k,
    "ratings.dat": read_ml_dat,
    "ratings.csv": read_ml_csv,
}


def load(
    spec: PathLike,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    **read_table_kwargs: str | None,
) -> RawData:
    """Read a data set given by name or path.

    ``spec`` is resolved in this order:

    1. a name in :data:`~recae.data.datasets.DATASETS` → :func:`fetch` (cached
       or downloaded) and its reader;
    2. an existing path, or else a folder of that name in the data directory:

       - a directory with ``train.txt`` and ``test.txt`` → a given split
         (:func:`read_train_test_dir`);
       - a directory with ``u.data``, ``ratings.dat`` or ``ratings.csv`` → that file;
       - a file named ``u.data`` / ``ratings.dat`` / ``ratings.csv`` → the
         MovieLens reader for it;
       - a ``.txt`` file → :func:`read_adjacency`;
       - any other file (``.csv``, ``.tsv``, ``.parquet``, ...) →
         :func:`~recae.data.tables.read_table`, which reads a ``rating`` and
         a ``timestamp`` column by their conventional names unless told otherwise.

    Parameters
    ----------
    spec : str or path-like
        A data set name or a path.
    data_dir : str or path-like, optional
        The download cache; see :func:`~recae.data.datasets.data_dir`.
    base_url, progress
        Passed to :func:`fetch` for a named data set.
    **read_table_kwargs
        ``user_col``, ``item_col``, ``rating_col``, ``timestamp_col``, ``sep``
        for :func:`~recae.data.tables.read_table`. Given for a MovieLens file
        name they select that reader instead of the MovieLens one.

    Returns
    -------
    RawData
        ``ratings`` set, or ``train`` and ``test`` set for a given split;
        ``rating_column`` names the column ratings were read from, if any.

    Raises
    ------
    UsageError
        ``spec`` is neither a known name nor an existing path, or table
        options were given for a source that is not a table.
    DataError
        The file is malformed (see the readers) or the download failed.
    """
    spec = os.fspath(spec)
    if spec in DATASETS:
        _refuse_table_options(spec, read_table_kwargs)
        path = fetch(spec, data_dir, base_url=base_url, progress=progress)
        return _ratings(spec, DATASETS[spec].reader(path))
    path = _local_path(spec, data_dir)
    if path.is_dir():
        return _load_dir(spec, path, read_table_kwargs)
    return _read_file(path, read_table_kwargs)


def load_ratings(
    spec: PathLike,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    **read_table_kwargs: str | None,
) -> pd.DataFrame:
    """Read one ratings frame given by name or path; see :func:`load` for ``spec``.

    Returns
    -------
    DataFrame
        ``user``, ``item`` and, when present, ``rating`` and ``timestamp``.

    Raises
    ------
    UsageError
        As :func:`load`, and when ``spec`` is a given train/test split (use
        :func:`load` for those).
    DataError
        As :func:`load`.
    """
    raw = load(spec, data_dir, base_url=base_url, progress=progress, **read_table_kwargs)
    if raw.ratings is None:
        raise UsageError(
            f"{raw.source}: is a given train/test split, not one ratings file; "
            f"read it with recae.data.load"
        )
    return raw.ratings


def _local_path(spec: str, data_dir: PathLike | None) -> Path:
    """``spec`` as an existing path, or the cache folder of that name (checked); else UsageError."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    root = resolve_data_dir(data_dir)
    if len(path.parts) == 1 and (root / spec).exists():
        # A data set already laid out in the cache, e.g. ml-1m-lcfn.
        check_cached_folder(root / spec)
        return root / spec
    raise UsageError(
        f"{spec}: no such file, nor a folder of the data directory {root}, "
        f"and not a known data set name (known: {', '.join(DATASETS)})"
    )


def _load_dir(spec: str, path: Path, read_table_kwargs: dict[str, str | None]) -> RawData:
    """A folder: a given split (``train.txt``, ``test.txt``) or one MovieLens ratings file."""
    if (path / "train.txt").exists() or (path / "test.txt").exists():
        _refuse_table_options(spec, read_table_kwargs)
        train, test = read_train_test_dir(path)
        return RawData(str(path), train=train, test=test)
    for file_name in _READERS_BY_FILE_NAME:
        if (path / file_name).is_file():
            return _read_file(path / file_name, read_table_kwargs, source=str(path))
    raise DataError(
        f"{path}: holds neither train.txt and test.txt nor any of "
        f"{', '.join(_READERS_BY_FILE_NAME)}"
    )


def _refuse_table_options(spec: str, options: dict[str, str | None]) -> None:
    if options:
        raise UsageError(
            f"{spec}: {', '.join(options)} apply only to CSV/TSV/Parquet tables "
            f"read with read_table"
        )


def _read_file(
    path: Path, read_table_kwargs: dict[str, str | None], source: str | None = None
) -> RawData:
    """Read one file with the reader its name or extension selects (see :func:`load`)."""
    source = str(path) if source is None else source
    plain = plain_name(path)  # u.data.gz is read as u.data is
    if not read_table_kwargs and plain.name in _READERS_BY_FILE_NAME:
        return _ratings(source, _READERS_BY_FILE_NAME[plain.name](path))
    if not read_table_kwargs and plain.suffix.lower() == ".txt":
        return _ratings(source, read_adjacency(path))
    frame, columns = read_table_columns(path, **read_table_kwargs)
    return RawData(source, ratings=frame, rating_column=columns.get(RATING))


def _ratings(source: str, frame: pd.DataFrame) -> RawData:
    """RawData for a frame whose ``rating`` column, if any, has that name in its source too."""
    return RawData(source, ratings=frame, rating_column=RATING if RATING in frame else None)
