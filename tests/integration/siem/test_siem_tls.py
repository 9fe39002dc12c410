"""Syslog over TLS (RFC 5425) to a real TLS server with a self-signed certificate."""

from __future__ import annotations

import pytest
from siem_support import TlsReceiver, alert_record, wait_until

from streams.sinks.base import SinkError
from streams.sinks.cef import parse_cef
from streams.sinks.http_delivery import RetryPolicy
from streams.sinks.syslog import SiemConfig, SyslogSink, parse_octet_counted

pytestmark = pytest.mark.integration


class TestTls:
    """Octet-counted messages inside a verified TLS session."""

    def test_framed_messages_arrive_over_verified_tls(self, tls_receiver: TlsReceiver) -> None:
        """Two alerts arrive as two octet-counted frames whose CEF parses back."""
        config = SiemConfig.from_url(
            f"tls://127.0.0.1:{tls_receiver.port}", tls_ca_file=str(tls_receiver.ca_file)
        )
        sink = SyslogSink(config)
        sink.setup()
        sink.write([alert_record(1), alert_record(2)])
        sink.close()

        def two_frames() -> bool:
            return len(parse_octet_counted(tls_receiver.data())[0]) == 2

        wait_until(two_frames, "two frames over TLS")
        frames, rest = parse_octet_counted(tls_receiver.data())
        assert rest == b""
        ids = [parse_cef(f.decode("utf-8")).extension["externalId"] for f in frames]
        assert ids == ["alert-1", "alert-2"]
        assert all(f.startswith(b"<163>1 ") for f in frames)

    def test_untrusted_certificate_is_refused(self, tls_receiver: TlsReceiver) -> None:
        """Without the CA that signed the server's certificate, setup fails and nothing is sent."""
        config = SiemConfig.from_url(
            f"tls://127.0.0.1:{tls_receiver.port}", retry=RetryPolicy(max_attempts=1)
        )
        sink = SyslogSink(config)
        with pytest.raises(SinkError, match="CERTIFICATE_VERIFY_FAILED"):
            sink.setup()
        assert tls_receiver.data() == b""
