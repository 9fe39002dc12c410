"""kill -9 mid-stream: state comes back from the changelog, no alert lost or doubled."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from stream_support import WAIT_SECONDS, StreamEnv, Worker, alert_keys, replay_alerts, write_log

pytestmark = pytest.mark.integration

PROCESSED = "clonewatch_events_processed_total"
SKIPPED = "clonewatch_events_skipped_replayed_total"


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def _wait_processed(worker: Worker, target: float) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while worker.value(PROCESSED) < target:
        assert time.monotonic() < deadline, worker.tail()
        assert worker.proc.poll() is None, worker.tail()
        time.sleep(0.2)


class TestCrashRecovery:
    """A worker killed with SIGKILL and started again."""

    def test_kill_and_restart_keeps_every_alert_once(
        self, kafka_bootstrap: str, tmp_path: Path
    ) -> None:
        """Every replay alert appears once after dedup by id; risk built before the crash counts."""
        events = write_log(tmp_path / "log.jsonl")
        n = len(events)
        expected = replay_alerts(tmp_path / "log.jsonl")
        slow = [a for a in expected if a["user"]["id"] == "attacker-slow"]
        assert slow, "replay must alert on the slow attacker"
        first = min(slow, key=lambda a: a["@timestamp"])
        index = next(
            i
            for i, e in enumerate(events)
            if e["event_id"] == first["clonewatch"]["trigger_event_id"]
        )
        split = index - 3
        before = sum(1 for e in events[:split] if e["client_id"] == "attacker-slow")
        assert before >= 5, "the slow attacker must have built risk before the crash"
        env = StreamEnv(
            kafka_bootstrap,
            tmp_path,
            partitions=1,
            extra={
                # No offset is committed before the kill: everything is re-delivered.
                "CLONEWATCH_COMMIT_INTERVAL_SECONDS": "3600",
                "CLONEWATCH_POPULATION_CHECKPOINT_SECONDS": "0.3",
            },
        )
        assert (
            env.cli("produce", str(_write(tmp_path / "p1.jsonl", events[:split]))).returncode == 0
        )
        w1 = env.worker("w1")
        try:
            w1.wait_for(PROCESSED, split)
            w1.wait_for(
                "clonewatch_population_checkpoints_total",
                w1.value("clonewatch_population_checkpoints_total") + 1,
            )
        finally:
            w1.kill()
        assert (
            env.cli("produce", str(_write(tmp_path / "p2.jsonl", events[split:]))).returncode == 0
        )
        w2 = env.worker("w1")
        try:
            # The events not folded into the state before the kill must all be processed.
            _wait_processed(w2, n - split)
            processed, skipped = w2.value(PROCESSED), w2.value(SKIPPED)
        finally:
            assert w2.terminate() == 0, w2.tail()
        # Each event was applied to the state exactly once over both runs. Re-delivered
        # events already in the state are skipped: at most the first run's forwards and
        # their second forwarding (fewer when Faust committed some offsets before the
        # kill, e.g. on its start-up rebalance).
        assert processed == n - split
        assert 0 < skipped <= 2 * split
        got = env.alerts()
        unique = {a["event"]["id"]: a for a in got}
        assert Counter(
            (a["user"]["id"], a["clonewatch"]["risk_level"]) for a in unique.values()
        ) == Counter((a["user"]["id"], a["clonewatch"]["risk_level"]) for a in expected)
        assert alert_keys(got) == alert_keys(expected)
        caught = [a for a in unique.values() if a["event"]["id"] == first["event"]["id"]]
        assert caught, "the slow attacker's first alert is missing after the crash"
        assert (
            caught[0]["clonewatch"]["queries_observed"] == first["clonewatch"]["queries_observed"]
        )
