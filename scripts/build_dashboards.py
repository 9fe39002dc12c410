#!/usr/bin/env python3
"""Generate the Kibana and OpenSearch Dashboards saved-object bundles from one panel list.

Usage: ``python scripts/build_dashboards.py [--check]``. Writes
``dashboards/kibana/clonewatch.ndjson`` (data views, Lens panels, one dashboard; Kibana
8.9 or newer, 9.x included) and ``dashboards/opensearch/clonewatch.ndjson`` (index
patterns, classic visualizations, one dashboard). ``--check`` exits 1 when the committed
files differ from what this script produces. The output is deterministic: fixed ids,
sorted keys, no timestamps.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KIBANA_OUT = ROOT / "dashboards" / "kibana" / "clonewatch.ndjson"
OPENSEARCH_OUT = ROOT / "dashboards" / "opensearch" / "clonewatch.ndjson"

ALERTS_VIEW = "clonewatch-alerts"
RISK_VIEW = "clonewatch-risk-latest"
DASHBOARD_ID = "clonewatch-overview"

# Data views: id -> (index pattern, display name, time field)
DATA_VIEWS: dict[str, tuple[str, str, str]] = {
    ALERTS_VIEW: ("logs-clonewatch.alert-*", "Clonewatch alerts", "@timestamp"),
    # The default namespace writes clonewatch-risk-latest, others clonewatch-risk-latest-<ns>.
    RISK_VIEW: ("clonewatch-risk-latest*", "Clonewatch latest risk", "@timestamp"),
}

# Kibana migration versions (see soc-conventions.md); Lens 8.9.0 sets the floor at Kibana 8.9.
KIBANA_CORE_VERSION = "8.8.0"
KIBANA_TYPE_VERSIONS = {"index-pattern": "8.0.0", "lens": "8.9.0", "dashboard": "8.7.0"}
# OpenSearch Dashboards (forked from Kibana 7.10.2) still uses migrationVersion.
OSD_MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}
OSD_PANEL_VERSION = "7.10.2"


@dataclass(frozen=True)
class Bucket:
    """A bucketed dimension: terms over a keyword, a date histogram or a numeric histogram."""

    kind: str  # "terms" | "date_histogram" | "histogram"
    field: str
    label: str
    size: int = 10
    order_by: str | None = None  # id of the metric that orders a terms bucket (else count)


@dataclass(frozen=True)
class Metric:
    """A metric: count, max of a number, or the latest value of any field."""

    id: str
    kind: str  # "count" | "max" | "last_value"
    label: str
    field: str | None = None


@dataclass(frozen=True)
class Panel:
    """One panel of the dashboard, independent of the product that renders it."""

    id: str
    title: str
    description: str
    view: str
    # "bar_stacked", "bar_horizontal_stacked", "bar_horizontal", "histogram" or "table"
    chart: str
    buckets: tuple[Bucket, ...]
    metrics: tuple[Metric, ...]
    split: Bucket | None = None
    grid: tuple[int, int, int, int] = (0, 0, 24, 15)  # x, y, w, h on the 48-wide grid
    extra: dict[str, Any] = field(default_factory=dict)


COUNT = Metric("count", "count", "Alerts")

PANELS: tuple[Panel, ...] = (
    Panel(
        id="clonewatch-alerts-over-time",
        title="Clonewatch: alerts over time by level",
        description="Alerts per interval, stacked by risk level.",
        view=ALERTS_VIEW,
        chart="bar_stacked",
        buckets=(Bucket("date_histogram", "@timestamp", "Time"),),
        metrics=(COUNT,),
        split=Bucket("terms", "clonewatch.risk_level", "Risk level", size=5),
        grid=(0, 0, 32, 14),
    ),
    Panel(
        id="clonewatch-alerts-by-model",
        title="Clonewatch: alerts by model",
        description="Which models are being extracted, stacked by risk level.",
        view=ALERTS_VIEW,
        chart="bar_horizontal_stacked",
        buckets=(Bucket("terms", "clonewatch.model_id", "Model", size=10),),
        metrics=(COUNT,),
        split=Bucket("terms", "clonewatch.risk_level", "Risk level", size=5),
        grid=(32, 0, 16, 14),
    ),
    Panel(
        id="clonewatch-top-clients",
        title="Clonewatch: top clients by risk",
        description="Latest risk per client and model, highest first.",
        view=RISK_VIEW,
        chart="table",
        buckets=(
            Bucket("terms", "user.id", "Client", size=50, order_by="score"),
            Bucket("terms", "clonewatch.model_id", "Model", size=10, order_by="score"),
        ),
        metrics=(
            Metric("score", "max", "Risk score", "user.risk.calculated_score_norm"),
            Metric("level", "last_value", "Level", "user.risk.calculated_level"),
            Metric("queries", "max", "Queries", "clonewatch.queries_observed"),
            Metric("last_seen", "last_value", "Last seen", "@timestamp"),
        ),
        grid=(0, 14, 32, 16),
    ),
    Panel(
        id="clonewatch-risk-distribution",
        title="Clonewatch: risk score distribution",
        description="How many (client, model) pairs sit in each band of the latest risk score.",
        view=RISK_VIEW,
        chart="histogram",
        buckets=(Bucket("histogram", "user.risk.calculated_score_norm", "Risk score"),),
        metrics=(Metric("count", "count", "Client-model pairs"),),
        grid=(32, 14, 16, 16),
        extra={"interval": 10},
    ),
    Panel(
        id="clonewatch-alert-signals",
        title="Clonewatch: signals behind the alerts",
        description="How many alerts each detection signal contributed to, by risk level.",
        view=ALERTS_VIEW,
        chart="bar_horizontal_stacked",
        buckets=(Bucket("terms", "clonewatch.signals.name", "Signal", size=12),),
        metrics=(COUNT,),
        split=Bucket("terms", "clonewatch.risk_level", "Risk level", size=5),
        grid=(0, 30, 48, 14),
    ),
)


def _dumps(value: Any) -> str:
    """Compact, deterministic JSON (for the JSON-in-a-string attributes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ndjson(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n" for obj in objects)


# ---------------------------------------------------------------- Kibana (Lens)


def _lens_bucket_column(bucket: Bucket) -> dict[str, Any]:
    if bucket.kind == "date_histogram":
        return {
            "label": bucket.label,
            "customLabel": True,
            "dataType": "date",
            "operationType": "date_histogram",
            "sourceField": bucket.field,
            "isBucketed": True,
            "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
        }
    if bucket.kind == "histogram":
        return {
            "label": bucket.label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "range",
            "sourceField": bucket.field,
            "isBucketed": True,
            "scale": "interval",
            "params": {
                "type": "histogram",
                "ranges": [{"from": 0, "to": 100, "label": ""}],
                "maxBars": 10,
                "includeEmptyRows": True,
            },
        }
    order: dict[str, Any] = (
        {"type": "column", "columnId": bucket.order_by}
        if bucket.order_by
        else {"type": "column", "columnId": "count"}
    )
    return {
        "label": bucket.label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "terms",
        "sourceField": bucket.field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": bucket.size,
            "orderBy": order,
            "orderDirection": "desc",
            "otherBucket": False,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
    }


def _lens_metric_column(metric: Metric) -> dict[str, Any]:
    if metric.kind == "count":
        return {
            "label": metric.label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "count",
            "sourceField": "___records___",
            "isBucketed": False,
            "scale": "ratio",
            "params": {"emptyAsNull": True},
        }
    if metric.kind == "max":
        return {
            "label": metric.label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "max",
            "sourceField": metric.field,
            "isBucketed": False,
            "scale": "ratio",
            "params": {"emptyAsNull": True},
        }
    data_type = "date" if metric.field == "@timestamp" else "string"
    return {
        "label": metric.label,
        "customLabel": True,
        "dataType": data_type,
        "operationType": "last_value",
        "sourceField": metric.field,
        "isBucketed": False,
        "scale": "ordinal",
        "params": {"sortField": "@timestamp", "showArrayValues": False},
        "filter": {"language": "kuery", "query": f"{metric.field}: *"},
    }


def _lens_visualization(panel: Panel, layer: str, columns: list[str]) -> tuple[str, Any]:
    metric_ids = [m.id for m in panel.metrics]
    if panel.chart == "table":
        return "lnsDatatable", {
            "layerId": layer,
            "layerType": "data",
            "columns": [{"columnId": c, "isTransposed": False} for c in columns],
            "sorting": {"columnId": panel.metrics[0].id, "direction": "desc"},
            "rowHeight": "single",
            "headerRowHeight": "single",
        }
    series = "bar" if panel.chart == "histogram" else panel.chart
    xy_layer: dict[str, Any] = {
        "layerId": layer,
        "layerType": "data",
        "seriesType": series,
        "xAccessor": "x",
        "accessors": metric_ids,
        "palette": {"type": "palette", "name": "default"},
    }
    if panel.split is not None:
        xy_layer["splitAccessor"] = "split"
    return "lnsXY", {
        "legend": {"isVisible": panel.split is not None, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "preferredSeriesType": series,
        "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
        "layers": [xy_layer],
    }


def _lens_object(panel: Panel) -> dict[str, Any]:
    layer = "layer1"
    columns: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    if panel.chart == "table":
        for i, bucket in enumerate(panel.buckets):
            cid = f"bucket{i}"
            columns[cid] = _lens_bucket_column(bucket)
            order.append(cid)
    else:
        (bucket,) = panel.buckets
        columns["x"] = _lens_bucket_column(bucket)
        order.append("x")
        if panel.split is not None:
            columns["split"] = _lens_bucket_column(panel.split)
            order.insert(0, "split")
    for metric in panel.metrics:
        columns[metric.id] = _lens_metric_column(metric)
        order.append(metric.id)
    vis_type, visualization = _lens_visualization(panel, layer, order)
    state = {
        "datasourceStates": {
            "formBased": {
                "layers": {
                    layer: {"columns": columns, "columnOrder": order, "incompleteColumns": {}}
                }
            }
        },
        "visualization": visualization,
        "query": {"language": "kuery", "query": ""},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    return {
        "id": panel.id,
        "type": "lens",
        "attributes": {
            "title": panel.title,
            "description": panel.description,
            "visualizationType": vis_type,
            "state": state,
        },
        "references": [
            {
                "type": "index-pattern",
                "id": panel.view,
                "name": f"indexpattern-datasource-layer-{layer}",
            }
        ],
        "coreMigrationVersion": KIBANA_CORE_VERSION,
        "typeMigrationVersion": KIBANA_TYPE_VERSIONS["lens"],
        "managed": False,
    }


def _dashboard_attributes(panels_json: list[dict[str, Any]], description: str) -> dict[str, Any]:
    return {
        "title": "Clonewatch: model extraction",
        "description": description,
        "panelsJSON": _dumps(panels_json),
        "optionsJSON": _dumps({"useMargins": True, "syncColors": True, "hidePanelTitles": False}),
        "version": 1,
        "timeRestore": True,
        "timeFrom": "now-7d",
        "timeTo": "now",
        "refreshInterval": {"pause": False, "value": 60000},
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": _dumps({"query": {"language": "kuery", "query": ""}, "filter": []})
        },
    }


DASHBOARD_DESCRIPTION = (
    "Which API clients are extracting which model, since when, and why "
    "(alerts in logs-clonewatch.alert-*, latest risk in clonewatch-risk-latest*)."
)


def kibana_objects() -> list[dict[str, Any]]:
    """Data views, one Lens object per panel and the dashboard, in import order."""
    objects: list[dict[str, Any]] = []
    for view_id, (pattern, name, time_field) in DATA_VIEWS.items():
        objects.append(
            {
                "id": view_id,
                "type": "index-pattern",
                "attributes": {
                    "title": pattern,
                    "name": name,
                    "timeFieldName": time_field,
                    "allowNoIndex": True,
                    "fields": "[]",
                    "fieldFormatMap": "{}",
                    "runtimeFieldMap": "{}",
                    "typeMeta": "{}",
                },
                "references": [],
                "coreMigrationVersion": KIBANA_CORE_VERSION,
                "typeMigrationVersion": KIBANA_TYPE_VERSIONS["index-pattern"],
                "managed": False,
            }
        )
    panels_json: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    for index, panel in enumerate(PANELS, start=1):
        objects.append(_lens_object(panel))
        x, y, w, h = panel.grid
        key = f"p{index}"
        panels_json.append(
            {
                "type": "lens",
                "panelIndex": key,
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": key},
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{key}",
            }
        )
        references.append({"type": "lens", "id": panel.id, "name": f"{key}:panel_{key}"})
    objects.append(
        {
            "id": DASHBOARD_ID,
            "type": "dashboard",
            "attributes": _dashboard_attributes(panels_json, DASHBOARD_DESCRIPTION),
            "references": references,
            "coreMigrationVersion": KIBANA_CORE_VERSION,
            "typeMigrationVersion": KIBANA_TYPE_VERSIONS["dashboard"],
            "managed": False,
        }
    )
    return objects


# ------------------------------------------------- OpenSearch Dashboards (classic)


def _osd_metric_agg(metric: Metric, agg_id: str) -> dict[str, Any]:
    if metric.kind == "count":
        return {
            "id": agg_id,
            "enabled": True,
            "type": "count",
            "schema": "metric",
            "params": {"customLabel": metric.label},
        }
    if metric.kind == "max":
        return {
            "id": agg_id,
            "enabled": True,
            "type": "max",
            "schema": "metric",
            "params": {"field": metric.field, "customLabel": metric.label},
        }
    return {
        "id": agg_id,
        "enabled": True,
        "type": "top_hits",
        "schema": "metric",
        "params": {
            "field": metric.field,
            "aggregate": "concat",
            "size": 1,
            "sortField": "@timestamp",
            "sortOrder": "desc",
            "customLabel": metric.label,
        },
    }


def _osd_bucket_agg(
    bucket: Bucket, agg_id: str, schema: str, metric_ids: dict[str, str], interval: int
) -> dict[str, Any]:
    if bucket.kind == "date_histogram":
        params: dict[str, Any] = {
            "field": bucket.field,
            "interval": "auto",
            "min_doc_count": 1,
            "extended_bounds": {},
            "customLabel": bucket.label,
        }
        agg_type = "date_histogram"
    elif bucket.kind == "histogram":
        params = {
            "field": bucket.field,
            "interval": interval,
            "min_doc_count": False,
            "has_extended_bounds": True,
            "extended_bounds": {"min": 0, "max": 100},
            "customLabel": bucket.label,
        }
        agg_type = "histogram"
    else:
        params = {
            "field": bucket.field,
            "size": bucket.size,
            "order": "desc",
            "orderBy": metric_ids[bucket.order_by or "count"],
            "otherBucket": False,
            "missingBucket": False,
            "customLabel": bucket.label,
        }
        agg_type = "terms"
    return {"id": agg_id, "enabled": True, "type": agg_type, "schema": schema, "params": params}


def _osd_vis_params(panel: Panel) -> tuple[str, dict[str, Any]]:
    if panel.chart == "table":
        return "table", {
            "perPage": 20,
            "showPartialRows": False,
            "showMetricsAtAllLevels": False,
            "showTotal": False,
            "sort": {"columnIndex": None, "direction": None},
            "totalFunc": "sum",
            "percentageCol": "",
        }
    horizontal = panel.chart.startswith("bar_horizontal")
    vis_type = "horizontal_bar" if horizontal else "histogram"
    mode = "stacked" if panel.chart.endswith("stacked") else "normal"
    category_position = "left" if horizontal else "bottom"
    value_position = "bottom" if horizontal else "left"
    return vis_type, {
        "type": vis_type,
        "addTooltip": True,
        "addLegend": panel.split is not None,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": category_position,
                "show": True,
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": value_position,
                "show": True,
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": panel.metrics[0].label},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": "histogram",
                "mode": mode,
                "data": {"id": "1", "label": panel.metrics[0].label},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "showCircles": True,
            }
        ],
    }


def _osd_visualization(panel: Panel) -> dict[str, Any]:
    aggs: list[dict[str, Any]] = []
    metric_ids: dict[str, str] = {}
    for metric in panel.metrics:
        agg_id = str(len(aggs) + 1)
        metric_ids[metric.id] = agg_id
        aggs.append(_osd_metric_agg(metric, agg_id))
    if "count" not in metric_ids:
        metric_ids["count"] = "_count"
    interval = int(panel.extra.get("interval", 10))
    bucket_schema = "bucket" if panel.chart == "table" else "segment"
    for bucket in panel.buckets:
        aggs.append(
            _osd_bucket_agg(bucket, str(len(aggs) + 1), bucket_schema, metric_ids, interval)
        )
    if panel.split is not None:
        aggs.append(_osd_bucket_agg(panel.split, str(len(aggs) + 1), "group", metric_ids, interval))
    vis_type, params = _osd_vis_params(panel)
    vis_state = {"title": panel.title, "type": vis_type, "params": params, "aggs": aggs}
    return {
        "id": panel.id,
        "type": "visualization",
        "attributes": {
            "title": panel.title,
            "description": panel.description,
            "visState": _dumps(vis_state),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": _dumps(
                    {
                        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
                        "query": {"language": "kuery", "query": ""},
                        "filter": [],
                    }
                )
            },
        },
        "references": [
            {
                "type": "index-pattern",
                "id": panel.view,
                "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            }
        ],
        "migrationVersion": {"visualization": OSD_MIGRATION["visualization"]},
    }


