"""The self-contained HTML report of the embedded default (no cluster, no CDN, opens offline).

One file: clients ranked by risk, a risk-over-time chart per flagged (client, model) with
its alert points (inline SVG drawn here), the signals behind each alert, and the
evaluation table when there is one. Inputs are the wire forms of schemas/alert.py:
alerts and risk scores as dicts (``@timestamp``, ``user.id``, ``clonewatch.*``...).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from schemas.alert import LEVEL_ORDER, level_for_score
from streams.logread import MalformedLogError, UnreadableInputError, read_objects

log = structlog.get_logger(__name__)

MAX_CHARTS = 40  # flagged (client, model) pairs drawn; the ranking table lists every pair
MAX_POINTS = 600  # points per risk line after down-sampling
LEVEL_COLORS = {
    "none": "#8a94a6",
    "low": "#d6a400",
    "moderate": "#e07b00",
    "high": "#d13212",
    "critical": "#7a0019",
}
_RANK: dict[str, int] = {str(level): rank for level, rank in LEVEL_ORDER.items()}
LINE_COLOR = "#1f5fbf"
BANDS = (
    ("low", 20.0, 40.0),
    ("moderate", 40.0, 70.0),
    ("high", 70.0, 90.0),
    ("critical", 90.0, 100.0),
)


class ReportInputError(ValueError):
    """An input file could not be read as the wire form it should hold."""


def field_value(record: Mapping[str, Any], dotted: str) -> Any:
    """A field of a wire record by dotted path (nested objects, or flat dotted keys).

    >>> field_value({"user": {"id": "c1"}}, "user.id"), field_value({"user.id": "c2"}, "user.id")
    ('c1', 'c2')
    """
    if dotted in record:
        return record[dotted]
    current: Any = record
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 string or a number; None if neither.

    >>> parse_time("2024-05-01T00:00:10Z"), parse_time(5)
    (1714521610.0, 5.0)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file (gzip accepted, blank lines skipped)."""
    try:
        return list(read_objects(path))
    except (UnreadableInputError, MalformedLogError) as exc:
        raise ReportInputError(str(exc)) from exc


def load_json(path: Path) -> Any:
    """One JSON document."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not JSON: {exc.msg}") from exc


# ------------------------------------------------------------------ the model


@dataclass
class Signal:
    """One signal's contribution to an alert."""

    name: str
    value: float | None
    score: float


@dataclass
class AlertPoint:
    """An alert, reduced to what the report shows."""

    time: float
    level: str
    score: float
    queries: int | None
    message: str
    signals: list[Signal]


@dataclass
class Pair:
    """Everything known about one (client, model)."""

    client: str
    model: str
    series: list[tuple[float, float]] = field(default_factory=list)
    alerts: list[AlertPoint] = field(default_factory=list)
    latest_level: str = "none"
    latest_score: float = 0.0
    latest_time: float = -math.inf
    queries: int | None = None

    @property
    def peak(self) -> float:
        """The highest score seen, in risk scores or alerts."""
        values = [s for _, s in self.series] + [a.score for a in self.alerts]
        return max(values, default=0.0)

    @property
    def last_seen(self) -> float | None:
        """The last time the pair was scored or alerted on."""
        times = [t for t, _ in self.series] + [a.time for a in self.alerts]
        return max(times, default=None)

    @property
    def peak_level(self) -> str:
        """The highest level reached."""
        levels = [a.level for a in self.alerts if a.level in _RANK]
        levels.append(level_for_score(self.peak))
        return max(levels, key=lambda lv: _RANK.get(lv, 0))


def _pair(pairs: dict[tuple[str, str], Pair], record: Mapping[str, Any]) -> Pair | None:
    client = field_value(record, "user.id")
    model = field_value(record, "clonewatch.model_id")
    if client is None:
        return None
    key = (str(client), str(model) if model is not None else "")
    if key not in pairs:
        pairs[key] = Pair(*key)
    return pairs[key]


