"""aiokafka (what Faust uses) consumer groups against the real broker: join, commit, rebalance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

pytestmark = pytest.mark.integration

PARTITIONS = 4
WAIT_S = 60.0  # upper bound for group joins; never reached when the broker is healthy


class Recorder(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records the partitions revoked from and assigned to one group member."""

    def __init__(self) -> None:
        self.revoked: list[set[int]] = []
        self.assigned: list[set[int]] = []

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revoked.append({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned.append({tp.partition for tp in assigned})


def _consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=300,
        session_timeout_ms=10_000,
    )


async def _produce(bootstrap: str, topic: str, prefix: str, count: int) -> set[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        values = {f"{prefix}-{i}" for i in range(count)}
        for i, value in enumerate(sorted(values)):
            await producer.send_and_wait(topic, value.encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()
    return values


async def _drain(consumers: list[AIOKafkaConsumer], want: int) -> set[str]:
    """Polls all members until ``want`` messages arrived, then commits each member's offsets."""
    seen: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while len(seen) < want and loop.time() < deadline:
        for consumer in consumers:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                seen.update(r.value.decode() for r in records)
    for consumer in consumers:
        await consumer.commit()
    return seen


async def _until(condition: Callable[[], bool], consumers: list[AIOKafkaConsumer]) -> None:
    """Keeps every member polling (heartbeats, rejoins) until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the consumer group did not settle")
        for consumer in consumers:
            await consumer.getmany(timeout_ms=100)


def _parts(consumer: AIOKafkaConsumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


async def _scenario(bootstrap: str, topic: str) -> dict[str, object]:
    group = f"cw-group-{uuid.uuid4().hex[:8]}"
    first, second = _consumer(bootstrap, group), _consumer(bootstrap, group)
    rec1, rec2 = Recorder(), Recorder()
    result: dict[str, object] = {"group": group}
    try:
        first.subscribe([topic], listener=rec1)
        await first.start()
        await _until(lambda: _parts(first) == set(range(PARTITIONS)), [first])
        result["alone"] = _parts(first)
        batch1 = await _produce(bootstrap, topic, "one", 40)
        result["batch1"] = (batch1, await _drain([first], len(batch1)))

        second.subscribe([topic], listener=rec2)
        await second.start()

        def settled() -> bool:
            one, two = _parts(first), _parts(second)
            return bool(one) and bool(two) and not one & two and one | two == set(range(PARTITIONS))

        await _until(settled, [first, second])
        result["split"] = (_parts(first), _parts(second))
        batch2 = await _produce(bootstrap, topic, "two", 40)
        result["batch2"] = (batch2, await _drain([first, second], len(batch2)))
        result["recorders"] = (rec1, rec2)
    finally:
        await second.stop()
        await first.stop()
    return result


class TestAiokafkaGroup:
    """A group member joins alone, consumes and commits; a second member splits the partitions."""

    def test_join_commit_and_rebalance(
        self, kafka_bootstrap: str, new_topic: Callable[..., str]
    ) -> None:
        """Two members share four partitions after a rebalance and commit every offset."""
        topic = new_topic(partitions=PARTITIONS)
        result = asyncio.run(_scenario(kafka_bootstrap, topic))

        assert result["alone"] == set(range(PARTITIONS))
        sent1, got1 = result["batch1"]  # type: ignore[misc]
        assert got1 == sent1

        left, right = result["split"]  # type: ignore[misc]
        assert left and right
        assert not left & right
        assert left | right == set(range(PARTITIONS))
        sent2, got2 = result["batch2"]  # type: ignore[misc]
        assert got2 == sent2

        rec1, rec2 = result["recorders"]  # type: ignore[misc]
        assert rec1.assigned[0] == set(range(PARTITIONS))
        assert rec1.revoked, "the first member was never asked to give partitions up"
        assert rec2.assigned[-1] == right

        # The committed offsets are the end offsets: 80 messages in all, none left to read.
        # committed() only fetches offsets: this client does not join the group.
        reader = KafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=result["group"], enable_auto_commit=False
        )
        try:
            tps = [KafkaTopicPartition(topic, p) for p in range(PARTITIONS)]
            committed = [reader.committed(tp) for tp in tps]
            ends = reader.end_offsets(tps)
        finally:
            reader.close()
        assert committed == [ends[tp] for tp in tps]
        assert sum(committed) == 80
