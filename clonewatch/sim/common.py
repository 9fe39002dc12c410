"""Shared helpers of the simulator: named deterministic random streams and constants."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import numpy as np

#: The simulated day starts here (epoch seconds of 2026-11-01T00:00:00Z).
DAY_START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
DAY_SECONDS = 86_400.0
HOUR = 3_600.0
#: Decimals every query input is rounded to before the model answers it.
INPUT_DECIMALS = 4


def rng_for(seed: int, *names: str | int) -> np.random.Generator:
    """An independent random stream for ``seed`` and a name path, stable across runs.

    >>> float(rng_for(7, "victims").random()) == float(rng_for(7, "victims").random())
    True
    """
    key = [int(seed) & 0xFFFFFFFF]
    key.extend(zlib.crc32(str(name).encode("utf-8")) for name in names)
    return np.random.default_rng(key)