def _queries(record: Mapping[str, Any]) -> int | None:
    value = field_value(record, "clonewatch.queries_observed")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_pairs(
    alerts: Iterable[Mapping[str, Any]], scores: Iterable[Mapping[str, Any]]
) -> list[Pair]:
    """(client, model) pairs ranked by peak risk, then latest risk, then name."""
    pairs: dict[tuple[str, str], Pair] = {}
    for record in scores:
        pair = _pair(pairs, record)
        t = parse_time(field_value(record, "@timestamp"))
        score = _number(field_value(record, "user.risk.calculated_score_norm"))
        if pair is None or t is None or score is None:
            continue
        pair.series.append((t, score))
        queries = _queries(record)
        if queries is not None:
            pair.queries = max(pair.queries or 0, queries)
        if t >= pair.latest_time:
            pair.latest_time = t
            pair.latest_score = score
            level = field_value(record, "user.risk.calculated_level")
            pair.latest_level = str(level) if level else level_for_score(score)
    for record in alerts:
        pair = _pair(pairs, record)
        t = parse_time(field_value(record, "@timestamp"))
        if pair is None or t is None:
            continue
        score = _number(field_value(record, "event.risk_score_norm"))
        score = score if score is not None else _number(field_value(record, "event.risk_score"))
        signals = [
            Signal(str(raw["name"]), _number(raw.get("value")), _number(raw.get("score")) or 0.0)
            for raw in field_value(record, "clonewatch.signals") or []
            if isinstance(raw, Mapping) and raw.get("name") is not None
        ]
        signals.sort(key=lambda s: -s.score)
        level = field_value(record, "clonewatch.risk_level")
        queries = _queries(record)
        if queries is not None:
            pair.queries = max(pair.queries or 0, queries)
        pair.alerts.append(
            AlertPoint(
                t,
                str(level) if level else level_for_score(score or 0.0),
                score or 0.0,
                queries,
                str(field_value(record, "message") or ""),
                signals,
            )
        )
        if not pair.series and t >= pair.latest_time:
            pair.latest_time, pair.latest_score = t, score or 0.0
            pair.latest_level = pair.alerts[-1].level
    for pair in pairs.values():
        pair.series.sort()
        pair.alerts.sort(key=lambda a: a.time)
    return sorted(pairs.values(), key=lambda p: (-p.peak, -p.latest_score, p.client, p.model))


