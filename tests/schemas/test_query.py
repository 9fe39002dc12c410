"""QueryEvent v1: valid events round-trip, every kind of invalid input is rejected with a reason."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import MAX_EVENT_BYTES, DeadLetter, QueryEvent, decode_event

names = st.text(min_size=1, max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)
prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

events = st.fixed_dictionaries(
    {
        "event_id": names,
        "timestamp": st.integers(min_value=0, max_value=4_000_000_000),
        "client_id": names,
        "model_id": names,
    },
    optional={
        "features": st.lists(finite, max_size=64),
        "output": st.fixed_dictionaries(
            {},
            optional={
                "label": st.one_of(st.integers(-5, 5), names),
                "confidence": prob,
                "probabilities": st.lists(prob, max_size=10),
            },
        ),
        "source_ip": st.sampled_from(["192.0.2.1", "2001:db8::1"]),
        "user_agent": st.text(max_size=30),
        "status_code": st.integers(100, 599),
        "latency_ms": st.floats(min_value=0, max_value=1e6, allow_nan=False),
        "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    },
)

VALID = {
    "event_id": "e1",
    "timestamp": "2026-11-01T10:00:00+01:00",
    "client_id": "c",
    "model_id": "m",
}


def _with(**changes: object) -> bytes:
    obj = {**VALID, **changes}
    return json.dumps(obj).encode()


class TestRoundTrip:
    """Valid events survive encoding and decoding unchanged."""

    @given(events)
    @settings(max_examples=150, deadline=None)
    def test_valid_event_round_trips(self, obj: dict[str, object]) -> None:
        """Any valid event decodes, and its dump decodes again to the same event."""
        decoded = decode_event(json.dumps(obj).encode())
        assert isinstance(decoded, QueryEvent), getattr(decoded, "reason", "")
        again = decode_event(decoded.model_dump_json().encode())
        assert again == decoded
        assert decoded.client_id == obj["client_id"]

    def test_unknown_fields_are_ignored(self) -> None:
        """Producers may add fields; consumers ignore them."""
        decoded = decode_event(_with(extra_field={"x": 1}))
        assert isinstance(decoded, QueryEvent)

    def test_rfc3339_and_epoch_agree(self) -> None:
        """An RFC 3339 time with offset and the same instant in epoch seconds are equal."""
        a = decode_event(_with(timestamp="2026-11-01T00:00:00Z"))
        b = decode_event(_with(timestamp=1_793_491_200))
        assert isinstance(a, QueryEvent) and isinstance(b, QueryEvent)
        assert a.ts == b.ts == 1_793_491_200.0


INVALID = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"\xff\xfe", "not UTF-8"),
    (b"   ", "empty message"),
    (b"", "empty message"),
    (_with(event_id=None), "event_id"),
    (json.dumps({k: v for k, v in VALID.items() if k != "client_id"}).encode(), "client_id"),
    (_with(event_id=""), "event_id"),
    (_with(event_id="x" * 129), "event_id"),
    (_with(client_id=7), "client_id"),
    (_with(timestamp="2026-11-01T00:00:00"), "UTC offset"),
    (_with(timestamp="yesterday"), "RFC 3339"),
    (_with(timestamp=True), "timestamp"),
    (_with(features=[1, "2"]), "features"),
    (_with(features=[1, True]), "features"),
    (_with(features=[0.0] * 4097), "features"),
    (b'{"event_id":"e","timestamp":1,"client_id":"c","model_id":"m","features":[NaN]}', "NaN"),
    (
        b'{"event_id":"e","timestamp":1,"client_id":"c","model_id":"m","features":[Infinity]}',
        "Infinity",
    ),
    (_with(output={"confidence": 1.5}), "output.confidence"),
    (_with(output={"probabilities": [0.5, -0.1]}), "output.probabilities"),
    (_with(output={"label": 1.5}), "output.label"),
    (_with(source_ip="999.1.1.1"), "source_ip"),
    (_with(latency_ms=-3), "latency_ms"),
    (_with(status_code="200"), "status_code"),
    (_with(labels={"a": 1}), "labels"),
    (_with(user_agent="x" * MAX_EVENT_BYTES), "larger than"),
]


class TestRejection:
    """Each kind of invalid input becomes a dead letter that says why and keeps the bytes."""

    @pytest.mark.parametrize(("raw", "needle"), INVALID)
    def test_invalid_input_is_dead_lettered_with_reason(self, raw: bytes, needle: str) -> None:
        """The reason names the problem and the original bytes are kept."""
        decoded = decode_event(raw)
        assert isinstance(decoded, DeadLetter)
        assert needle in decoded.reason
        assert decoded.raw_size == len(raw)
        kept = decoded.original_bytes()
        assert raw.startswith(kept) and (decoded.raw_truncated or kept == raw)

    @given(st.binary(max_size=200))
    @settings(max_examples=200, deadline=None)
    def test_random_bytes_never_raise(self, raw: bytes) -> None:
        """Arbitrary bytes decode to an event or a dead letter, never an exception."""
        decoded = decode_event(raw)
        assert isinstance(decoded, QueryEvent | DeadLetter)

    def test_non_utf8_bytes_are_kept_as_base64(self) -> None:
        """Bytes that are not text survive in base64."""
        decoded = decode_event(b"\x00\xff\x10")
        assert isinstance(decoded, DeadLetter)
        assert decoded.raw_encoding == "base64"
        assert decoded.original_bytes() == b"\x00\xff\x10"

    def test_nan_from_python_is_rejected(self) -> None:
        """A NaN that did not come through JSON is still refused by the model."""
        with pytest.raises(ValueError, match="finite"):
            QueryEvent.model_validate({**VALID, "features": [math.nan]})
