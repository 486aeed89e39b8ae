"""PeakRSS: the process's peak resident memory over one block, not since it started, and
without disturbing the kernel's own record of the process's peak."""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import pytest

from recae.models.memory import PeakRSS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the high-water mark is Linux's")

MB = 2**20


def _touch(n_bytes: int, hold: float = 0.0) -> float:
    block = np.ones(n_bytes // 8)  # written, so resident
    time.sleep(hold)  # long enough for the watcher, when the process's record is not beaten
    return float(block[-1])


def test_the_peak_covers_the_block_alone():
    with PeakRSS() as big:
        _touch(300 * MB, hold=0.1)
    with PeakRSS() as small:
        _touch(20 * MB, hold=0.1)
    assert big.bytes is not None and small.bytes is not None
    # the second block's figure does not carry the first block's 300 MB
    assert big.bytes - small.bytes > 200 * MB


def test_the_processs_own_peak_is_left_as_it_is():
    _touch(300 * MB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with PeakRSS():
        _touch(10 * MB)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >= before


def test_a_peak_held_for_a_while_below_the_processs_record_is_seen():
    _touch(400 * MB)  # the process's record, above what the block will reach
    with PeakRSS() as peak:
        start = peak._seen
        block = np.ones(100 * MB // 8)
        time.sleep(0.1)  # held long enough for the watcher to see it
        del block
    assert start is not None and peak.bytes is not None
    assert peak.bytes - start > 80 * MB
