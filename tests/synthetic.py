"""A tiny synthetic QueryEvent stream for fast unit tests (no scikit-learn)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

DIM, CLASSES = 12, 4
T0 = 1_793_491_200.0  # 2026-11-01T00:00:00Z


def _model(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = rng.normal(0.0, 3.0, (CLASSES, DIM))
    weights = centers / 3.0
    return centers, weights


def _answer(w: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    logits = w @ x
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return {
        "label": int(p.argmax()),
        "confidence": float(p.max()),
        "probabilities": [round(float(v), 6) for v in p],
    }


def synthetic_events(
    seed: int = 0,
    benign_clients: int = 40,
    benign_queries: int = 60,
    attacker_queries: int = 300,
    with_attacker: bool = True,
) -> list[dict[str, Any]]:
    """Benign clients drawing natural inputs, plus one uniform-random attacker (time-ordered)."""
    rng = np.random.default_rng(seed)
    centers, w = _model(rng)
    rows: list[tuple[float, dict[str, Any]]] = []
    for c in range(benign_clients):
        for i in range(benign_queries):
            x = centers[rng.integers(CLASSES)] + rng.normal(0.0, 1.0, DIM)
            ts = T0 + rng.uniform(0, 86_400)
            rows.append((ts, _event(f"b{c}-{i}", ts, f"benign-{c}", x, w)))
    if with_attacker:
        for i in range(attacker_queries):
            x = rng.uniform(-12.0, 12.0, DIM)
            ts = T0 + 20_000 + 30.0 * i
            rows.append((ts, _event(f"a-{i}", ts, "attacker-0", x, w)))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows]


def _event(eid: str, ts: float, client: str, x: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    return {
        "event_id": eid,
        "timestamp": ts,
        "client_id": client,
        "model_id": "toy",
        "features": [round(float(v), 5) for v in x],
        "output": _answer(w, x),
        "source_ip": "10.0.0.1" if client.startswith("attacker") else "192.0.2.7",
    }


def as_lines(events: list[dict[str, Any]]) -> list[bytes]:
    """JSONL lines of the events."""
    return [json.dumps(e).encode() for e in events]
