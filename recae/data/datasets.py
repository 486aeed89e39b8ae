"""Named public data sets: where each is published, its checksums, and the download cache.

Data set ``name`` lives in ``<data_dir>/<name>/``: the files of the archive's
folder that holds the ratings (for ml-1m: ``ratings.dat``, ``movies.dat``,
``users.dat``, ``README``). A folder already there is used with no network
access, so a cache filled beforehand (``$RECAE_DATA_DIR`` pointing at
``../shared/datasets``) works offline; its ratings file is checked every time
it is opened (:mod:`recae.data.integrity`), and downloaded again when it is
truncated or altered. A download is checked against every known digest and
only then moved into place, in one rename.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from recae.data.download import download_folder
from recae.data.integrity import check_file, is_writable, record_files
from recae.data.readers import read_ml100k, read_ml_csv, read_ml_dat
from recae.data.schema import PathLike
from recae.errors import DataError, UsageError
from recae.files import replace

#: Environment variable naming the download cache (see :func:`data_dir`).
DATA_DIR_ENV = "RECAE_DATA_DIR"
#: Environment variable naming a mirror to download archives from (see :func:`fetch`).
DATASET_URL_ENV = "RECAE_DATASET_URL"


@dataclass(frozen=True)
class DatasetInfo:
    """A public data set that :func:`fetch` can download, check and cache.

    Attributes
    ----------
    name : str
        The name users type (``"ml-1m"``); also the cache folder's name.
    url : str
        Where the publisher serves the zip archive.
    member : str
        Path of the ratings file inside the archive (``"ml-10M100K/ratings.dat"``);
        its folder is what gets extracted.
    reader : callable
        The reader for the ratings file (path → DataFrame).
    sha256, md5 : str or None
        Hex digests of the archive. Every digest given must match; when both
        are None a download is refused unless explicitly allowed.
    ratings_sha256 : tuple of str
        SHA-256 digests the extracted ratings file may have, for a cache
        filled by hand (recae records the digest of what it downloads itself);
        empty when none is known.
    """

    name: str
    url: str
    member: str
    reader: Callable[[PathLike], pd.DataFrame]
    sha256: str | None
    md5: str | None = None
    ratings_sha256: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """The archive's top folder holding the ratings file."""
        return str(PurePosixPath(self.member).parent)

    @property
    def ratings_file(self) -> str:
        """The ratings file's name, inside the archive and in the cache."""
        return PurePosixPath(self.member).name

    @property
    def archive_name(self) -> str:
        """The archive's file name, also its name on a mirror (``"ml-1m.zip"``)."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def digests(self) -> dict[str, str]:
        """The known digests by algorithm, strongest first (``{"sha256": ..., "md5": ...}``)."""
        known = {"sha256": self.sha256, "md5": self.md5}
        return {algorithm: digest for algorithm, digest in known.items() if digest is not None}


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

# SHA-256 digests: tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt
# (ml-100k and ml-1m also pinned, identically, by several independent projects).
# MD5 digests: the ``<name>.zip.md5`` files GroupLens publishes beside each
# archive. No SHA-256 for ml-10m was found in any public source, so its
# download is checked against the publisher's MD5 alone; MD5 collisions can be
# manufactured, but forging a second file that matches an existing digest
# (a second preimage) is still out of reach, which is what matters here.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "ml-100k",
            f"{_GROUPLENS}/ml-100k.zip",
            "ml-100k/u.data",
            read_ml100k,
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
            ratings_sha256=("06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",),
        ),
        DatasetInfo(
            "ml-1m",
            f"{_GROUPLENS}/ml-1m.zip",
            "ml-1m/ratings.dat",
            read_ml_dat,
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
        ),
        DatasetInfo(
            "ml-10m",
            f"{_GROUPLENS}/ml-10m.zip",
            "ml-10M100K/ratings.dat",
            read_ml_dat,
            sha256=None,
            md5="ce571fd55effeba0271552578f2648bd",
        ),
        DatasetInfo(
            "ml-20m",
            f"{_GROUPLENS}/ml-20m.zip",
            "ml-20m/ratings.csv",
            read_ml_csv,
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
        ),
        DatasetInfo(
            "ml-25m",
            f"{_GROUPLENS}/ml-25m.zip",
            "ml-25m/ratings.csv",
            read_ml_csv,
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
        ),
        # GroupLens replaces ml-latest-small from time to time. This archive
        # digest is the September 2018 edition (610 users, 9,724 movies,
        # 100,836 ratings), the one served since; the 2016 edition (671 users,
        # 100,004 ratings) that older papers and some caches hold has a
        # different archive. The ratings digest is the 2016 edition's, so a
        # cache of either passes: the 2018 one by the digest recorded when it
        # was downloaded.
        DatasetInfo(
            "ml-latest-small",
            f"{_GROUPLENS}/ml-latest-small.zip",
            "ml-latest-small/ratings.csv",
            read_ml_csv,
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            ratings_sha256=("b4239649fbf90ebf405c56c3ae1d929d9e7c86fc1a3a80cbef1c884df593ef73",),
        ),
    )
}


#: Data sets that are read from the cache by folder name but cannot be
#: downloaded: the SHA-256 of each of their files, checked when the folder is opened.
#: ml-1m-lcfn is MovieLens 1M's fixed train/test split of LCFN and UltraGCN
#: (the UltraGCN repository, ``data/ml-1m/``).
CACHED_FOLDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "ml-1m-lcfn": {
        "train.txt": ("f088986b22f14f17136f9c4ef6f1269201f83dfb9ce259f1fd4ed46d72a92599",),
        "test.txt": ("7ca364f7f9321417b521745833b12719a2feb13253bccece2c04d5afe9fc3e15",),
    },
}


def _dataset_info(name: str) -> DatasetInfo:
    """The entry of :data:`DATASETS` for ``name``, else UsageError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})") from None


