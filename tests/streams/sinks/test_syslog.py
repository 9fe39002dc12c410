"""RFC 5424 formatting, RFC 6587 octet counting and the SIEM sink's settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import Alert
from streams.sinks.base import OutputRecord
from streams.sinks.cef import parse_cef
from streams.sinks.syslog import (
    SiemConfig,
    SyslogSink,
    format_rfc5424,
    frame_octet_counted,
    parse_octet_counted,
)

_WHEN = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _alert(level: str = "critical") -> OutputRecord:
    doc = Alert.model_validate(
        {
            "@timestamp": "2025-01-02T03:04:05Z",
            "event": {"id": "a1", "severity": 99, "risk_score": 95.0, "risk_score_norm": 95.0},
            "user": {"id": "c1"},
            "message": "m",
            "clonewatch": {
                "model_id": "m1",
                "risk_level": level,
                "queries_observed": 3,
                "trigger_event_id": "e1",
                "signals": [],
            },
        }
    ).to_dict()
    return OutputRecord(kind="alert", id="a1", key="c1", doc=doc)


class TestRfc5424:
    """The syslog header."""

    def test_pri_and_fields(self) -> None:
        """PRI is facility*8+severity and the header fields are in RFC order."""
        msg = format_rfc5424(
            "body", facility=20, severity=2, hostname="host", app_name="app",
            procid="42", msgid="alert", when=_WHEN,
        )  # fmt: skip
        assert msg == b"<162>1 2025-01-02T03:04:05.678000Z host app 42 alert - body"

    def test_empty_and_unprintable_header_fields_become_nil(self) -> None:
        """Spaces and non-ASCII are removed from header fields; an empty one is '-'."""
        msg = format_rfc5424(
            "x", facility=1, severity=6, hostname="my host\u00e9", app_name="",
            procid="", msgid="", when=_WHEN,
        )  # fmt: skip
        assert msg.startswith(b"<14>1 2025-01-02T03:04:05.678000Z myhost - - - - x")

    def test_header_fields_are_truncated_to_rfc_lengths(self) -> None:
        """MSGID is at most 32 characters and APP-NAME at most 48."""
        msg = format_rfc5424(
            "x", facility=1, severity=6, hostname="h", app_name="a" * 60,
            procid="1", msgid="m" * 40, when=_WHEN,
        )  # fmt: skip
        parts = msg.split(b" ")
        assert len(parts[3]) == 48 and len(parts[5]) == 32

    def test_bad_facility_is_rejected(self) -> None:
        """A facility above 23 is not syslog."""
        with pytest.raises(ValueError, match="facility"):
            format_rfc5424("x", facility=24, severity=0, hostname="h", app_name="a",
                           procid="1", msgid="m")  # fmt: skip


class TestOctetCounting:
    """RFC 6587 framing."""

    def test_length_counts_bytes_not_characters(self) -> None:
        """A multi-byte UTF-8 message is framed with its byte length."""
        message = "é=€".encode()
        assert frame_octet_counted(message) == b"6 " + message

    @given(st.lists(st.binary(max_size=300), max_size=8))
    def test_stream_of_frames_splits_back(self, messages: list[bytes]) -> None:
        """Concatenated frames of arbitrary bytes (spaces, newlines) split back exactly."""
        stream = b"".join(frame_octet_counted(m) for m in messages)
        assert parse_octet_counted(stream) == (messages, b"")

    def test_partial_frame_is_kept(self) -> None:
        """An incomplete trailing frame is returned as the rest."""
        assert parse_octet_counted(b"5 abc") == ([], b"5 abc")

    def test_garbage_count_is_rejected(self) -> None:
        """A frame that does not start with digits is an error."""
        with pytest.raises(ValueError, match="octet count"):
            parse_octet_counted(b"x1 a")


class TestSinkFormatting:
    """What the sink puts on the wire for a record."""

    def test_alert_message_carries_cef_and_level_severity(self) -> None:
        """A critical alert becomes syslog severity 2 with a parseable CEF body."""
        sink = SyslogSink(SiemConfig(host="127.0.0.1", port=514, hostname="h1"), now=lambda: _WHEN)
        message = sink.format(_alert("critical"))
        assert message is not None
        assert message.startswith(b"<162>1 2025-01-02T03:04:05.678000Z h1 clonewatch ")
        event = parse_cef(message.decode())
        assert (event.severity, event.extension["externalId"]) == (10, "a1")

    def test_risk_records_are_skipped_unless_configured(self) -> None:
        """By default only alerts are sent to the SIEM."""
        sink = SyslogSink(SiemConfig(host="127.0.0.1", port=514))
        risk = OutputRecord(kind="risk", id="r", key="c", doc={})
        assert sink.format(risk) is None


class TestSettings:
    """Configuration from URLs and the environment (the flags: test_streams_worker_sinks.py)."""

    def test_url_schemes_and_default_ports(self) -> None:
        """Each scheme selects its transport and its standard port."""
        assert (SiemConfig.from_url("tls://siem").port, SiemConfig.from_url("udp://s").port) == (
            6514,
            514,
        )
        assert SiemConfig.from_url("tcp://s:1514").transport == "tcp"

    def test_bad_url_is_rejected(self) -> None:
        """An http URL is not a syslog destination."""
        with pytest.raises(ValueError, match="tcp://"):
            SiemConfig.from_url("http://siem:514")

    def test_missing_url_is_an_error(self) -> None:
        """Without a URL the sink cannot be built."""
        with pytest.raises(ValueError, match="CLONEWATCH_SIEM_URL"):
            SiemConfig.from_env({})
