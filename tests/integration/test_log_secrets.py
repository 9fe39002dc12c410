"""No secret in any log at any level: a DEBUG worker run with SASL PLAIN credentials.

There is no SASL broker in scripts/services.sh, so the worker is pointed at a closed
loopback port: kafka-python logs its whole configuration (``sasl_plain_password``
included) at DEBUG when its admin client starts, before it tries to connect, which is
the leak the redaction must stop. The worker then fails to reach Kafka and exits 1.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from stream_support import CLI, free_port

pytestmark = pytest.mark.integration

PASSWORD = "Sasl-Secret-4f2a9c"  # noqa: S105 - the value the test looks for in the log


class TestSecretsNotLogged:
    """A debug log of a real connection attempt holds no password."""

    def test_sasl_password_absent_from_debug_log(self, tmp_path: Path) -> None:
        """kafka-python's DEBUG configuration dump is written, with the password masked."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEWATCH_")}
        env.update(
            {
                "CLONEWATCH_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "CLONEWATCH_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CLONEWATCH_SASL_MECHANISM": "PLAIN",
                "CLONEWATCH_SASL_USERNAME": "svc-clonewatch",
                "CLONEWATCH_SASL_PASSWORD": PASSWORD,
                "CLONEWATCH_METRICS_PORT": "-1",
                "CLONEWATCH_LOG_FORMAT": "json",
            }
        )
        proc = subprocess.run(
            [*CLI, "--log-level", "DEBUG", "worker", "--data-dir", str(tmp_path / "data")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log = proc.stdout + proc.stderr
        assert proc.returncode == 1, log[-2000:]
        assert "sasl_plain_password" in log, "kafka-python's debug dump must be in the log"
        assert "svc-clonewatch" in log  # the user name is not a secret
        assert PASSWORD not in log
