"""``round(x, digits)`` for the numbers outputs carry, bit for bit, without its decimal string.

Python rounds the exact binary value of ``x`` to ``digits`` decimals, half to even, and
reads the decimal back. When ``y = x * 10**digits`` is below 1e9 and its fraction is not
within 1e-6 of a half, the product's own rounding error (under 1e-7) cannot change
which integer ``r`` is nearest, and ``r / 10**digits`` of two exact integers is the
correctly rounded double of that decimal: the same float ``round`` gives. Anything
else (ties, huge or non-finite values) goes to ``round`` itself.

>>> round_to(0.123456789, 4), round_to(-0.00001, 4), round_to(2.675, 2), round_to(1e300, 2)
(0.1235, -0.0, 2.67, 1e+300)
"""

from __future__ import annotations

from typing import Final

_LIMIT: Final = 1e9
_MARGIN: Final = 1e-6


def round_to(x: float, digits: int) -> float:
    """``round(x, digits)`` for ``0 <= digits <= 6``, the same float, faster."""
    scale = 100.0 if digits == 2 else 10000.0 if digits == 4 else 10.0**digits  # all exact
    y = x * scale
    if not -_LIMIT < y < _LIMIT:  # also NaN
        return round(x, digits)
    low = int(y)
    if low > y:  # int() truncates: the floor of a negative fraction is one lower
        low -= 1
    frac = y - low  # exact below 2**52
    if -_MARGIN < frac - 0.5 < _MARGIN:
        return round(x, digits)
    r = low + 1 if frac > 0.5 else low
    if r == 0:
        return x * 0.0  # round keeps the sign of a zero result: 0.0 or -0.0 as x
    return r / scale
