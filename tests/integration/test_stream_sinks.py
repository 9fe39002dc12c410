"""The worker's sinks end to end: real broker, real worker subprocess, real receivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_probes import http_json
from stream_support import StreamEnv, WebhookReceiver, replay_alerts, webhook_env, write_log

from streams.kafka_io import read_topic
from streams.sinks.search import TEMPLATE_PRIORITY, IndexNames
from streams.sinks.webhook_verify import generate_secret, verify

pytestmark = pytest.mark.integration


class TestWebhookSink:
    """``clonewatch worker --sink webhook`` posts signed recommendations to the gateway."""

    def test_attackers_alert_reaches_the_gateway_signed(
        self, kafka_bootstrap: str, tmp_path: Path
    ) -> None:
        """Each attacker's high alert arrives as a verifiable Standard Webhooks POST."""
        log = tmp_path / "log.jsonl"
        n = len(write_log(log))
        expected = {
            a["event"]["id"]: a
            for a in replay_alerts(log)
            if a["clonewatch"]["risk_level"] in ("high", "critical")
        }
        secret = generate_secret()
        with WebhookReceiver() as gateway:
            env = webhook_env(kafka_bootstrap, tmp_path, secret)
            produced = env.cli("produce", str(log))
            assert produced.returncode == 0, produced.stderr
            worker = env.worker("w1", sink=[f"webhook={gateway.url}"])
            try:
                worker.wait_for("clonewatch_events_processed_total", n)
                worker.wait_for('clonewatch_sink_writes_total{sink="webhook"}', 1)
            finally:
                code = worker.terminate()
            received = gateway.snapshot()
        assert code == 0, worker.tail()
        assert received, worker.tail()
        clients = set()
        for req in received:
            verify(req.body, req.headers, secret)  # raises unless genuinely signed by us
            data = json.loads(req.body)["data"]
            assert req.headers["webhook-id"] == f"msg_{data['alert_id']}"
            assert data["alert_id"] in expected
            assert data["action"]["type"] in ("throttle", "block")
            clients.add(data["client"])
        assert clients == {"attacker-fast", "attacker-slow"}
        assert not (tmp_path / "webhook-dl.jsonl").exists()


@pytest.fixture
def conflicting_namespace(elasticsearch_url: str) -> Iterator[str]:
    """A sink namespace whose alert indices map ``user.id`` as a number (a real 400 per alert)."""
    ns = f"rej{uuid.uuid4().hex[:8]}"
    alert_base = IndexNames(ns).alert
    template = f"test-conflict-{ns}"
    status, body = http_json(
        "PUT",
        f"{elasticsearch_url}/_index_template/{template}",
        {
            "index_patterns": [f"{alert_base}-*"],
            "priority": TEMPLATE_PRIORITY + 100,  # wins over the sink's own template
            "template": {
                "mappings": {"properties": {"user": {"properties": {"id": {"type": "long"}}}}}
            },
        },
    )
    assert status == 200, body
    try:
        yield ns
    finally:
        # Wildcard deletes are refused (action.destructive_requires_name): name each index.
        _, listed = http_json("GET", f"{elasticsearch_url}/_cat/indices/*{ns}*?format=json")
        for index in listed or []:
            http_json("DELETE", f"{elasticsearch_url}/{index['index']}")
        http_json("DELETE", f"{elasticsearch_url}/_index_template/{template}")


class TestRejectedDocuments:
    """Documents the search server refuses (400) reach the dead-letter topic, keyed by client."""

    def test_mapping_conflict_is_dead_lettered_on_kafka(
        self,
        kafka_bootstrap: str,
        elasticsearch_url: str,
        conflicting_namespace: str,
        tmp_path: Path,
    ) -> None:
        """Every alert refused by Elasticsearch is on the dead-letter topic; risks are indexed."""
        log = tmp_path / "log.jsonl"
        n = len(write_log(log))
        expected = {a["event"]["id"]: a["user"]["id"] for a in replay_alerts(log)}
        env = StreamEnv(
            kafka_bootstrap, tmp_path, extra={"CLONEWATCH_ES_NAMESPACE": conflicting_namespace}
        )
        produced = env.cli("produce", str(log))
        assert produced.returncode == 0, produced.stderr
        worker = env.worker("w1", sink=[f"elasticsearch={elasticsearch_url}"])
        try:
            worker.wait_for("clonewatch_events_processed_total", n)
            rejected = worker.wait_for(
                'clonewatch_sink_rejected_total{sink="elasticsearch"}', len(expected)
            )
        finally:
            code = worker.terminate()
        assert code == 0, worker.tail()
        assert rejected == len(expected)
        records = read_topic(env.settings, f"{env.prefix}.dead-letter")
        got: dict[str, str] = {}
        for rec in records:
            dl = json.loads(rec.value)
            assert dl["source"] == "sink:elasticsearch"
            assert "document_parsing_exception" in dl["reason"] or "user.id" in dl["reason"]
            alert = json.loads(dl["raw"])
            assert rec.key == alert["user"]["id"].encode()
            got[alert["event"]["id"]] = alert["user"]["id"]
        assert got == expected
        assert len(records) == len(expected)
        risk_index = f"{IndexNames(conflicting_namespace).risk_history}-*"
        http_json("POST", f"{elasticsearch_url}/{risk_index}/_refresh")
        status, body = http_json("GET", f"{elasticsearch_url}/{risk_index}/_count")
        assert status == 200, body
        assert body["count"] > 0
