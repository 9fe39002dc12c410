"""Shared fixtures for the integration tests: the real servers started by scripts/services.sh.

Ports come from the same environment variables the script reads (CLONEWATCH_KAFKA_PORT,
CLONEWATCH_ES_PORT, CLONEWATCH_OS_PORT). A missing server skips the test with the reason, except
under CI=true, where it fails the run: CI must never pass by skipping.

Feature detection: the Elasticsearch integ-test distribution lacks most modules (no data streams,
ILM, painless, ingest processors...). Use the ``es_features`` / ``os_features`` fixtures, or
``service_probes.search_features(url)`` / ``es_features()``, instead of guessing;
docs/services.md lists the findings.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from service_probes import (
    ES_PORT,
    HOST,
    KAFKA_PORT,
    OS_PORT,
    SearchFeatures,
    cluster_health,
    http_json,
    search_features,
)

HINT = "start it with `make services-up` (scripts/services.sh up)"


def _missing(what: str, why: object) -> NoReturn:
    """Skips the test (fails it under CI=true) because a server is not there."""
    message = f"{what} is not answering: {why}; {HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires the real server: {message}", pytrace=False)
    pytest.skip(message)


# ----------------------------------------------------------------------------- server fixtures


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap servers of the real Kafka broker, checked with a metadata request."""
    bootstrap = f"{HOST}:{KAFKA_PORT}"
    try:
        # A closed port answers at once; the client alone would retry for its whole timeout.
        socket.create_connection((HOST, KAFKA_PORT), timeout=5).close()
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=10_000, client_id="cw-conftest"
        )
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
    except Exception as exc:  # noqa: BLE001 (any client error means "not there")
        _missing(f"Kafka on {bootstrap}", exc)
    if not brokers:
        _missing(f"Kafka on {bootstrap}", "the metadata lists no broker")
    return bootstrap


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    """The URL of the real Elasticsearch node (cluster health yellow or green)."""
    url = f"http://{HOST}:{ES_PORT}"
    try:
        cluster_health(url)
    except (OSError, RuntimeError) as exc:
        _missing(f"Elasticsearch on {url}", exc)
    return url


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """The URL of the real OpenSearch node (cluster health yellow or green)."""
    url = f"http://{HOST}:{OS_PORT}"
    try:
        cluster_health(url)
    except (OSError, RuntimeError) as exc:
        _missing(f"OpenSearch on {url}", exc)
    return url


# ----------------------------------------------------------------------------- factories


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """A factory creating fresh topics (name unique per call); they are deleted after the test."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="cw-new-topic")
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "cw-test", **config: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(config))], timeout_ms=30_000
        )
        created.append(name)
        _wait_for_leaders(admin, name, partitions)
        return name

    try:
        yield make
    finally:
        try:
            if created:
                admin.delete_topics(created, timeout_ms=30_000)
        finally:
            admin.close()


def _wait_for_leaders(admin: Any, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Waits until every partition of ``topic`` has a leader (create_topics returns earlier)."""
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_topics([topic])
        parts = described[0].get("partitions", []) if described else []
        # kafka-python 3 names the fields after the protocol (leader_id); 2.x used "leader".
        leaders = [p.get("leader_id", p.get("leader", -1)) for p in parts]
        if len(parts) == partitions and all(leader >= 0 for leader in leaders):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no leader for every partition: {parts}")
        time.sleep(0.2)


@pytest.fixture
def new_index_name() -> Iterator[Callable[..., str]]:
    """A factory of fresh lowercase index names; indices left under them are deleted afterwards.

    Deletion is by exact name on both servers (wildcard deletes are refused by Elasticsearch 9's
    action.destructive_requires_name default) and ignores servers that are not running.
    """
    names: list[str] = []

    def make(prefix: str = "cw-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}".lower()
        names.append(name)
        return name

    yield make
    if names:
        target = ",".join(names)
        for port in (ES_PORT, OS_PORT):
            try:
                http_json("DELETE", f"http://{HOST}:{port}/{target}?ignore_unavailable=true")
            except OSError:
                continue


@pytest.fixture(name="es_features", scope="session")
def es_features_fixture(elasticsearch_url: str) -> SearchFeatures:
    """What the real Elasticsearch supports; e.g. ``if not es_features.painless: ...``."""
    return search_features(elasticsearch_url)


@pytest.fixture(name="os_features", scope="session")
def os_features_fixture(opensearch_url: str) -> SearchFeatures:
    """What the real OpenSearch supports."""
    return search_features(opensearch_url)
