"""Helpers for the integration tests: plain JSON over HTTP and the search feature probe.

Import them with ``from service_probes import ...`` (tests/integration is on sys.path): a plain
``from conftest import`` breaks as soon as another conftest.py exists under tests/.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("CLONEWATCH_KAFKA_PORT", "19092"))
ES_PORT = int(os.environ.get("CLONEWATCH_ES_PORT", "19200"))
OS_PORT = int(os.environ.get("CLONEWATCH_OS_PORT", "19201"))


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


def cluster_health(url: str) -> dict[str, Any]:
    status, body = http_json(
        "GET", f"{url}/_cluster/health?wait_for_status=yellow&timeout=10s", timeout=15.0
    )
    if status != 200 or not isinstance(body, dict) or body.get("status") not in ("yellow", "green"):
        raise RuntimeError(f"cluster health HTTP {status}: {body}")
    return body


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
    cluster_health(url)
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
