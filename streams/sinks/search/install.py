"""Feature detection and the idempotent install of policies, templates and indices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.sinks.base import SinkError
from streams.sinks.search.backend import SearchBackend, error_reason
from streams.sinks.search.layout import (
    POLICY_NAME,
    Features,
    IndexNames,
    Lifecycle,
    Retention,
    component_templates,
    ilm_policy,
    index_templates,
    ism_policy,
)


def _status_ok(status: int) -> bool:
    return 200 <= status < 300


def _node_version(backend: SearchBackend, root_status: int, root: Any) -> tuple[str, str]:
    status, nodes = backend.request(
        "GET", "/_nodes/_local", params={"filter_path": "nodes.*.version"}
    )
    if _status_ok(status) and isinstance(nodes, Mapping):
        for node in (nodes.get("nodes") or {}).values():
            if isinstance(node, Mapping) and "version" in node:
                return str(node["version"]), backend.product
    raise SinkError(
        f"{backend.product}: GET / answered HTTP {root_status}: {error_reason(root)}; "
        f"GET /_nodes/_local answered HTTP {status}: {error_reason(nodes)}"
    )


def detect_features(backend: SearchBackend) -> Features:
    """Ask the cluster what it supports: version, data streams, ILM or ISM."""
    details: dict[str, Any] = {}
    status, root = backend.request("GET", "/")
    if _status_ok(status) and isinstance(root, Mapping):
        version_info = root.get("version", {})
        version = str(version_info.get("number", "0"))
        distribution = str(version_info.get("distribution", "elasticsearch"))
    else:
        # Elasticsearch without its rest-root module (the integ-test distribution) has no GET /.
        details["GET /"] = f"{status} {error_reason(root)}"
        version, distribution = _node_version(backend, status, root)
    if backend.product == "opensearch" and distribution != "opensearch":
        raise SinkError(f"the server at this URL is {distribution} {version}, not OpenSearch")
    if backend.product == "elasticsearch" and distribution == "opensearch":
        raise SinkError(f"the server at this URL is OpenSearch {version}: use --opensearch")
    details["version"] = version

    ds_status, ds_body = backend.request("GET", "/_data_stream")
    data_streams = _status_ok(ds_status)
    details["GET /_data_stream"] = (
        ds_status if data_streams else f"{ds_status} {error_reason(ds_body)}"
    )

    lifecycle: Lifecycle | None = None
    if backend.product == "elasticsearch":
        ilm_status, ilm_body = backend.request("GET", "/_ilm/status")
        details["GET /_ilm/status"] = (
            ilm_body.get("operation_mode", ilm_status)
            if _status_ok(ilm_status) and isinstance(ilm_body, Mapping)
            else f"{ilm_status} {error_reason(ilm_body)}"
        )
        if _status_ok(ilm_status):
            lifecycle = "ilm"
    else:
        ism_status, ism_body = backend.request("GET", "/_plugins/_ism/policies")
        # An ISM plugin without any policy yet may answer 404 index_not_found.
        has_ism = _status_ok(ism_status) or (
            ism_status == 404 and "index_not_found" in error_reason(ism_body)
        )
        details["GET /_plugins/_ism/policies"] = (
            ism_status if has_ism else f"{ism_status} {error_reason(ism_body)}"
        )
        if has_ism:
            lifecycle = "ism"
    return Features(
        product=backend.product,
        version=version,
        data_streams=data_streams,
        lifecycle=lifecycle,
        details=details,
    )


def _expect(status: int, body: Any, what: str, tolerated: Iterable[str] = ()) -> str:
    if _status_ok(status):
        return "ok"
    reason = error_reason(body)
    for marker in tolerated:
        if marker in reason:
            return "exists"
    raise SinkError(f"{what} failed: HTTP {status}: {reason}")


def _ensure_ism_policy(backend: SearchBackend, policy: dict[str, Any]) -> str:
    path = f"/_plugins/_ism/policies/{POLICY_NAME}"
    status, current = backend.request("GET", path)
    if _status_ok(status) and isinstance(current, Mapping):
        existing = current.get("policy", {})
        wanted = policy["policy"]
        same = (
            all(existing.get(k) == wanted[k] for k in ("default_state", "states"))
            and [
                {k: t.get(k) for k in ("index_patterns", "priority")}
                for t in existing.get("ism_template") or []
            ]
            == wanted["ism_template"]
        )
        if same:
            return "unchanged"
        params = {
            "if_seq_no": str(current["_seq_no"]),
            "if_primary_term": str(current["_primary_term"]),
        }
        status, body = backend.request("PUT", path, policy, params)
        _expect(status, body, f"update ISM policy {POLICY_NAME}")
        return "updated"
    status, body = backend.request("PUT", path, policy)
    _expect(status, body, f"create ISM policy {POLICY_NAME}")
    return "created"


def install(
    backend: SearchBackend,
    features: Features,
    names: IndexNames,
    retention: Retention | None = None,
) -> list[tuple[str, str]]:
    """Create (or update) policies, templates, data streams and indices; idempotent.

    Returns ``(what, outcome)`` pairs for the report of ``clonewatch setup``.
    """
    retention = retention or Retention()
    done: list[tuple[str, str]] = []
    if features.lifecycle == "ilm":
        path = f"/_ilm/policy/{POLICY_NAME}"
        status, body = backend.request("PUT", path, ilm_policy(retention, features.data_streams))
        done.append((f"ILM policy {POLICY_NAME}", _expect(status, body, f"PUT {path}")))
    elif features.lifecycle == "ism":
        done.append(
            (
                f"ISM policy {POLICY_NAME}",
                _ensure_ism_policy(backend, ism_policy(retention, features.data_streams)),
            )
        )
    for name, body in component_templates(features).items():
        path = f"/_component_template/{name}"
        status, answer = backend.request("PUT", path, body)
        done.append((f"component template {name}", _expect(status, answer, f"PUT {path}")))
    for name, body in index_templates(features).items():
        path = f"/_index_template/{name}"
        status, answer = backend.request("PUT", path, body)
        done.append((f"index template {name}", _expect(status, answer, f"PUT {path}")))
    exists = ("resource_already_exists", "already exists")
    if features.data_streams:
        for stream in (names.alert, names.risk_history):
            status, answer = backend.request("PUT", f"/_data_stream/{stream}")
            done.append((f"data stream {stream}", _expect(status, answer, stream, exists)))
    for index in (names.risk_latest, names.dead_letter):
        status, answer = backend.request("PUT", f"/{index}")
        done.append((f"index {index}", _expect(status, answer, f"create index {index}", exists)))
    return done
