"""The Kafka broker from scripts/services.sh is a real Kafka 4.1 (kafka-python client)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = pytest.mark.integration

KEYS = [f"client-{i}" for i in range(8)]
PER_KEY = 12


class TestKafkaPython:
    """kafka-python against the real broker: topics, partitions, keyed produce and consume."""

    def test_new_topic_has_the_requested_partitions(
        self, kafka_bootstrap: str, new_topic: Callable[..., str]
    ) -> None:
        """A topic created by the factory reports four partitions, each with broker 1 leading."""
        topic = new_topic(partitions=4)
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        assert described["name"] == topic
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2, 3]
        assert {p["leader_id"] for p in described["partitions"]} == {1}

    def test_keyed_messages_round_trip_in_order_per_key(
        self, kafka_bootstrap: str, new_topic: Callable[..., str]
    ) -> None:
        """Every keyed message comes back once, on its key's single partition, in send order."""
        topic = new_topic(partitions=3)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        sent_partition: dict[str, set[int]] = defaultdict(set)
        try:
            futures = []
            for seq in range(PER_KEY):
                for key in KEYS:
                    value = f"{key}:{seq}".encode()
                    futures.append((key, producer.send(topic, key=key.encode(), value=value)))
            producer.flush()
            for key, future in futures:
                sent_partition[key].add(future.get(timeout=30).partition)
        finally:
            producer.close()

        consumer = KafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=10_000,
        )
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        received: dict[str, list[str]] = defaultdict(list)
        received_partition: dict[str, set[int]] = defaultdict(set)
        try:
            for message in consumer:
                key = message.key.decode()
                received[key].append(message.value.decode())
                received_partition[key].add(message.partition)
                if sum(len(v) for v in received.values()) == len(KEYS) * PER_KEY:
                    break
        finally:
            consumer.close()

        assert set(received) == set(KEYS)
        for key in KEYS:
            assert received[key] == [f"{key}:{seq}" for seq in range(PER_KEY)]
            assert len(sent_partition[key]) == 1
            assert received_partition[key] == sent_partition[key]
        # Eight keys over three partitions: the default partitioner spreads them.
        assert len(set().union(*sent_partition.values())) > 1
