"""Standard Webhooks signatures: signing (sender) and verification (receiver).

The signed content is ``"{webhook-id}.{webhook-timestamp}.{raw body}"``; the signature is
``v1,<base64 HMAC-SHA256>`` under the secret's key (``whsec_<base64 key>``). The
``webhook-signature`` header is a space-separated list, so a sender rotating keys signs
with the old and the new one and the receiver accepts either.

>>> secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
>>> headers = sign(b'{"a":1}', secret, msg_id="msg_1", timestamp=1700000000)
>>> verify(b'{"a":1}', headers, secret, now=1700000100)
>>> verify(b'{"a":2}', headers, secret, now=1700000100)
Traceback (most recent call last):
...
streams.sinks.webhook_verify.WebhookVerificationError: no signature matches
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix, not a secret)
DEFAULT_TOLERANCE = 300
MAX_TIMESTAMP_DIGITS = 19  # more than any unix time in seconds needs (and int64's width)


class WebhookVerificationError(Exception):
    """A webhook that must be rejected; the message says why."""


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` (or bare base64) text, or raw key bytes."""
    if isinstance(secret, bytes):
        if not secret:
            raise ValueError("empty webhook secret")
        return secret
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key")
    return key


def generate_secret() -> str:
    """A new random secret in the ``whsec_`` form (32 bytes of key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signature(payload: bytes, key: bytes, msg_id: str, timestamp: int) -> str:
    """``v1,<base64 HMAC-SHA256(key, "id.timestamp.payload")>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _keys(secret: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    if isinstance(secret, str | bytes):
        return [decode_secret(secret)]
    keys = [decode_secret(s) for s in secret]
    if not keys:
        raise ValueError("no webhook secret")
    return keys


def sign(
    payload: bytes,
    secret: str | bytes | Sequence[str | bytes],
    *,
    msg_id: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``payload`` (one signature per secret)."""
    ts = int(time.time()) if timestamp is None else timestamp
    sigs = " ".join(signature(payload, key, msg_id, ts) for key in _keys(secret))
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sigs}


def parse_timestamp(raw: str) -> int:
    """The ``webhook-timestamp`` header's integer: unix seconds in ASCII digits, nothing else.

    The Standard Webhooks spec sends the integer as plain digits, so a sign, an
    underscore, spaces or non-ASCII digits (all of which ``int()`` would take) are
    rejected, as is anything longer than :data:`MAX_TIMESTAMP_DIGITS` digits.

    >>> parse_timestamp("1700000000")
    1700000000
    >>> for bad in ("+1700000000", "1_700_000_000", " 1700000000", "\u0661\u0667"):
    ...     try:
    ...         parse_timestamp(bad)
    ...     except WebhookVerificationError as exc:
    ...         print(exc)
    webhook-timestamp is not an integer in ASCII digits: '+1700000000'
    webhook-timestamp is not an integer in ASCII digits: '1_700_000_000'
    webhook-timestamp is not an integer in ASCII digits: ' 1700000000'
    webhook-timestamp is not an integer in ASCII digits: '\\u0661\\u0667'
    """
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_TIMESTAMP_DIGITS):
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise WebhookVerificationError(
            f"webhook-timestamp is not an integer in ASCII digits: {shown!a}"
        )
    return int(raw)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing header {name}")


def verify(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str | bytes | Sequence[str | bytes],
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Check a received webhook; raise :class:`WebhookVerificationError` unless it is genuine.

    ``payload`` is the raw body exactly as received (do not re-serialise parsed JSON).
    The timestamp must be within ``tolerance`` seconds of ``now``; every ``v1`` signature
    of the header is compared in constant time against every secret given.
    """
    msg_id = _header(headers, "webhook-id")
    raw_ts = _header(headers, "webhook-timestamp")
    raw_sigs = _header(headers, "webhook-signature")
    if not msg_id:
        raise WebhookVerificationError("empty webhook-id")
    timestamp = parse_timestamp(raw_ts)
    current = time.time() if now is None else now
    if not math.isfinite(current):
        raise ValueError(f"now must be a finite unix time, not {current}")
    if timestamp < current - tolerance:
        raise WebhookVerificationError(
            f"stale timestamp: {int(current - timestamp)} s old (tolerance {tolerance} s)"
        )
    if timestamp > current + tolerance:
        raise WebhookVerificationError(
            f"timestamp {int(timestamp - current)} s in the future (tolerance {tolerance} s)"
        )
    candidates = [
        part.encode("ascii", errors="replace")
        for part in raw_sigs.split()
        if part.startswith("v1,")
    ]
    if not candidates:
        raise WebhookVerificationError("no v1 signature in webhook-signature")
    matched = False
    for key in _keys(secret):
        expected = signature(payload, key, msg_id, timestamp).encode("ascii")
        for candidate in candidates:
            # Evaluate every comparison (no early exit) so timing reveals nothing.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no signature matches")
