"""Produce/tail helpers that need no broker: keys and record formatting (logs: test_logread)."""

from __future__ import annotations

from clonewatch.commands.tail import format_record
from streams.kafka_io import key_for_line


class TestKeys:
    """How produce chooses a message key."""

    def test_client_id_is_the_key(self) -> None:
        """A JSON object with a string client_id is keyed by it."""
        assert key_for_line(b'{"client_id": "c-1", "x": 1}') == b"c-1"

    def test_lines_without_a_client_are_unkeyed(self) -> None:
        """Non-JSON, non-objects, and missing or non-string client ids get no key."""
        for line in (b"garbage", b"[1,2]", b'{"model_id": "m"}', b'{"client_id": 5}', b"\xff"):
            assert key_for_line(line) is None


class TestTailFormat:
    """Readable lines of tail."""

    def test_alert_line_names_client_model_and_level(self) -> None:
        """An alert prints its level, client, model and score."""
        doc = {
            "@timestamp": "2026-01-01T00:00:00Z",
            "event": {"risk_score": 91.0},
            "user": {"id": "acme"},
            "message": "m",
            "clonewatch": {"model_id": "digits", "risk_level": "critical"},
        }
        line = format_record("alerts", doc)
        assert "CRITICAL" in line
        assert "client=acme" in line
        assert "model=digits" in line
        assert "risk=91.0" in line

    def test_dead_letter_raw_is_shortened(self) -> None:
        """A long raw payload is cut to keep one line readable."""
        line = format_record("dead-letter", {"received_at": "t", "reason": "r", "raw": "x" * 500})
        assert len(line) < 120
        assert line.endswith("...'")
