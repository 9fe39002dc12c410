"""Real receivers for the SIEM, HEC and webhook tests: rsyslogd, an HTTP server, a TLS server."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from siem_support import WAIT_S, HttpReceiver, Rsyslog, TlsReceiver, make_handler


def _rsyslogd() -> str:
    found = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("rsyslogd is missing in CI: scripts/deps.d/rsyslog.sh should install it")
        pytest.skip("rsyslogd is not installed (run scripts/deps.d/rsyslog.sh)")
    return found


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    """A running rsyslogd of this test, stopped at the end."""
    daemon = Rsyslog(_rsyslogd(), tmp_path)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on 127.0.0.1 (random port) in a thread."""
    receiver = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(receiver))
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
