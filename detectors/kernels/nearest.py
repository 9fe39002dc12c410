"""The nearest reference input of another client, in any class and in the query's own, compiled.

:meth:`ModelPopulation.neighbours` measures squared distances from a batch's
queries to the model's reference inputs with one matrix product; these kernels
pick from its result in one pass: the nearest row of another client, and the
nearest of another client in the query's class bucket, each the first of equal
minima (as numpy's ``argmin``), and how many of the searched rows are of the
query's class and from other clients (``other_same_counts`` counts over all rows
without distances).

>>> import numpy as np
>>> z, ref = np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
>>> ref_owner, ref_label = np.array([7, 8, 7]), np.array([0, 1, 0])
>>> best, best_d2, same, same_d2, count = nearest_rows(
...     2.0 * z @ ref.T, (z * z).sum(1), (ref * ref).sum(1), np.array([8, 7]), ref_owner,
...     np.array([0, 0]), ref_label)
>>> best.tolist(), best_d2.tolist()  # each client's own rows are skipped
([0, 1], [4.0, 1.0])
>>> same.tolist(), same_d2.tolist(), count.tolist()  # class 0 is all client 7's
([0, 0], [4.0, inf], [2, 0])
>>> other_same_counts(np.array([8, 7, 9]), np.array([0, 1, -1]), ref_owner, ref_label).tolist()
[2, 1, 0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import NDArray

from detectors.kernels.jit import compiled

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Rows = tuple[I64, F64, I64, F64, I64]
# The kernels' types, built once: a subscripted type costs microseconds per call.
RowsKernel = Callable[[F64, F64, F64, I64, I64, I64, I64], Rows]
CountsKernel = Callable[[I64, I64, I64, I64], I64]


def _nearest_rows(
    zr2: F64, z_sq: F64, ref_sq: F64, owner: I64, ref_owner: I64, label: I64, ref_label: I64
) -> Rows:
    """Per query: the nearest other client's row and its squared distance, the same
    within the query's class (row 0 and inf when there is none, as ``argmin`` gives), and
    how many rows of other clients are in the query's class (0 without a class).

    The squared distance of query ``i`` and row ``j`` is ``z_sq[i] + ref_sq[j] - zr2[i, j]``
    (``zr2``: twice the dot products), summed in that order as numpy sums it.
    """
    n, m = zr2.shape
    best = np.zeros(n, np.int64)
    best_d2 = np.full(n, math.inf)
    same = np.zeros(n, np.int64)
    same_d2 = np.full(n, math.inf)
    count = np.zeros(n, np.int64)
    for i in range(n):
        o = owner[i]
        lab = label[i]
        b, bv, s, sv, c = 0, math.inf, 0, math.inf, 0
        for j in range(m):
            if ref_owner[j] == o:
                continue
            v = (z_sq[i] + ref_sq[j]) - zr2[i, j]
            if v < bv:
                b, bv = j, v
            if lab >= 0 and ref_label[j] == lab:
                c += 1
                if v < sv:
                    s, sv = j, v
        best[i], best_d2[i], same[i], same_d2[i], count[i] = b, bv, s, sv, c
    return best, best_d2, same, same_d2, count


def _other_same_counts(owner: I64, label: I64, ref_owner: I64, ref_label: I64) -> I64:
    """Per query: the reference rows of its class from other clients (0 without a class)."""
    n, m = owner.shape[0], ref_owner.shape[0]
    out = np.zeros(n, np.int64)
    for i in range(n):
        lab = label[i]
        if lab < 0:
            continue
        c = 0
        for j in range(m):
            if ref_label[j] == lab and ref_owner[j] != owner[i]:
                c += 1
        out[i] = c
    return out


def nearest_rows(
    zr2: F64, z_sq: F64, ref_sq: F64, owner: I64, ref_owner: I64, label: I64, ref_label: I64
) -> Rows:
    """The nearest other client's reference row per query, any class and own class."""
    kernel = cast(RowsKernel, compiled(_nearest_rows))
    return kernel(zr2, z_sq, ref_sq, owner, ref_owner, label, ref_label)


def other_same_counts(owner: I64, label: I64, ref_owner: I64, ref_label: I64) -> I64:
    """How many reference rows of each query's class come from other clients."""
    kernel = cast(CountsKernel, compiled(_other_same_counts))
    return kernel(owner, label, ref_owner, ref_label)
