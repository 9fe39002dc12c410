"""The fast timestamp form equals datetime's, rounding and second boundaries included."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors import isotime
from detectors.isotime import iso, slow_iso


@given(st.floats(min_value=0.0, max_value=4.1e9, allow_nan=False))
def test_any_timestamp_matches_datetime(ts: float) -> None:
    """Any epoch second up to 2099 gives datetime's string."""
    assert iso(ts) == slow_iso(ts)


def test_ties_and_second_boundaries_match_datetime() -> None:
    """Half-microsecond ties round to even, and a fraction that rounds up carries a second."""
    base = 1767225600
    # 0.0078125 s is 7812.5 us exactly, a tie (to 7812); 0.0234375 s is 23437.5 (to 23438)
    ties = (0.0078125, 0.0234375)
    for frac in (*ties, 0.0000005, 0.0000015, 0.9999995, 0.9999996, 0.5, 0.25, 0.1):
        for sec in (base, base + 59, base + 86399, 0):
            ts = sec + frac
            assert iso(ts) == slow_iso(ts), ts
    rng = np.random.default_rng(3)
    for ts in rng.uniform(0, 4.1e9, 20000).tolist() + (base + rng.random(20000)).tolist():
        assert iso(ts) == slow_iso(ts), ts


def test_before_1970_and_a_full_cache_take_the_reference_path() -> None:
    """Negative timestamps and a cache that starts afresh still give datetime's string."""
    assert iso(-1.25) == slow_iso(-1.25) == "1969-12-31T23:59:58.750000Z"
    for minute in range(isotime._KEEP + 10):
        assert iso(minute * 60 + 0.5) == slow_iso(minute * 60 + 0.5)
    assert len(isotime._MINUTES) <= isotime._KEEP
