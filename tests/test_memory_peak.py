"""PeakRSS: the process's peak resident memory over one block, not since it started."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recae.models.memory import PeakRSS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the high-water mark is Linux's")

MB = 2**20


def _touch(n_bytes: int) -> float:
    block = np.ones(n_bytes // 8)  # written, so resident
    return float(block[-1])


def test_the_peak_covers_the_block_alone():
    with PeakRSS() as big:
        _touch(300 * MB)
    with PeakRSS() as small:
        _touch(20 * MB)
    assert big.bytes is not None and small.bytes is not None
    # the second block's mark was reset: it does not carry the first block's 300 MB
    assert big.bytes - small.bytes > 200 * MB
