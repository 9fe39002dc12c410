"""Reusable work arrays for the vectorised batch passes.

A micro-batch's geometry needs a few float64 temporaries of one to a few MB each
(recent inputs of every client in the batch, distances to the reference rows).
Allocated afresh for every batch, memory of that size comes straight from the
operating system and is page-faulted in again each time, which cost the replay
more than the arithmetic on it. These buffers are kept instead, one set per thread.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
MAX_KEPT_BYTES: Final = 1 << 24  # 16 MB per buffer; a larger request is not kept


class Scratch:
    """Named float64 and float32 buffers, grown on demand, handed out as uninitialised views."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, type[np.floating[Any]]], NDArray[Any]] = {}

    def array(self, key: str, shape: tuple[int, ...]) -> FloatArray:
        """An uninitialised float64 array of ``shape`` in the buffer kept under ``key``.

        The array is valid until the next request for ``key`` in this thread: use it
        within one call and never return it.

        >>> ws = Scratch()
        >>> a = ws.array("x", (2, 3))
        >>> a.shape, ws.array("x", (3,)).base is a.base
        ((2, 3), True)
        """
        out: FloatArray = self._view(key, shape, np.float64)
        return out

    def array32(self, key: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        """The same in float32, kept apart from the float64 buffers."""
        out: NDArray[np.float32] = self._view(key, shape, np.float32)
        return out

    def _view(
        self, key: str, shape: tuple[int, ...], dtype: type[np.floating[Any]]
    ) -> NDArray[Any]:
        size = math.prod(shape)
        buf = self._buffers.get((key, dtype))
        if buf is None or buf.shape[0] < size:
            buf = np.empty(size, dtype=dtype)
            if buf.nbytes > MAX_KEPT_BYTES:
                return buf.reshape(shape)
            self._buffers[(key, dtype)] = buf
        return buf[:size].reshape(shape)


_local = threading.local()


def scratch() -> Scratch:
    """This thread's work arrays."""
    ws: Scratch | None = getattr(_local, "scratch", None)
    if ws is None:
        ws = _local.scratch = Scratch()
    return ws
