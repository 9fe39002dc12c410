"""Kafka down for about 25 s under a running worker: a few log lines, not a flood, then recovery.

Issue 19 measured 116,831 ERROR lines (12 MB) from a worker whose broker was down for 28 s.
This test starts a PRIVATE Kafka with scripts/services.sh (a temporary services dir, its own
loopback ports, the distribution under .services/dist reused through a symlink), never the
shared broker: it runs ``clonewatch worker`` against it, produces half a log, stops the broker
with ``services.sh stop kafka`` (SIGTERM, data kept), waits, starts it again with ``up`` on the
same data and produces the other half. The worker must process the second half, and the lines
it wrote while the broker was away must be few per kind and per 10 s (clonewatch/logs.py's
RepeatFilter), one of them carrying the count of those it suppressed.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from private_services import OwnService, own_service, port_free
from stream_support import StreamEnv, Worker, write_log

from clonewatch.logs import REPEAT_SECONDS

pytestmark = pytest.mark.integration

SHARED_PORT = 19092  # the shared broker: never touched here
PREFERRED_PORTS = (19392, 19393)
OUTAGE_SECONDS = 25.0
PROCESSED = "clonewatch_events_processed_total"
SUPPRESSED = re.compile(r" \(\d+ similar messages suppressed in the last \d+s\)")
NUMBERS = re.compile(r"\d+")


def _ports() -> tuple[int, int]:
    """The listener and controller ports: 19392/19393 when free, else another free pair."""
    candidates = [PREFERRED_PORTS]
    rng = random.Random()
    candidates += [(p, p + 1) for p in (rng.randrange(20_000, 32_000, 2) for _ in range(100))]
    for port, controller in candidates:
        if SHARED_PORT not in (port, controller) and port_free(port) and port_free(controller):
            return port, controller
    raise RuntimeError("no two free loopback ports for a private Kafka")


class PrivateKafka(OwnService):
    """A Kafka of this test only."""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    """A private broker, started; stopped (SIGKILL if need be) and deleted whatever happens."""
    port, controller = _ports()
    variables = {
        "CLONEWATCH_KAFKA_PORT": str(port),
        "CLONEWATCH_KAFKA_CONTROLLER_PORT": str(controller),
        "CLONEWATCH_KAFKA_HEAP": "512m",
    }
    with own_service(PrivateKafka, "kafka", port, variables, prefix="cw-kafka-outage-") as kafka:
        yield kafka


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


def _kind(line: str) -> tuple[str, str, str]:
    """(logger, level, message with numbers blanked and the suppressed count removed)."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        return ("?", "?", NUMBERS.sub("#", SUPPRESSED.sub("", line)))
    message = SUPPRESSED.sub("", str(record.get("event", "")))
    return (str(record.get("logger", "")), str(record.get("level", "")), NUMBERS.sub("#", message))


def _wait_processed(worker: Worker, target: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while worker.value(PROCESSED) < target:
        assert worker.proc.poll() is None, f"worker exited:\n{worker.tail()}"
        assert time.monotonic() < deadline, f"{PROCESSED} < {target}:\n{worker.tail()}"
        time.sleep(0.25)


class TestKafkaOutage:
    """The real broker goes away for about 25 s under a running worker and comes back."""

    def test_outage_is_rate_limited_and_the_worker_recovers(
        self, private_kafka: PrivateKafka, tmp_path: Path
    ) -> None:
        """During the outage few lines per kind and 10 s, one with a count; afterwards, recovery."""
        events = write_log(tmp_path / "log.jsonl")
        half = len(events) // 2
        first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        first.write_text("".join(json.dumps(e) + "\n" for e in events[:half]), encoding="utf-8")
        second.write_text("".join(json.dumps(e) + "\n" for e in events[half:]), encoding="utf-8")
        extra = {k: v for k, v in os.environ.items() if k == "CLONEWATCH_PURE"}
        env = StreamEnv(private_kafka.bootstrap, tmp_path, extra=extra)
        produced = env.cli("produce", str(first))
        assert produced.returncode == 0, produced.stderr
        worker = env.worker("w1")
        try:
            _wait_processed(worker, half, timeout=120)
            before = len(_lines(worker.log))
            stopped_at = time.monotonic()
            private_kafka.run("stop")
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
            private_kafka.run("up")
            outage = time.monotonic() - stopped_at
            during = _lines(worker.log)[before:]
            produced = env.cli("produce", str(second))
            assert produced.returncode == 0, produced.stderr
            _wait_processed(worker, len(events), timeout=120)
        finally:
            code = worker.terminate()
        assert code == 0, worker.tail()

        kinds = Counter(_kind(line) for line in during)
        report = (
            "\n".join(f"{n:5d} {kind}" for kind, n in kinds.most_common())
            + "\n"
            + ("\n".join(during[:60]))
        )
        # Per kind: the first line, then at most one per interval (plus one for the edges).
        per_kind = math.ceil(outage / REPEAT_SECONDS) + 1
        assert len(during) < 50, f"{len(during)} lines in {outage:.0f}s:\n{report}"
        assert max(kinds.values(), default=0) <= per_kind, report
        assert any(SUPPRESSED.search(line) for line in during), report
        # The worker runs with CLONEWATCH_LOG_FORMAT=json: Faust's own logging set-up must not
        # bring back plain-text lines (or its spinner's terminal codes), outage or not.
        plain = [line for line in _lines(worker.log) if _kind(line)[0] == "?"]
        assert not plain, "\n".join(plain[:20])
        print(  # shown with -s or on failure: the figures the docs quote
            f"outage {outage:.1f}s: {len(during)} lines, {len(kinds)} kinds, "
            f"most of one kind {max(kinds.values(), default=0)}"
        )
