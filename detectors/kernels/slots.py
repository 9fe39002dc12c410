"""Where each event of a micro-batch finds its client's recent inputs, and its retries, compiled.

The batch pass (:mod:`detectors.batch`) lays every client's ring out once in one
array. Event ``i`` reads its ring ``(first row, next slot, capacity, length)`` back
from the newest slot: its ``j``-th newest input is at row
``first + (next - 1 - j) % capacity`` for ``j < length`` (-1 past the length). A
client's first event in the batch is a retry when its checksum equals one of the
ring's last ``w`` inputs' (later events are compared with the batch's own rows).

>>> import numpy as np
>>> geo = np.array([[2, 1, 4, 3], [0, 0, 1, 0]])  # a ring of 3 in rows 2-5; no ring
>>> crc = np.array([7, 9, 5, 0, 0, 7], dtype=np.uint32)  # the batch's two rows, then the ring
>>> gather, retry = ring_slots(geo, np.array([True, True]), crc, 2, 4)
>>> gather.tolist(), retry.tolist()  # event 0 repeats the ring's second newest input
([[2, 5, 4, -1], [-1, -1, -1, -1]], [True, False])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import NDArray

from detectors.kernels.jit import compiled

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
# The kernel's type, built once: a subscripted type costs microseconds per call.
SlotsKernel = Callable[[I64, B, NDArray[np.uint32], int, int], tuple[I64, B]]


def _ring_slots(geo: I64, first: B, crc: NDArray[np.uint32], w: int, w_all: int) -> tuple[I64, B]:
    """Row ids of each event's ``w_all`` newest ring inputs, and its first-event retries."""
    n = geo.shape[0]
    gather = np.full((n, w_all), -1, np.int64)
    retry = np.zeros(n, np.bool_)
    for i in range(n):
        start, slot, cap, length = geo[i, 0], geo[i, 1], geo[i, 2], geo[i, 3]
        for j in range(min(length, w_all)):
            gather[i, j] = start + (slot - 1 - j) % cap
        if first[i]:
            for j in range(min(length, w)):
                if crc[gather[i, j]] == crc[i]:
                    retry[i] = True
                    break
    return gather, retry


def ring_slots(geo: I64, first: B, crc: NDArray[np.uint32], w: int, w_all: int) -> tuple[I64, B]:
    """``geo``: per event, its ring's (first row, next slot, capacity, length); ``crc``: every
    row's checksum, the batch's own rows first. Returns the row ids and the retry flags."""
    kernel = cast(SlotsKernel, compiled(_ring_slots))
    return kernel(geo, first, crc, w, w_all)
