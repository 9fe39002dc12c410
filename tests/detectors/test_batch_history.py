"""A client's earlier queries in the same micro-batch count as its recent inputs."""

from __future__ import annotations

import numpy as np

from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import QueryEvent
from tests.synthetic import T0, synthetic_events


def _burst(n: int, seed: int = 3) -> list[QueryEvent]:
    """One client's burst of steps, with exact retries of recent and of older inputs."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(0.0, 3.0, 12)]
    for i in range(1, n):
        if i % 5 == 0:
            xs.append(xs[i - 1])  # a plain retry
        elif i % 7 == 0 and i > 130:
            xs.append(xs[60])  # a repeat of a ring input older than the step window
        elif i % 7 == 0 and i > 40:
            xs.append(xs[i - 40])  # the same, of an input in the ring or the batch
        else:
            xs.append(xs[-1] + rng.normal(0.0, 0.05, 12))
    return [
        QueryEvent.model_validate(
            {
                "event_id": f"burst-{i}",
                "timestamp": T0 + 90_000 + i,
                "client_id": "burst",
                "model_id": "toy",
                "features": x.tolist(),
            }
        )
        for i, x in enumerate(xs)
    ]


def test_burst_in_one_batch_equals_one_at_a_time() -> None:
    """A burst longer than the window, split or whole, with a ring already filled, agrees."""
    warm = [QueryEvent.model_validate(e) for e in synthetic_events(seed=2, with_attacker=False)]
    cfg = EngineConfig(risk_every_n=1)  # a risk record, with every signal value, per query
    burst = _burst(150)
    whole, single = Engine(cfg), Engine(cfg)
    for eng in (whole, single):
        eng.process_batch(warm)
        eng.process_batch(burst[:70])  # fills the ring, which the rest reads back
    got = [o.to_dict() for o in whole.process_batch(burst[70:])]
    want = [o.to_dict() for ev in burst[70:] for o in single.process(ev)]
    assert sum(o["event"]["kind"] == "metric" for o in want) == 80
    assert got == want
