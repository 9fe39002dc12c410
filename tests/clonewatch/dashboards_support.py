"""Helpers shared by the dashboard-bundle tests: load the bundles, the generator, the templates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from streams.sinks.search import effective_mappings

ROOT = Path(__file__).resolve().parents[2]
KIBANA = ROOT / "dashboards" / "kibana" / "clonewatch.ndjson"
OPENSEARCH = ROOT / "dashboards" / "opensearch" / "clonewatch.ndjson"

# The kind of index behind each data view, as streams.sinks.search.layout composes it.
VIEW_KINDS: dict[str, Literal["alert", "risk"]] = {
    "logs-clonewatch.alert-*": "alert",
    "clonewatch-risk-latest*": "risk",
}

NUMERIC = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
)
DATE = frozenset({"date", "date_nanos"})
KEYWORD = frozenset({"keyword", "constant_keyword"})


def build_module() -> ModuleType:
    """scripts/build_dashboards.py imported as a module."""
    path = ROOT / "scripts" / "build_dashboards.py"
    spec = importlib.util.spec_from_file_location("build_dashboards", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def load_bundle(path: Path) -> list[dict[str, Any]]:
    """The saved objects of an NDJSON bundle, one per non-empty line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def flatten_properties(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field path -> mapped type (objects become "object"; multi-fields included)."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out[path] = spec.get("type", "object")
            out.update(flatten_properties(spec["properties"], f"{path}."))
        else:
            out[path] = spec.get("type", "object")
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec.get("type", "object")
    return out


def mapped_fields(pattern: str) -> dict[str, str]:
    """The field types of the index behind one pattern: the mappings setup really installs."""
    mappings = effective_mappings(VIEW_KINDS[pattern])
    return flatten_properties(mappings.get("properties", {}))


def kibana_field_uses(objects: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(object id, index pattern, field, needed kind) for every field a Kibana object uses."""
    views = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    uses: list[tuple[str, str, str, str]] = []
    for obj in objects:
        if obj["type"] == "index-pattern":
            uses.append(
                (obj["id"], obj["attributes"]["title"], obj["attributes"]["timeFieldName"], "date")
            )
        if obj["type"] != "lens":
            continue
        refs = {r["name"]: r["id"] for r in obj["references"]}
        layers = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        for layer_id, layer in layers.items():
            pattern = views[refs[f"indexpattern-datasource-layer-{layer_id}"]]
            for column in layer["columns"].values():
                uses.extend((obj["id"], pattern, f, kind) for f, kind in _lens_column_needs(column))
    return uses


def _lens_column_needs(column: dict[str, Any]) -> list[tuple[str, str]]:
    op = column["operationType"]
    source = column.get("sourceField")
    if op == "count":
        return []
    kinds = {
        "date_histogram": "date",
        "terms": "keyword",
        "range": "numeric",
        "max": "numeric",
        "min": "numeric",
        "average": "numeric",
        "sum": "numeric",
        "median": "numeric",
        "last_value": "any",
        "unique_count": "any",
    }
    needs = [(source, kinds[op])]
    sort_field = column.get("params", {}).get("sortField")
    if sort_field:
        needs.append((sort_field, "date"))
    return needs


def opensearch_field_uses(objects: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(object id, index pattern, field, needed kind) for every field an OSD object uses."""
    views = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    kinds = {
        "date_histogram": "date",
        "terms": "keyword",
        "histogram": "numeric",
        "max": "numeric",
        "min": "numeric",
        "avg": "numeric",
        "sum": "numeric",
        "top_hits": "any",
    }
    uses: list[tuple[str, str, str, str]] = []
    for obj in objects:
        if obj["type"] == "index-pattern":
            uses.append(
                (obj["id"], obj["attributes"]["title"], obj["attributes"]["timeFieldName"], "date")
            )
        if obj["type"] != "visualization":
            continue
        refs = {r["name"]: r["id"] for r in obj["references"]}
        source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        pattern = views[refs[source["indexRefName"]]]
        for agg in json.loads(obj["attributes"]["visState"])["aggs"]:
            if agg["type"] == "count":
                continue
            uses.append((obj["id"], pattern, agg["params"]["field"], kinds[agg["type"]]))
            if agg["params"].get("sortField"):
                uses.append((obj["id"], pattern, agg["params"]["sortField"], "date"))
    return uses


def type_problems(
    uses: list[tuple[str, str, str, str]], fields_by_pattern: dict[str, dict[str, str]]
) -> list[str]:
    """Every use whose field is unmapped or mapped with a type the use cannot work on."""
    allowed = {"date": DATE, "keyword": KEYWORD, "numeric": NUMERIC}
    problems: list[str] = []
    for obj_id, pattern, field, kind in uses:
        mapped = fields_by_pattern[pattern].get(field)
        if mapped is None or mapped == "object":
            problems.append(f"{obj_id}: {field} is not a mapped field of {pattern}")
        elif kind != "any" and mapped not in allowed[kind]:
            problems.append(f"{obj_id}: {field} is {mapped} in {pattern}, the panel needs {kind}")
    return problems
