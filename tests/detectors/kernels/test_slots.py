"""The compiled ring-slot kernel equals the numpy expressions it replaced."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.kernels.slots import ring_slots


def _numpy(
    geo: np.ndarray, first: np.ndarray, crc: np.ndarray, w: int, w_all: int
) -> tuple[np.ndarray, np.ndarray]:
    j = np.arange(w_all)
    gather = np.where(j < geo[:, 3:4], geo[:, 0:1] + (geo[:, 1:2] - 1 - j) % geo[:, 2:3], -1)
    near = gather[:, :w]
    same = crc[near] == crc[: geo.shape[0]][:, None]
    return gather, first & (same & (near >= 0)).any(axis=1)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 8), st.integers(0, 8))
def test_same_slots_and_retries(seed: int, n: int, w: int, extra: int) -> None:
    """Random rings (full, partial, empty, wrapped) and checksums with repeats."""
    rng = np.random.default_rng(seed)
    w_all = w + extra
    geo, start = [], n
    for _ in range(n):
        cap = int(rng.integers(1, 10))
        length = int(rng.integers(0, cap + 1))
        geo.append((start, int(rng.integers(0, cap)), cap, length) if length else (0, 0, 1, 0))
        start += cap
    crc = rng.integers(0, 4, start).astype(np.uint32)  # few values: retries are common
    g, first = np.asarray(geo, dtype=np.int64), rng.random(n) < 0.7
    got, want = ring_slots(g, first, crc, w, w_all), _numpy(g, first, crc, w, w_all)
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == want[1].tolist()
