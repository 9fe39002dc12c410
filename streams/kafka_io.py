"""Produce and tail helpers with kafka-python (used by ``clonewatch produce`` and ``tail``).

Input lines are sent as they are (the worker validates them). A line that is a
JSON object with a non-empty string ``client_id`` is keyed by that client, so one
client's events keep their order on one partition; anything else is sent
without a key so that the worker dead-letters it with a reason (a producer that
silently dropped bad lines would hide them from the operator).

>>> key_for_line(b'{"client_id": "acme", "model_id": "m"}')
b'acme'
>>> key_for_line(b"not json") is None
True
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from schemas.dead_letter import DeadLetter
from streams.settings import Settings


def key_for_line(line: bytes) -> bytes | None:
    """The partition key of one input line: its ``client_id``, or None when it has none."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(obj, dict):
        cid = obj.get("client_id")
        if isinstance(cid, str) and cid:
            return cid.encode("utf-8")
    return None


@dataclass
class ProduceResult:
    """What happened to the messages handed to :func:`produce_lines`."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    unkeyed: int = 0
    dead_lettered: int = 0  # of ``sent``: dead letters sent to the dead-letter topic
    errors: list[str] = field(default_factory=list)


def make_producer(settings: Settings, **extra: Any) -> Any:
    """A kafka-python producer that waits for all in-sync replicas."""
    cfg = settings.kafka_python_config()
    cfg.update(
        acks="all",
        linger_ms=5,
        retries=5,
        max_request_size=settings.max_message_bytes,
        batch_size=256 * 1024,
    )
    cfg.update(extra)
    return KafkaProducer(**cfg)


def produce_lines(
    settings: Settings,
    topic: str,
    lines: Iterable[bytes | DeadLetter],
    *,
    keyed: bool = True,
    dead_letter_topic: str | None = None,
    on_delivered: Callable[[int], None] | None = None,
    producer: Any = None,
) -> ProduceResult:
    """Send every line to ``topic`` and wait for each delivery confirmation.

    A :class:`~schemas.dead_letter.DeadLetter` among the lines (one the reader could not
    send, e.g. an oversize line) goes to ``dead_letter_topic`` as the worker would write it.
    """
    result = ProduceResult()
    lock = threading.Lock()
    own = producer is None
    prod = make_producer(settings) if own else producer

    def ok(_meta: Any) -> None:
        with lock:
            result.delivered += 1
        if on_delivered is not None:
            on_delivered(1)

    def failed(exc: BaseException) -> None:
        with lock:
            result.failed += 1
            if len(result.errors) < 10:
                result.errors.append(f"{type(exc).__name__}: {exc}")

    try:
        for line in lines:
            if isinstance(line, DeadLetter):
                if dead_letter_topic is None:
                    failed(ValueError(f"{line.reason} ({line.source}) and no dead-letter topic"))
                    continue
                value = line.model_dump_json(exclude_none=True).encode("utf-8")
                dest, key = dead_letter_topic, None
                result.dead_lettered += 1
            else:
                dest, value = topic, line
                key = key_for_line(line) if keyed else None
                if key is None:
                    result.unkeyed += 1
            try:
                fut = prod.send(dest, value=value, key=key)
            except Exception as exc:  # noqa: BLE001 - counted and reported per message
                failed(exc)
                continue
            result.sent += 1
            fut.add_callback(ok)
            fut.add_errback(failed)
        prod.flush()
    finally:
        if own:
            prod.close()
    return result


def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    *,
    partitions: int | None = None,
    configs: dict[str, str] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = KafkaAdminClient(**settings.kafka_python_config())
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            topic = NewTopic(
                name=name,
                num_partitions=partitions or settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=dict(configs or {}),
            )
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def tail_records(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    idle_timeout: float | None = None,
) -> Iterator[Any]:
    """Records of ``topic`` (all partitions, no consumer group) as they arrive.

    Stops after ``max_records`` records or ``idle_timeout`` seconds without one.
    """
    consumer = KafkaConsumer(
        **settings.kafka_python_config(),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=max(settings.max_message_bytes, 52428800),
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise LookupError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        seen = 0
        idle = 0.0
        poll_ms = 200
        while max_records is None or seen < max_records:
            batch = consumer.poll(timeout_ms=poll_ms)
            if not batch:
                idle += poll_ms / 1000
                if idle_timeout is not None and idle >= idle_timeout:
                    return
                continue
            idle = 0.0
            for records in batch.values():
                for rec in records:
                    yield rec
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, idle_timeout: float = 2.0) -> list[Any]:
    """Every record currently in ``topic`` (reads until ``idle_timeout`` without new ones)."""
    return list(tail_records(settings, topic, from_beginning=True, idle_timeout=idle_timeout))
