"""Shared logic of the Elasticsearch and OpenSearch sinks.

Everything that does not depend on the client library lives here: index names,
deterministic ids, the index templates and lifecycle policies, feature
detection, the bounded buffer, the bulk retry loop and the classification of
per-item results. ``streams.sinks.elasticsearch`` and ``streams.sinks.opensearch``
only wrap their client in a :class:`SearchBackend`.

Where documents go (``namespace`` defaults to ``default``):

* alerts: data stream ``logs-clonewatch.alert-<namespace>`` when the cluster has
  data streams, else daily indices ``logs-clonewatch.alert-<namespace>-YYYY.MM.DD``;
* risk history: ``logs-clonewatch.risk-<namespace>`` likewise;
* latest risk per (client, model): ``clonewatch-risk-latest`` (``-<namespace>``
  appended for another namespace), ``_id`` from client and model, upserted;
* dead letters: ``clonewatch-dead-letter-<namespace>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from schemas.alert import ClonewatchContext
from schemas.dead_letter import DeadLetter
from streams.sinks.base import OutputRecord, Sink, SinkError

Product = Literal["elasticsearch", "opensearch"]
IndexMode = Literal["auto", "data_stream", "dated"]
Lifecycle = Literal["ilm", "ism"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_NAMESPACE = "default"
# Above 500: the built-in ``logs`` template (priority 100, ``logs-*-*``) must never win.
TEMPLATE_PRIORITY = 550
POLICY_NAME = "clonewatch-retention"
ALERT_DATASET = "clonewatch.alert"
RISK_DATASET = "clonewatch.risk"
ENV_PREFIX = "CLONEWATCH_ES_"
# Dead letters kept for drain_rejected(); beyond this the oldest are dropped (and counted).
MAX_REJECTED = 10_000

_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")

log = structlog.get_logger(__name__)


# --------------------------------------------------------------------------- names and ids


def validate_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid data stream namespace, else raise ValueError.

    >>> validate_namespace("prod_eu")
    'prod_eu'
    """
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(
            f"invalid namespace {namespace!r}: lowercase letters, digits and '_' "
            "(no '-'), at most 100 characters"
        )
    return namespace


@dataclass(frozen=True, slots=True)
class IndexNames:
    """Every index, data stream and template name for one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        validate_namespace(self.namespace)

    @property
    def alert(self) -> str:
        """The alert data stream (or the prefix of the dated alert indices)."""
        return f"logs-{ALERT_DATASET}-{self.namespace}"

    @property
    def risk_history(self) -> str:
        """The risk history data stream (or the prefix of its dated indices)."""
        return f"logs-{RISK_DATASET}-{self.namespace}"

    @property
    def risk_latest(self) -> str:
        """The index holding the latest risk of each (client, model)."""
        if self.namespace == DEFAULT_NAMESPACE:
            return "clonewatch-risk-latest"
        return f"clonewatch-risk-latest-{self.namespace}"

    @property
    def dead_letter(self) -> str:
        """The dead-letter index."""
        return f"clonewatch-dead-letter-{self.namespace}"

    @staticmethod
    def dated(base: str, when: datetime) -> str:
        """The daily index of ``base`` for the UTC day of ``when``.

        >>> IndexNames.dated("logs-clonewatch.alert-default", datetime(2025, 3, 9, tzinfo=UTC))
        'logs-clonewatch.alert-default-2025.03.09'
        """
        return f"{base}-{when.astimezone(UTC):%Y.%m.%d}"


def latest_risk_id(client_id: str, model_id: str) -> str:
    """The ``_id`` of the latest-risk document of (client, model): unambiguous and bounded.

    >>> latest_risk_id("a:b", "c") != latest_risk_id("a", "b:c")
    True
    """
    canonical = json.dumps([client_id, model_id], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO 8601 ``@timestamp`` (``Z`` or an offset; naive means UTC)."""
    if not isinstance(value, str):
        raise TypeError(f"@timestamp is {type(value).__name__}, not an ISO 8601 string")
    when = datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- templates


@cache
def _template_file(name: str) -> str:
    return (TEMPLATE_DIR / f"{name}.json").read_text(encoding="utf-8")


def load_template(name: str) -> dict[str, Any]:
    """A fresh copy of ``templates/<name>.json`` (context, alert, risk, dead-letter)."""
    loaded: dict[str, Any] = json.loads(_template_file(name))
    return loaded


