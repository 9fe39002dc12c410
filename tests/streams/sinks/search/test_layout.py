"""Pure logic of the Elasticsearch/OpenSearch sinks: names, ids, templates, item results."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from schemas.alert import Alert, RiskScore
from schemas.dead_letter import DeadLetter
from streams.sinks.base import OutputRecord
from streams.sinks.search.bulk import (
    ItemOutcome,
    LocalRejectError,
    classify_item,
    keep_newest_latest,
    operations_for,
)
from streams.sinks.search.layout import (
    TEMPLATE_PRIORITY,
    Features,
    IndexNames,
    Retention,
    effective_mappings,
    ilm_policy,
    index_templates,
    ism_policy,
    latest_risk_id,
    validate_namespace,
)

ES_DS = Features("elasticsearch", "9.5.3", data_streams=True, lifecycle="ilm")
ES_PLAIN = Features("elasticsearch", "9.5.3", data_streams=False, lifecycle=None)
OS_DS = Features("opensearch", "2.19.1", data_streams=True, lifecycle="ism")


def contract_paths(model: type[BaseModel], prefix: str = "") -> dict[str, type]:
    """Every leaf field of a pydantic contract as dotted wire path -> Python leaf type."""
    out: dict[str, type] = {}
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        annotation: Any = info.annotation
        while True:
            origin = typing.get_origin(annotation)
            if origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(annotation) if a is not type(None)]
                annotation = args[0]
            elif origin is list:
                annotation = typing.get_args(annotation)[0]
            elif origin is typing.Literal:
                annotation = type(typing.get_args(annotation)[0])
            else:
                break
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(contract_paths(annotation, path + "."))
        else:
            out[path] = annotation
    return out


def mapped_type(mappings: dict[str, Any], path: str) -> str | None:
    """The explicit mapping type of a dotted path (None when not mapped)."""
    node: dict[str, Any] = mappings
    for part in path.split("."):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node.get("type", "object")


SPECIAL_TYPES = {
    "@timestamp": "date",
    "received_at": "date",
    "message": "text",
    "reason": "text",
    "raw": "text",
    "source.ip": "ip",
    "clonewatch.signals.value": "double",
}
BY_PYTHON_TYPE = {str: "keyword", int: "long", float: "float", bool: "boolean"}


def expected_type(path: str, leaf: type) -> str:
    """The ECS type a contract field must be mapped to."""
    return SPECIAL_TYPES.get(path, BY_PYTHON_TYPE[leaf])


class TestIndexNames:
    """Index and data stream names follow the logs-<dataset>-<namespace> scheme."""

    def test_default_namespace_names(self) -> None:
        """The default namespace gives the documented names."""
        names = IndexNames()
        assert names.alert == "logs-clonewatch.alert-default"
        assert names.risk_history == "logs-clonewatch.risk-default"
        assert names.risk_latest == "clonewatch-risk-latest"
        assert names.dead_letter == "clonewatch-dead-letter-default"

    def test_other_namespace_suffixes_every_name(self) -> None:
        """Another namespace appears in every name, the latest-risk index included."""
        names = IndexNames("prod_eu")
        assert names.alert == "logs-clonewatch.alert-prod_eu"
        assert names.risk_latest == "clonewatch-risk-latest-prod_eu"

    def test_dated_index_uses_the_utc_day(self) -> None:
        """A timestamp late on the 9th at UTC+2 is still the 9th in UTC, early the 10th is not."""
        plus2 = timezone(timedelta(hours=2))
        assert IndexNames.dated("x", datetime(2025, 3, 10, 1, 0, tzinfo=plus2)) == "x-2025.03.09"
        assert IndexNames.dated("x", datetime(2025, 3, 10, 3, 0, tzinfo=plus2)) == "x-2025.03.10"

    @pytest.mark.parametrize("bad", ["", "Prod", "a-b", "a b", "x" * 101, "_lead"])
    def test_invalid_namespaces_are_refused(self, bad: str) -> None:
        """Uppercase, '-', spaces, leading '_' and over-long namespaces raise ValueError."""
        with pytest.raises(ValueError, match="invalid namespace"):
            validate_namespace(bad)


class TestLatestRiskId:
    """The latest-risk _id is deterministic per (client, model)."""

    def test_same_pair_same_id(self) -> None:
        """The same client and model always give the same 64-hex id."""
        first = latest_risk_id("client-1", "model-a")
        assert first == latest_risk_id("client-1", "model-a")
        assert len(first) == 64
        assert int(first, 16) >= 0

    def test_different_pairs_differ_even_with_separators(self) -> None:
        """Pairs whose concatenations coincide still get different ids."""
        ids = {
            latest_risk_id("a", "b"),
            latest_risk_id("b", "a"),
            latest_risk_id("a:b", "c"),
            latest_risk_id("a", "b:c"),
        }
        assert len(ids) == 4


class TestTemplates:
    """The mapping files give every contract field an explicit ECS type."""

    def test_every_alert_field_is_mapped_with_its_ecs_type(self) -> None:
        """Each Alert wire field has the ECS type expected for it."""
        mappings = effective_mappings("alert")
        wrong = {
            path: mapped_type(mappings, path)
            for path, leaf in contract_paths(Alert).items()
            if mapped_type(mappings, path) != expected_type(path, leaf)
        }
        assert wrong == {}

    def test_every_risk_field_is_mapped_with_its_ecs_type(self) -> None:
        """Each RiskScore wire field has the ECS type expected for it."""
        mappings = effective_mappings("risk")
        wrong = {
            path: mapped_type(mappings, path)
            for path, leaf in contract_paths(RiskScore).items()
            if mapped_type(mappings, path) != expected_type(path, leaf)
        }
        assert wrong == {}

    def test_every_dead_letter_field_is_mapped(self) -> None:
        """Each DeadLetter field has its expected type in the dead-letter mapping."""
        mappings = effective_mappings("dead-letter")
        wrong = {
            path: mapped_type(mappings, path)
            for path, leaf in contract_paths(DeadLetter).items()
            if mapped_type(mappings, path) != expected_type(path, leaf)
        }
        assert wrong == {}

    def test_key_ecs_types(self) -> None:
        """The fields SOC rules read have the types ECS gives them."""
        alert = effective_mappings("alert")
        assert mapped_type(alert, "event.severity") == "long"
        assert mapped_type(alert, "event.risk_score") == "float"
        assert mapped_type(alert, "user.id") == "keyword"
        assert mapped_type(alert, "@timestamp") == "date"
        assert mapped_type(alert, "clonewatch.signals") == "object"
        assert mapped_type(effective_mappings("risk"), "user.risk.calculated_level") == "keyword"

    @pytest.mark.parametrize("kind", ["alert", "risk", "dead-letter"])
    def test_unknown_fields_are_kept_but_not_mapped(self, kind: str) -> None:
        """The root is dynamic false, so unknown fields stay in _source without new mappings."""
        assert effective_mappings(kind)["dynamic"] is False

    def test_data_stream_templates_only_where_supported(self) -> None:
        """History templates declare a data stream only when the cluster has them."""
        with_ds = index_templates(ES_DS)
        without = index_templates(ES_PLAIN)
        for name in ("logs-clonewatch.alert", "logs-clonewatch.risk"):
            assert with_ds[name]["data_stream"] == {}
            assert "data_stream" not in without[name]
        assert "data_stream" not in with_ds["clonewatch-risk-latest"]
        assert "data_stream" not in with_ds["clonewatch-dead-letter"]

    def test_priority_beats_the_builtin_logs_template(self) -> None:
        """Every template has a priority above 500 and patterns under logs-clonewatch.*."""
        templates = index_templates(ES_DS)
        assert all(t["priority"] == TEMPLATE_PRIORITY > 500 for t in templates.values())
        assert templates["logs-clonewatch.alert"]["index_patterns"] == ["logs-clonewatch.alert-*"]

    def test_ilm_setting_only_on_history_with_ilm(self) -> None:
        """index.lifecycle.name is set on history templates with ILM, never elsewhere."""
        with_ilm = index_templates(ES_DS)
        settings = with_ilm["logs-clonewatch.alert"]["template"]["settings"]["index"]
        assert settings["lifecycle"] == {"name": "clonewatch-retention"}
        assert (
            "lifecycle" not in with_ilm["clonewatch-risk-latest"]["template"]["settings"]["index"]
        )
        for features in (ES_PLAIN, OS_DS):
            for body in index_templates(features).values():
                assert "lifecycle" not in body["template"]["settings"]["index"]

    def test_opensearch_templates_have_no_elasticsearch_only_settings(self) -> None:
        """OpenSearch templates carry neither index.mode nor index.lifecycle."""
        for body in index_templates(OS_DS).values():
            assert set(body["template"]["settings"]["index"]) == {"auto_expand_replicas"}

    def test_ilm_policy_rolls_over_only_data_streams(self) -> None:
        """The ILM policy has rollover for data streams and deletes after the retention."""
        retention = Retention(delete_after_days=30)
        ds = ilm_policy(retention, data_streams=True)["policy"]["phases"]
        plain = ilm_policy(retention, data_streams=False)["policy"]["phases"]
        assert "rollover" in ds["hot"]["actions"]
        assert plain["hot"]["actions"] == {}
        assert ds["delete"] == {"min_age": "30d", "actions": {"delete": {}}}

    def test_ism_policy_applies_to_backing_and_dated_indices(self) -> None:
        """The ISM template matches data stream backing indices and dated indices."""
        policy = ism_policy(Retention(delete_after_days=7), data_streams=True)["policy"]
        patterns = policy["ism_template"][0]["index_patterns"]
        assert ".ds-logs-clonewatch.alert-*" in patterns
        assert "logs-clonewatch.risk-*" in patterns
        hot, delete = policy["states"]
        assert hot["transitions"][0]["conditions"] == {"min_index_age": "7d"}
        assert delete["actions"] == [{"delete": {}}]


class TestClassifyItem:
    """Per-item bulk results are classified for retry, success or dead letter."""

    @pytest.mark.parametrize(
        ("op", "status", "outcome"),
        [
            ("create", 201, ItemOutcome.WRITTEN),
            ("index", 200, ItemOutcome.WRITTEN),
            ("update", 201, ItemOutcome.WRITTEN),
            ("create", 409, ItemOutcome.DUPLICATE),
            ("update", 409, ItemOutcome.RETRY),
            ("create", 429, ItemOutcome.RETRY),
            ("index", 500, ItemOutcome.RETRY),
            ("create", 503, ItemOutcome.RETRY),
            ("create", 400, ItemOutcome.REJECTED),
            ("index", 404, ItemOutcome.REJECTED),
            ("create", 403, ItemOutcome.REJECTED),
        ],
    )
    def test_classification(self, op: str, status: int, outcome: ItemOutcome) -> None:
        """Each (operation, status) pair gets the documented outcome."""
        assert classify_item(op, status) is outcome


def alert_doc(ts: str = "2025-03-09T10:00:00Z") -> dict[str, Any]:
    """A minimal alert wire document."""
    return {
        "@timestamp": ts,
        "event": {"kind": "alert", "id": "e1", "severity": 73},
        "user": {"id": "client-1"},
        "clonewatch": {"model_id": "m1"},
    }


def risk_doc(ts: str, client: str = "client-1", campaign: str | None = None) -> dict[str, Any]:
    """A minimal risk wire document."""
    context: dict[str, Any] = {"model_id": "m1", "risk_level": "high"}
    if campaign:
        context["campaign_id"] = campaign
    return {
        "@timestamp": ts,
        "event": {"kind": "metric", "id": "r"},
        "user": {"id": client, "risk": {"calculated_score_norm": 75.0}},
        "clonewatch": context,
    }


class TestOperations:
    """Records become the right bulk operations."""

    def test_alert_goes_to_the_data_stream_with_create(self) -> None:
        """With data streams an alert is a create into logs-clonewatch.alert-<ns> with its id."""
        (op,) = operations_for(OutputRecord("alert", "a1", "k", alert_doc()), 0, IndexNames(), True)
        assert (op.op_type, op.index, op.doc_id) == (
            "create",
            "logs-clonewatch.alert-default",
            "a1",
        )
        assert op.lines()[0] == {"create": {"_index": op.index, "_id": "a1"}}

    def test_alert_goes_to_its_dated_index_without_data_streams(self) -> None:
        """Without data streams the alert's UTC day picks the index."""
        record = OutputRecord("alert", "a1", "k", alert_doc("2025-03-09T23:30:00-02:00"))
        (op,) = operations_for(record, 0, IndexNames(), False)
        assert op.index == "logs-clonewatch.alert-default-2025.03.10"
        assert op.op_type == "create"

    def test_risk_makes_history_and_latest_upsert(self) -> None:
        """A risk record is a history create plus a doc_as_upsert on the latest index."""
        record = OutputRecord("risk", "r1", "k", risk_doc("2025-03-09T10:00:00Z"))
        history, latest = operations_for(record, 3, IndexNames(), True)
        assert (history.op_type, history.index) == ("create", "logs-clonewatch.risk-default")
        assert (latest.op_type, latest.index) == ("update", "clonewatch-risk-latest")
        assert latest.doc_id == latest_risk_id("client-1", "m1")
        assert latest.source["doc_as_upsert"] is True
        assert latest.lines()[0]["update"]["retry_on_conflict"] == 3
        assert latest.record_index == history.record_index == 3

    def test_latest_clears_an_ended_campaign(self) -> None:
        """Absent optional context fields are sent as null so the upsert clears old values."""
        record = OutputRecord("risk", "r1", "k", risk_doc("2025-03-09T10:00:00Z"))
        _, latest = operations_for(record, 0, IndexNames(), True)
        context = latest.source["doc"]["clonewatch"]
        assert context["campaign_id"] is None
        assert context["campaign_members"] is None
        assert "campaign_id" not in record.doc["clonewatch"]

    def test_dead_letter_is_indexed_by_id(self) -> None:
        """A dead-letter record is an index operation into the dead-letter index."""
        doc = DeadLetter.of(b"nope", "not JSON", received_at=0).model_dump()
        (op,) = operations_for(OutputRecord("dead_letter", "d1", "k", doc), 0, IndexNames(), True)
        assert (op.op_type, op.index, op.doc_id) == (
            "index",
            "clonewatch-dead-letter-default",
            "d1",
        )

    @pytest.mark.parametrize("ts", [None, 17, "yesterday"])
    def test_bad_timestamp_is_a_local_reject(self, ts: object) -> None:
        """An alert without a parseable @timestamp cannot be routed and is rejected locally."""
        doc = alert_doc()
        doc["@timestamp"] = ts
        with pytest.raises(LocalRejectError, match="@timestamp"):
            operations_for(OutputRecord("alert", "a1", "k", doc), 0, IndexNames(), False)

    def test_risk_without_client_is_a_local_reject(self) -> None:
        """A risk record lacking user.id has no latest-risk id and is rejected locally."""
        doc = risk_doc("2025-03-09T10:00:00Z")
        del doc["user"]["id"]
        with pytest.raises(LocalRejectError, match=r"user\.id"):
            operations_for(OutputRecord("risk", "r1", "k", doc), 0, IndexNames(), True)

    def test_only_the_newest_latest_upsert_of_a_batch_is_kept(self) -> None:
        """Of several upserts for one (client, model) in a batch only the newest is sent."""
        names = IndexNames()
        ops = []
        for pos, ts in enumerate(
            ["2025-03-09T10:05:00Z", "2025-03-09T10:09:00Z", "2025-03-09T10:01:00Z"]
        ):
            ops += operations_for(
                OutputRecord("risk", f"r{pos}", "k", risk_doc(ts)), pos, names, True
            )
        ops += operations_for(
            OutputRecord("risk", "o", "k", risk_doc("2025-03-09T09:00:00Z", client="other")),
            3,
            names,
            True,
        )
        kept = keep_newest_latest(ops)
        latest = [op for op in kept if op.op_type == "update"]
        assert [op.record_index for op in latest] == [1, 3]
        assert len([op for op in kept if op.op_type == "create"]) == 4

    def test_dated_naming_matches_datetime(self) -> None:
        """IndexNames.dated formats the day with dots."""
        assert IndexNames.dated("b", datetime(2024, 12, 31, 23, 59, tzinfo=UTC)) == "b-2024.12.31"
