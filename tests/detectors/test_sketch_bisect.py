"""The sketch's inline binary searches agree with the bisect module."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from detectors.sketch import _bisect_left, _bisect_right

VALUES = st.floats(allow_nan=False, width=64) | st.sampled_from([0.0, -0.0, 1.0, 2.5])


@given(st.lists(VALUES, max_size=300), VALUES | st.just(float("nan")))
def test_same_insertion_points(values: list[float], x: float) -> None:
    """Duplicates, signed zeros, infinities and a NaN probe included."""
    a = sorted(values)
    assert _bisect_left(a, x) == bisect.bisect_left(a, x)
    assert _bisect_right(a, x) == bisect.bisect_right(a, x)
