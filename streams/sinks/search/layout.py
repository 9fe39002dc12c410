"""Where the search sink writes, and the templates, mappings and policies it installs.

Where documents go (``namespace`` defaults to ``default``):

* alerts: data stream ``logs-clonewatch.alert-<namespace>`` when the cluster has
  data streams, else daily indices ``logs-clonewatch.alert-<namespace>-YYYY.MM.DD``;
* risk history: ``logs-clonewatch.risk-<namespace>`` likewise;
* latest risk per (client, model): ``clonewatch-risk-latest`` (``-<namespace>``
  appended for another namespace), ``_id`` from client and model, upserted;
* dead letters: ``clonewatch-dead-letter-<namespace>``.

The mapping files are ``templates/*.json`` next to this module (package data).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from streams.sinks.search.backend import Product

Lifecycle = Literal["ilm", "ism"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_NAMESPACE = "default"
# Above 500: the built-in ``logs`` template (priority 100, ``logs-*-*``) must never win.
TEMPLATE_PRIORITY = 550
POLICY_NAME = "clonewatch-retention"
ALERT_DATASET = "clonewatch.alert"
RISK_DATASET = "clonewatch.risk"

_NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")


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
