"""Every field a dashboard panel uses is mapped in the index templates with the type it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clonewatch.dashboards_support import (
    KIBANA,
    OPENSEARCH,
    VIEW_KINDS,
    flatten_properties,
    kibana_field_uses,
    load_bundle,
    mapped_fields,
    opensearch_field_uses,
    type_problems,
)


@pytest.fixture(scope="module")
def fields_by_pattern() -> dict[str, dict[str, str]]:
    """Field types per index pattern, as clonewatch setup maps them."""
    return {pattern: mapped_fields(pattern) for pattern in VIEW_KINDS}


class TestFieldsExistWithTheirTypes:
    """The bundles only use fields the templates map, with a type their aggregation accepts."""

    @pytest.mark.parametrize("bundle", [KIBANA, OPENSEARCH], ids=["kibana", "opensearch"])
    def test_every_used_field_is_mapped_with_the_needed_type(
        self, bundle: Path, fields_by_pattern: dict[str, dict[str, str]]
    ) -> None:
        """No panel of the bundle uses an unmapped field or a field of the wrong type."""
        objects = load_bundle(bundle)
        uses = (kibana_field_uses if bundle == KIBANA else opensearch_field_uses)(objects)
        assert type_problems(uses, fields_by_pattern) == []

    @pytest.mark.parametrize("bundle", [KIBANA, OPENSEARCH], ids=["kibana", "opensearch"])
    def test_the_issue_fields_are_all_used(self, bundle: Path) -> None:
        """The panels use every field the issue asks for (levels, clients, scores, signals)."""
        objects = load_bundle(bundle)
        uses = (kibana_field_uses if bundle == KIBANA else opensearch_field_uses)(objects)
        used = {(pattern, field, kind) for _, pattern, field, kind in uses}
        alerts, risk = "logs-clonewatch.alert-*", "clonewatch-risk-latest*"
        assert {
            (alerts, "@timestamp", "date"),
            (alerts, "clonewatch.risk_level", "keyword"),
            (alerts, "clonewatch.model_id", "keyword"),
            (alerts, "clonewatch.signals.name", "keyword"),
            (risk, "user.id", "keyword"),
            (risk, "clonewatch.model_id", "keyword"),
            (risk, "user.risk.calculated_score_norm", "numeric"),
            (risk, "user.risk.calculated_level", "any"),
            (risk, "clonewatch.queries_observed", "numeric"),
            (risk, "@timestamp", "any"),
        } <= used


class TestTheCheckCatchesMistakes:
    """The type check really rejects a wrong field or type (so a green run means something)."""

    def test_unmapped_and_mistyped_fields_are_reported(
        self, fields_by_pattern: dict[str, dict[str, str]]
    ) -> None:
        """A terms on a float, a histogram on a keyword and a missing field are all reported."""
        pattern = "logs-clonewatch.alert-*"
        uses = [
            ("a", pattern, "event.risk_score_norm", "keyword"),
            ("b", pattern, "clonewatch.model_id", "numeric"),
            ("c", pattern, "clonewatch.no_such_field", "any"),
            ("d", pattern, "clonewatch.signals", "keyword"),
            ("e", pattern, "clonewatch.risk_level", "keyword"),
        ]
        problems = type_problems(uses, fields_by_pattern)
        assert [p.split(":")[0] for p in problems] == ["a", "b", "c", "d"]

    def test_nested_properties_and_multi_fields_are_flattened(self) -> None:
        """Objects, their sub-fields and multi-fields all get a dotted path."""
        properties = {
            "user": {"properties": {"id": {"type": "keyword"}}},
            "message": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        }
        assert flatten_properties(properties) == {
            "user": "object",
            "user.id": "keyword",
            "message": "text",
            "message.raw": "keyword",
        }