def merge_mappings(*mappings: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings the way composed component templates merge (later wins on leaves)."""
    out: dict[str, Any] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge_mappings(out[key], value)
            elif isinstance(value, Mapping):
                out[key] = merge_mappings(value)
            else:
                out[key] = value
    return out


def effective_mappings(kind: Literal["alert", "risk", "dead-letter"]) -> dict[str, Any]:
    """The mappings an index of ``kind`` ends up with (components merged)."""
    if kind == "dead-letter":
        return dict(load_template("dead-letter")["mappings"])
    return merge_mappings(load_template("context")["mappings"], load_template(kind)["mappings"])


@dataclass(frozen=True, slots=True)
class Features:
    """What a cluster supports, as detected by :func:`detect_features`."""

    product: Product
    version: str
    data_streams: bool
    lifecycle: Lifecycle | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The numeric version, e.g. ``(9, 1, 0)``."""
        parts = re.findall(r"\d+", self.version)[:3]
        return tuple(int(p) for p in parts)


@dataclass(frozen=True, slots=True)
class Retention:
    """Lifecycle settings for the alert and risk history."""

    delete_after_days: int = 90
    rollover_max_age: str = "1d"
    rollover_max_primary_shard_size: str = "50gb"


def index_settings(features: Features, with_lifecycle: bool) -> dict[str, Any]:
    """Index settings for the templates (replicas, lifecycle, index mode)."""
    settings: dict[str, Any] = {"index": {"auto_expand_replicas": "0-1"}}
    if features.product == "elasticsearch":
        # A template over logs-*-* gets LogsDB in 9.x otherwise: synthetic source
        # reorders arrays; Clonewatch wants its documents back as written.
        settings["index"]["mode"] = "standard"
        if with_lifecycle and features.lifecycle == "ilm":
            settings["index"]["lifecycle"] = {"name": POLICY_NAME}
    return settings


def component_templates(features: Features) -> dict[str, dict[str, Any]]:
    """Component templates by name: one per mapping file."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("context", "alert", "risk", "dead-letter"):
        body = load_template(name)
        out[f"clonewatch-{name}@mappings"] = {
            "template": {"mappings": body["mappings"]},
            "_meta": {**body.get("_meta", {}), "managed_by": "clonewatch"},
        }
    return out


def index_templates(features: Features) -> dict[str, dict[str, Any]]:
    """Composable index templates by name (data stream or not, per the features)."""
    history_settings = index_settings(features, with_lifecycle=True)
    plain_settings = index_settings(features, with_lifecycle=False)
    meta = {"managed_by": "clonewatch"}

    def template(
        patterns: list[str], composed: list[str], settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "index_patterns": patterns,
            "composed_of": composed,
            "priority": TEMPLATE_PRIORITY,
            "template": {"settings": settings},
            "_meta": meta,
        }
        if stream:
            body["data_stream"] = {}
        return body

    stream = features.data_streams
    return {
        f"logs-{ALERT_DATASET}": template(
            [f"logs-{ALERT_DATASET}-*"],
            ["clonewatch-context@mappings", "clonewatch-alert@mappings"],
            history_settings,
            stream,
        ),
        f"logs-{RISK_DATASET}": template(
            [f"logs-{RISK_DATASET}-*"],
            ["clonewatch-context@mappings", "clonewatch-risk@mappings"],
            history_settings,
            stream,
        ),
        "clonewatch-risk-latest": template(
            ["clonewatch-risk-latest*"],
            ["clonewatch-context@mappings", "clonewatch-risk@mappings"],
            plain_settings,
            False,
        ),
        "clonewatch-dead-letter": template(
            ["clonewatch-dead-letter-*"], ["clonewatch-dead-letter@mappings"], plain_settings, False
        ),
    }


def ilm_policy(retention: Retention, data_streams: bool) -> dict[str, Any]:
    """The Elasticsearch ILM policy: rollover (data streams only) and delete."""
    hot: dict[str, Any] = {"min_age": "0ms", "actions": {}}
    if data_streams:
        hot["actions"]["rollover"] = {
            "max_age": retention.rollover_max_age,
            "max_primary_shard_size": retention.rollover_max_primary_shard_size,
        }
    return {
        "policy": {
            "_meta": {"managed_by": "clonewatch"},
            "phases": {
                "hot": hot,
                "delete": {
                    "min_age": f"{retention.delete_after_days}d",
                    "actions": {"delete": {}},
                },
            },
        }
    }


def ism_policy(retention: Retention, data_streams: bool) -> dict[str, Any]:
    """The OpenSearch ISM policy: rollover (data streams only), delete, and its ism_template."""
    hot_actions: list[dict[str, Any]] = []
    if data_streams:
        hot_actions.append(
            {
                "rollover": {
                    "min_index_age": retention.rollover_max_age,
                    "min_primary_shard_size": retention.rollover_max_primary_shard_size,
                }
            }
        )
    return {
        "policy": {
            "description": "Clonewatch alert and risk history retention",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": hot_actions,
                    "transitions": [
                        {
                            "state_name": "delete",
                            "conditions": {"min_index_age": f"{retention.delete_after_days}d"},
                        }
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [
                {
                    "index_patterns": [
                        f".ds-logs-{ALERT_DATASET}-*",
                        f".ds-logs-{RISK_DATASET}-*",
                        f"logs-{ALERT_DATASET}-*",
                        f"logs-{RISK_DATASET}-*",
                    ],
                    "priority": 100,
                }
            ],
        }
    }


# --------------------------------------------------------------------------- backend


class SearchUnavailableError(Exception):
    """The server could not be reached (connection refused, reset, timeout, TLS)."""


class BulkHttpError(Exception):
    """The bulk request as a whole failed with an HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


class SearchBackend(Protocol):
    """What the sink needs from a client library."""

    product: Product

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, body) for any HTTP status.

        Raises SearchUnavailableError when there is no HTTP answer.
        """
        ...

    def bulk(self, lines: Sequence[Mapping[str, Any]], refresh: bool) -> Mapping[str, Any]:
        """Send a bulk request; return its body (HTTP 200).

        Raises SearchUnavailableError, or BulkHttpError on another status.
        """
        ...

    def close(self) -> None:
        """Release the connection pool."""
        ...


def error_reason(body: Any) -> str:
    """``type: reason`` of an Elasticsearch/OpenSearch error body, never the whole body."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            kind = err.get("type", "error")
            reason = err.get("reason", "")
            caused = err.get("caused_by")
            text = f"{kind}: {reason}"
            if isinstance(caused, Mapping):
                text += f" (caused by {caused.get('type')}: {caused.get('reason')})"
            return text
        return str(err)[:500]
    return str(body)[:500]


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


