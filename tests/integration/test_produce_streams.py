"""``clonewatch produce`` reads gzip on standard input and a FIFO like a file (real Kafka).

Before, gzip on stdin was dead-lettered as not UTF-8 and a FIFO was rejected. Each way of
sending the same log puts the same events on the topic.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from stream_support import CLI, StreamEnv, write_log

from streams.kafka_io import ensure_topics, read_topic

pytestmark = pytest.mark.integration


def _produce(env: StreamEnv, source: str, stdin: bytes | None) -> None:
    done = subprocess.run(
        [*CLI, "produce", source],
        input=stdin,
        env=env.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.mark.parametrize("how", ["gzip on stdin", "plain on stdin", "a FIFO of gzip"])
def test_produce_reads_streams(kafka_bootstrap: str, tmp_path: Path, how: str) -> None:
    """The topic holds exactly the log's events, in order, however the log was sent."""
    env = StreamEnv(kafka_bootstrap, tmp_path, partitions=1)
    settings = env.settings
    ensure_topics(settings, [settings.topic_queries], partitions=1)
    log = tmp_path / "log.jsonl"
    events = write_log(log, benign=4, per_client=10)
    raw = log.read_bytes()
    if how == "gzip on stdin":
        _produce(env, "-", gzip.compress(raw))
    elif how == "plain on stdin":
        _produce(env, "-", raw)
    else:
        fifo = tmp_path / "log.fifo"
        os.mkfifo(fifo)

        def feed() -> None:
            with fifo.open("wb") as fh:
                fh.write(gzip.compress(raw))

        writer = threading.Thread(target=feed)
        writer.start()
        _produce(env, str(fifo), None)
        writer.join()
    got = [json.loads(r.value)["event_id"] for r in read_topic(settings, settings.topic_queries)]
    assert got == [e["event_id"] for e in events]
