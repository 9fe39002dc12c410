"""Loading every kernel before the first batch (numba's import, then each kernel's machine code).

A worker calls :func:`warm_up` before it joins its consumer group, so that its first batch is
not held up by numba's import and the kernels' first load (or first compile). This module sits
above the kernels: it imports them, and none of them imports it.
"""

from __future__ import annotations

import numpy as np

from detectors.kernels.client_sums import coverage_terms, spread_terms
from detectors.kernels.geometry import geometry
from detectors.kernels.nearest import nearest_rows, other_same_counts
from detectors.kernels.slots import ring_slots


def warm_up() -> None:
    """Load every kernel now (numba's import and the cached machine code, or a first
    compile), with the argument types the engine passes: a worker calls this before it
    joins its group, so that its first batch is not held up by it."""
    f64, i64 = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    geometry(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.int64), f64,
             np.zeros(1, np.uint8), i64, 1, 1)  # fmt: skip
    nearest_rows(f64, f64[0], f64[0], i64, i64, i64, i64)
    other_same_counts(i64, i64, i64, i64)
    ring_slots(np.zeros((1, 4), np.int64), np.zeros(1, np.bool_), np.zeros(1, np.uint32), 1, 1)
    log_miss = np.zeros(1)
    log_miss.setflags(write=False)  # the population hands it out read-only
    coverage_terms(1, log_miss)
    spread_terms(np.ones(1, np.float32))
