"""The Elasticsearch and OpenSearch sinks against the real servers of scripts/services.sh."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from sinks_fixtures import (
    alert_record,
    count,
    ids,
    inspector,
    namespace,
    product,
    risk_record,
    search_url,
)

from clonewatch.commands import setup as setup_command
from streams.sinks.base import OutputRecord
from streams.sinks.search import IndexNames, Product, SearchBackend, SearchSink, build_search_sink
from streams.sinks.search.layout import latest_risk_id

pytestmark = pytest.mark.integration
__all__ = ["inspector", "namespace", "product", "search_url"]  # fixtures used by name


def new_sink(product: Product, url: str, namespace: str, **settings: Any) -> SearchSink:
    """A set-up sink writing into ``namespace``."""
    sink = build_search_sink(product, url, namespace=namespace, env={}, **settings)
    sink.setup()
    return sink


def history_target(sink: SearchSink, base: str, day: str = "2025.03.09") -> str:
    """The data stream, or the dated index the test records fall into."""
    return base if sink.data_streams else f"{base}-{day}"


def field_types(inspector: SearchBackend, target: str, fields: list[str]) -> dict[str, str]:
    """The mapped type of each field in the index or data stream ``target``."""
    status, body = inspector.request("GET", f"/{target}/_mapping/field/{','.join(fields)}")
    assert status == 200, body
    out: dict[str, str] = {}
    for index in body.values():
        for name, entry in index["mappings"].items():
            leaf = name.rsplit(".", 1)[-1]
            out[name] = entry["mapping"][leaf]["type"]
    return out


def search(inspector: SearchBackend, target: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """The _source of the hits of ``query``."""
    inspector.request("POST", f"/{target}/_refresh")
    status, body = inspector.request("POST", f"/{target}/_search", {"query": query, "size": 100})
    assert status == 200, body
    return [hit["_source"] for hit in body["hits"]["hits"]]


class TestMappedTypes:
    """Written documents are searchable with their mapped ECS types."""

    def test_alert_fields_have_their_ecs_types(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """event.severity is long, risk_score float, user.id keyword, @timestamp date."""
        sink = new_sink(product, search_url, namespace)
        sink.write([alert_record(1), alert_record(2, client="client-2")])
        sink.flush()
        sink.close()
        target = history_target(sink, sink.names.alert)
        types = field_types(
            inspector,
            target,
            [
                "@timestamp",
                "event.severity",
                "event.risk_score",
                "user.id",
                "source.ip",
                "message",
                "clonewatch.queries_observed",
                "clonewatch.signals.name",
                "clonewatch.signals.score",
                "threat.technique.subtechnique.id",
            ],
        )
        assert types == {
            "@timestamp": "date",
            "event.severity": "long",
            "event.risk_score": "float",
            "user.id": "keyword",
            "source.ip": "ip",
            "message": "text",
            "clonewatch.queries_observed": "long",
            "clonewatch.signals.name": "keyword",
            "clonewatch.signals.score": "float",
            "threat.technique.subtechnique.id": "keyword",
        }

    def test_typed_queries_find_the_alerts(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """Term, range, CIDR and date queries work on the mapped fields."""
        sink = new_sink(product, search_url, namespace)
        sink.write([alert_record(n, client=f"client-{n % 3}") for n in range(9)])
        sink.flush()
        sink.close()
        target = history_target(sink, sink.names.alert)
        by_client = search(inspector, target, {"term": {"user.id": "client-1"}})
        assert sorted(d["event"]["id"] for d in by_client) == ["event-1", "event-4", "event-7"]
        high = search(
            inspector,
            target,
            {
                "bool": {
                    "filter": [
                        {"term": {"event.severity": 73}},
                        {"range": {"event.risk_score": {"gte": 70, "lt": 74}}},
                        {"term": {"source.ip": "203.0.113.0/24"}},
                        {"range": {"@timestamp": {"gte": "2025-03-09T10:00:05Z"}}},
                        {"term": {"clonewatch.signals.name": "coverage"}},
                    ]
                }
            },
        )
        assert sorted(d["event"]["id"] for d in high) == [
            "event-5",
            "event-6",
            "event-7",
            "event-8",
        ]
        assert high[0]["event"]["kind"] == "alert"

    def test_unknown_fields_are_stored_not_mapped(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """A field outside the templates stays in _source and adds no mapping."""
        record = alert_record(1)
        doc = {**record.doc, "surprise": {"nested": {"deep": 1}}, "labels": {"env": "prod"}}
        sink = new_sink(product, search_url, namespace)
        sink.write([OutputRecord("alert", record.id, record.key, doc)])
        sink.flush()
        sink.close()
        target = history_target(sink, sink.names.alert)
        (hit,) = search(inspector, target, {"term": {"labels.env": "prod"}})
        assert hit["surprise"] == {"nested": {"deep": 1}}
        assert field_types(inspector, target, ["surprise.nested.deep", "labels.env"]) == {
            "labels.env": "keyword"
        }


class TestIdempotence:
    """Replaying the same records never duplicates them."""

    def test_same_records_twice_same_counts(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """Two runs over the same alerts and risks leave the counts of one run."""
        records = [alert_record(n) for n in range(30)] + [
            risk_record(n, 40 + n, f"2025-03-09T11:00:{n:02d}Z") for n in range(5)
        ]
        for _ in range(2):  # a replay: a new sink, the same input
            sink = new_sink(product, search_url, namespace, max_records=7)
            sink.write(records)
            sink.close()
            assert sink.drain_rejected() == []
        names = IndexNames(namespace)
        assert count(inspector, history_target(sink, names.alert)) == 30
        assert count(inspector, history_target(sink, names.risk_history)) == 5
        assert count(inspector, names.risk_latest) == 1
        assert ids(inspector, history_target(sink, names.alert)) == {
            f"alert-{n}" for n in range(30)
        }
        assert sink.counts["duplicate"] == 35


class TestLatestRisk:
    """The latest risk per (client, model) is upserted under a deterministic id."""

    def test_newer_risk_replaces_older_and_clears_the_campaign(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """After two flushes the latest document holds the newer score and no campaign."""
        sink = new_sink(product, search_url, namespace)
        sink.write([risk_record(1, 85.0, "2025-03-09T10:00:00Z", campaign="campaign-7")])
        sink.flush()
        sink.write([risk_record(2, 45.0, "2025-03-09T10:05:00Z")])
        sink.flush()
        sink.close()
        latest_id = latest_risk_id("client-1", "model-a")
        status, body = inspector.request("GET", f"/{sink.names.risk_latest}/_doc/{latest_id}")
        assert status == 200, body
        doc = body["_source"]
        assert doc["user"]["risk"]["calculated_score_norm"] == 45.0
        assert doc["@timestamp"] == "2025-03-09T10:05:00Z"
        assert doc["clonewatch"]["campaign_id"] is None
        assert count(inspector, history_target(sink, sink.names.risk_history)) == 2
        types = field_types(
            inspector, sink.names.risk_latest, ["user.risk.calculated_score_norm", "user.id"]
        )
        assert types == {"user.risk.calculated_score_norm": "float", "user.id": "keyword"}


class TestRejected:
    """Documents the server refuses for good go to the dead letter with the reason."""

    def test_mapping_error_is_dead_lettered_and_the_rest_written(
        self, product: Product, search_url: str, namespace: str, inspector: SearchBackend
    ) -> None:
        """A severity that is not a number is rejected (400); its batch-mates are written."""
        bad = alert_record(2)
        doc = json.loads(json.dumps(bad.doc))
        doc["event"]["severity"] = "very high"
        sink = new_sink(product, search_url, namespace)
        sink.write([alert_record(1), OutputRecord("alert", bad.id, bad.key, doc), alert_record(3)])
        sink.flush()
        (dead,) = sink.drain_rejected()
        assert "alert-2" in dead.reason
        assert "event.severity" in dead.reason
        assert json.loads(dead.original_bytes())["event"]["severity"] == "very high"
        # the worker sends dead letters on; here they go to the dead-letter index
        sink.write([OutputRecord("dead_letter", "dl-alert-2", "k", dead.model_dump())])
        sink.close()
        assert ids(inspector, history_target(sink, sink.names.alert)) == {"alert-1", "alert-3"}
        (stored,) = search(inspector, sink.names.dead_letter, {"match": {"reason": "alert-2"}})
        assert stored["source"] == f"sink:{product}"


class TestSetupCommand:
    """``clonewatch setup`` is idempotent and reports what it detected."""

    def test_setup_twice(
        self,
        product: Product,
        search_url: str,
        namespace: str,
        inspector: SearchBackend,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The second run succeeds, finds the indices, and the templates are in place."""
        parser = argparse.ArgumentParser()
        setup_command.register(parser.add_subparsers())
        argv = ["setup", f"--{product}", search_url, "--namespace", namespace, "--json"]
        reports = []
        for _ in range(2):
            args = parser.parse_args(argv)
            assert args.func(args) == 0
            out = capsys.readouterr().out  # unconfigured structlog may print here too
            start = 0 if out.startswith("{") else out.index("\n{\n") + 1
            reports.append(json.loads(out[start:]))
        first, second = reports
        assert first["version"] == second["version"]
        results = {a["what"]: a["result"] for a in second["actions"]}
        assert results[f"index {IndexNames(namespace).risk_latest}"] == "exists"
        if second["data_streams"]:
            assert results[f"data stream {IndexNames(namespace).alert}"] == "exists"
            status, _ = inspector.request("GET", f"/_data_stream/{IndexNames(namespace).alert}")
            assert status == 200
        status, body = inspector.request("GET", "/_index_template/logs-clonewatch.alert")
        assert status == 200, body
        (template,) = body["index_templates"]
        assert template["index_template"]["priority"] > 500
        assert ("data_stream" in template["index_template"]) is second["data_streams"]
