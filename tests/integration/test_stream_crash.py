"""kill -9 anywhere: client state and the per-model baseline come back consistent, alerts as replay.

Each case kills a real worker at one point, produces the rest of the log, starts a worker with
the same id and compares the alerts (deduplicated by ``event.id``) with ``clonewatch replay``'s
on the same file. The points: the first seconds after start (before the first checkpoint of
the old 30 s timer), right after the baseline froze, mid-stream at 30 % and 42 % of the log
(the issue's runs) while committing offsets every 2 s, and after the slow attacker built risk
with no offset committed (everything re-delivered).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from stream_support import WAIT_SECONDS, StreamEnv, Worker, alert_keys, replay_alerts, write_log

from detectors.engine import Engine
from schemas import LEVEL_ORDER
from schemas.query import QueryEvent

pytestmark = pytest.mark.integration

PROCESSED = "clonewatch_events_processed_total"
SKIPPED = "clonewatch_events_skipped_replayed_total"
CHECKPOINTS = "clonewatch_population_checkpoints_total"


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def _wait_processed(worker: Worker, target: float) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while worker.value(PROCESSED) < target:
        assert time.monotonic() < deadline, worker.tail()
        assert worker.proc.poll() is None, worker.tail()
        time.sleep(0.2)


def _wait_idle(worker: Worker) -> None:
    """Wait until the worker has processed something and has had no lag for two seconds."""
    deadline = time.monotonic() + WAIT_SECONDS
    seen, since = -1.0, time.monotonic()
    while True:
        assert time.monotonic() < deadline, worker.tail()
        assert worker.proc.poll() is None, worker.tail()
        m = worker.metrics() if worker.value("clonewatch_worker_up") else {}
        lag = sum(v for k, v in m.items() if k.startswith("clonewatch_consumer_lag{"))
        done = m.get(PROCESSED, 0.0) + m.get(SKIPPED, 0.0)
        lagging = lag > 0 or not any(k.startswith("clonewatch_consumer_lag{") for k in m)
        if done != seen or lagging or done == 0:
            seen, since = done, time.monotonic()
        elif time.monotonic() - since >= 2.0:
            return
        time.sleep(0.25)


def _freeze_index(events: list[dict[str, Any]]) -> int:
    """The index of the event after which replay's baseline of ``m1`` is frozen."""
    engine = Engine()
    for i, e in enumerate(events):
        engine.process(QueryEvent.model_validate(e))
        pop = engine.populations.get("m1")
        if pop is not None and pop.frozen:
            return i
    raise AssertionError("the log never freezes its baseline")


def _same_as_replay(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Each replay alert once after dedup by id, with replay's level and query count."""
    unique = {a["event"]["id"]: a for a in got}
    assert sorted(unique) == sorted(a["event"]["id"] for a in expected)
    assert Counter(
        (a["user"]["id"], a["clonewatch"]["risk_level"]) for a in unique.values()
    ) == Counter((a["user"]["id"], a["clonewatch"]["risk_level"]) for a in expected)
    assert alert_keys(got) == alert_keys(expected)
    for a in expected:
        assert (
            unique[a["event"]["id"]]["clonewatch"]["queries_observed"]
            == a["clonewatch"]["queries_observed"]
        )


def _env(kafka_bootstrap: str, tmp_path: Path, partitions: int = 1, **extra: str) -> StreamEnv:
    # Batches of 50 events: many checkpoints, so a kill lands between any two steps.
    extra = {"CLONEWATCH_BATCH_MAX": "50", **extra}
    return StreamEnv(kafka_bootstrap, tmp_path, partitions=partitions, extra=extra)


def _highest(alerts: list[dict[str, Any]]) -> dict[str, int]:
    """Each alerted client's highest level."""
    out: dict[str, int] = {}
    for a in alerts:
        level = LEVEL_ORDER[a["clonewatch"]["risk_level"]]
        out[a["user"]["id"]] = max(out.get(a["user"]["id"], 0), level)
    return out


class TestCrashRecovery:
    """A worker killed with SIGKILL and started again."""

    @pytest.mark.parametrize(
        ("point", "partitions"),
        [("first-seconds", 1), ("after-freeze", 1), ("30%", 1), ("42%", 1), ("42%", 3)],
    )
    def test_kill_anywhere_gives_replays_alerts(
        self, kafka_bootstrap: str, tmp_path: Path, point: str, partitions: int
    ) -> None:
        """Killed at this point and restarted, the worker alerts as replay does.

        On one partition exactly; on three the clients interleave otherwise than in the
        file (docs/streaming.md), so the same clients reach the same highest level.
        """
        events = write_log(tmp_path / "log.jsonl")
        n = len(events)
        expected = replay_alerts(tmp_path / "log.jsonl")
        assert expected, "replay must alert on this log"
        env = _env(kafka_bootstrap, tmp_path, partitions)
        if point == "after-freeze":  # the worker idles with the freeze in its last batch
            split = kill_at = _freeze_index(events) + 1
        elif point == "first-seconds":  # a few batches, seconds before a timer would fire
            split, kill_at = n, 150
        else:  # the runs: part of the log produced, killed while working on it
            split = int(n * float(point.rstrip("%")) / 100)
            kill_at = split - 60
        assert (
            env.cli("produce", str(_write(tmp_path / "p1.jsonl", events[:split]))).returncode == 0
        )
        w1 = env.worker("w1")
        try:
            w1.wait_for(PROCESSED, kill_at)
        finally:
            w1.kill()
        if split < n:
            rest = _write(tmp_path / "p2.jsonl", events[split:])
            assert env.cli("produce", str(rest)).returncode == 0
        w2 = env.worker("w1")
        try:
            _wait_idle(w2)  # outputs are delivered before events count as processed
        finally:
            assert w2.terminate() == 0, w2.tail()
        got = env.alerts()
        if partitions == 1:
            _same_as_replay(got, expected)
        else:
            assert _highest(got) == _highest(expected)

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
        # No offset is committed before the kill: everything is re-delivered.
        env = _env(kafka_bootstrap, tmp_path, CLONEWATCH_COMMIT_INTERVAL_SECONDS="3600")
        assert (
            env.cli("produce", str(_write(tmp_path / "p1.jsonl", events[:split]))).returncode == 0
        )
        w1 = env.worker("w1")
        try:
            w1.wait_for(PROCESSED, split)
            assert w1.value(CHECKPOINTS) > 0, "the baseline changed: checkpoints were written"
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
        _same_as_replay(got, expected)
        unique = {a["event"]["id"]: a for a in got}
        caught = [a for a in unique.values() if a["event"]["id"] == first["event"]["id"]]
        assert caught, "the slow attacker's first alert is missing after the crash"
