"""Distances from each query of a micro-batch to its client's recent inputs, compiled.

The kernel of the batch pass (:mod:`detectors.batch`): for every event, the
distance to each recent input it is compared with, and from them the step
geometry (nearest step, median distance, collinearity of the last two steps) and
the same-class distances of the self-similarity test. One loop per event in
machine code instead of a gather of every (event, recent input) pair and some
thirty numpy passes over them. Sums follow numpy's pairwise order, so every
figure equals the numpy expression it replaces, bit for bit.

>>> import numpy as np
>>> rows = np.array([[0, 0], [3, 4], [6, 8]], dtype=np.float32)  # the client's recent inputs
>>> g = geometry(rows, np.array([[0, 1, 2, -1]]), np.array([[0.0, 1.0]]),
...              np.array([1, 1, 2], dtype=np.uint8), np.array([1]), 3, 2)
>>> g.n_recent.tolist(), g.step.tolist(), g.ratio.tolist()  # 3 inputs; nearest 1, median ~4.1
([3], [1.0], [0.2357022603399603])
>>> g.same_n.tolist(), g.same[0, :2].tolist(), g.tested.tolist()  # class 1: rows 0 and 1
([2], [1.0, 4.242640687119285], [False])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from detectors.kernels.jit import compiled
from detectors.kernels.pairwise import block_sum, pairwise_sum

TINY = 1e-9
INF = math.inf
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]


class Geometry(NamedTuple):
    """Per event: what steps and self-similarity need (see ``_geometry``)."""

    n_recent: I64  # valid recent inputs among the first ``w``
    ratio: F64  # nearest step / median distance (NaN: fewer than ``min_recent``)
    step: F64  # the nearest step (NaN: fewer than ``min_recent``)
    cos: F64  # |cos| of the last two steps, where ``col_ok``
    col_ok: B
    own: F64  # distance to the input just before, when it is the nearest (else NaN)
    same_n: I64  # recent inputs of the event's class
    same: F64  # their distances, nearest first (``same_n`` of them per row)
    tested: B  # a same-class input other than the one just before is the nearest


def _geometry(
    rows: NDArray[np.float32],
    gather: I64,
    z: F64,
    row_labels: NDArray[np.uint8],
    label: I64,
    w: int,
    min_recent: int,
) -> tuple[I64, F64, F64, F64, B, F64, I64, F64, B]:
    """Event ``i`` is compared with ``rows[gather[i, j]]`` (-1: no input), newest first;
    steps look at the first ``w`` slots, self-similarity at all of them."""
    n, width = gather.shape
    n_recent = np.zeros(n, np.int64)
    ratio = np.full(n, np.nan)
    step = np.full(n, np.nan)
    cos = np.zeros(n)
    col_ok = np.zeros(n, np.bool_)
    own = np.full(n, np.nan)
    same_n = np.zeros(n, np.int64)
    same = np.full((n, width), INF)
    tested = np.zeros(n, np.bool_)
    dist = np.empty(width)
    near = np.empty(width)
    sq = np.empty(rows.shape[1])
    for i in range(n):
        _distances(rows, gather[i], z[i], sq, dist)
        c = 0
        m = 0
        for j in range(width):
            if dist[j] == INF:
                continue
            if j < w:
                near[c] = dist[j]
                c += 1
            if row_labels[gather[i, j]] == label[i]:
                same[i, m] = dist[j]
                m += 1
        n_recent[i] = c
        if c >= min_recent:
            near[:c].sort()
            ratio[i] = near[0] / (0.5 * (near[(c - 1) // 2] + near[c // 2]) + TINY)
            step[i] = near[0]
        if w > 0 and _first_min(dist, min(w, width)) == 0:  # the input just before is nearest
            own[i] = dist[0]
        same_n[i] = m
        if m > 0:
            tested[i] = _nearest_same(gather[i], dist, row_labels, label[i]) > 0
            same[i, :m].sort()
        if c >= 2:
            cos[i], col_ok[i] = _collinearity(rows, gather[i], z[i], sq)
    return n_recent, ratio, step, cos, col_ok, own, same_n, same, tested


def _distances(rows: NDArray[np.float32], ids: I64, z: F64, sq: F64, out: F64) -> None:
    """``out[j]``: the distance from ``z`` to ``rows[ids[j]]`` (inf where ``ids[j] < 0``)."""
    dim = rows.shape[1]
    for j in range(ids.shape[0]):
        g = ids[j]
        if g < 0:
            out[j] = INF
            continue
        for k in range(dim):
            d = np.float64(rows[g, k]) - z[k]
            sq[k] = d * d
        out[j] = math.sqrt(pairwise_sum(sq, dim))


def _first_min(dist: F64, n: int) -> int:
    """The first slot holding the least of ``dist[:n]`` (0 when all are inf), as argmin."""
    best = INF
    slot = 0
    for j in range(n):
        if dist[j] < best:
            best = dist[j]
            slot = j
    return slot


def _nearest_same(ids: I64, dist: F64, row_labels: NDArray[np.uint8], label: int) -> int:
    """The first slot holding the nearest input of class ``label``."""
    best = INF
    slot = 0
    for j in range(ids.shape[0]):
        g = ids[j]
        if g >= 0 and row_labels[g] == label and dist[j] < best:
            best = dist[j]
            slot = j
    return slot


def _collinearity(rows: NDArray[np.float32], ids: I64, z: F64, sq: F64) -> tuple[float, bool]:
    """|cos| between the step into the newest input and the step from it to ``z``."""
    dim = rows.shape[1]
    g0 = ids[0] if ids[0] >= 0 else 0
    g1 = ids[1] if ids[1] >= 0 else 0
    for k in range(dim):
        v = z[k] - np.float64(rows[g0, k])
        sq[k] = v * v
    n1 = math.sqrt(pairwise_sum(sq, dim))
    for k in range(dim):
        v = np.float64(rows[g0, k]) - rows[g1, k]
        sq[k] = v * v
    n2 = math.sqrt(pairwise_sum(sq, dim))
    for k in range(dim):
        p0 = np.float64(rows[g0, k])
        sq[k] = (z[k] - p0) * (p0 - rows[g1, k])
    return abs(pairwise_sum(sq, dim)) / (n1 * n2 + TINY), bool(n1 > TINY and n2 > TINY)


Kernel = Callable[
    [NDArray[np.float32], I64, F64, NDArray[np.uint8], I64, int, int],
    tuple[I64, F64, F64, F64, B, F64, I64, F64, B],
]
HELPERS = (block_sum, pairwise_sum, _distances, _first_min, _nearest_same, _collinearity)


def geometry(
    rows: NDArray[np.float32],
    gather: I64,
    z: F64,
    row_labels: NDArray[np.uint8],
    label: I64,
    w: int,
    min_recent: int,
) -> Geometry:
    """The step and self-similarity geometry of every event of a batch (compiled)."""
    kernel = cast(Kernel, compiled(_geometry, *HELPERS))
    return Geometry(*kernel(rows, gather, z, row_labels, label, w, min_recent))
