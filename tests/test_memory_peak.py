"""PeakRSS: the process's peak resident memory over one block, not since it started, and
without disturbing the kernel's own record of the process's peak."""

from __future__ import annotations

import mmap
import resource
import sys
import time

import numpy as np
import pytest

from recae.models.memory import PeakRSS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the high-water mark is Linux's")

MB = 2**20


def _touch(n_bytes: int, hold: float = 0.0) -> None:
    """Make ``n_bytes`` newly resident for ``hold`` seconds, then give them back.

    A fresh anonymous mapping with every page written: memory from the heap
    could be pages the process already holds (freed earlier, not returned), and
    then the resident size would not move."""
    region = mmap.mmap(-1, n_bytes)
    pages = np.frombuffer(region, dtype=np.uint8)
    pages[:: mmap.PAGESIZE] = 1
    time.sleep(hold)  # long enough for the watcher, when the process's record is not beaten
    del pages
    region.close()


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
        _touch(100 * MB, hold=0.1)
    assert start is not None and peak.bytes is not None
    assert peak.bytes - start > 80 * MB
