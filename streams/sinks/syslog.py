"""CEF over syslog: RFC 5424 messages over TCP (RFC 6587 octet counting), TLS (RFC 5425) or UDP.

A message is ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - CEF:0|...``, with
``PRI = facility * 8 + severity``. Over TCP and TLS each message is framed as
``<length> SP <message>`` so that any byte may appear in it; over UDP each message is one
datagram (RFC 5426; lossy, nothing confirms delivery).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog

from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.cef import alert_to_cef, format_cef, risk_to_cef
from streams.sinks.http_delivery import RetryPolicy, env_bool, env_float, env_int, env_str

log = structlog.get_logger(__name__)

Transport = Literal["tcp", "tls", "udp"]
DEFAULT_PORTS: dict[str, int] = {"tcp": 514, "udp": 514, "tls": 6514}

FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13,
    "alert": 14, "clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip

# Syslog severity of an alert level: critical 2 (crit) ... none 6 (informational).
SYSLOG_SEVERITY_BY_LEVEL: dict[str, int] = {
    "critical": 2,
    "high": 3,
    "moderate": 4,
    "low": 5,
    "none": 6,
}


def _header_token(value: str, max_len: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or ``-`` when empty."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:max_len]
    return cleaned or "-"


def rfc5424_timestamp(when: datetime) -> str:
    """``2025-03-01T12:00:00.250000Z`` (UTC, microseconds, as RFC 5424 allows)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_rfc5424(
    msg: str,
    *,
    facility: int,
    severity: int,
    hostname: str,
    app_name: str,
    procid: str,
    msgid: str,
    when: datetime | None = None,
) -> bytes:
    """One RFC 5424 message, UTF-8, without structured data and without a BOM.

    >>> format_rfc5424("hi", facility=20, severity=3, hostname="h", app_name="clonewatch",
    ...                procid="7", msgid="alert", when=datetime(2025, 1, 2, tzinfo=UTC))
    b'<163>1 2025-01-02T00:00:00.000000Z h clonewatch 7 alert - hi'
    """
    if not 0 <= facility <= 23 or not 0 <= severity <= 7:
        raise ValueError("facility is 0-23 and severity 0-7")
    pri = facility * 8 + severity
    stamp = rfc5424_timestamp(when or datetime.now(UTC))
    header = " ".join(
        (
            f"<{pri}>1",
            stamp,
            _header_token(hostname, 255),
            _header_token(app_name, 48),
            _header_token(procid, 128),
            _header_token(msgid, 32),
            "-",
        )
    )
    return f"{header} {msg}".encode()


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting frame: ``<length> SP <message>``.

    >>> frame_octet_counted(b"<13>1 - - - - - - x")
    b'19 <13>1 - - - - - - x'
    """
    return str(len(message)).encode("ascii") + b" " + message


def parse_octet_counted(stream: bytes) -> tuple[list[bytes], bytes]:
    """Split a byte stream into octet-counted messages; returns them and the incomplete rest.

    >>> parse_octet_counted(b"3 abc2 de1")
    ([b'abc', b'de'], b'1')
    """
    messages: list[bytes] = []
    rest = stream
    while True:
        space = rest.find(b" ")
        if space <= 0:
            return messages, rest
        length_text = rest[:space]
        if not length_text.isdigit():
            raise ValueError(f"bad octet count {length_text[:20]!r}")
        length = int(length_text)
        end = space + 1 + length
        if len(rest) < end:
            return messages, rest
        messages.append(rest[space + 1 : end])
        rest = rest[end:]


@dataclass(frozen=True)
class SiemConfig:
    """Settings of the CEF/syslog sink (see docs/siem-webhook.md for each variable)."""

    host: str
    port: int
    transport: Transport = "tcp"
    facility: int = FACILITIES["local4"]
    app_name: str = "clonewatch"
    hostname: str | None = None
    kinds: frozenset[str] = frozenset({"alert"})
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: bool = True
    tls_server_name: str | None = None
    timeout: float = 10.0
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=10.0)
    )
    max_buffer: int = 1000

    def __post_init__(self) -> None:
        if self.transport not in DEFAULT_PORTS:
            raise ValueError(f"transport is tcp, tls or udp, got {self.transport!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"bad port {self.port}")
        if not 0 <= self.facility <= 23:
            raise ValueError(f"facility is 0-23, got {self.facility}")
        unknown = self.kinds - {"alert", "risk"}
        if unknown:
            raise ValueError(f"kinds are alert and risk, got {sorted(unknown)}")

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SiemConfig:
        """``tcp://host:514``, ``tls://host:6514`` or ``udp://host:514``."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"SIEM url must be tcp://, tls:// or udp://HOST[:PORT], got {url!r}")
        transport: Transport = parts.scheme  # type: ignore[assignment]
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[transport],
            transport=transport,
            **kwargs,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SiemConfig:
        """Build from ``CLONEWATCH_SIEM_*`` variables; keyword overrides (not None) win."""
        env = os.environ if env is None else env
        url = overrides.pop("url", None) or env_str(env, "CLONEWATCH_SIEM_URL")
        if not url:
            raise ValueError("the SIEM sink needs a URL (CLONEWATCH_SIEM_URL or --siem-url)")
        facility_text: str = (
            overrides.pop("facility", None) or env_str(env, "CLONEWATCH_SIEM_FACILITY") or "local4"
        )
        facility = (
            int(facility_text) if facility_text.isdigit() else FACILITIES.get(facility_text, -1)
        )
        kinds_text: str = (
            overrides.pop("kinds", None) or env_str(env, "CLONEWATCH_SIEM_KINDS") or "alert"
        )
        values: dict[str, Any] = {
            "facility": facility,
            "app_name": env_str(env, "CLONEWATCH_SIEM_APP_NAME", "clonewatch"),
            "hostname": env_str(env, "CLONEWATCH_SIEM_HOSTNAME"),
            "kinds": frozenset(k.strip() for k in kinds_text.split(",") if k.strip()),
            "tls_ca_file": env_str(env, "CLONEWATCH_SIEM_TLS_CA_FILE"),
            "tls_cert_file": env_str(env, "CLONEWATCH_SIEM_TLS_CERT_FILE"),
            "tls_key_file": env_str(env, "CLONEWATCH_SIEM_TLS_KEY_FILE"),
            "tls_verify": env_bool(env, "CLONEWATCH_SIEM_TLS_VERIFY", True),
            "tls_server_name": env_str(env, "CLONEWATCH_SIEM_TLS_SERVER_NAME"),
            "timeout": env_float(env, "CLONEWATCH_SIEM_TIMEOUT", 10.0),
            "retry": RetryPolicy(
                max_attempts=env_int(env, "CLONEWATCH_SIEM_MAX_ATTEMPTS", 5),
                base_delay=env_float(env, "CLONEWATCH_SIEM_BACKOFF_BASE", 0.5),
                max_delay=env_float(env, "CLONEWATCH_SIEM_BACKOFF_CAP", 10.0),
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_url(url, **values)


def build_siem_sink(
    config: SiemConfig | None = None, *, env: Mapping[str, str] | None = None
) -> SyslogSink:
    """The SIEM sink from a config, or from the environment (``SiemConfig.from_env``).

    The command-line flags that override the environment are added and read in
    ``clonewatch/commands/sink_options.py``.
    """
    return SyslogSink(config if config is not None else SiemConfig.from_env(env))


class SyslogSink:
    """A :class:`~streams.sinks.base.Sink` sending CEF lines to a syslog receiver.

    ``flush`` sends every buffered message; on a broken connection it reconnects and sends
    the whole batch again (at least once: the CEF ``externalId`` identifies repeats). After
    ``retry.max_attempts`` failed attempts it raises SinkError and keeps the batch.
    """

    name = "siem"

    def __init__(
        self,
        config: SiemConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self._sock: socket.socket | None = None
        self._buffer: list[bytes] = []
        self._hostname = config.hostname or socket.gethostname()
        self._procid = str(os.getpid())
        self.sent = 0

    # Formatting.

    def format(self, record: OutputRecord) -> bytes | None:
        """The RFC 5424 message (unframed) of a record, or None if its kind is not sent."""
        if record.kind not in self.config.kinds:
            return None
        if record.kind == "alert":
            event = alert_to_cef(record.doc, device_host=self._hostname)
        else:
            event = risk_to_cef(record.doc, device_host=self._hostname)
        level = str(record.doc.get("clonewatch", {}).get("risk_level", "none"))
        return format_rfc5424(
            format_cef(event),
            facility=self.config.facility,
            severity=SYSLOG_SEVERITY_BY_LEVEL.get(level, 6),
            hostname=self._hostname,
            app_name=self.config.app_name,
            procid=self._procid,
            msgid=record.kind,
            when=self._now(),
        )

    # Connection.

    def _connect(self) -> socket.socket:
        cfg = self.config
        if cfg.transport == "udp":
            family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.connect((cfg.host, cfg.port))
            return sock
        raw = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout)
        if cfg.transport == "tcp":
            return raw
        ctx = ssl.create_default_context(cafile=cfg.tls_ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not cfg.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.tls_cert_file:
            ctx.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
        try:
            return ctx.wrap_socket(raw, server_hostname=cfg.tls_server_name or cfg.host)
        except (ssl.SSLError, OSError):
            raw.close()
            raise

    def _peer_closed(self, sock: socket.socket) -> bool:
        """A syslog receiver never writes: a readable stream socket means it closed or failed."""
        if self.config.transport == "udp":
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            if isinstance(sock, ssl.SSLSocket):
                # TLS 1.3 servers send session tickets: readable does not mean closed.
                sock.setblocking(False)
                try:
                    data = sock.recv(1)
                except ssl.SSLWantReadError:
                    return False
                finally:
                    sock.settimeout(self.config.timeout)
            else:
                data = sock.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        return not data

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def setup(self) -> None:
        """Connect (and for TLS, handshake); raise SinkError if the receiver is unreachable."""
        try:
            self._sock = self._connect()
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"cannot reach syslog {self._where()}: {exc}") from exc
        log.info("siem_connected", target=self._where())

    def _where(self) -> str:
        return f"{self.config.transport}://{self.config.host}:{self.config.port}"

    # Sink protocol.

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Format and buffer records; flush when the buffer is full."""
        for record in records:
            message = self.format(record)
            if message is None:
                continue
            self._buffer.append(message)
            if len(self._buffer) >= self.config.max_buffer:
                self.flush()

    def _send_all(self, messages: list[bytes]) -> None:
        if self._sock is None or self._peer_closed(self._sock):
            self._disconnect()
            self._sock = self._connect()
        sock = self._sock
        if self.config.transport == "udp":
            for message in messages:
                sock.send(message)
        else:
            sock.sendall(b"".join(frame_octet_counted(m) for m in messages))

    def flush(self) -> None:
        """Send everything buffered, reconnecting as needed, or raise SinkError."""
        if not self._buffer:
            return
        batch = self._buffer
        attempt = 0
        while True:
            try:
                self._send_all(batch)
            except (OSError, ssl.SSLError) as exc:
                self._disconnect()
                attempt += 1
                if attempt >= self.config.retry.max_attempts:
                    raise SinkError(
                        f"syslog {self._where()} failed {attempt} times: {exc}"
                    ) from exc
                delay = self.config.retry.backoff(attempt - 1)
                log.warning("siem_retry", target=self._where(), attempt=attempt, error=str(exc))
                self._sleep(delay)
                continue
            break
        self.sent += len(batch)
        self._buffer = []

    def close(self) -> None:
        """Flush and disconnect (the connection is closed even if the flush fails)."""
        try:
            self.flush()
        finally:
            self._disconnect()