def _downsample(
    series: list[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    """At most ``limit`` points, keeping each bucket's maximum so peaks survive."""
    if len(series) <= limit:
        return series
    size = math.ceil(len(series) / limit)
    out = [max(series[i : i + size], key=lambda p: p[1]) for i in range(0, len(series), size)]
    if out[-1] != series[-1]:
        out.append(series[-1])
    return out


# ------------------------------------------------------------------ rendering


def risk_chart_svg(pair: Pair, width: int = 760, height: int = 240) -> str:
    """An inline SVG: the pair's risk over time, level bands, and its alerts as points."""
    left, right, top, bottom = 44, 12, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [t for t, _ in pair.series] + [a.time for a in pair.alerts]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    if t1 - t0 < 1.0:
        t0, t1 = t0 - 30.0, t1 + 30.0

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(score: float) -> float:
        return top + (1.0 - max(0.0, min(100.0, score)) / 100.0) * plot_h

    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Risk of {_e(pair.client)} on {_e(pair.model)} over time</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#ffffff" '
        'stroke="#c9ced6"/>',
    ]
    for level, low, high in BANDS:
        parts.append(
            f'<rect x="{left}" y="{y(high):.1f}" width="{plot_w}" '
            f'height="{y(low) - y(high):.1f}" fill="{LEVEL_COLORS[level]}" fill-opacity="0.08"/>'
        )
    parts.extend(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
        'stroke="#dde1e7" stroke-width="1"/>'
        f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
        f'class="tick">{tick}</text>'
        for tick in (0, 20, 40, 70, 90, 100)
    )
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 10}" text-anchor="{anchor}" class="tick">'
            f"{_e(_fmt_time(t))}</text>"
        )
    points = _downsample(pair.series)
    if len(points) == 1:
        (t, s) = points[0]
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(s):.1f}" r="3" fill="{LINE_COLOR}"/>')
    elif points:
        path = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in points)
        parts.append(
            f'<polyline class="risk-line" points="{path}" fill="none" stroke="{LINE_COLOR}" '
            'stroke-width="2" stroke-linejoin="round"/>'
        )
    for alert in pair.alerts:
        color = LEVEL_COLORS.get(alert.level, LEVEL_COLORS["none"])
        parts.append(
            f'<circle class="alert-point" cx="{x(alert.time):.1f}" cy="{y(alert.score):.1f}" '
            f'r="6" fill="{color}" stroke="#ffffff" stroke-width="1.5">'
            f"<title>{_e(alert.level)} alert at {_e(_fmt_time(alert.time))}: risk "
            f"{alert.score:.1f}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _level_badge(level: str) -> str:
    color = LEVEL_COLORS.get(level, LEVEL_COLORS["none"])
    return f'<span class="badge" style="background:{color}">{_e(level)}</span>'


def _truth_labels(truth: Any) -> dict[str, str]:
    """Client id -> label from a truth file of any of the usual shapes."""
    labels: dict[str, str] = {}

    def label_of(entry: Any) -> str:
        if isinstance(entry, Mapping):
            for key in ("kind", "label", "role", "family", "attack", "type"):
                if entry.get(key) is not None:
                    return str(entry[key])
            if "attacker" in entry:
                return "attacker" if entry["attacker"] else "benign"
            return json.dumps(entry, sort_keys=True)[:60]
        if isinstance(entry, bool):
            return "attacker" if entry else "benign"
        return str(entry)

    container = truth.get("clients", truth) if isinstance(truth, Mapping) else truth
    if isinstance(container, Mapping):
        for client, entry in container.items():
            labels[str(client)] = label_of(entry)
    elif isinstance(container, list):
        for entry in container:
            if isinstance(entry, Mapping):
                client = entry.get("client_id", entry.get("client", entry.get("id")))
                if client is not None:
                    labels[str(client)] = label_of(entry)
    return labels


def _ranking_table(pairs: list[Pair], truth: dict[str, str]) -> str:
    head = [
        "#",
        "Client",
        "Model",
        "Peak risk",
        "Level",
        "Latest risk",
        "Queries",
        "Alerts",
        "First alert",
        "Last seen",
    ]
    if truth:
        head.append("Truth")
    rows = []
    for rank, pair in enumerate(pairs, start=1):
        first = _fmt_time(pair.alerts[0].time) if pair.alerts else ""
        anchor = f'<a href="#pair-{rank}">{_e(pair.client)}</a>' if pair.alerts else _e(pair.client)
        cells = [
            f'<td data-v="{rank}">{rank}</td>',
            f"<td>{anchor}</td>",
            f"<td>{_e(pair.model)}</td>",
            f'<td data-v="{pair.peak:.3f}">{pair.peak:.1f}</td>',
            f'<td data-v="{_RANK.get(pair.peak_level, 0)}">{_level_badge(pair.peak_level)}</td>',
            f'<td data-v="{pair.latest_score:.3f}">{pair.latest_score:.1f}</td>',
            f'<td data-v="{pair.queries or 0}">{_fmt_number(pair.queries)}</td>',
            f'<td data-v="{len(pair.alerts)}">{len(pair.alerts)}</td>',
            f"<td>{_e(first)}</td>",
            f"<td>{_e(_fmt_time(pair.last_seen))}</td>",
        ]
        if truth:
            cells.append(f"<td>{_e(truth.get(pair.client, ''))}</td>")
        flagged = ' class="flagged"' if pair.alerts else ""
        rows.append(f"<tr{flagged}>{''.join(cells)}</tr>")
    header = "".join(f'<th data-col="{i}">{_e(h)}</th>' for i, h in enumerate(head))
    return (
        '<table id="ranking" class="sortable"><thead><tr>'
        f"{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _signals_cell(signals: list[Signal]) -> str:
    if not signals:
        return '<span class="muted">no signal detail</span>'
    items = []
    for sig in signals:
        width = max(0.0, min(100.0, sig.score))
        value = f" (value {_fmt_number(sig.value)})" if sig.value is not None else ""
        items.append(
            f'<div class="sig"><span class="sig-name">{_e(sig.name)}</span>'
            f'<span class="bar"><span style="width:{width:.1f}%"></span></span>'
            f'<span class="sig-score">{sig.score:.1f}{_e(value)}</span></div>'
        )
    return "".join(items)


def _pair_section(rank: int, pair: Pair, truth: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td>{_e(_fmt_time(a.time))}</td><td>{_level_badge(a.level)}</td>"
        f"<td>{a.score:.1f}</td><td>{_fmt_number(a.queries)}</td>"
        f"<td>{_signals_cell(a.signals)}</td></tr>"
        for a in pair.alerts
    )
    label = truth.get(pair.client)
    truth_note = f' <span class="muted">truth: {_e(label)}</span>' if label else ""
    last = pair.alerts[-1].message if pair.alerts else ""
    message = f'<p class="message">{_e(last)}</p>' if last else ""
    return (
        f'<section class="pair" id="pair-{rank}"><h3>#{rank} {_e(pair.client)} '
        f'<span class="muted">on</span> {_e(pair.model)} {_level_badge(pair.peak_level)}'
        f"{truth_note}</h3>{message}{risk_chart_svg(pair)}"
        '<table class="alerts"><thead><tr><th>Alert time</th><th>Level</th><th>Risk</th>'
        "<th>Queries</th><th>Signals behind it (points of risk)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _render_value(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: lists of objects as tables, objects as key/value tables."""
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        columns: list[str] = []
        for row in value:
            columns.extend(k for k in row if k not in columns)
        head = "".join(f"<th>{_e(c)}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{_render_value(row.get(c), depth + 1)}</td>" for c in columns)
            + "</tr>"
            for row in value
        )
        return f'<table class="eval"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if isinstance(value, list):
        return _e(
            ", ".join(
                _fmt_number(v) if not isinstance(v, dict | list) else json.dumps(v) for v in value
            )
        )
    if isinstance(value, Mapping):
        if depth >= 3:
            return f"<code>{_e(json.dumps(value, sort_keys=True))}</code>"
        rows = "".join(
            f"<tr><th>{_e(k)}</th><td>{_render_value(v, depth + 1)}</td></tr>"
            for k, v in value.items()
        )
        return f'<table class="kv">{rows}</table>'
    return _e(_fmt_number(value))


def _evaluation_section(evaluation: Mapping[str, Any]) -> str:
    parts = ['<section id="evaluation"><h2>Evaluation against the truth labels</h2>']
    for key, value in evaluation.items():
        parts.append(f"<h3>{_e(key)}</h3>{_render_value(value)}")
    parts.append("</section>")
    return "".join(parts)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232b;
background:#f4f6f9}
header{background:#16213a;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c4cde0}main{padding:16px 28px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 16px;margin:14px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{padding:4px 8px;text-align:left;
border-bottom:1px solid #eceff3;vertical-align:top}th{background:#f0f2f6;font-weight:600}
#ranking th{cursor:pointer;user-select:none}#ranking tr.flagged td:first-child{border-left:3px
solid #d13212}.badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}
.muted{color:#6b7585;font-weight:normal}.summary span{display:inline-block;margin-right:22px}
.summary b{font-size:20px;display:block}
.chart{display:block;margin:6px 0;max-width:100%;height:auto}
.tick{font-size:10px;fill:#5b6474}.sig{display:flex;align-items:center;gap:8px}
.sig-name{width:170px;overflow:hidden;text-overflow:ellipsis}.bar{display:inline-block;width:160px;
height:9px;background:#eceff3;border-radius:2px}.bar span{display:block;height:9px;
background:#3a9d8f;border-radius:2px}.sig-score{font-variant-numeric:tabular-nums;color:#3b4350}
.message{margin:2px 0 6px;color:#3b4350}table.kv th{width:30%}code{font-size:12px}
"""

# Sorts the ranking table by a clicked column (numeric through data-v), then marks the page
# ready; the browser test checks that mark, so a script error shows up as a failure.
_JS = """
(function () {
  "use strict";
  var table = document.getElementById("ranking");
  if (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var desc = th.getAttribute("data-dir") !== "desc";
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var vx = x.hasAttribute("data-v") ? parseFloat(x.getAttribute("data-v")) : x.textContent;
          var vy = y.hasAttribute("data-v") ? parseFloat(y.getAttribute("data-v")) : y.textContent;
          var r = vx < vy ? -1 : vx > vy ? 1 : 0;
          return desc ? -r : r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        th.setAttribute("data-dir", desc ? "desc" : "asc");
      });
    });
  }
  document.body.setAttribute("data-report", "ready");
})();
"""


def render_report(
    alerts: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    evaluation: Mapping[str, Any] | None = None,
    truth: Any = None,
    title: str = "Clonewatch report",
) -> str:
    """The report as one HTML string."""
    pairs = build_pairs(alerts, scores)
    labels = _truth_labels(truth) if truth is not None else {}
    flagged = [(rank, p) for rank, p in enumerate(pairs, start=1) if p.alerts]
    times = [t for p in pairs for t in ([t for t, _ in p.series] + [a.time for a in p.alerts])]
    span = f"{_fmt_time(min(times))} to {_fmt_time(max(times))} UTC" if times else "no data"
    by_level: dict[str, int] = {}
    for pair in pairs:
        for alert in pair.alerts:
            by_level[alert.level] = by_level.get(alert.level, 0) + 1
    level_text = ", ".join(
        f"{n} {lv}" for lv, n in sorted(by_level.items(), key=lambda kv: -_RANK.get(kv[0], 0))
    )
    level_note = f" ({_e(level_text)})" if level_text else ""
    clients = {p.client for p in pairs}
    flagged_clients = {p.client for _, p in flagged}
    charts = "".join(_pair_section(rank, pair, labels) for rank, pair in flagged[:MAX_CHARTS])
    if len(flagged) > MAX_CHARTS:
        charts += (
            f'<p class="muted">{len(flagged) - MAX_CHARTS} more flagged pairs are listed in the '
            "ranking above without a chart.</p>"
        )
    if not flagged:
        charts = '<p class="muted">No client was flagged.</p>'
    evaluation_html = _evaluation_section(evaluation) if evaluation else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{_e(title)}</h1><p>Model-extraction risk of API clients, {_e(span)}</p></header>
<main>
<section class="summary">
<span><b>{len(clients)}</b>clients</span><span><b>{len(pairs)}</b>client-model pairs</span>
<span><b>{len(flagged_clients)}</b>flagged clients</span>
<span><b>{sum(by_level.values())}</b>alerts{level_note}</span>
</section>
<section><h2>Clients ranked by risk</h2>
<p class="muted">One row per client and model, highest peak risk first; click a header to sort.
Levels: low 20-40, moderate 40-70, high 70-90, critical 90 and above.</p>
{_ranking_table(pairs, labels)}</section>
<h2>Flagged clients: risk over time and the signals behind each alert</h2>
{charts}
{evaluation_html}
</main>
<script>{_JS}</script>
</body></html>
"""


def write_report(
    out: Path,
    alerts: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    truth: Any = None,
) -> Path:
    """Write the report to ``out`` (parents created) and return the path."""
    text = render_report(alerts, scores, evaluation, truth)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("report_written", path=str(out), alerts=len(alerts), scores=len(scores))
    return out
