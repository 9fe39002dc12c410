"""Helpers shared by the SIEM, HEC and webhook integration tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from schemas.alert import Alert
from streams.sinks.base import OutputRecord

WAIT_S = 20.0  # readiness deadline for a receiver, never part of an assertion


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a receiver-side condition."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# Records.


def alert_record(n: int = 1, **overrides: Any) -> OutputRecord:
    """An alert record with awkward characters in its values."""
    context: dict[str, Any] = {
        "model_id": f"resnet|v{n}=prod",
        "risk_level": "high",
        "queries_observed": 1000 + n,
        "trigger_event_id": f"evt-{n}",
        "signals": [{"name": "coverage", "value": 0.9, "score": 41.0}],
    }
    context.update(overrides.pop("clonewatch", {}))
    doc: dict[str, Any] = {
        "@timestamp": "2025-03-01T12:00:00.250Z",
        "event": {"id": f"alert-{n}", "severity": 73, "risk_score": 76.0, "risk_score_norm": 76.0},
        "user": {"id": f"client-{n}"},
        "source": {"ip": "198.51.100.9"},
        "message": f"client-{n} a=b | c\\d\nsecond line",
        "clonewatch": context,
    }
    doc.update(overrides)
    alert = Alert.model_validate(doc)
    return OutputRecord(kind="alert", id=f"alert-{n}", key=f"client-{n}", doc=alert.to_dict())


def json_lines(body: bytes) -> list[dict[str, Any]]:
    """Concatenated JSON objects (HEC bodies) parsed one by one."""
    decoder = json.JSONDecoder()
    text = body.decode("utf-8")
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out
