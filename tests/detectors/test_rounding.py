"""``round_to`` gives exactly the float ``round`` gives, sign of zero included."""

from __future__ import annotations

import math
import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors.rounding import round_to


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@settings(max_examples=3000)
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-200.0, max_value=200.0),
        st.integers(-(10**8), 10**8).map(lambda i: i / 200.0),  # exact and near halves
        st.integers(-(10**6), 10**6).map(lambda i: (i + 0.5) / 10**4),
    ),
    st.integers(0, 6),
)
@example(2.675, 2)
@example(-0.00001, 4)
@example(0.5, 0)
@example(1.5, 0)
@example(-2.5, 0)
@example(5e-324, 4)
@example(99.995, 2)
def test_same_float_as_round(x: float, digits: int) -> None:
    """Bit for bit equal to the built-in, NaN aside (any NaN is a NaN)."""
    got, want = round_to(x, digits), round(x, digits)
    assert _bits(got) == _bits(want) or (math.isnan(got) and math.isnan(want))
