"""Prints a new KRaft cluster id for scripts/services.sh, standard library only.

Follows Kafka's own ``Uuid.randomUuid()``: 16 random bytes in URL-safe base64 without padding,
drawn again while the id is the zero id, the metadata topic's id, or starts with ``-``. A leading
``-`` (one draw in 64) makes ``kafka-storage format -t ID`` read the id as an option and fail.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

_RESERVED = {bytes(16), bytes(15) + b"\x01"}  # Uuid.ZERO_UUID, Uuid.METADATA_TOPIC_ID


def encode(raw: bytes) -> str:
    """The id text of 16 bytes, as Kafka's Uuid.toString() writes it."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cluster_id(draw: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh id that Kafka would also generate: never reserved, never led by ``-``."""
    while True:
        raw = draw(16)
        text = encode(raw)
        if raw not in _RESERVED and not text.startswith("-"):
            return text


if __name__ == "__main__":
    print(cluster_id())
