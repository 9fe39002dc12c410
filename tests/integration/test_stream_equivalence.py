"""produce + worker on the real broker give replay's alerts; metrics move; SIGTERM commits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from stream_support import (
    StreamEnv,
    alert_keys,
    committed_offset,
    replay_alerts,
    write_log,
)

pytestmark = pytest.mark.integration


class TestEquivalence:
    """One worker against the embedded replay."""

    def test_same_alerts_as_replay_and_metrics_move(
        self, kafka_bootstrap: str, tmp_path: Path
    ) -> None:
        """The alerted (client, model, level) set and alert ids equal replay's; counters agree."""
        log = tmp_path / "log.jsonl"
        n = len(write_log(log))
        expected = replay_alerts(log)
        assert expected, "the test log must make replay alert"
        env = StreamEnv(kafka_bootstrap, tmp_path, partitions=1)
        produced = env.cli("produce", str(log))
        assert produced.returncode == 0, produced.stderr
        worker = env.worker("w1")
        try:
            worker.wait_for("clonewatch_events_processed_total", n)
            metrics = worker.metrics()
        finally:
            code = worker.terminate()
        assert code == 0, worker.tail()
        got = env.alerts()
        assert alert_keys(got) == alert_keys(expected)
        assert {a["event"]["id"] for a in got} == {a["event"]["id"] for a in expected}
        assert metrics["clonewatch_events_in_total"] == n
        for level, count in Counter(a["clonewatch"]["risk_level"] for a in expected).items():
            assert metrics[f'clonewatch_alerts_total{{level="{level}"}}'] == count
        assert metrics["clonewatch_processing_latency_seconds_count"] == n
        # SIGTERM committed everything the worker processed.
        assert (
            committed_offset(
                kafka_bootstrap, f"{env.prefix}-app", env.env["CLONEWATCH_TOPIC_QUERIES"]
            )
            == n
        )
        # tail prints the alerts readably.
        tailed = env.cli("tail", "alerts", "--from-beginning", "--max", str(len(got)))
        assert tailed.returncode == 0, tailed.stderr
        lines = tailed.stdout.splitlines()
        assert len(lines) == len(got)
        assert all("client=" in line and "model=m1" in line for line in lines)
