"""A second worker joining the group mid-stream: no alert lost, none duplicated after dedup.

The first half of the log is produced and worker ``a`` scores it alone on four partitions;
worker ``b`` then joins the group, partitions (and their changelog-backed client state) move
from ``a`` to ``b``, and the second half is produced to the pair. The reference is
``clonewatch replay`` of the whole log: on four partitions the clients interleave otherwise
than in the file (docs/streaming.md), so the same clients must reach the same highest
level. Alerts are compared after deduplication by ``event.id`` (delivery is at-least-once:
events not committed at the rebalance are scored again by the new owner, under the same ids).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from stream_support import WAIT_SECONDS, StreamEnv, Worker, alert_keys, replay_alerts, write_log

from schemas.alert import LEVEL_ORDER

pytestmark = pytest.mark.integration

PROCESSED = "clonewatch_events_processed_total"


def _halves(tmp: Path) -> tuple[Path, Path, int]:
    """The log split in two by time (first and second half of its lines) and its length."""
    whole = tmp / "log.jsonl"
    # Three times the usual benign population, as in test_stream_scale_out.py: each worker
    # must know enough calm clients of the model before the attackers stand out.
    events = write_log(whole, benign=48, per_client=40)
    cut = len(events) // 2
    first, second = tmp / "first.jsonl", tmp / "second.jsonl"
    first.write_text("".join(json.dumps(e) + "\n" for e in events[:cut]), encoding="utf-8")
    second.write_text("".join(json.dumps(e) + "\n" for e in events[cut:]), encoding="utf-8")
    return first, second, len(events)


def _produce(env: StreamEnv, path: Path) -> None:
    done = env.cli("produce", str(path))
    assert done.returncode == 0, done.stderr


def _inputs(worker: Worker) -> set[int]:
    """Input-topic partitions a worker reports lag for (i.e. holds)."""
    try:
        metrics = worker.metrics()
    except OSError:
        return set()
    return {
        int(name.split('partition="')[1].split('"')[0])
        for name in metrics
        if name.startswith("clonewatch_consumer_lag{") and ".queries" in name
    }


def _lag(workers: list[Worker]) -> float:
    """The consumer lag summed over every partition the workers report."""
    total = 0.0
    for w in workers:
        try:
            total += sum(
                v for k, v in w.metrics().items() if k.startswith("clonewatch_consumer_lag{")
            )
        except OSError:
            return float("inf")
    return total


def _until(condition: Any, workers: list[Worker], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        for w in workers:
            assert w.proc.poll() is None, f"{what}: worker exited\n{w.tail()}"
        assert time.monotonic() < deadline, f"{what}\n" + "\n".join(w.tail() for w in workers)
        time.sleep(0.3)


def _unique(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alerts by ``event.id``; a repeat must be the same alert."""
    out: dict[str, dict[str, Any]] = {}
    for a in alerts:
        seen = out.setdefault(a["event"]["id"], a)
        assert seen["clonewatch"]["risk_level"] == a["clonewatch"]["risk_level"]
        assert seen["user"]["id"] == a["user"]["id"]
    return out


def _peaks(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """The highest level alerted per (client, model)."""
    out: dict[tuple[str, str], int] = {}
    for client, model, level in alert_keys(alerts):
        out[(client, model)] = max(out.get((client, model), 0), LEVEL_ORDER[level])  # type: ignore[index]
    return out


class TestRebalance:
    """One worker, then two: partitions move mid-stream and nothing is lost or doubled."""

    def test_second_worker_joining_mid_stream(self, kafka_bootstrap: str, tmp_path: Path) -> None:
        """Same clients at the same peaks as replay; each level crossing alerted once."""
        first, second, n = _halves(tmp_path)
        expected = replay_alerts(tmp_path / "log.jsonl")
        assert expected
        env = StreamEnv(kafka_bootstrap, tmp_path, partitions=4)
        env.extra["CLONEWATCH_BATCH_MAX"] = "50"  # offsets committed batch by batch

        a = env.worker("a")
        b: Worker | None = None
        try:
            _until(lambda: _inputs(a) == {0, 1, 2, 3}, [a], "a never held every partition")
            _produce(env, first)
            _until(lambda: a.value(PROCESSED) >= n // 2, [a], "a never scored the first half")
            b = joined = env.worker("b")  # joins mid-stream: a holds the first half's state
            pair = [a, joined]
            _until(
                lambda: bool(_inputs(joined)) and _inputs(a) | _inputs(joined) == {0, 1, 2, 3},
                pair,
                "the rebalance never gave b a partition",
            )
            assert not _inputs(a) & _inputs(joined)
            _produce(env, second)
            _until(
                lambda: a.value(PROCESSED) + joined.value(PROCESSED) >= n and _lag(pair) == 0,
                pair,
                "the pair never caught up",
            )
            assert joined.value(PROCESSED) > 0
        finally:
            codes = (a.terminate(), b.terminate() if b is not None else 0)
        assert codes == (0, 0)

        got = _unique(env.alerts())
        # None lost: every client replay alerts is alerted, at the same highest level.
        assert _peaks(list(got.values())) == _peaks(expected)
        # None doubled: after dedup by event.id, each (client, model, level) once.
        crossings = Counter(
            (x["user"]["id"], x["clonewatch"]["model_id"], x["clonewatch"]["risk_level"])
            for x in got.values()
        )
        assert max(crossings.values()) == 1, crossings
