"""The webhook-timestamp header is parsed strictly, and ``now`` must be finite.

Before, the header went through ``int()``, which takes a sign, underscores, surrounding
spaces and any Unicode decimal digits; and ``now=nan`` made both tolerance comparisons
false, so a webhook of any age verified.
"""

from __future__ import annotations

import math

import pytest

from streams.sinks.webhook_verify import WebhookVerificationError, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the spec's test vector
BODY = b'{"a":1}'
TS = 1_700_000_000


def _headers(timestamp: str) -> dict[str, str]:
    headers = sign(BODY, SECRET, msg_id="msg_1", timestamp=TS)
    headers["webhook-timestamp"] = timestamp
    return headers


class TestTimestampHeader:
    """Only ASCII digits are a timestamp."""

    @pytest.mark.parametrize(
        "raw",
        [
            "+1700000000",
            "1_700_000_000",
            " 1700000000",
            "1700000000 ",
            "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic
            "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width
            "-1",
            "",
            "1" * 20,
            "1700000000.0",
        ],
    )
    def test_rejected_with_a_reason(self, raw: str) -> None:
        """Each is refused as not an integer in ASCII digits, before any signature check."""
        with pytest.raises(WebhookVerificationError, match="not an integer in ASCII digits"):
            verify(BODY, _headers(raw), SECRET, now=TS)

    def test_plain_digits_verify(self) -> None:
        """The form the spec sends still verifies."""
        verify(BODY, _headers(str(TS)), SECRET, now=TS)


class TestNow:
    """``now`` must be a finite unix time."""

    @pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
    def test_non_finite_now_is_an_error(self, now: float) -> None:
        """NaN or an infinity is a ValueError, never a verified webhook."""
        with pytest.raises(ValueError, match="finite"):
            verify(BODY, _headers(str(TS)), SECRET, now=now)
