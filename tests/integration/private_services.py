"""Servers of one test only: scripts/services.sh in a temporary services dir, on free ports.

The shared servers (``make services-up``) are never touched: each private server has its own
``CLONEWATCH_SERVICES_DIR`` (pid files, data, logs) and ports, and reuses the unpacked
distributions of ``.services/dist`` through a symlink instead of fetching them again. Used by the
tests that stop a server's process under load (test_search_restart.py, test_kafka_outage_logs.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services.sh"
SHARED_DIST = ROOT / ".services" / "dist"


def port_free(port: int) -> bool:
    """Whether a server could listen on loopback ``port`` now (TIME_WAIT leftovers allowed)."""
    with socket.socket() as sock:
        # As the JVM servers bind: connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_java() -> None:
    """Skip the test (fail it under CI=true) when there is no JVM to start a server with."""
    if shutil.which(os.environ.get("CLONEWATCH_JAVA", "java")) is None:
        message = "no java on PATH to start a private server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires the real server: {message}", pytrace=False)
        pytest.skip(message)


@dataclass
class OwnService:
    """One service (kafka, elasticsearch, opensearch) run by scripts/services.sh for one test."""

    service: str
    port: int
    services_dir: Path
    env: dict[str, str]
    log: Path

    def run(self, command: str) -> float:
        """``services.sh COMMAND SERVICE``; returns its duration; fails the test with its output."""
        start = time.monotonic()
        with self.log.open("a") as out:
            out.write(f"$ services.sh {command} {self.service}\n")
            out.flush()
            done = subprocess.run(
                ["bash", str(SCRIPT), command, self.service],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
        if done.returncode != 0:
            pytest.fail(f"services.sh {command} {self.service} failed:\n{self.log.read_text()}")
        return time.monotonic() - start

    def pid(self) -> int | None:
        """The server's pid from the script's pid file, while that process runs."""
        try:
            pid = int((self.services_dir / "run" / self.service / "pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid


S = TypeVar("S", bound=OwnService)


@contextlib.contextmanager
def own_service(
    kind: type[S],
    service: str,
    port: int,
    variables: dict[str, str],
    *,
    prefix: str,
    reuse_dist: bool = True,
) -> Iterator[S]:
    """Start ``service`` with ``variables`` (its ports, heap) in a new services dir and yield it.

    Whatever happens it is then stopped (``down``, SIGKILL if its JVM still runs) and the
    directory deleted. ``reuse_dist`` links ``.services/dist`` (no download); without it the
    script unpacks its own copy (e.g. Elasticsearch under root, whose user may not reach it).
    """
    require_java()
    # Not under pytest's 0700 tmp dirs: as root, Elasticsearch runs as its own user and must
    # reach the directory (else the script moves it under /var/tmp).
    services_dir = Path(tempfile.mkdtemp(prefix=prefix))
    services_dir.chmod(0o755)
    if reuse_dist and (SHARED_DIST / ".").is_dir():
        (services_dir / "dist").symlink_to(SHARED_DIST)
    env = {k: v for k, v in os.environ.items() if k != "CLONEWATCH_ES_BASE"}
    env |= {"CLONEWATCH_SERVICES_DIR": str(services_dir), **variables}
    own = kind(service, port, services_dir, env, services_dir / "services.log")
    try:
        own.run("up")
        yield own
    finally:
        pid = own.pid()
        with contextlib.suppress(BaseException):
            own.run("down")
        if pid is not None:  # never leave a JVM behind, whatever happened
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(services_dir, ignore_errors=True)
