"""The compiled client-level sums equal the numpy expressions they replaced."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.kernels.client_sums import coverage_terms, spread_terms


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5000), st.sampled_from([2, 7, 16, 256, 300]))
def test_coverage_terms(seed: int, n: int, cells: int) -> None:
    """Expected cells and variance as numpy sums them (numpy's expm1 may differ by an ulp)."""
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.full(cells, rng.uniform(0.05, 3.0)))
    log_miss = np.log1p(-np.minimum(prior, 1.0 - 1e-9))  # a sparse draw can put all in one cell
    log_miss.setflags(write=False)
    q = -np.expm1(n * log_miss)
    expected, var = coverage_terms(n, log_miss)
    assert np.isclose(expected, q.sum(), rtol=1e-13, atol=0.0)
    assert np.isclose(var, (q * (1.0 - q)).sum(), rtol=1e-12, atol=1e-12)  # 1 - q: ulps of q


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 255))
def test_spread_terms(seed: int, buckets: int) -> None:
    """Entropy and class count of float32 histograms, empty classes and one class included."""
    rng = np.random.default_rng(seed)
    hist = np.zeros(buckets, dtype=np.float32)
    used = rng.choice(buckets, size=int(rng.integers(1, buckets + 1)), replace=False)
    hist[used] = rng.integers(1, 10_000, used.size)
    p = hist.astype(np.float64) / hist.astype(np.float64).sum()
    nz = p[p > 0]
    h, k = spread_terms(hist)
    assert k == used.size
    assert np.isclose(h, -(nz * np.log(nz)).sum(), rtol=1e-13, atol=1e-15)
