"""Property-based: whatever the bytes, the decoder and the replay loop never crash, and count.

Every line is either scored (counted valid) or dead-lettered with a reason, and
events == valid + dead letters. The strategies cover arbitrary bytes, arbitrary JSON
values, and events whose every field sits at (or just past) its limit. On the code before
the timestamp range was in the contract, the decoder accepted 9999-12-31T23:59:59-14:00,
whose UTC instant is past MAX_TIMESTAMP, and ``_check`` fails on it (the replay of enough such
events raised "year 10000 is out of range").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import MAX_FEATURES, DeadLetter, QueryEvent, decode_event
from schemas.query import MAX_TIMESTAMP, MIN_TIMESTAMP
from streams.replay import replay_lines, replay_path

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def _limit_text(n: int) -> st.SearchStrategy[str]:
    return st.sampled_from([n - 1, n, n + 1, 0, 1]).flatmap(
        lambda k: st.text(min_size=k, max_size=k) if k <= 300 else st.just("x" * k)
    )


timestamps = st.one_of(
    st.sampled_from(
        [
            MIN_TIMESTAMP,
            MAX_TIMESTAMP,
            MIN_TIMESTAMP - 1,
            MAX_TIMESTAMP + 1,
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59Z",
            "2026-01-01T00:00:00",
            -1,
            0,
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)

feature_lists = st.one_of(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=8),
    st.sampled_from([MAX_FEATURES - 1, MAX_FEATURES, MAX_FEATURES + 1]).map(
        lambda n: [-2.2250738585072014e-308] * n
    ),
    st.none(),
)

events_at_limits = st.fixed_dictionaries(
    {
        "event_id": _limit_text(128),
        "timestamp": timestamps,
        "client_id": _limit_text(256) | st.sampled_from(["a", "b"]),
        "model_id": _limit_text(256) | st.just("m"),
    },
    optional={
        "features": feature_lists,
        "output": st.fixed_dictionaries(
            {},
            optional={
                "label": st.text(max_size=5) | st.integers() | st.booleans(),
                "confidence": st.floats(min_value=-0.1, max_value=1.1),
                "probabilities": st.lists(st.floats(min_value=0, max_value=1), max_size=4),
            },
        ),
        "source_ip": st.sampled_from(["::1", "10.0.0.1", "999.1.1.1", ""]),
        "status_code": st.integers() | st.booleans(),
        "latency_ms": st.floats(allow_nan=False),
        "labels": st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    },
)


def _dumps(value: Any) -> bytes:
    """JSON text of ``value`` (the standard library writes integers of any size)."""
    return json.dumps(value).encode("utf-8")


def _check(decoded: QueryEvent | DeadLetter) -> None:
    if isinstance(decoded, DeadLetter):
        assert decoded.reason
    else:
        assert MIN_TIMESTAMP <= decoded.ts <= MAX_TIMESTAMP


class TestDecoder:
    """decode_event returns an event or a dead letter with a reason, for any input."""

    @given(st.binary(max_size=512))
    def test_arbitrary_bytes(self, raw: bytes) -> None:
        """Random bytes never raise."""
        _check(decode_event(raw))

    @given(json_values)
    def test_arbitrary_json(self, value: Any) -> None:
        """Any JSON value never raises."""
        _check(decode_event(_dumps(value)))

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(events_at_limits)
    def test_fields_at_their_limits(self, doc: dict[str, Any]) -> None:
        """Events with each field at, under or over its limit never raise."""
        _check(decode_event(_dumps(doc)))


class TestReplayLoop:
    """The replay loop scores or dead-letters every line and its counts add up."""

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        st.lists(
            st.one_of(
                st.binary(max_size=200),
                json_values.map(_dumps),
                events_at_limits.map(_dumps),
            ),
            max_size=30,
        )
    )
    def test_every_line_is_counted(self, lines: list[bytes]) -> None:
        """events == valid + dead letters, and each dead letter has a reason and a source."""
        flat = [x.replace(b"\n", b" ").replace(b"\r", b" ") for x in lines]
        result = replay_lines(flat, keep_dead_letters=True)
        s = result.summary
        assert s.events == s.valid + s.dead_letters
        assert s.events == sum(1 for x in flat if x and not x.isspace())
        assert len(result.dead_letters) == s.dead_letters
        assert all(d["reason"] and d["source"].startswith("log:") for d in result.dead_letters)

    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.binary(max_size=4096))
    def test_a_file_of_arbitrary_bytes(self, tmp_path: Path, data: bytes) -> None:
        """Through the log reader (gzip sniffing, line caps) a file of any bytes replays."""
        path = tmp_path / "log.bin"
        path.write_bytes(data)
        try:
            result = replay_path(path)
        except OSError as exc:  # a gzip header followed by garbage: a readable error
            assert "input broke off" in str(exc)
            return
        s = result.summary
        assert s.events == s.valid + s.dead_letters
