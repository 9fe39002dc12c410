"""Bad messages on the input topic: dead letters with reasons, counters, the worker goes on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from stream_support import StreamEnv

from streams.kafka_io import ensure_topics, make_producer

pytestmark = pytest.mark.integration

BIG = 1_000_000


class TestBadInput:
    """Every kind of bad input is dead-lettered and counted."""

    def test_bad_messages_are_dead_lettered(self, kafka_bootstrap: str, tmp_path: Path) -> None:
        """Random bytes, bad JSON, wrong types, a 1 MB message and an empty value."""
        env = StreamEnv(kafka_bootstrap, tmp_path, partitions=1)
        settings = env.settings
        topic = settings.topic_queries
        ensure_topics(settings, [topic], partitions=1, configs={"max.message.bytes": "3000000"})
        valid = {
            "event_id": "ok-1",
            "timestamp": 1767225600,
            "client_id": "c1",
            "model_id": "m",
            "features": [0.5, 1.0],
        }
        bad = [
            b"\xff\xfe" + random.Random(1).randbytes(62),
            b'{"event_id": "x", "timestamp": ',
            json.dumps({**valid, "event_id": 5, "features": "many"}).encode(),
            b'{"pad": "' + b"a" * BIG + b'"}',
            b"",
        ]
        producer = make_producer(settings, max_request_size=3_000_000)
        try:
            for i, value in enumerate(bad):
                producer.send(topic, value=value, key=f"k{i}".encode()).get(timeout=30)
            producer.send(topic, value=json.dumps(valid).encode()).get(timeout=30)
        finally:
            producer.close()
        worker = env.worker("w1")
        try:
            worker.wait_for("clonewatch_events_processed_total", 1)
            metrics = worker.metrics()
            assert worker.proc.poll() is None
        finally:
            assert worker.terminate() == 0, worker.tail()
        letters = env.dead_letters()
        reasons = [d["reason"] for d in letters]
        assert len(letters) == 5
        assert reasons[0] == "not UTF-8 text"
        assert reasons[1].startswith("not JSON")
        assert reasons[2].startswith("invalid event: event_id")
        assert "features" in reasons[2]
        assert reasons[3].startswith("event larger than")
        assert reasons[4] == "empty message"
        assert letters[3]["raw_size"] == BIG + 11
        assert letters[3]["raw_truncated"] is True
        assert letters[1]["raw"] == '{"event_id": "x", "timestamp": '
        assert metrics["clonewatch_events_in_total"] == 6
        for label in ("not UTF-8 text", "not JSON", "invalid event", "too large", "empty message"):
            assert metrics[f'clonewatch_dead_letters_total{{reason="{label}"}}'] == 1
