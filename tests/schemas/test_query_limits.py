"""QueryEvent's limits agree: the accepted timestamp range, and the largest valid event fits."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from schemas import MAX_EVENT_BYTES, MAX_FEATURES, DeadLetter, QueryEvent, decode_event
from schemas.query import MAX_TIMESTAMP, MIN_TIMESTAMP
from streams.logread import MAX_LINE_BYTES
from streams.replay import replay_path

LONGEST_FLOAT = -2.2250738585072014e-308  # 24 bytes in shortest round-trip form
LONGEST_PROBABILITY = 2.2250738585072014e-308  # 23 bytes, in [0, 1]
WIDE = "\U0001f600"  # one character that JSON's ensure-ascii form writes as 12 bytes


def _event(timestamp: object) -> bytes:
    return orjson.dumps(
        {"event_id": "e", "timestamp": timestamp, "client_id": "c", "model_id": "m"}
    )


def _escaped(text: str) -> str:
    """``text`` with every character as a JSON \\u escape (surrogate pairs for wide ones)."""
    out = []
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def maximal_event() -> bytes:
    """The largest valid event the contract allows, bar user_agent and labels."""
    numbers = ",".join([repr(LONGEST_FLOAT)] * MAX_FEATURES)
    probabilities = ",".join([repr(LONGEST_PROBABILITY)] * MAX_FEATURES)
    text = (
        f'{{"event_id": "{_escaped(WIDE * 128)}", "timestamp": "9999-12-31T23:59:59+00:00",'
        f' "client_id": "{_escaped(WIDE * 256)}", "model_id": "{_escaped(WIDE * 256)}",'
        f' "features": [{numbers}],'
        f' "output": {{"label": "{_escaped(WIDE * 256)}", "confidence": 0.9999999999999999,'
        f' "probabilities": [{probabilities}]}},'
        ' "source_ip": "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",'
        ' "status_code": -9223372036854775808, "latency_ms": 1.7976931348623157e308}'
    )
    return text.encode("ascii")


class TestTimestampRange:
    """Timestamps outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z (UTC) are dead letters."""

    @pytest.mark.parametrize(
        "timestamp",
        [
            "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: crashed replay and evaluate
            "0001-01-01T00:00:00+14:00",  # year 0 in UTC
            "9999-12-31T23:59:59.999999Z",  # its epoch seconds round up to year 10000
            MAX_TIMESTAMP + 1,
            MIN_TIMESTAMP - 1,
            float(MAX_TIMESTAMP) + 0.5,
            1e20,
            -1e20,
        ],
    )
    def test_out_of_range_is_a_dead_letter_with_a_reason(self, timestamp: object) -> None:
        """An instant the engine's outputs cannot show is rejected and the reason says so."""
        got = decode_event(_event(timestamp))
        assert isinstance(got, DeadLetter)
        assert "timestamp" in got.reason

    @pytest.mark.parametrize("timestamp", [10**400, -(10**400)])
    def test_an_integer_of_any_size_is_compared_exactly(self, timestamp: int) -> None:
        """An integer too big for a float is out of range, not an OverflowError."""
        doc = {"event_id": "e", "timestamp": timestamp, "client_id": "c", "model_id": "m"}
        with pytest.raises(ValidationError, match="timestamp out of range"):
            QueryEvent.model_validate(doc)

    def test_the_named_range_is_exact(self) -> None:
        """The reason names the range; its bounds in RFC 3339 form are the epoch constants."""
        got = decode_event(_event("9999-12-31T23:59:59-14:00"))
        assert isinstance(got, DeadLetter)
        assert "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z" in got.reason
        low = QueryEvent.model_validate(
            {
                "event_id": "e",
                "timestamp": "0001-01-01T00:00:00Z",
                "client_id": "c",
                "model_id": "m",
            }
        )
        assert low.ts == MIN_TIMESTAMP

    @pytest.mark.parametrize(
        "timestamp",
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00-01:00",
            "1969-12-31T23:59:59Z",
            MAX_TIMESTAMP,
            MIN_TIMESTAMP,
            float(MAX_TIMESTAMP),
            -1,
            0,
            1767225600.25,
        ],
    )
    def test_in_range_stays_valid_and_keeps_its_instant(self, timestamp: object) -> None:
        """The bounds and the times inside them decode as before, to the same instant."""
        got = decode_event(_event(timestamp))
        assert isinstance(got, QueryEvent)
        assert MIN_TIMESTAMP <= got.ts <= MAX_TIMESTAMP


class TestSizeLimits:
    """The event size cap holds the largest valid event, and the reader applies it."""

    def test_the_line_cap_is_the_event_cap(self) -> None:
        """The reader caps a log's lines at the event contract's size."""
        assert MAX_LINE_BYTES == MAX_EVENT_BYTES

    def test_a_maximal_valid_event_fits(self) -> None:
        """4,096 longest features and probabilities with maximal ids are under the cap."""
        raw = maximal_event()
        assert len(raw) > 200_000  # really the worst case (it did not fit in 64 KiB)
        assert len(raw) <= MAX_EVENT_BYTES - 40_000  # room left for user_agent and labels
        got = decode_event(raw)
        assert isinstance(got, QueryEvent), getattr(got, "reason", None)
        assert got.features is not None and len(got.features) == MAX_FEATURES

    def test_a_maximal_valid_event_is_scored_by_replay(self, tmp_path: Path) -> None:
        """Read through the capped log reader, the maximal event is valid and scored."""
        path = tmp_path / "max.jsonl"
        ordinary = orjson.dumps(
            {"event_id": "o", "timestamp": 1767225600, "client_id": "d", "model_id": "n"}
        )
        path.write_bytes(maximal_event() + b"\n" + ordinary + b"\n")
        result = replay_path(path, keep_dead_letters=True)
        assert result.dead_letters == []
        assert (result.summary.events, result.summary.valid) == (2, 2)

    def test_one_byte_over_the_cap_is_still_a_dead_letter(self, tmp_path: Path) -> None:
        """The cap still applies: a longer event is dead-lettered, with its size."""
        raw = maximal_event()
        pad = MAX_EVENT_BYTES + 1 - len(raw)
        big = raw[:-1] + b', "user_agent": "' + b"x" * (pad - 18) + b'"}'
        assert len(big) == MAX_EVENT_BYTES + 1
        path = tmp_path / "big.jsonl"
        path.write_bytes(big + b"\n")
        result = replay_path(path, keep_dead_letters=True)
        (doc,) = result.dead_letters
        assert doc["reason"] == f"event larger than {MAX_EVENT_BYTES} bytes"
        assert doc["raw_size"] == MAX_EVENT_BYTES + 1
