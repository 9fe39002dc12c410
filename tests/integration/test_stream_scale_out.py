"""Two workers in one group split the partitions and together alert like one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from stream_support import WAIT_SECONDS, StreamEnv, Worker, alert_keys, write_log

from schemas.alert import LEVEL_ORDER

pytestmark = pytest.mark.integration

PROCESSED = "clonewatch_events_processed_total"


class TestScaleOut:
    """One worker against two in the same consumer group."""

    def test_two_workers_give_the_alerts_of_one(self, kafka_bootstrap: str, tmp_path: Path) -> None:
        """Both workers get partitions and work; together they alert the same clients as one."""
        log = tmp_path / "log.jsonl"
        # Three times the usual benign population: each worker learns its baseline from
        # half the clients, and must have enough of them before the attackers arrive.
        n = len(write_log(log, benign=48, per_client=40))
        single = StreamEnv(kafka_bootstrap, tmp_path / "one", partitions=4)
        pair = StreamEnv(kafka_bootstrap, tmp_path / "two", partitions=4)
        for env in (single, pair):
            env.tmp.mkdir()
        assert single.cli("produce", str(log)).returncode == 0
        w = single.worker("solo")
        try:
            w.wait_for(PROCESSED, n)
        finally:
            assert w.terminate() == 0, w.tail()
        expected = _peaks(single.alerts())
        assert expected

        a, b = pair.worker("a"), pair.worker("b")
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            # Both members hold input partitions before any event arrives.
            while not (_inputs(a) and _inputs(b)):
                assert time.monotonic() < deadline, a.tail() + "\n" + b.tail()
                time.sleep(0.3)
            assert _inputs(a) | _inputs(b) == {0, 1, 2, 3}
            assert not _inputs(a) & _inputs(b)
            assert pair.cli("produce", str(log)).returncode == 0
            while a.value(PROCESSED) + b.value(PROCESSED) < n:
                assert time.monotonic() < deadline, a.tail() + "\n" + b.tail()
                time.sleep(0.3)
            assert a.value(PROCESSED) > 0
            assert b.value(PROCESSED) > 0
        finally:
            codes = (a.terminate(), b.terminate())
        assert codes == (0, 0)
        # Each worker learns its model baseline from its own clients, and the interleaving
        # of partitions differs, so an intermediate level crossed on the way up may differ;
        # the clients alerted and the highest level each reached must not (docs/streaming.md).
        assert _peaks(pair.alerts()) == expected


def _peaks(alerts: list[dict[str, object]]) -> dict[tuple[str, str], int]:
    """The highest level alerted per (client, model)."""
    out: dict[tuple[str, str], int] = {}
    for client, model, level in alert_keys(alerts):  # type: ignore[arg-type]
        out[(client, model)] = max(out.get((client, model), 0), LEVEL_ORDER[level])
    return out


def _inputs(worker: Worker) -> set[int]:
    """Input-topic partitions a worker reports lag for (i.e. holds)."""
    try:
        metrics = worker.metrics()
    except OSError:
        return set()
    out = set()
    for name in metrics:
        if name.startswith("clonewatch_consumer_lag{") and ".queries" in name:
            out.add(int(name.split('partition="')[1].split('"')[0]))
    return out
