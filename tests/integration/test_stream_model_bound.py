"""The worker holds at most ``max_models`` baselines, as replay does, and exports the counts.

A real Kafka (KRaft) on loopback and a real worker subprocess with
``CLONEWATCH_ENGINE__MAX_MODELS=16``: 300 lone model ids (one client each) evict each other,
then 40 ids used by 5 clients each fill the bound and the rest share ``__overflow__``.
``/metrics`` shows ``clonewatch_models_tracked``, ``clonewatch_models_evicted_total`` and
``clonewatch_model_overflow_events_total``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stream_support import StreamEnv

from streams.kafka_io import ensure_topics, make_producer

pytestmark = pytest.mark.integration

T0 = 1_767_225_600


def _event(i: int, client: str, model: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{i}",
            "timestamp": T0 + i,
            "client_id": client,
            "model_id": model,
            "features": [float(i % 7), float(i % 3)],
        }
    ).encode()


def test_worker_bounds_models_and_reports_them(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Lone ids are evicted, popular ids past the bound are pooled, and both are counted."""
    env = StreamEnv(
        kafka_bootstrap, tmp_path, partitions=1, extra={"CLONEWATCH_ENGINE__MAX_MODELS": "16"}
    )
    settings = env.settings
    ensure_topics(settings, [settings.topic_queries], partitions=1)
    events = [_event(i, "flooder", f"decoy-{i}") for i in range(300)]
    events += [
        _event(1000 + m * 5 + c, f"user-{c}", f"real-{m}") for m in range(40) for c in range(5)
    ]
    producer = make_producer(settings)
    try:
        for value in events:
            producer.send(settings.topic_queries, value=value, key=b"k")
        producer.flush(timeout=30)
    finally:
        producer.close()
    worker = env.worker("w1")
    try:
        worker.wait_for("clonewatch_events_processed_total", len(events))
        metrics = worker.metrics()
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert metrics["clonewatch_models_tracked"] == 16
    assert metrics["clonewatch_models_evicted_total"] >= 300 - 16
    assert metrics["clonewatch_model_overflow_events_total"] >= (40 - 16) * 5
