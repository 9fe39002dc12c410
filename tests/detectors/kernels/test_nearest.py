"""The compiled nearest-reference search equals the numpy expressions it replaced, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.kernels.nearest import nearest_rows, other_same_counts


def reference(z, ref, owner, ref_owner, label, ref_label):
    """The population's former numpy version (a distance matrix, masks, argmin)."""
    d2 = (z * z).sum(axis=1)[:, None] + (ref * ref).sum(axis=1)[None, :]
    d2 = d2 - 2.0 * z @ ref.T
    d2 = np.where(owner[:, None] == ref_owner[None, :], np.inf, d2)
    at = np.arange(len(z))
    best = d2.argmin(axis=1)
    other = ref_label[None, :] != np.where(label < 0, -2, label)[:, None]
    sd2 = np.where(other, np.inf, d2)
    sbest = sd2.argmin(axis=1)
    counts = np.where(label >= 0, np.bincount(ref_label + 1, minlength=256)[label + 1], 0)
    for i in range(len(z)):
        if label[i] >= 0:
            counts[i] -= int(((ref_owner == owner[i]) & (ref_label == label[i])).sum())
    return best, d2[at, best], sbest, sd2[at, sbest], counts


@pytest.mark.parametrize(("n", "m", "dim"), [(200, 512, 32), (50, 7, 3), (30, 40, 130)])
def test_nearest_equals_numpy(n: int, m: int, dim: int) -> None:
    """Rows, squared distances and counts equal the numpy reference, own rows skipped."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        ref = rng.normal(size=(m, dim))
        ref[1] = ref[0]  # equal distances: the first row wins, as with argmin
        z = rng.normal(size=(n, dim))
        ref_owner = rng.integers(0, 6, m)
        owner = rng.integers(0, 8, n)  # owners 6 and 7 have no reference row
        ref_label = rng.integers(-1, 4, m)
        label = rng.integers(-1, 5, n)  # class 4 has no reference row
        if seed == 0:
            ref_owner[:] = owner[0]  # every row is the first client's own
        got = nearest_rows(
            2.0 * z @ ref.T, (z * z).sum(axis=1), (ref * ref).sum(axis=1),
            owner, ref_owner, label, ref_label,
        )  # fmt: skip
        want = reference(z, ref, owner, ref_owner, label, ref_label)
        for g, w in zip(got, want, strict=True):  # the kernel counts over every row searched
            np.testing.assert_array_equal(g, w)
        counts = other_same_counts(owner, label, ref_owner, ref_label)
        np.testing.assert_array_equal(counts, want[4])
