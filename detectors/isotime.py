"""RFC 3339 UTC timestamps of epoch seconds, as the engine's outputs carry them, fast.

``iso(ts)`` equals ``datetime.fromtimestamp(ts, UTC).isoformat()`` with ``Z`` for
``+00:00``, character for character: the microseconds are rounded half to even
from the fraction, as ``fromtimestamp`` rounds them, and only the date, hour and
minute, which many outputs share, are formatted by ``datetime`` (kept per minute).

>>> iso(1767225600.0), iso(1767225600.25), iso(1767225659.9999996)
('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.250000Z', '2026-01-01T00:01:00Z')
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

_MINUTES: dict[int, str] = {}  # whole minute -> "YYYY-MM-DDTHH:MM:"
_KEEP: Final = 4096  # minutes kept; the dict starts afresh when full
_LAST: Final = 253402300799  # 9999-12-31T23:59:59, the last second datetime can show
_SECONDS = tuple(f"{s:02d}" for s in range(60))  # formatted once: "00" to "59"


def slow_iso(ts: float) -> str:
    """The reference form, through ``datetime``."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def iso(ts: float) -> str:
    """``slow_iso(ts)``, formatting only seconds and fraction in a minute seen before."""
    if not 0.0 <= ts < _LAST:  # before 1970 (int() truncates towards zero), or out of range
        return slow_iso(ts)
    sec = int(ts)  # ts >= 0: truncation is the floor
    us = round((ts - sec) * 1e6)  # fromtimestamp's rounding: half to even
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    minute = sec // 60  # POSIX time: every minute has 60 seconds
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) >= _KEEP:
            _MINUTES.clear()
        head = _MINUTES[minute] = slow_iso(float(minute * 60))[:-3]
    second = _SECONDS[sec - minute * 60]
    if us:  # six digits, zero-padded: the digits of 1_000_000 + us after its leading 1
        return head + second + "." + str(1_000_000 + us)[1:] + "Z"
    return head + second + "Z"
