"""``tail`` and ``produce`` against a closed loopback port: one line, exit 1, a bounded wait.

Before, both waited for kafka-python's 30 s bootstrap; ``tail`` then printed a traceback and
``produce`` the line ``Kafka: KafkaTimeoutError: KafkaTimeoutError: Unable to bootstrap``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from clonewatch.commands.produce import kafka_failure
from streams.settings import Settings


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _run(args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    # No CLONEWATCH_* variable: the settings loader rejects names it does not know.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEWATCH_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return proc, time.monotonic() - started


class TestUnreachableBroker:
    """The error names the servers tried and the setting to change."""

    @pytest.mark.parametrize("command", ["tail", "produce"])
    def test_one_line_exit_1_quickly(self, command: str, closed_port: int, tmp_path: Path) -> None:
        """Exit 1 within the connect timeout (plus start-up), one stderr line, no traceback."""
        server = f"127.0.0.1:{closed_port}"
        log = tmp_path / "q.jsonl"
        log.write_text("{}\n")
        target = ["alerts"] if command == "tail" else [str(log)]
        proc, took = _run(
            [command, *target, "--bootstrap-servers", server, "--connect-timeout", "1"]
        )
        assert proc.returncode == 1
        lines = [
            x for x in proc.stderr.splitlines() if "RuntimeWarning" not in x and "BUILD" not in x
        ]
        assert len(lines) == 1, proc.stderr
        assert server in lines[0]
        assert "CLONEWATCH_BOOTSTRAP_SERVERS" in lines[0] and "--bootstrap-servers" in lines[0]
        assert took < 15, took  # the old wait was kafka-python's 30 s bootstrap

    def test_the_client_errors_read_once(self) -> None:
        """A client timeout is named once, with the servers (not "KafkaTimeoutError: " twice)."""
        settings = Settings(bootstrap_servers="10.0.0.1:9092,10.0.0.2:9092")
        err = kafka_failure(settings, KafkaTimeoutError("Unable to bootstrap"))
        assert err is not None and err.code == 1
        assert "KafkaTimeoutError" not in str(err)
        assert "10.0.0.1:9092,10.0.0.2:9092" in str(err)
        assert kafka_failure(settings, KafkaConnectionError("refused")) is not None
        assert kafka_failure(settings, ValueError("x")) is None
