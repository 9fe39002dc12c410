"""Receivers and helpers shared by the SIEM, HEC and webhook integration tests."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from schemas.alert import Alert
from streams.sinks.base import OutputRecord

WAIT_S = 20.0  # readiness deadline for a receiver, never part of an assertion


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a receiver-side condition."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def free_udp_port() -> int:
    """A loopback UDP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Rsyslog:
    """A private rsyslogd: imtcp (octet counting) and imudp on loopback, raw messages to a file."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.out = workdir / "received.log"
        self.udp_port = free_udp_port()
        self.tcp_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, tcp_port: int = 0) -> None:
        """Start in the foreground (-n) with its own config and pid file; wait until it listens."""
        port_file = self.workdir / "tcp.port"
        port_file.unlink(missing_ok=True)
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(
            f"""
global(workDirectory="{self.workdir}")
module(load="imtcp")
module(load="imudp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="clonewatch") {{
    action(type="omfile" file="{self.out}" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{tcp_port}"
      listenPortFileName="{port_file}" ruleset="clonewatch")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="clonewatch")
""",
            encoding="utf-8",
        )
        self._proc = subprocess.Popen(
            [self.binary, "-n", "-f", str(conf), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "rsyslogd.stderr").open("ab"),
        )

        def listening() -> bool:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AssertionError(
                    "rsyslogd exited: " + (self.workdir / "rsyslogd.stderr").read_text()
                )
            if tcp_port:  # a fixed port: rsyslog writes no port file, so try to connect
                try:
                    socket.create_connection(("127.0.0.1", tcp_port), timeout=1).close()
                except OSError:
                    return False
                return True
            text = port_file.read_text().strip() if port_file.exists() else ""
            return text.isdigit() and int(text) > 0

        wait_until(listening, "rsyslogd to listen")
        self.tcp_port = tcp_port or int(port_file.read_text().strip())

    def stop(self) -> None:
        """Stop the daemon (SIGTERM) and wait for it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def lines(self) -> list[str]:
        """Every message received so far, one per line."""
        if not self.out.exists():
            return []
        return self.out.read_text(encoding="utf-8").splitlines()

    def wait_lines(self, count: int) -> list[str]:
        """Wait until ``count`` messages arrived and return them."""
        wait_until(lambda: len(self.lines()) >= count, f"{count} messages in rsyslog's file")
        return self.lines()


@dataclass
class Received:
    """One request the HTTP server got."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class HttpReceiver:
    """Records requests and answers from a script of (status, headers, body), then 200."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (200, {}, b'{"ok":true}')
    respond: Callable[[Received], tuple[int, dict[str, str], bytes]] | None = None
    hold: threading.Event = field(default_factory=threading.Event)
    hold_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append(request)
            if self.script:
                return self.script.pop(0)
        if self.respond is not None:
            return self.respond(request)
        return self.default


def make_handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                stall = receiver.hold_next > 0
                if stall:
                    receiver.hold_next -= 1
            if stall:  # simulate a hung gateway: answer only after the test ends
                receiver.hold.wait(WAIT_S)
                return
            status, headers, payload = receiver.answer(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@dataclass
class TlsReceiver:
    """A TLS server that stores the bytes of each connection it accepts."""

    port: int
    ca_file: Path
    connections: list[bytearray] = field(default_factory=list)

    def data(self) -> bytes:
        return b"".join(bytes(c) for c in self.connections)


# Records.


def alert_record(n: int = 1, **overrides: Any) -> OutputRecord:
    """An alert record with awkward characters in its values."""
    context: dict[str, Any] = {
        "model_id": f"resnet|v{n}=prod",
        "risk_level": "high",
        "queries_observed": 1000 + n,
        "trigger_event_id": f"evt-{n}",
        "signals": [{"name": "coverage", "value": 0.9, "score": 41.0}],
    }
    context.update(overrides.pop("clonewatch", {}))
    doc: dict[str, Any] = {
        "@timestamp": "2025-03-01T12:00:00.250Z",
        "event": {"id": f"alert-{n}", "severity": 73, "risk_score": 76.0, "risk_score_norm": 76.0},
        "user": {"id": f"client-{n}"},
        "source": {"ip": "198.51.100.9"},
        "message": f"client-{n} a=b | c\\d\nsecond line",
        "clonewatch": context,
    }
    doc.update(overrides)
    alert = Alert.model_validate(doc)
    return OutputRecord(kind="alert", id=f"alert-{n}", key=f"client-{n}", doc=alert.to_dict())


def json_lines(body: bytes) -> list[dict[str, Any]]:
    """Concatenated JSON objects (HEC bodies) parsed one by one."""
    decoder = json.JSONDecoder()
    text = body.decode("utf-8")
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out
