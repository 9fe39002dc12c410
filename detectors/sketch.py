"""Bounded online sketches: tail percentiles of a stream of values, and a seeded reservoir."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

MAX_TAIL_EVIDENCE: Final = 12.0
_ONE_DRAW_BOUND: Final = 2**32 - 1  # bounds from here on take numpy's 64-bit path


def _bisect_left(a: list[float], x: float) -> int:
    """``bisect.bisect_left`` (the same comparisons), compiled inline: no call into the
    bisect module and no generic comparison per step."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _bisect_right(a: list[float], x: float) -> int:
    """``bisect.bisect_right``, as ``_bisect_left``."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


class TailSketch:
    """Empirical distribution of a value over the population, in bounded memory.

    Keeps a uniform reservoir of at most ``size`` values; percentiles are read
    from a sorted copy rebuilt every ``refresh`` inserts, so a lookup is a
    binary search. ``upper(v)`` and ``lower(v)`` return tail evidence in nats,
    ``-log P(V >= v)`` and ``-log P(V <= v)``: about Exp(1) for values drawn
    from the population itself, large for values in its far tail.

    >>> s = TailSketch(size=1000, seed=1)
    >>> s.extend(np.linspace(0.0, 1.0, 1000))
    >>> round(s.upper(0.5), 2), round(s.upper(0.999), 2), round(s.lower(0.001), 2)
    (0.69, 6.22, 6.22)
    """

    def __init__(self, size: int = 2048, refresh: int = 128, seed: int = 0) -> None:
        self.size = size
        self.refresh = refresh
        self._values = np.zeros(size, dtype=np.float64)
        self._n_seen = 0
        self._since_sort = 0
        self._sorted: NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self._sorted_list: list[float] = []  # the same, for fast scalar bisection
        self.count = 0  # how many values the sorted view holds (at most ``size``)
        self._rng = np.random.default_rng(seed)

    @property
    def seen(self) -> int:
        """How many values were offered in all."""
        return self._n_seen

    def add(self, value: float) -> None:
        """Offer one value (reservoir sampling keeps a uniform sample)."""
        n = self._n_seen
        self._put(value, n if n < self.size else int(self._rng.integers(0, n + 1)))

    def add_all(self, values: list[float]) -> None:
        """``add`` each value in turn, drawing the reservoir slots in one generator call.

        Same reservoir, sorted view and generator state as the ``add`` calls: numpy
        draws an array of bounds below 2**32 one after the other with the same method
        as one bound at a time (tested), so only the per-call overhead goes.
        """
        free = max(0, min(len(values), self.size - self._n_seen))  # values that need no draw
        drawn = len(values) - free
        start = self._n_seen + free  # the first drawing value's n: slot in [0, n]
        if drawn and start + drawn >= _ONE_DRAW_BOUND:
            for value in values:
                self.add(value)
            return
        slots: list[int] = []
        if drawn:
            slots = self._rng.integers(0, np.arange(start + 1, start + drawn + 1)).tolist()
        for i, value in enumerate(values):
            n = self._n_seen
            self._put(value, n if i < free else slots[i - free])

    def _put(self, value: float, slot: int) -> None:
        """Store the next value in ``slot`` (dropped when the slot is outside the reservoir)."""
        if slot < self.size:
            self._values[slot] = value
        self._n_seen += 1
        self._since_sort += 1
        if self._since_sort >= self.refresh or self.count < min(self._n_seen, 64):
            self._resort()

    def extend(self, values: NDArray[np.float64] | list[float]) -> None:
        """Offer several values."""
        for v in np.asarray(values, dtype=np.float64):
            self.add(float(v))
        self._resort()

    def _resort(self) -> None:
        k = min(self._n_seen, self.size)
        self._sorted = np.sort(self._values[:k])
        self._sorted_list = self._sorted.tolist()
        self.count = k
        self._since_sort = 0

    def upper(self, value: float) -> float:
        """Evidence that ``value`` is unusually high: ``-log P(V >= value)``."""
        n = self.count
        if n == 0:
            return 0.0
        at_or_above = n - _bisect_left(self._sorted_list, value)
        e = -math.log((at_or_above + 1) / (n + 1))
        return e if e < MAX_TAIL_EVIDENCE else MAX_TAIL_EVIDENCE  # min(MAX_TAIL_EVIDENCE, e)

    def lower(self, value: float) -> float:
        """Evidence that ``value`` is unusually low: ``-log P(V <= value)``."""
        n = self.count
        if n == 0:
            return 0.0
        at_or_below = _bisect_right(self._sorted_list, value)
        e = -math.log((at_or_below + 1) / (n + 1))
        return e if e < MAX_TAIL_EVIDENCE else MAX_TAIL_EVIDENCE  # min(MAX_TAIL_EVIDENCE, e)

    def upper_many(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """``upper`` for an array of values."""
        n = self.count
        if n == 0:
            return np.zeros_like(values)
        above = n - np.searchsorted(self._sorted, values, side="left")
        out: NDArray[np.float64] = np.minimum(MAX_TAIL_EVIDENCE, -np.log((above + 1) / (n + 1)))
        return out

    def lower_many(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """``lower`` for an array of values."""
        n = self.count
        if n == 0:
            return np.zeros_like(values)
        below = np.searchsorted(self._sorted, values, side="right")
        out: NDArray[np.float64] = np.minimum(MAX_TAIL_EVIDENCE, -np.log((below + 1) / (n + 1)))
        return out

    def maximum(self) -> float:
        """The largest value in the sample (0 when empty)."""
        return self._sorted_list[-1] if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The q-quantile of the sample (0 when empty)."""
        if self.count == 0:
            return 0.0
        return float(np.quantile(self._sorted, q))