def data_dir(explicit: PathLike | None = None) -> Path:
    """The download cache: ``explicit``, else ``$RECAE_DATA_DIR``, else ``./data``.

    Parameters
    ----------
    explicit : str or path-like, optional
        A folder chosen by the caller; wins over the environment.

    Returns
    -------
    Path
        The folder (not created here); data set ``name`` lives in ``<folder>/<name>/``.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else Path("data")


# The functions below take a parameter called ``data_dir``, which shadows the function.
_resolve_data_dir = data_dir


def fetch(
    name: str,
    data_dir: PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
    allow_unverified: bool = False,
) -> Path:
    """Return the path of a named data set's ratings file, downloading it if needed.

    A cached copy, ``<data_dir>/<name>/<ratings file>``, is used with no
    network access once it passes :func:`~recae.data.integrity.check_file`
    (the digest recorded when it was downloaded, or ``ratings_sha256``);
    one that fails is downloaded again, with a warning. Otherwise the archive
    is downloaded into a hidden ``.<name>-*`` folder inside ``data_dir``,
    checked, and its folder renamed into place in one step: a failed download
    leaves no partial cache entry.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    data_dir : str or path-like, optional
        The cache; see :func:`data_dir`.
    base_url : str, optional
        A mirror (an ``http``, ``https`` or ``file`` URL) serving ``<name>.zip``
        instead of GroupLens; the archive must still match the known digests.
        Defaults to ``$RECAE_DATASET_URL`` when that is set.
    progress : bool
        Show a progress bar while downloading.
    force : bool
        Download again even when cached; the cached folder is replaced only
        once the new copy has been verified and extracted.
    allow_unverified : bool
        Accept an archive for which no digest is known.

    Returns
    -------
    Path
        The ratings file, readable with ``DATASETS[name].reader``.

    Raises
    ------
    UsageError
        ``name`` is not a known data set.
    DataError
        The download failed (HTTP error, unreachable host, truncated), a
        checksum did not match (the message gives the URL and both digests),
        the archive lacks the ratings file, or the cache cannot be written;
        or the cached ratings file is truncated or altered and downloading it
        again failed (the message names the file and the expected digest).
    """
    info = _dataset_info(name)
    root = _resolve_data_dir(data_dir)
    target = root / info.name / info.ratings_file
    if target.is_file() and not force:
        problem = check_file(target, info.ratings_sha256)
        if problem is not None:
            _download_again(root, info, problem, base_url, progress, allow_unverified)
        return target
    if target.parent.exists() and not force:
        # Not ours to clear: it may hold the user's own files.
        raise DataError(
            f"{target.parent}: exists but holds no {info.ratings_file}; "
            f"remove it, or fetch with force=True to replace it"
        )
    _download_into(root, info, base_url, progress=progress, allow_unverified=allow_unverified)
    return target


def _download_again(
    root: Path, info: DatasetInfo, problem: str, base_url: str | None, progress: bool, allow_unverified: bool
) -> None:
    """Replace a cached data set whose ratings file failed its check (``problem``) by a new download."""
    if not (is_writable(root) and is_writable(root / info.name)):
        raise DataError(f"{problem}; the cache {root} is read-only, so it is not downloaded again")
    warnings.warn(f"{problem}; downloading {info.name} again", stacklevel=3)
    try:
        _download_into(root, info, base_url, progress=progress, allow_unverified=allow_unverified)
    except DataError as error:
        raise DataError(f"{problem}; downloading it again failed: {error}") from None


def _download_into(
    root: Path, info: DatasetInfo, base_url: str | None, *, progress: bool, allow_unverified: bool
) -> None:
    """Download ``info``'s archive and install its folder as ``root/<name>``; see :func:`fetch`.

    On failure, the folders this call created (``root`` and its parents) are
    removed again when empty, and an existing ``root/<name>`` is left as it was.
    """
    if not info.digests and not allow_unverified:
        raise DataError(
            f"no checksum is known for {info.name}; refusing to download it unverified "
            f"(pass allow_unverified=True to accept it)"
        )
    mirror = base_url or os.environ.get(DATASET_URL_ENV, "").strip()
    url = f"{mirror.rstrip('/')}/{info.archive_name}" if mirror else info.url
    created = [d for d in (root, *root.parents) if not d.exists()]
    target = root / info.name / info.ratings_file
    try:
        root.mkdir(parents=True, exist_ok=True)
        # The scratch folder lives inside the cache so that the final rename
        # stays on one file system, and therefore atomic.
        with tempfile.TemporaryDirectory(prefix=f".{info.name}-", dir=root) as scratch:
            scratch = Path(scratch)
            staged = download_folder(
                url, scratch, info.member, info.digests, progress=progress, label=info.name
            )
            record_files(staged, [info.ratings_file])  # opening it later needs no hashing
            try:
                replace(staged, root / info.name)  # a cached copy is swapped out, not lost
            except OSError:
                if not target.is_file():  # else another process finished the same download first
                    raise
    except OSError as error:
        _remove_empty(created)
        raise DataError(
            f"cannot write {info.name} into the cache {root}: {error.strerror or error}; "
            f"choose a writable folder with data_dir= or ${DATA_DIR_ENV}"
        ) from None
    except BaseException:
        _remove_empty(created)  # a failed first download leaves no empty cache folder behind
        raise


def check_cached_folder(folder: Path) -> None:
    """Check the files of a :data:`CACHED_FOLDERS` data set, read from ``folder``.

    Each file present is checked with :func:`~recae.data.integrity.check_file`;
    a folder of another name is not checked.

    Raises
    ------
    DataError
        A file is truncated or altered (the message names it and its expected
        digest); such a data set cannot be downloaded again.
    """
    for name, known in CACHED_FOLDERS.get(folder.name, {}).items():
        if (folder / name).is_file():
            problem = check_file(folder / name, known)
            if problem is not None:
                raise DataError(f"{problem}; restore it from the source of {folder.name}")


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this call created (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
