"""Dead-letter record: what could not be processed, why, and the original bytes."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

MAX_RAW_BYTES = 64 * 1024


class DeadLetter(BaseModel):
    """A rejected input: ``{"received_at", "reason", "raw"}``.

    ``raw`` holds the original bytes as UTF-8 text when they are text, else as
    base64 (``raw_encoding`` says which); inputs over 64 KiB keep their first
    64 KiB and say so in ``raw_truncated`` and ``raw_size``.

    >>> DeadLetter.of(b"nope", "not JSON").raw
    'nope'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    received_at: str
    reason: str
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    raw_size: int = 0
    raw_truncated: bool = False
    source: str | None = None

    @classmethod
    def of(
        cls,
        data: bytes,
        reason: str,
        received_at: float | None = None,
        source: str | None = None,
    ) -> DeadLetter:
        """Build a record from the original bytes."""
        when = datetime.fromtimestamp(received_at if received_at is not None else time.time(), UTC)
        kept = data[:MAX_RAW_BYTES]
        try:
            raw, enc = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raw, enc = base64.b64encode(kept).decode("ascii"), "base64"
        encoding: Literal["utf-8", "base64"] = "utf-8" if enc == "utf-8" else "base64"
        return cls(
            received_at=when.isoformat().replace("+00:00", "Z"),
            reason=reason,
            raw=raw,
            raw_encoding=encoding,
            raw_size=len(data),
            raw_truncated=len(data) > MAX_RAW_BYTES,
            source=source,
        )

    def original_bytes(self) -> bytes:
        """The (possibly truncated) original bytes."""
        if self.raw_encoding == "base64":
            return base64.b64decode(self.raw)
        return self.raw.encode("utf-8")
