"""CEF over syslog into a real rsyslogd: TCP with octet counting, UDP, and a reconnect."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from siem_support import Rsyslog, alert_record

from streams.sinks.cef import CefEvent, alert_to_cef, parse_cef
from streams.sinks.syslog import SiemConfig, SyslogSink

pytestmark = pytest.mark.integration

_HEADER = re.compile(
    r"^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) - "
)
_FIXED_NOW = datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC)


def _sink(url: str) -> SyslogSink:
    config = SiemConfig.from_url(url, hostname="cw-test", kinds=frozenset({"alert", "risk"}))
    return SyslogSink(config, now=lambda: _FIXED_NOW, sleep=lambda _s: None)


def _expected(n: int) -> CefEvent:
    return alert_to_cef(alert_record(n).doc, device_host="cw-test")


class TestTcpOctetCounting:
    """Messages framed by octet counting arrive whole in rsyslog's file."""

    def test_cef_lines_parse_back_to_the_same_fields(self, rsyslog: Rsyslog) -> None:
        """Every alert, with =, |, backslash and newline in values, parses back identically."""
        sink = _sink(f"tcp://127.0.0.1:{rsyslog.tcp_port}")
        sink.setup()
        sink.write([alert_record(n) for n in range(1, 4)])
        sink.flush()
        sink.close()
        lines = rsyslog.wait_lines(3)
        assert len(lines) == 3
        for n, line in enumerate(lines, 1):
            header = _HEADER.match(line)
            assert header is not None, line
            assert int(header["pri"]) == 20 * 8 + 3  # local4, err (level high)
            assert (header["host"], header["app"], header["msgid"]) == (
                "cw-test",
                "clonewatch",
                "alert",
            )
            assert header["ts"] == "2025-03-01T12:00:01.000000Z"
            event = parse_cef(line)
            assert event == _expected(n)
            assert event.extension["msg"] == f"client-{n} a=b | c\\d\nsecond line"
            assert event.extension["cs1"] == f"resnet|v{n}=prod"

    def test_reconnects_after_the_receiver_restarts(self, rsyslog: Rsyslog) -> None:
        """After rsyslogd restarts on the same port, the next flush reconnects and delivers."""
        port = rsyslog.tcp_port
        sink = _sink(f"tcp://127.0.0.1:{port}")
        sink.setup()
        sink.write([alert_record(1)])
        sink.flush()
        rsyslog.wait_lines(1)
        rsyslog.stop()
        rsyslog.start(tcp_port=port)
        sink.write([alert_record(2)])
        sink.flush()
        sink.close()
        lines = rsyslog.wait_lines(2)
        assert [parse_cef(line).extension["externalId"] for line in lines] == [
            "alert-1",
            "alert-2",
        ]


class TestUdp:
    """One message per datagram (RFC 5426)."""

    def test_udp_datagrams_arrive(self, rsyslog: Rsyslog) -> None:
        """Alerts sent over UDP are received and parse back to the same fields."""
        sink = _sink(f"udp://127.0.0.1:{rsyslog.udp_port}")
        sink.setup()
        sink.write([alert_record(7)])
        sink.close()
        lines = rsyslog.wait_lines(1)
        assert parse_cef(lines[0]) == _expected(7)
