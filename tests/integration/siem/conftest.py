"""Real receivers for the SIEM, HEC and webhook tests: rsyslogd, an HTTP server, a TLS server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from siem_support import WAIT_S, wait_until


def _rsyslogd() -> str:
    found = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("rsyslogd is missing in CI: scripts/deps.d/rsyslog.sh should install it")
        pytest.skip("rsyslogd is not installed (run scripts/deps.d/rsyslog.sh)")
    return found


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


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A running rsyslogd of this test, stopped at the end."""
    daemon = Rsyslog(_rsyslogd(), tmp_path)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


# HTTP receiver.


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


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
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


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on 127.0.0.1 (random port) in a thread."""
    receiver = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()


# TLS receiver.


@dataclass
class TlsReceiver:
    """A TLS server that stores the bytes of each connection it accepts."""

    port: int
    ca_file: Path
    connections: list[bytearray] = field(default_factory=list)

    def data(self) -> bytes:
        return b"".join(bytes(c) for c in self.connections)


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    """A syslog-over-TLS stand-in with a self-signed certificate made by ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    receiver = TlsReceiver(port=listener.getsockname()[1], ca_file=cert)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            buf = bytearray()
            receiver.connections.append(buf)
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(WAIT_S)
                    while chunk := conn.recv(65536):
                        buf.extend(chunk)
            except (OSError, ssl.SSLError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        listener.close()
        thread.join(WAIT_S)
