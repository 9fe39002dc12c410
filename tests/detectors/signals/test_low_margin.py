"""The one-pass output margin equals top-1 minus top-2 of the sorted probabilities."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from detectors.signals.low_margin import output_margin

PROBS = st.lists(
    st.one_of(st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0)), min_size=2
)


@given(PROBS)
def test_same_margin_and_sign_as_sorting(probabilities: list[float]) -> None:
    """Ties and signed zeros included: the same float, sign of zero and all."""
    top = sorted(probabilities, reverse=True)
    got = output_margin(probabilities, None)
    assert got is not None
    assert got == top[0] - top[1]
    assert math.copysign(1.0, got) == math.copysign(1.0, top[0] - top[1])
