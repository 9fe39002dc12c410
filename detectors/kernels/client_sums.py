"""The client-level tests' sums over cells and classes, compiled (one call instead of ten
numpy passes over a few hundred values). Sums follow numpy's pairwise order.

>>> import numpy as np
>>> expected, var = coverage_terms(2, np.log1p(-np.full(4, 0.25)))  # 4 equal cells, 2 queries
>>> round(expected, 4), round(var, 4)  # 4 * (1 - 0.75**2), 4 * q * (1 - q)
(1.75, 0.9844)
>>> h, k = spread_terms(np.array([2, 0, 2], dtype=np.float32))  # two classes, half each
>>> round(h, 4), k
(0.6931, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import NDArray

from detectors.kernels.jit import compiled
from detectors.kernels.pairwise import block_sum, pairwise_sum

F64 = NDArray[np.float64]
HELPERS = (block_sum, pairwise_sum)  # numpy's pairwise sum
# The kernels' types, built once: a subscripted type costs microseconds per call.
CoverageKernel = Callable[[int, F64], tuple[float, float]]
SpreadKernel = Callable[[NDArray[np.float32]], tuple[float, int]]


def _coverage_terms(n: int, log_miss: F64) -> tuple[float, float]:
    """``q = 1 - (1 - p)**n`` per cell from ``log(1 - p)``: the sum of q and of q(1 - q)."""
    m = log_miss.shape[0]
    q = np.empty(m)
    qq = np.empty(m)
    for c in range(m):
        v = -math.expm1(n * log_miss[c])
        q[c] = v
        qq[c] = v * (1.0 - v)
    return pairwise_sum(q, m), pairwise_sum(qq, m)


def _spread_terms(hist: NDArray[np.float32]) -> tuple[float, int]:
    """The entropy (nats) of a class histogram, and how many classes it holds."""
    m = hist.shape[0]
    h = np.empty(m)
    for c in range(m):
        h[c] = hist[c]
    total = pairwise_sum(h, m)
    terms = np.empty(m)
    k = 0
    for c in range(m):
        if h[c] > 0.0:
            p = h[c] / total
            terms[k] = p * math.log(p)
            k += 1
    return -pairwise_sum(terms, k), k


def coverage_terms(n: int, log_miss: F64) -> tuple[float, float]:
    """Expected distinct cells after ``n`` population-like queries, and their variance."""
    kernel = cast(CoverageKernel, compiled(_coverage_terms, *HELPERS))
    return kernel(n, log_miss)


def spread_terms(hist: NDArray[np.float32]) -> tuple[float, int]:
    """A class histogram's entropy in nats and its number of non-empty classes."""
    kernel = cast(SpreadKernel, compiled(_spread_terms, *HELPERS))
    return kernel(hist)
