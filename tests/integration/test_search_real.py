"""The search servers from scripts/services.sh are a real Elasticsearch 9 and OpenSearch 2.19.

Each client puts a component and a composable index template, bulk-indexes documents into an
index the template matches, then searches and aggregates them. The feature probe in conftest is
checked against what the servers really do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch import helpers as es_helpers
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers
from service_probes import SearchFeatures, http_json

pytestmark = pytest.mark.integration

MODELS = ["resnet", "bert", "gpt"]
N_DOCS = 60


def _documents(index: str) -> list[dict[str, Any]]:
    """Sixty query-log documents over three models and two hours."""
    return [
        {
            "_index": index,
            "_id": f"q{i}",
            "_source": {
                "model": MODELS[i % 3],
                "client": f"client-{i % 7}",
                "ts": f"2024-05-01T{10 + i // 30:02d}:{i % 30:02d}:00Z",
                "score": i / 10,
                "prompt": f"query number {i} about {MODELS[i % 3]}",
            },
        }
        for i in range(N_DOCS)
    ]


def _templates(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    component = {
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "model": {"type": "keyword"},
                    "client": {"type": "keyword"},
                    "ts": {"type": "date"},
                    "score": {"type": "double"},
                    "prompt": {"type": "text"},
                }
            },
        }
    }
    index_template = {
        "index_patterns": [f"{name}-*"],
        "composed_of": [f"{name}-mappings"],
        "priority": 500,
        "template": {"settings": {"refresh_interval": "1s"}},
    }
    return component, index_template


def _expected_by_model() -> Counter[str]:
    return Counter(MODELS[i % 3] for i in range(N_DOCS))


def _check_mapping(mapping: dict[str, Any], index: str) -> None:
    props = mapping[index]["mappings"]["properties"]
    assert props["model"]["type"] == "keyword"
    assert props["ts"]["type"] == "date"
    assert props["score"]["type"] == "double"


def _check_search(body: dict[str, Any]) -> None:
    assert body["hits"]["total"]["value"] == N_DOCS // 3
    assert all(h["_source"]["model"] == "bert" for h in body["hits"]["hits"])
    aggs = body["aggregations"]
    by_model = {b["key"]: b["doc_count"] for b in aggs["by_model"]["buckets"]}
    assert by_model == {"bert": 20}
    overall = {b["key"]: b["doc_count"] for b in aggs["all_models"]["buckets"]}
    assert overall == dict(_expected_by_model())
    hours = [b["doc_count"] for b in aggs["per_hour"]["buckets"]]
    assert hours == [10, 10]  # bert docs: i % 3 == 1, 30 docs per hour
    expected_avg = sum(i / 10 for i in range(N_DOCS) if i % 3 == 1) / 20
    assert aggs["avg_score"]["value"] == pytest.approx(expected_avg)


# A global aggregation ignores the query: "all_models" counts every document of the index.
SEARCH: dict[str, Any] = {
    "size": 50,
    "query": {"term": {"model": "bert"}},
    "aggs": {
        "by_model": {"terms": {"field": "model"}},
        "all_models": {"global": {}, "aggs": {"m": {"terms": {"field": "model"}}}},
        "per_hour": {"date_histogram": {"field": "ts", "fixed_interval": "1h"}},
        "avg_score": {"avg": {"field": "score"}},
    },
}


def _flatten_global(body: dict[str, Any]) -> dict[str, Any]:
    body["aggregations"]["all_models"] = body["aggregations"]["all_models"]["m"]
    return body


class TestElasticsearchClient:
    """The elasticsearch 9.x client against the real Elasticsearch node."""

    def test_template_bulk_search_aggregate(
        self, elasticsearch_url: str, new_index_name: Callable[..., str]
    ) -> None:
        """A composable template shapes the index; bulk docs are searched and aggregated."""
        name = new_index_name("cw-es")
        index = f"{name}-000001"
        es = Elasticsearch(elasticsearch_url, request_timeout=30)
        component, index_template = _templates(name)
        try:
            es.cluster.put_component_template(name=f"{name}-mappings", **component)
            es.indices.put_index_template(name=name, **index_template)
            ok, errors = es_helpers.bulk(es, _documents(index), refresh="wait_for")
            assert (ok, errors) == (N_DOCS, [])
            _check_mapping(dict(es.indices.get_mapping(index=index)), index)
            settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
            assert settings["number_of_replicas"] == "0"
            assert settings["refresh_interval"] == "1s"
            assert es.count(index=index)["count"] == N_DOCS
            body = es.search(index=index, **SEARCH).body
            _check_search(_flatten_global(body))
        finally:
            es.indices.delete(index=index, ignore_unavailable=True)
            es.indices.delete_index_template(name=name)
            es.cluster.delete_component_template(name=f"{name}-mappings")
            es.close()


class TestOpenSearchClient:
    """opensearch-py against the real OpenSearch node."""

    def test_template_bulk_search_aggregate(
        self, opensearch_url: str, new_index_name: Callable[..., str]
    ) -> None:
        """A composable template shapes the index; bulk docs are searched and aggregated."""
        name = new_index_name("cw-os")
        index = f"{name}-000001"
        client = OpenSearch(hosts=[opensearch_url], timeout=30)
        component, index_template = _templates(name)
        try:
            client.cluster.put_component_template(name=f"{name}-mappings", body=component)
            client.indices.put_index_template(name=name, body=index_template)
            ok, errors = os_helpers.bulk(client, _documents(index), refresh="wait_for")
            assert (ok, errors) == (N_DOCS, [])
            _check_mapping(client.indices.get_mapping(index=index), index)
            settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
            assert settings["number_of_replicas"] == "0"
            assert client.count(index=index)["count"] == N_DOCS
            assert client.info()["version"]["distribution"] == "opensearch"
            _check_search(_flatten_global(client.search(index=index, body=SEARCH)))
        finally:
            client.indices.delete(index=index, ignore_unavailable=True)
            client.indices.delete_index_template(name=name)
            client.cluster.delete_component_template(name=f"{name}-mappings")
            client.close()


# What the Elasticsearch integ-test zip (modules: transport-netty4, x-pack-core, x-pack-security,
# apm) lacks; docs/services.md explains each one.
INTEG_TEST_ZIP_MISSING = [
    "root_endpoint",
    "data_stream_api",
    "ilm",
    "painless",
    "ingest_processors",
    "mapper_extras",
    "analysis_common",
    "pipeline_aggs_module",
    "by_query",
]


class TestFeatureProbe:
    """The feature probe reports what the servers really do."""

    def test_elasticsearch_integ_test_zip_features(
        self, es_features: SearchFeatures, elasticsearch_url: str
    ) -> None:
        """The integ-test Elasticsearch has templates but lacks the modules listed in the docs."""
        assert es_features.distribution == "elasticsearch"
        assert es_features.version.startswith("9.")
        assert es_features.index_templates
        if es_features.root_endpoint:
            pytest.skip("a full Elasticsearch distribution answers GET /: not the integ-test zip")
        assert es_features.missing() == INTEG_TEST_ZIP_MISSING
        status, body = http_json("PUT", f"{elasticsearch_url}/_data_stream/cw-probe-ds")
        assert status in (400, 404, 405), body

    def test_data_streams_work_but_cannot_be_deleted_without_the_api(
        self,
        es_features: SearchFeatures,
        elasticsearch_url: str,
        new_index_name: Callable[..., str],
    ) -> None:
        """Without the data-streams module, a data_stream template still makes a stream on write.

        Nothing can delete that stream (nor its template) afterwards, so this test leaks one tiny
        stream per run on a long-lived server; `scripts/services.sh down` removes all data.
        """
        if es_features.data_stream_api:
            pytest.skip("this Elasticsearch has the _data_stream API")
        name = new_index_name("cw-leak-ds")
        template = {"index_patterns": [f"{name}*"], "data_stream": {}, "priority": 500}
        status, body = http_json("PUT", f"{elasticsearch_url}/_index_template/{name}", template)
        assert status == 200, body
        doc = {"@timestamp": "2024-05-01T10:00:00Z", "model": "bert"}
        status, body = http_json("POST", f"{elasticsearch_url}/{name}/_doc?refresh=true", doc)
        assert status == 201, body
        assert body["_index"].startswith(f".ds-{name}-")
        status, body = http_json("GET", f"{elasticsearch_url}/_resolve/index/{name}")
        assert [d["name"] for d in body["data_streams"]] == [name]
        status, body = http_json("GET", f"{elasticsearch_url}/{name}/_search")
        assert body["hits"]["total"]["value"] == 1
        status, _ = http_json("DELETE", f"{elasticsearch_url}/_data_stream/{name}")
        assert status in (400, 404, 405)
        status, body = http_json("DELETE", f"{elasticsearch_url}/_index_template/{name}")
        assert status == 400
        assert "in use by a data stream" in body["error"]["reason"]

    def test_opensearch_has_the_common_modules(self, os_features: SearchFeatures) -> None:
        """The embedded OpenSearch node loads painless, ingest-common, mapper-extras and friends."""
        assert os_features.distribution == "opensearch"
        assert os_features.version.startswith("2.19.")
        assert os_features.missing() == ["ilm"]  # ISM is a separate plugin, not embedded
