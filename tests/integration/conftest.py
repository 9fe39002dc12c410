"""Shared fixtures for the integration tests: the real servers started by scripts/services.sh.

Ports come from the same environment variables the script reads (CLONEWATCH_KAFKA_PORT,
CLONEWATCH_ES_PORT, CLONEWATCH_OS_PORT). A missing server skips the test with the reason, except
under CI=true, where it fails the run: CI must never pass by skipping.

Feature detection: the Elasticsearch integ-test distribution lacks most modules (no data streams,
ILM, painless, ingest processors...). Use the ``es_features`` / ``os_features`` fixtures, or
``search_features(url)``, instead of guessing; docs/services.md lists the findings.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, NoReturn

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("CLONEWATCH_KAFKA_PORT", "19092"))
ES_PORT = int(os.environ.get("CLONEWATCH_ES_PORT", "19200"))
OS_PORT = int(os.environ.get("CLONEWATCH_OS_PORT", "19201"))
HINT = "start it with `make services-up` (scripts/services.sh up)"


def _missing(what: str, why: object) -> NoReturn:
    """Skips the test (fails it under CI=true) because a server is not there."""
    message = f"{what} is not answering: {why}; {HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires the real server: {message}", pytrace=False)
    pytest.skip(message)


# ----------------------------------------------------------------------------- plain HTTP helpers


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 30.0) -> tuple[int, Any]:
    """Sends a JSON request and returns (status, decoded body); HTTP errors are returned too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback test URLs)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback test URLs)
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def _cluster_health(url: str) -> dict[str, Any]:
    status, body = http_json(
        "GET", f"{url}/_cluster/health?wait_for_status=yellow&timeout=10s", timeout=15.0
    )
    if status != 200 or not isinstance(body, dict) or body.get("status") not in ("yellow", "green"):
        raise RuntimeError(f"cluster health HTTP {status}: {body}")
    return body