# --------------------------------------------------------------------------- settings


def _read_secret_file(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class SearchSettings:
    """Connection, buffering and retry settings of a search sink.

    Secrets never appear in ``repr``; :meth:`from_env` reads the ``CLONEWATCH_ES_*``
    variables (``*_FILE`` variants read the value from a file).
    """

    namespace: str = DEFAULT_NAMESPACE
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    max_records: int = 500
    max_bytes: int = 5_000_000
    max_age: float = 5.0
    flush_deadline: float = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    manage_templates: bool = True
    index_mode: IndexMode = "auto"
    retention_days: int = 90
    rollover_max_age: str = "1d"
    rollover_max_primary_shard_size: str = "50gb"
    refresh: bool = False

    def __post_init__(self) -> None:
        validate_namespace(self.namespace)
        if self.max_records < 1 or self.max_bytes < 1:
            raise ValueError("max_records and max_bytes must be positive")
        if self.index_mode not in ("auto", "data_stream", "dated"):
            raise ValueError(
                f"index_mode must be auto, data_stream or dated, not {self.index_mode!r}"
            )
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")

    @property
    def retention(self) -> Retention:
        """The lifecycle part of the settings."""
        return Retention(
            self.retention_days, self.rollover_max_age, self.rollover_max_primary_shard_size
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SearchSettings:
        """Settings from ``CLONEWATCH_ES_*`` variables, then ``overrides`` (None = not given).

        Besides the fields, ``api_key_file``, ``username_file`` and ``password_file``
        are accepted as overrides.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for secret in ("api_key", "username", "password"):
            var = ENV_PREFIX + secret.upper()
            file_override = overrides.pop(f"{secret}_file", None)
            if overrides.get(secret) is not None:
                continue
            if file_override:
                values[secret] = _read_secret_file(file_override)
            elif env.get(var):
                values[secret] = env[var]
            elif env.get(var + "_FILE"):
                values[secret] = _read_secret_file(env[var + "_FILE"])
        if env.get(ENV_PREFIX + "CA_FILE"):
            values["ca_file"] = env[ENV_PREFIX + "CA_FILE"]
        if env.get(ENV_PREFIX + "VERIFY_CERTS"):
            values["verify_certs"] = env[ENV_PREFIX + "VERIFY_CERTS"].lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
        if env.get(ENV_PREFIX + "NAMESPACE"):
            values["namespace"] = env[ENV_PREFIX + "NAMESPACE"]
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown search sink settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# --------------------------------------------------------------------------- bulk items


class ItemOutcome(Enum):
    """What to do with one bulk item result."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    REJECTED = "rejected"


def classify_item(op_type: str, status: int) -> ItemOutcome:
    """Classify one bulk item: 2xx written, 409 on create already there, 429/5xx retried.

    >>> [classify_item(*c).value for c in (("create", 409), ("index", 503), ("index", 400))]
    ['duplicate', 'retry', 'rejected']
    """
    if 200 <= status < 300:
        return ItemOutcome.WRITTEN
    if status == 409:
        # create: the same _id is already there, which is what a replay means.
        # update/index: a concurrent version conflict, worth another try.
        return ItemOutcome.DUPLICATE if op_type == "create" else ItemOutcome.RETRY
    if status in (408, 429) or status >= 500:
        return ItemOutcome.RETRY
    return ItemOutcome.REJECTED


def retryable_status(status: int) -> bool:
    """Whether a whole-request HTTP status is worth retrying."""
    return status in (408, 429) or status >= 500


@dataclass(slots=True)
class BulkOp:
    """One bulk operation derived from a record."""

    record_index: int
    op_type: Literal["create", "index", "update"]
    index: str
    doc_id: str
    source: dict[str, Any]

    def lines(self) -> list[dict[str, Any]]:
        """The action line and its source line."""
        meta: dict[str, Any] = {"_index": self.index, "_id": self.doc_id}
        if self.op_type == "update":
            meta["retry_on_conflict"] = 3
        return [{self.op_type: meta}, self.source]


class LocalRejectError(Exception):
    """A record that cannot become a bulk operation (sent to the dead letter)."""


_OPTIONAL_CONTEXT_FIELDS = tuple(
    name for name, info in ClonewatchContext.model_fields.items() if not info.is_required()
)


def latest_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The latest-risk document: optional context fields explicitly null.

    An upsert merges objects, so a campaign that ended must be cleared, not kept.
    """
    out = dict(doc)
    context = dict(out.get("clonewatch") or {})
    for name in _OPTIONAL_CONTEXT_FIELDS:
        context.setdefault(name, None)
    out["clonewatch"] = context
    return out


def operations_for(
    record: OutputRecord, record_index: int, names: IndexNames, data_streams: bool
) -> list[BulkOp]:
    """The bulk operations that deliver one record (a risk record makes two)."""
    doc = record.doc
    if record.kind == "dead_letter":
        return [BulkOp(record_index, "index", names.dead_letter, record.id, dict(doc))]
    base = names.alert if record.kind == "alert" else names.risk_history
    try:
        when = parse_timestamp(doc.get("@timestamp"))
    except (TypeError, ValueError) as exc:
        raise LocalRejectError(f"{record.kind} {record.id}: bad @timestamp: {exc}") from exc
    target = base if data_streams else IndexNames.dated(base, when)
    ops = [BulkOp(record_index, "create", target, record.id, dict(doc))]
    if record.kind == "risk":
        user = doc.get("user") or {}
        context = doc.get("clonewatch") or {}
        client, model = user.get("id"), context.get("model_id")
        if not isinstance(client, str) or not isinstance(model, str):
            raise LocalRejectError(
                f"risk {record.id}: user.id and clonewatch.model_id are required"
            )
        ops.append(
            BulkOp(
                record_index,
                "update",
                names.risk_latest,
                latest_risk_id(client, model),
                {"doc": latest_doc(doc), "doc_as_upsert": True},
            )
        )
    return ops


def keep_newest_latest(ops: Sequence[BulkOp]) -> list[BulkOp]:
    """Drop latest-risk upserts superseded by a newer one of the same _id in the same batch."""
    newest: dict[str, tuple[datetime, int]] = {}
    for pos, op in enumerate(ops):
        if op.op_type != "update":
            continue
        when = parse_timestamp(op.source["doc"].get("@timestamp"))
        best = newest.get(op.doc_id)
        if best is None or when >= best[0]:
            newest[op.doc_id] = (when, pos)
    keep = {pos for _, pos in newest.values()}
    return [op for pos, op in enumerate(ops) if op.op_type != "update" or pos in keep]


# --------------------------------------------------------------------------- the sink


def _doc_size(doc: Mapping[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":"), default=str))


class SearchSink:
    """A bulk-indexing sink for Elasticsearch or OpenSearch (the Sink protocol).

    ``write`` buffers up to ``max_records`` records / ``max_bytes`` bytes and flushes
    synchronously when the buffer is full (backpressure) or its oldest record is
    older than ``max_age`` seconds (checked on every ``write`` and by
    :meth:`maybe_flush`). ``flush`` retries connection failures, 429 and 5xx with
    exponential backoff until ``flush_deadline`` seconds have passed, then raises
    SinkError and keeps the undelivered records. Items rejected for good (400 and
    other 4xx) become :class:`DeadLetter` records, taken with :meth:`drain_rejected`
    (at most ``MAX_REJECTED`` are kept undrained; ``rejected_dropped`` counts the rest).
    """

    def __init__(
        self,
        product: Product,
        backend_factory: Callable[[], SearchBackend],
        settings: SearchSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name: str = product
        self.product = product
        self.settings = settings
        self.names = IndexNames(settings.namespace)
        self._backend_factory = backend_factory
        self._backend: SearchBackend | None = None
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._buffer: list[OutputRecord] = []
        self._buffer_bytes = 0
        self._oldest: float | None = None
        self._rejected: list[DeadLetter] = []
        self.features: Features | None = None
        self.data_streams: bool | None = None
        self.setup_actions: list[tuple[str, str]] = []
        self.rejected_dropped = 0
        self.counts: dict[str, int] = {o.value: 0 for o in ItemOutcome}
        self._log = log.bind(sink=product, namespace=settings.namespace)

    # -- lifecycle

    def setup(self) -> None:
        """Connect, detect the cluster's features, install templates if managed."""
        backend = self._ensure_backend()
        try:
            self.features = detect_features(backend)
        except SearchUnavailableError as exc:
            raise SinkError(f"{self.product} unreachable: {exc}") from exc
        mode = self.settings.index_mode
        if mode == "auto":
            self.data_streams = self.features.data_streams
        else:
            self.data_streams = mode == "data_stream"
        features = replace(self.features, data_streams=self.data_streams)
        if self.settings.manage_templates:
            try:
                self.setup_actions = install(backend, features, self.names, self.settings.retention)
            except SearchUnavailableError as exc:
                raise SinkError(f"{self.product} unreachable: {exc}") from exc
            self._log.info("search_setup", actions=len(self.setup_actions))
        self._log.info(
            "search_sink_ready",
            version=self.features.version,
            data_streams=self.data_streams,
            lifecycle=self.features.lifecycle,
        )

    def _ensure_backend(self) -> SearchBackend:
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def close(self) -> None:
        """Flush what is buffered, then release the client (re-raising a flush failure)."""
        try:
            if self._buffer:
                self.flush()
        finally:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    # -- buffering

    @property
    def buffered(self) -> int:
        """Records waiting in the buffer."""
        return len(self._buffer)

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Buffer records, flushing synchronously whenever the buffer is full or old."""
        for record in records:
            self._buffer.append(record)
            self._buffer_bytes += _doc_size(record.doc)
            if self._oldest is None:
                self._oldest = self._clock()
            if (
                len(self._buffer) >= self.settings.max_records
                or self._buffer_bytes >= self.settings.max_bytes
            ):
                self.flush()
        self.maybe_flush()

    def maybe_flush(self) -> bool:
        """Flush if the oldest buffered record is older than ``max_age``; True if it did."""
        if self._oldest is None or self._clock() - self._oldest < self.settings.max_age:
            return False
        self.flush()
        return True

    def drain_rejected(self) -> list[DeadLetter]:
        """Take the dead letters of items the server rejected for good (400 and other 4xx)."""
        out, self._rejected = self._rejected, []
        return out

    # -- delivery

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.max_backoff, self.settings.initial_backoff * float(2**attempt))
        return float(ceiling * self._rng.uniform(0.5, 1.0))

    def _reject(self, record: OutputRecord, index: str, reason: str) -> None:
        self.counts[ItemOutcome.REJECTED.value] += 1
        self._log.warning(
            "search_item_rejected",
            kind=record.kind,
            record_id=record.id,
            index=index,
            reason=reason.split(":", 1)[0],
        )
        raw = json.dumps(record.doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(self._rejected) >= MAX_REJECTED:
            self._rejected.pop(0)
            self.rejected_dropped += 1
            self._log.error("search_dead_letters_dropped", dropped=self.rejected_dropped)
        self._rejected.append(
            DeadLetter.of(
                raw,
                f"{self.product} rejected {record.kind} {record.id} for {index}: {reason}",
                source=f"sink:{self.product}",
            )
        )

    def flush(self) -> None:
        """Deliver every buffered record or raise SinkError (keeping what was not delivered)."""
        if not self._buffer:
            return
        if self.data_streams is None:
            self.setup()
        assert self.data_streams is not None  # noqa: S101 - set by setup()
        records = self._buffer
        ops: list[BulkOp] = []
        for pos, record in enumerate(records):
            try:
                ops.extend(operations_for(record, pos, self.names, self.data_streams))
            except LocalRejectError as exc:
                self._reject(record, "-", str(exc))
        pending = keep_newest_latest(ops)
        backend = self._ensure_backend()
        deadline = self._clock() + self.settings.flush_deadline
        attempt = 0
        while pending:
            failure: str
            try:
                answer = backend.bulk(
                    [line for op in pending for line in op.lines()], self.settings.refresh
                )
            except SearchUnavailableError as exc:
                failure = f"unreachable: {exc}"
            except BulkHttpError as exc:
                if not retryable_status(exc.status):
                    self._keep_unresolved(records, pending)
                    raise SinkError(f"{self.product} bulk failed: {exc}") from exc
                failure = str(exc)
            else:
                pending = self._handle_items(records, pending, answer)
                if not pending:
                    break
                failure = f"{len(pending)} items to retry"
            delay = self._backoff(attempt)
            if self._clock() + delay > deadline:
                self._keep_unresolved(records, pending)
                raise SinkError(
                    f"{self.product}: {len(pending)} operations undelivered after "
                    f"{self.settings.flush_deadline:g}s: {failure}"
                )
            self._log.warning(
                "search_flush_retry",
                attempt=attempt + 1,
                delay=round(delay, 3),
                pending=len(pending),
                failure=failure,
            )
            self._sleep(delay)
            attempt += 1
        self._buffer = []
        self._buffer_bytes = 0
        self._oldest = None

    def _keep_unresolved(self, records: list[OutputRecord], pending: Sequence[BulkOp]) -> None:
        keep = sorted({op.record_index for op in pending})
        self._buffer = [records[i] for i in keep]
        self._buffer_bytes = sum(_doc_size(r.doc) for r in self._buffer)

    def _handle_items(
        self, records: list[OutputRecord], sent: list[BulkOp], answer: Mapping[str, Any]
    ) -> list[BulkOp]:
        items = answer.get("items")
        if not isinstance(items, list) or len(items) != len(sent):
            raise SinkError(f"{self.product}: bulk answer has no item per operation")
        retry: list[BulkOp] = []
        for op, item in zip(sent, items, strict=True):
            result = next(iter(item.values())) if isinstance(item, Mapping) and item else {}
            status = int(result.get("status", 500))
            outcome = classify_item(op.op_type, status)
            if outcome is ItemOutcome.RETRY:
                retry.append(op)
            elif outcome is ItemOutcome.REJECTED:
                self._reject(records[op.record_index], op.index, error_reason(result))
            else:
                self.counts[outcome.value] += 1
        return retry


def build_search_sink(kind: Product, url: str, **settings: Any) -> SearchSink:
    """A search sink for ``kind`` at ``url``; settings as :class:`SearchSettings` fields.

    Unset secrets and the CA file come from the ``CLONEWATCH_ES_*`` environment.
    ``clock``, ``sleep`` and ``env`` may be passed too (tests).
    """
    clock = settings.pop("clock", time.monotonic)
    sleep = settings.pop("sleep", time.sleep)
    env = settings.pop("env", None)
    resolved = SearchSettings.from_env(env, **settings)
    if kind == "elasticsearch":
        from streams.sinks.elasticsearch import ElasticsearchBackend  # noqa: PLC0415 - cycle

        def es_factory() -> SearchBackend:
            return ElasticsearchBackend(url, resolved)

        return SearchSink("elasticsearch", es_factory, resolved, clock=clock, sleep=sleep)
    if kind == "opensearch":
        from streams.sinks.opensearch import OpenSearchBackend  # noqa: PLC0415 - cycle

        def os_factory() -> SearchBackend:
            return OpenSearchBackend(url, resolved)

        return SearchSink("opensearch", os_factory, resolved, clock=clock, sleep=sleep)
    raise ValueError(f"unknown search product {kind!r}: elasticsearch or opensearch")


def _check_protocol(sink: SearchSink) -> Sink:
    return sink  # mypy checks that SearchSink satisfies the Sink protocol
