"""numpy's pairwise summation, as helpers the kernels compile with them (bit-identical sums).

numpy sums an array in blocks of at most 128 values, eight running sums per block, halving
longer arrays; a loop that adds in order gives different last bits. These two helpers add in
numpy's order, so a kernel's sum equals the numpy expression it replaces to the last bit.
They are plain functions: a kernel names them among its helpers
(``compiled(kernel, block_sum, pairwise_sum)``), which binds their compiled versions here and
in the kernel's module.

>>> import numpy as np
>>> a = np.random.default_rng(0).normal(size=1000) * 1e3
>>> bool(pairwise_sum(a, 1000) == a.reshape(1, -1).sum(axis=1)[0])  # to the last bit
True
>>> float(block_sum(np.arange(10.0), 2, 3))  # a[2:5], in order
9.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def block_sum(a: F64, lo: int, n: int) -> float:
    """numpy's sum of at most 128 values: in order below 8, else eight running sums."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return float(res)


def pairwise_sum(a: F64, n: int) -> float:
    """numpy's pairwise sum of ``a[:n]``: blocks of at most 128 halved as numpy halves
    them (an explicit stack: numba cannot cache a recursive function)."""
    if n <= 128:
        return block_sum(a, 0, n)
    todo = np.zeros((128, 3), np.int64)  # (first, length, halves summed yet)
    done = np.zeros(128)
    top, vals = 1, 0
    todo[0, 0], todo[0, 1] = 0, n
    while top:
        top -= 1
        lo, m, joined = todo[top, 0], todo[top, 1], todo[top, 2]
        if m <= 128:
            done[vals] = block_sum(a, lo, m)
            vals += 1
        elif joined:
            vals -= 1
            done[vals - 1] = done[vals - 1] + done[vals]
        else:
            half = m // 2
            half -= half % 8
            todo[top] = (lo, m, 1)
            todo[top + 1] = (lo + half, m - half, 0)
            todo[top + 2] = (lo, half, 0)
            top += 3
    return float(done[0])
