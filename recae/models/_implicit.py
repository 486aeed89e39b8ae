"""What the models fitted by ``implicit`` share: thread limits and the fit call.

``implicit`` runs its own OpenMP threads and asks for BLAS to be limited to one
thread while it fits (``implicit.utils.check_blas_config``: a threaded OpenBLAS
under ``implicit``'s threads is much slower). Its learned arrays are copied out
by each model; no ``implicit`` object outlives ``fit``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import scipy.sparse as sp
from implicit.recommender_base import ModelFitError as ImplicitFitError
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from recae.errors import ModelFitError


def blas_threads(n: int) -> contextlib.AbstractContextManager[Any]:
    """A context in which BLAS uses at most ``n`` threads."""
    return threadpool_limits(limits=n, user_api="blas")


@contextlib.contextmanager
def implicit_fit_context() -> Iterator[None]:
    """One BLAS thread while ``implicit`` fits, and its CSR-conversion notices silenced.

    ``implicit`` warns when BLAS is threaded (and runs much slower); its item-kNN
    weighting functions return COO, which its own ``check_csr`` then converts
    with a ``ParameterWarning`` that says nothing about the caller's input.
    """
    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)
        yield


def fit_implicit(model: Any, X: sp.csr_matrix, what: str, **kwargs: Any) -> None:
    """``model.fit(X)``, with ``implicit``'s NaN error turned into ``ModelFitError``."""
    try:
        model.fit(X, show_progress=False, **kwargs)
    except ImplicitFitError as e:
        raise ModelFitError(
            f"{what}: {e}; try a smaller learning rate or more regularization"
        ) from None
