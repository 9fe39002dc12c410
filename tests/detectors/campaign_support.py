"""A small stream with a campaign: benign clients, then 40 accounts of 8 out-of-domain queries."""

from __future__ import annotations

import numpy as np

from schemas.query import QueryEvent

T0 = 1_793_491_200.0
ACCOUNTS = [f"camp-{i:02d}" for i in range(40)]


def _event(i: int, client: str, ts: float, x: np.ndarray, w: np.ndarray) -> QueryEvent:
    logits = w @ x
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return QueryEvent.model_validate(
        {
            "event_id": f"{client}-{i}",
            "timestamp": ts,
            "client_id": client,
            "model_id": "m",
            "features": [round(float(v), 6) for v in x],
            "output": {"label": int(p.argmax()), "probabilities": [float(v) for v in p]},
        }
    )


def campaign_stream(seed: int = 3, accounts: int = 40, per_account: int = 8) -> list[QueryEvent]:
    """Benign clients over three hours; from 02:00 the campaign's accounts, interleaved."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 8))
    rows: list[tuple[float, str, np.ndarray]] = []
    for c in range(60):
        n = int(rng.integers(20, 60))
        times = np.sort(rng.uniform(0, 3 * 3600, n))
        rows.extend((T0 + t, f"user-{c}", rng.normal(size=8)) for t in times)
    for a in range(accounts):
        for q in range(per_account):
            ts = T0 + 7200 + a * 3 + q * accounts * 3.0
            rows.append((ts, ACCOUNTS[a], rng.uniform(-6, 6, 8)))
    rows.sort(key=lambda r: r[0])
    return [_event(i, c, ts, x, w) for i, (ts, c, x) in enumerate(rows)]