# ----------------------------------------------------------------------------- server fixtures


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap servers of the real Kafka broker, checked with a metadata request."""
    bootstrap = f"{HOST}:{KAFKA_PORT}"
    try:
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
        _cluster_health(url)
    except (OSError, RuntimeError) as exc:
        _missing(f"Elasticsearch on {url}", exc)
    return url


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """The URL of the real OpenSearch node (cluster health yellow or green)."""
    url = f"http://{HOST}:{OS_PORT}"
    try:
        _cluster_health(url)
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


# ----------------------------------------------------------------------------- feature detection


@dataclass(frozen=True)
class SearchFeatures:
    """What a search server can do, found by trying (see docs/services.md)."""

    distribution: str
    version: str
    root_endpoint: bool  # GET / (ES: the rest-root module; the client's info()/ping() need it)
    index_templates: bool  # composable _index_template + _component_template
    # The _data_stream REST API (GET/PUT/DELETE). Without it (ES integ-test zip) a data_stream
    # template still creates a data stream on the first write, but nothing can delete it.
    data_stream_api: bool
    ilm: bool  # _ilm (Elasticsearch) or _plugins/_ism (OpenSearch) lifecycle policies
    painless: bool  # scripts in lang painless (script queries, runtime fields, bucket_selector)
    ingest_processors: bool  # ingest pipeline with a `set` processor (ingest-common)
    mapper_extras: bool  # scaled_float, token_count, search_as_you_type...
    analysis_common: bool  # asciifolding, pattern analyzer, language analyzers...
    pipeline_aggs_module: bool  # bucket_selector, derivative, moving_fn (aggregations module)
    by_query: bool  # _update_by_query / _delete_by_query / _reindex (reindex module)

    def missing(self) -> list[str]:
        """The names of the features this server lacks."""
        return [f.name for f in fields(self) if getattr(self, f.name) is False]


def _ok(status: int) -> bool:
    return 200 <= status < 300


@cache
def search_features(url: str) -> SearchFeatures:
    """Probes ``url`` (Elasticsearch or OpenSearch) once per session; leaves nothing behind."""
    _cluster_health(url)
    probe = f"cw-probe-{uuid.uuid4().hex[:10]}"
    status, root = http_json("GET", f"{url}/")
    root_endpoint = _ok(status)
    _, nodes = http_json("GET", f"{url}/_nodes/_local?filter_path=nodes.*.version")
    version = ",".join(sorted({str(n.get("version")) for n in nodes.get("nodes", {}).values()}))
    distribution = "elasticsearch"
    if root_endpoint and isinstance(root, dict):
        distribution = root.get("version", {}).get("distribution", "elasticsearch")
    try:
        template = {"index_patterns": [f"{probe}-t-*"], "template": {"settings": {}}}
        templates = _ok(http_json("PUT", f"{url}/_index_template/{probe}-t", template)[0])
        http_json("DELETE", f"{url}/_index_template/{probe}-t")
        data_stream_api = _ok(http_json("GET", f"{url}/_data_stream")[0])
        ilm = _ok(http_json("GET", f"{url}/_ilm/status")[0]) or _ok(
            http_json("GET", f"{url}/_plugins/_ism/policies")[0]
        )
        pipeline = {"processors": [{"set": {"field": "x", "value": 1}}]}
        ingest = _ok(http_json("PUT", f"{url}/_ingest/pipeline/{probe}", pipeline)[0])
        if ingest:
            http_json("DELETE", f"{url}/_ingest/pipeline/{probe}")
        mapping = {
            "mappings": {
                "properties": {
                    "t": {"type": "date"},
                    "v": {"type": "double"},
                    "k": {"type": "keyword"},
                }
            }
        }
        http_json("PUT", f"{url}/{probe}", mapping)
        http_json(
            "PUT", f"{url}/{probe}/_doc/1?refresh=true", {"t": "2024-01-01", "v": 1, "k": "a"}
        )
        painless = _ok(
            http_json(
                "POST",
                f"{url}/{probe}/_search",
                {"query": {"script": {"script": {"lang": "painless", "source": "true"}}}},
            )[0]
        )
        sf = {"mappings": {"properties": {"f": {"type": "scaled_float", "scaling_factor": 10}}}}
        mapper_extras = _ok(http_json("PUT", f"{url}/{probe}-sf", sf)[0])
        analyze = {"tokenizer": "standard", "filter": ["asciifolding"], "text": "café"}
        analysis_common = _ok(http_json("POST", f"{url}/_analyze", analyze)[0])
        derivative = {
            "size": 0,
            "aggs": {
                "h": {
                    "date_histogram": {"field": "t", "fixed_interval": "1d"},
                    "aggs": {
                        "s": {"sum": {"field": "v"}},
                        "d": {"derivative": {"buckets_path": "s"}},
                    },
                }
            },
        }
        pipeline_aggs = _ok(http_json("POST", f"{url}/{probe}/_search", derivative)[0])
        by_query = _ok(
            http_json(
                "POST", f"{url}/{probe}/_delete_by_query?refresh=true", {"query": {"match_all": {}}}
            )[0]
        )
    finally:
        http_json("DELETE", f"{url}/{probe},{probe}-sf?ignore_unavailable=true")
    return SearchFeatures(
        distribution=distribution,
        version=version,
        root_endpoint=root_endpoint,
        index_templates=templates,
        data_stream_api=data_stream_api,
        ilm=ilm,
        painless=painless,
        ingest_processors=ingest,
        mapper_extras=mapper_extras,
        analysis_common=analysis_common,
        pipeline_aggs_module=pipeline_aggs,
        by_query=by_query,
    )


def es_features() -> SearchFeatures:
    """The features of the Elasticsearch on CLONEWATCH_ES_PORT (probed once per session)."""
    return search_features(f"http://{HOST}:{ES_PORT}")


def os_features() -> SearchFeatures:
    """The features of the OpenSearch on CLONEWATCH_OS_PORT (probed once per session)."""
    return search_features(f"http://{HOST}:{OS_PORT}")


@pytest.fixture(name="es_features", scope="session")
def es_features_fixture(elasticsearch_url: str) -> SearchFeatures:
    """What the real Elasticsearch supports; e.g. ``if not es_features.painless: ...``."""
    return search_features(elasticsearch_url)


@pytest.fixture(name="os_features", scope="session")
def os_features_fixture(opensearch_url: str) -> SearchFeatures:
    """What the real OpenSearch supports."""
    return search_features(opensearch_url)