def opensearch_objects() -> list[dict[str, Any]]:
    """Index patterns, one classic visualization per panel and the dashboard."""
    objects: list[dict[str, Any]] = []
    for view_id, (pattern, _name, time_field) in DATA_VIEWS.items():
        objects.append(
            {
                "id": view_id,
                "type": "index-pattern",
                "attributes": {"title": pattern, "timeFieldName": time_field, "fields": "[]"},
                "references": [],
                "migrationVersion": {"index-pattern": OSD_MIGRATION["index-pattern"]},
            }
        )
    panels_json: list[dict[str, Any]] = []
    references: list[dict[str, str]] = []
    for index, panel in enumerate(PANELS):
        objects.append(_osd_visualization(panel))
        x, y, w, h = panel.grid
        key = str(index + 1)
        panels_json.append(
            {
                "version": OSD_PANEL_VERSION,
                "panelIndex": key,
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": key},
                "embeddableConfig": {},
                "panelRefName": f"panel_{index}",
            }
        )
        references.append({"type": "visualization", "id": panel.id, "name": f"panel_{index}"})
    attributes = _dashboard_attributes(panels_json, DASHBOARD_DESCRIPTION)
    attributes.pop("refreshInterval")
    attributes["refreshInterval"] = {"pause": False, "value": 60000, "display": "1 minute"}
    objects.append(
        {
            "id": DASHBOARD_ID,
            "type": "dashboard",
            "attributes": attributes,
            "references": references,
            "migrationVersion": {"dashboard": OSD_MIGRATION["dashboard"]},
        }
    )
    return objects


def render() -> dict[Path, str]:
    """The text of each bundle file, keyed by its path."""
    return {KIBANA_OUT: _ndjson(kibana_objects()), OPENSEARCH_OUT: _ndjson(opensearch_objects())}


def main(argv: list[str] | None = None) -> int:
    """Write the bundles, or with ``--check`` report whether the committed ones are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run scripts/build_dashboards.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
