"""Helpers shared by the tests of recae.data: small files, and one-line errors expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: What every MovieLens reader returns for the three-line files of the tests.
EXPECTED_SMALL = pd.DataFrame(
    {
        "user": np.array([1, 1, 2], dtype=np.int64),
        "item": np.array([10, 20, 10], dtype=np.int64),
        "rating": np.array([4.0, 2.5, 5.0]),
        "timestamp": np.array([100, 200, 300], dtype=np.int64),
    }
)

#: A small ``u.data`` (MovieLens 100K layout).
FAKE_U_DATA = "1\t10\t4\t100\n1\t20\t2\t200\n2\t10\t5\t300\n"


def write_file(root: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``root/name`` (folders created), byte for byte; return the path."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())  # exact bytes: no newline translation
    return path


def raises(error: type[Exception], call, *args, **kwargs) -> str:
    """Call, expect ``error``, check its message is one line; return the message."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message
