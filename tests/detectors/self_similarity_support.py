"""Shared helpers of the self-similarity tests."""

from __future__ import annotations

import numpy as np

from detectors.engine import Engine
from schemas import QueryEvent

T0 = 1_793_491_200


def near_own(engine: Engine, events: list[QueryEvent], client: str, model: str = "m") -> float:
    """The client's self-similarity CUSUM (nats) after the events."""
    engine.process_batch(events)
    state = engine.client_state(client)
    assert state is not None
    return state.models[model].values.get("near_own", 0.0)


def labelled_events(client: str, xs: np.ndarray, labels: list[int], start: int) -> list[QueryEvent]:
    """One query a second from ``T0 + start``, each input with its model's label."""
    return [
        QueryEvent.model_validate(
            {
                "event_id": f"{client}-{start + i}",
                "timestamp": T0 + start + i,
                "client_id": client,
                "model_id": "m",
                "features": [float(v) for v in x],
                "output": {"label": y},
            }
        )
        for i, (x, y) in enumerate(zip(xs, labels, strict=True))
    ]
