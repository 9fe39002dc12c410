"""The saved-object bundles: generated, well-formed, self-contained and complete."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.clonewatch.dashboards_support import KIBANA, OPENSEARCH, build_module, load_bundle

GRID_WIDTH = 48


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(dashboard["attributes"]["panelsJSON"])
    return panels


def _panel_reference(refs: dict[str, dict[str, str]], panel: dict[str, Any]) -> dict[str, str]:
    """Kibana 8 names a panel's reference <panelIndex>:<panelRefName>; OSD uses panelRefName."""
    kibana_name = f"{panel['panelIndex']}:{panel['panelRefName']}"
    return refs[kibana_name] if kibana_name in refs else refs[panel["panelRefName"]]


class TestGenerated:
    """The committed bundles are exactly what scripts/build_dashboards.py writes."""

    def test_committed_bundles_equal_the_generator_output(self) -> None:
        """Both NDJSON files match the script byte for byte (rerun the script after edits)."""
        rendered = build_module().render()
        assert set(rendered) == {KIBANA, OPENSEARCH}
        for path, text in rendered.items():
            assert path.read_text(encoding="utf-8") == text, f"{path} is stale"

    def test_check_mode_reports_a_stale_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--check exits 1 when a bundle differs and 0 once the script has rewritten it."""
        module = build_module()
        monkeypatch.setattr(module, "ROOT", tmp_path)
        monkeypatch.setattr(module, "KIBANA_OUT", tmp_path / "k.ndjson")
        monkeypatch.setattr(module, "OPENSEARCH_OUT", tmp_path / "o.ndjson")
        assert module.main(["--check"]) == 1
        assert module.main([]) == 0
        assert module.main(["--check"]) == 0


@pytest.mark.parametrize("bundle", [KIBANA, OPENSEARCH], ids=["kibana", "opensearch"])
class TestWellFormed:
    """Each object has the shape the saved-objects import API expects."""

    def test_every_line_is_one_object_with_the_required_keys(self, bundle: Path) -> None:
        """Each NDJSON line parses to an object with id, type, attributes and references."""
        lines = bundle.read_text(encoding="utf-8").splitlines()
        assert lines
        for line in lines:
            obj = json.loads(line)
            assert {"id", "type", "attributes", "references"} <= set(obj)
            assert isinstance(obj["attributes"]["title"], str)
            assert obj["attributes"]["title"]
            for ref in obj["references"]:
                assert set(ref) == {"id", "name", "type"}

    def test_ids_are_unique(self, bundle: Path) -> None:
        """No two objects share a (type, id) nor an id."""
        ids = Counter(obj["id"] for obj in load_bundle(bundle))
        assert [i for i, n in ids.items() if n > 1] == []

    def test_every_reference_resolves_inside_the_bundle(self, bundle: Path) -> None:
        """Each reference names an object of the right type that the bundle itself holds."""
        objects = load_bundle(bundle)
        present = {(obj["type"], obj["id"]) for obj in objects}
        for obj in objects:
            for ref in obj["references"]:
                assert (ref["type"], ref["id"]) in present, (obj["id"], ref)

    def test_json_string_attributes_parse(self, bundle: Path) -> None:
        """panelsJSON, optionsJSON, visState and searchSourceJSON are valid JSON strings."""
        for obj in load_bundle(bundle):
            attrs = obj["attributes"]
            for key in ("panelsJSON", "optionsJSON", "visState", "uiStateJSON", "fields"):
                if key in attrs:
                    json.loads(attrs[key])
            meta = attrs.get("kibanaSavedObjectMeta")
            if meta:
                json.loads(meta["searchSourceJSON"])

    def test_one_dashboard_holds_every_visual_panel(self, bundle: Path) -> None:
        """The single dashboard references each panel object once, via its panelRefName."""
        objects = load_bundle(bundle)
        (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
        refs = {r["name"]: r for r in dashboard["references"]}
        panel_ids = [_panel_reference(refs, p)["id"] for p in _panels(dashboard)]
        visuals = [o["id"] for o in objects if o["type"] in {"lens", "visualization"}]
        assert sorted(panel_ids) == sorted(visuals)
        assert len(visuals) == 5

    def test_panels_fit_the_grid_without_overlap(self, bundle: Path) -> None:
        """Every panel lies inside the 48-column grid and no two panels overlap."""
        (dashboard,) = [o for o in load_bundle(bundle) if o["type"] == "dashboard"]
        cells: set[tuple[int, int]] = set()
        for panel in _panels(dashboard):
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            assert grid["x"] >= 0
            assert grid["x"] + grid["w"] <= GRID_WIDTH
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & area, panel["panelIndex"]
            cells |= area

    def test_data_views_cover_alerts_and_latest_risk(self, bundle: Path) -> None:
        """The data views point at the alert streams and the latest-risk index, by @timestamp."""
        views = {
            o["attributes"]["title"]: o["attributes"]["timeFieldName"]
            for o in load_bundle(bundle)
            if o["type"] == "index-pattern"
        }
        assert views == {
            "logs-clonewatch.alert-*": "@timestamp",
            "clonewatch-risk-latest*": "@timestamp",
        }


class TestKibanaObjects:
    """Kibana-specific shape: migration versions, Lens layers and dashboard references."""

    def test_migration_versions_are_set(self) -> None:
        """Every object carries coreMigrationVersion 8.8.0 and a typeMigrationVersion."""
        for obj in load_bundle(KIBANA):
            assert obj["coreMigrationVersion"] == "8.8.0"
            assert obj["typeMigrationVersion"]

    def test_lens_layers_reference_their_data_view_and_columns(self) -> None:
        """Each Lens layer has its data-view reference and its columnOrder lists its columns."""
        for obj in load_bundle(KIBANA):
            if obj["type"] != "lens":
                continue
            refs = {r["name"] for r in obj["references"]}
            state = obj["attributes"]["state"]
            for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
                assert f"indexpattern-datasource-layer-{layer_id}" in refs
                assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
            vis = state["visualization"]
            vis_layers = vis.get("layers", [vis])
            for vis_layer in vis_layers:
                columns = state["datasourceStates"]["formBased"]["layers"][vis_layer["layerId"]][
                    "columns"
                ]
                accessors = [vis_layer.get("xAccessor"), vis_layer.get("splitAccessor")]
                accessors += vis_layer.get("accessors", [])
                accessors += [c["columnId"] for c in vis_layer.get("columns", [])]
                assert {a for a in accessors if a} <= set(columns)

    def test_lens_panels_use_the_expected_visualizations(self) -> None:
        """Four XY charts and one data table make up the Lens panels."""
        kinds = Counter(
            o["attributes"]["visualizationType"] for o in load_bundle(KIBANA) if o["type"] == "lens"
        )
        assert kinds == {"lnsXY": 4, "lnsDatatable": 1}

    def test_dashboard_references_follow_the_panel_index_convention(self) -> None:
        """Dashboard references are named <panelIndex>:panel_<panelIndex>."""
        (dashboard,) = [o for o in load_bundle(KIBANA) if o["type"] == "dashboard"]
        names = {r["name"] for r in dashboard["references"]}
        assert names == {f"{p['panelIndex']}:panel_{p['panelIndex']}" for p in _panels(dashboard)}


class TestOpenSearchObjects:
    """OpenSearch Dashboards shape: classic visualizations only, each with an index pattern."""

    def test_no_lens_and_classic_vis_types(self) -> None:
        """There is no Lens object and every visState type is one OSD ships."""
        objects = load_bundle(OPENSEARCH)
        assert {o["type"] for o in objects} == {"index-pattern", "visualization", "dashboard"}
        types = Counter(
            json.loads(o["attributes"]["visState"])["type"]
            for o in objects
            if o["type"] == "visualization"
        )
        assert types == {"histogram": 2, "horizontal_bar": 2, "table": 1}

    def test_aggregation_ids_are_unique_and_orders_point_at_metrics(self) -> None:
        """Agg ids are unique per visualization and terms orderBy names an existing metric agg."""
        for obj in load_bundle(OPENSEARCH):
            if obj["type"] != "visualization":
                continue
            aggs = json.loads(obj["attributes"]["visState"])["aggs"]
            ids = [a["id"] for a in aggs]
            assert len(ids) == len(set(ids))
            metrics = {a["id"] for a in aggs if a["schema"] == "metric"} | {"_count"}
            for agg in aggs:
                if agg["type"] == "terms":
                    assert agg["params"]["orderBy"] in metrics
            assert any(a["schema"] == "metric" for a in aggs)

    def test_migration_versions_are_set(self) -> None:
        """Every object carries a migrationVersion for its own type."""
        for obj in load_bundle(OPENSEARCH):
            assert set(obj["migrationVersion"]) == {obj["type"]}
