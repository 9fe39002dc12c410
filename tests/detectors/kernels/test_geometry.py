"""The compiled batch geometry equals the numpy expressions it replaced, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.kernels import pairwise
from detectors.kernels.geometry import geometry

TINY = 1e-9


def reference(rows, gather, z, row_labels, label, w, min_recent):
    """The batch pass's former numpy version (gather every pair, then reduce)."""
    valid_all = gather >= 0
    safe = np.where(valid_all, gather, 0)
    diff = rows[safe].astype(np.float64) - z[:, None, :]
    dist_all = np.where(valid_all, np.sqrt(np.square(diff).sum(axis=2)), np.inf)
    valid, dist = valid_all[:, :w], dist_all[:, :w]
    count = valid.sum(axis=1)
    enough = count >= min_recent
    ratio = np.full(len(z), np.nan)
    step = np.full(len(z), np.nan)
    d = np.where(valid[enough], dist[enough], np.inf)
    d.sort(axis=1)
    c = count[enough]
    r = np.arange(c.shape[0])
    ratio[enough] = d[:, 0] / (0.5 * (d[r, (c - 1) // 2] + d[r, c // 2]) + TINY)
    step[enough] = d[:, 0]
    with np.errstate(all="ignore"):
        p0 = rows[safe[:, 0]].astype(np.float64)
        v1 = z - p0
        v2 = p0 - rows[safe[:, 1]]
        n1 = np.linalg.norm(v1, axis=1)
        n2 = np.linalg.norm(v2, axis=1)
        cos = np.abs((v1 * v2).sum(axis=1)) / (n1 * n2 + TINY)
    col_ok = (count >= 2) & (n1 > TINY) & (n2 > TINY)
    masked = np.where(valid, dist, np.inf)
    own = np.where(masked.argmin(axis=1) == 0, masked[:, 0], np.nan)  # inf when none
    same = valid_all & (row_labels[safe] == label[:, None])
    ms = np.where(same, dist_all, np.inf)
    tested = (same.sum(axis=1) > 0) & (ms.argmin(axis=1) > 0)
    ms.sort(axis=1)
    return count, ratio, step, cos, col_ok, own, same.sum(axis=1), ms, tested


def batch(seed, n, width, dim, n_rows):
    """A random batch: prefixes of valid slots, some events with none, repeated rows."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n_rows, dim)).astype(np.float32)
    rows[1] = rows[0]  # an exact duplicate: ties in argmin
    lengths = rng.integers(0, width + 1, n)
    gather = rng.integers(0, n_rows, (n, width))
    gather[np.arange(width)[None, :] >= lengths[:, None]] = -1
    z = rng.normal(size=(n, dim))
    z[0] = rows[gather[0, 0]] if lengths[0] else z[0]  # distance 0 to the newest
    row_labels = rng.integers(0, 4, n_rows).astype(np.uint8)
    row_labels[rng.random(n_rows) < 0.1] = 255  # no label
    label = rng.integers(-1, 4, n)
    return rows, gather, z, row_labels, label


@pytest.mark.parametrize(("dim", "width", "w"), [(32, 64, 32), (5, 16, 16), (130, 40, 8)])
def test_geometry_equals_numpy(dim: int, width: int, w: int) -> None:
    """Every output of the kernel equals the numpy reference exactly."""
    for seed in range(5):
        args = batch(seed, 300, width, dim, 500)
        got = geometry(*args, w, 8)
        want = reference(*args, w, 8)
        np.testing.assert_array_equal(got.n_recent, want[0])
        np.testing.assert_array_equal(got.ratio, want[1])
        np.testing.assert_array_equal(got.step, want[2])
        ok = want[4]
        np.testing.assert_array_equal(got.col_ok, ok)
        np.testing.assert_array_equal(got.cos[ok], want[3][ok])
        np.testing.assert_array_equal(got.own[got.n_recent > 0], want[5][want[0] > 0])
        np.testing.assert_array_equal(got.same_n, want[6])
        np.testing.assert_array_equal(got.same, want[7])
        np.testing.assert_array_equal(got.tested, want[8])


@pytest.mark.parametrize("n", [0, 3, 8, 31, 32, 128, 129, 257, 1000, 4096])
def test_pairwise_sum_equals_numpy(n: int) -> None:
    """The sum follows numpy's pairwise order, so it equals numpy's to the last bit."""
    a = np.random.default_rng(n).normal(size=n) * 1e3
    python = pairwise.pairwise_sum
    geometry(*batch(0, 2, 4, 3, 5), 4, 2)  # binds the module's helpers to their compiled versions
    assert python(a, n) == pairwise.pairwise_sum(a, n) == a.reshape(1, -1).sum(axis=1)[0]
