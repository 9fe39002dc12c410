"""Replay never crashes on a timestamp the engine's outputs cannot show: it dead-letters it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.replay import replay_path

# Each parses (RFC 3339, or epoch seconds) but lies outside 0001-01-01..9999-12-31 UTC; before
# the range was part of the contract, the first three passed validation and replay raised
# "ValueError: year 10000 is out of range" (or year 0) when it formatted an output's @timestamp.
HOSTILE = [
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00+14:00",
    253402300800,
    -62135596801,
    1e300,
]


def _line(i: int, client: str, timestamp: object) -> bytes:
    doc = {
        "event_id": f"e{i}",
        "timestamp": timestamp,
        "client_id": client,
        "model_id": "m",
        "features": [float(i % 7), float(i % 5)],
        "output": {"label": i % 2, "confidence": 0.9},
    }
    return orjson.dumps(doc)


class TestHostileTimestamps:
    """Enough events with a hostile timestamp that the engine would emit outputs for them."""

    @pytest.mark.parametrize("timestamp", HOSTILE, ids=str)
    def test_replay_dead_letters_them_and_scores_the_rest(
        self, tmp_path: Path, timestamp: object
    ) -> None:
        """Every hostile line is a dead letter naming the range; the ordinary client is scored."""
        lines = []
        for i in range(600):
            lines.append(_line(i, "ordinary", 1_793_491_200 + i))
            lines.append(_line(i, "hostile", timestamp))
        path = tmp_path / "log.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        result = replay_path(path, keep_dead_letters=True, keep_scores=True)
        s = result.summary
        assert (s.events, s.valid, s.dead_letters) == (1200, 600, 600)
        assert all("timestamp" in d["reason"] for d in result.dead_letters)
        assert {d["user"]["id"] for d in result.scores} == {"ordinary"}
