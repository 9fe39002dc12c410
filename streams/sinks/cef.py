"""ArcSight Common Event Format (CEF): exact escaping, alert formatting and a parser.

A CEF line is ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension``.
Header fields escape ``\\`` and ``|``; extension values escape ``\\``, ``=`` and line
breaks (``\\n``, ``\\r``); extension keys are alphanumeric. The parser here is the exact
inverse of the formatter (used by the tests and by anyone checking a line).

>>> line = format_cef(CefEvent(signature_id="x", name="a|b", severity=7,
...                            extension={"msg": "k=v\\nnext", "cs1": "back\\\\slash"}))
>>> line
'CEF:0|Clonewatch|Clonewatch|0.1.0|x|a\\\\|b|7|msg=k\\\\=v\\\\nnext cs1=back\\\\\\\\slash'
>>> parse_cef(line) == CefEvent(signature_id="x", name="a|b", severity=7,
...                             extension={"msg": "k=v\\nnext", "cs1": "back\\\\slash"})
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.version import VERSION

CEF_VERSION = 0
VENDOR = "Clonewatch"
PRODUCT = "Clonewatch"
RISK_SIGNATURE_ID = "clonewatch:risk"

# CEF severity 0-10 (ArcSight: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high).
CEF_SEVERITY_BY_LEVEL: dict[str, int] = {
    "none": 0,
    "low": 3,
    "moderate": 5,
    "high": 8,
    "critical": 10,
}

_KEY_RE = re.compile(r"^[A-Za-z0-9_]+$")


class CefError(ValueError):
    """A value that cannot be expressed in CEF, or a line that is not CEF."""


def escape_header(value: str) -> str:
    """Escape a header field: backslash and pipe; line breaks become spaces (headers are one line).

    >>> escape_header("a|b\\\\c")
    'a\\\\|b\\\\\\\\c'
    """
    escaped = value.replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(value: str) -> str:
    """Escape an extension value: backslash, equals sign and line breaks.

    >>> escape_extension("a=b\\nc\\\\")
    'a\\\\=b\\\\nc\\\\\\\\'
    """
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def unescape_header(value: str) -> str:
    """The inverse of :func:`escape_header` (for values without line breaks)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "\\|":
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_EXT_UNESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def unescape_extension(value: str) -> str:
    """The inverse of :func:`escape_extension`; unknown escapes are kept as written."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in _EXT_UNESCAPES:
            out.append(_EXT_UNESCAPES[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class CefEvent:
    """One CEF event: the header fields and the extension (key -> unescaped value)."""

    signature_id: str
    name: str
    severity: int
    extension: dict[str, str] = field(default_factory=dict)
    vendor: str = VENDOR
    product: str = PRODUCT
    version: str = VERSION


def format_cef(event: CefEvent) -> str:
    """The CEF line of an event (no trailing newline)."""
    if not 0 <= event.severity <= 10:
        raise CefError(f"CEF severity must be 0-10, got {event.severity}")
    header = "|".join(
        escape_header(part)
        for part in (event.vendor, event.product, event.version, event.signature_id, event.name)
    )
    pairs: list[str] = []
    for key, value in event.extension.items():
        if not _KEY_RE.match(key):
            raise CefError(f"invalid CEF extension key {key!r}")
        pairs.append(f"{key}={escape_extension(value)}")
    return f"CEF:{CEF_VERSION}|{header}|{event.severity}|{' '.join(pairs)}"


def _split_header(line: str) -> tuple[list[str], str]:
    """The seven raw header fields (after ``CEF:``) and the raw extension."""
    fields: list[str] = []
    start = 0
    i = 0
    while i < len(line) and len(fields) < 7:
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "|":
            fields.append(line[start:i])
            start = i + 1
        i += 1
    if len(fields) < 7:
        raise CefError("a CEF line has 7 pipe-separated header fields before the extension")
    return fields, line[start:]


def parse_extension(raw: str) -> dict[str, str]:
    """The key/value pairs of a raw extension string (values unescaped).

    A key is the run of key characters just before an unescaped ``=``; a value runs
    until the space that precedes the next key.

    >>> parse_extension("msg=a b c\\\\=d cnt=3")
    {'msg': 'a b c=d', 'cnt': '3'}
    """
    # Positions of every unescaped '='.
    equals: list[int] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == "=":
            equals.append(i)
        i += 1
    keys: list[tuple[int, int]] = []  # (key start, position of '=')
    for pos in equals:
        start = pos
        while start > 0 and (raw[start - 1].isalnum() or raw[start - 1] == "_"):
            start -= 1
        if start == pos or (start > 0 and raw[start - 1] != " "):
            raise CefError(f"unescaped '=' without a key at offset {pos}")
        keys.append((start, pos))
    if not keys:
        if raw.strip():
            raise CefError("extension text without any key=value pair")
        return {}
    if raw[: keys[0][0]].strip():
        raise CefError("text before the first extension key")
    result: dict[str, str] = {}
    for n, (start, pos) in enumerate(keys):
        end = keys[n + 1][0] - 1 if n + 1 < len(keys) else len(raw)
        result[raw[start:pos]] = unescape_extension(raw[pos + 1 : end])
    return result


def parse_cef(line: str) -> CefEvent:
    """Parse one CEF line (anything before ``CEF:``, such as a syslog header, is ignored)."""
    at = line.find("CEF:")
    if at < 0:
        raise CefError("no 'CEF:' prefix")
    fields, raw_ext = _split_header(line[at + 4 :])
    if fields[0] != str(CEF_VERSION):
        raise CefError(f"unsupported CEF version {fields[0]!r}")
    try:
        severity = int(fields[6])
    except ValueError as exc:
        raise CefError(f"non-numeric severity {fields[6]!r}") from exc
    vendor, product, version, signature_id, name = (unescape_header(f) for f in fields[1:6])
    return CefEvent(
        signature_id=signature_id,
        name=name,
        severity=severity,
        extension=parse_extension(raw_ext),
        vendor=vendor,
        product=product,
        version=version,
    )


def epoch_millis(timestamp: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 timestamp (naive means UTC).

    >>> epoch_millis("1970-01-01T00:00:01.5Z")
    1500
    """
    parsed = datetime.fromisoformat(timestamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def _signals_text(signals: Any) -> str:
    """``name:score`` pairs of the signals, strongest first (what the SIEM analyst reads)."""
    if not isinstance(signals, list):
        return ""
    parts: list[tuple[float, str]] = []
    for sig in signals:
        if isinstance(sig, Mapping):
            score = float(sig.get("score", 0.0))
            parts.append((score, f"{sig.get('name', '?')}:{score:.1f}"))
    return ",".join(text for _, text in sorted(parts, key=lambda p: -p[0]))


def _labelled(ext: dict[str, str], slot: str, label: str, value: object) -> None:
    if value is None or value == "":
        return
    ext[slot] = str(value)
    ext[f"{slot}Label"] = label


def alert_to_cef(doc: Mapping[str, Any], *, device_host: str | None = None) -> CefEvent:
    """The CEF event of an alert's wire document (``Alert.to_dict()``)."""
    event = doc.get("event", {})
    ctx = doc.get("clonewatch", {})
    rule = doc.get("rule", {})
    threat = doc.get("threat", {})
    level = str(ctx.get("risk_level", "none"))
    ext: dict[str, str] = {}
    if "@timestamp" in doc:
        ext["rt"] = str(epoch_millis(str(doc["@timestamp"])))
    ext["suser"] = str(doc.get("user", {}).get("id", ""))
    source_ip = doc.get("source", {}).get("ip")
    if source_ip:
        ext["src"] = str(source_ip)
    ext["act"] = "throttled" if "denied" in event.get("type", []) else "alert"
    ext["cat"] = "/".join(str(c) for c in event.get("category", []))
    ext["cnt"] = str(int(ctx.get("queries_observed", 0)))
    ext["msg"] = str(doc.get("message", ""))
    ext["externalId"] = str(event.get("id", ""))
    if device_host:
        ext["dvchost"] = device_host
    _labelled(ext, "cs1", "model", ctx.get("model_id"))
    _labelled(ext, "cs2", "riskLevel", level)
    _labelled(ext, "cs3", "triggerEventId", ctx.get("trigger_event_id"))
    _labelled(ext, "cs4", "signals", _signals_text(ctx.get("signals")))
    _labelled(ext, "cs5", "campaignId", ctx.get("campaign_id"))
    technique = threat.get("technique", {})
    sub = technique.get("subtechnique", {})
    atlas = sub.get("id") or technique.get("id")
    if atlas:
        atlas_name = sub.get("name") or technique.get("name", "")
        _labelled(ext, "cs6", "mitreAtlas", f"{atlas} {atlas_name}")
    score = float(event.get("risk_score_norm", event.get("risk_score", 0.0)))
    _labelled(ext, "cn1", "riskScore", round(score))
    _labelled(ext, "cn2", "ecsSeverity", event.get("severity"))
    _labelled(ext, "cfp1", "riskScoreExact", f"{score:.2f}")
    return CefEvent(
        signature_id=str(rule.get("id", "clonewatch:alert")),
        name=str(rule.get("name", "Clonewatch alert")),
        severity=CEF_SEVERITY_BY_LEVEL.get(level, 0),
        extension=ext,
    )


def risk_to_cef(doc: Mapping[str, Any], *, device_host: str | None = None) -> CefEvent:
    """The CEF event of a risk-score document (``RiskScore.to_dict()``)."""
    ctx = doc.get("clonewatch", {})
    user = doc.get("user", {})
    risk = user.get("risk", {})
    level = str(risk.get("calculated_level", ctx.get("risk_level", "none")))
    score = float(risk.get("calculated_score_norm", 0.0))
    ext: dict[str, str] = {}
    if "@timestamp" in doc:
        ext["rt"] = str(epoch_millis(str(doc["@timestamp"])))
    ext["suser"] = str(user.get("id", ""))
    ext["act"] = "score"
    ext["cnt"] = str(int(ctx.get("queries_observed", 0)))
    ext["externalId"] = str(doc.get("event", {}).get("id", ""))
    if device_host:
        ext["dvchost"] = device_host
    _labelled(ext, "cs1", "model", ctx.get("model_id"))
    _labelled(ext, "cs2", "riskLevel", level)
    _labelled(ext, "cs3", "triggerEventId", ctx.get("trigger_event_id"))
    _labelled(ext, "cs4", "signals", _signals_text(ctx.get("signals")))
    _labelled(ext, "cs5", "campaignId", ctx.get("campaign_id"))
    _labelled(ext, "cn1", "riskScore", round(score))
    _labelled(ext, "cfp1", "riskScoreExact", f"{score:.2f}")
    return CefEvent(
        signature_id=RISK_SIGNATURE_ID,
        name="Model extraction risk score",
        severity=CEF_SEVERITY_BY_LEVEL.get(level, 0),
        extension=ext,
    )
