"""A client streaming slowly drifting inputs repeats its evidence; probes around a point do not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import Observation
from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import QueryEvent

DIM = 8
T0 = 1_793_491_200


def _event(i: int, client: str, x: np.ndarray) -> QueryEvent:
    return QueryEvent.model_validate(
        {
            "event_id": f"{client}-{i}",
            "timestamp": T0 + i,
            "client_id": client,
            "model_id": "m",
            "features": [float(v) for v in x],
        }
    )


def _novelty(engine: Engine, events: list[QueryEvent], client: str) -> float:
    """The client's novelty evidence (nats) after the events."""
    engine.process_batch(events)
    state = engine.client_state(client)
    assert state is not None
    return state.models["m"].evidence["novelty"]


@pytest.fixture
def engine() -> Engine:
    """An engine whose baseline has learned 60 natural clients drawn from N(0, I)."""
    rng = np.random.default_rng(0)
    eng = Engine(EngineConfig(seed=1))
    natural = [_event(i, f"user-{i % 60}", rng.normal(0.0, 1.0, DIM)) for i in range(60 * 24)]
    eng.process_batch(natural)
    return eng


def test_fresh_share_scales_with_the_distance_moved() -> None:
    """A continuation's share is own-nearest over benign-nearest; otherwise it counts fully."""
    assert Observation(owner=1, ts=0, nearest=2.0, own_nearest=0.1).fresh_share() == 0.05
    assert Observation(owner=1, ts=0, nearest=2.0, own_nearest=5.0).fresh_share() == 1.0
    assert Observation(owner=1, ts=0, nearest=2.0).fresh_share() == 1.0


def test_drifting_stream_in_a_rare_region_repeats_its_novelty(engine: Engine) -> None:
    """A sensor-like random walk far from other clients' inputs keeps its first query's novelty.

    (Its chain of small steps is still the steps signal's business.)
    """
    rng = np.random.default_rng(1)
    walk = 3.5 + np.cumsum(rng.normal(0.0, 0.01, (200, DIM)), axis=0)
    events = [_event(10_000 + i, "sensor", x) for i, x in enumerate(walk)]
    assert _novelty(engine, events, "sensor") < 12.0  # one far query's worth


def test_probes_around_the_same_rare_point_count_in_full(engine: Engine) -> None:
    """Perturbations of one point (equation solving) are not continuations: novelty builds."""
    rng = np.random.default_rng(2)
    x0 = np.full(DIM, 3.5)
    probes = [x0] + [x0 + np.eye(DIM)[i % DIM] * rng.uniform(0.05, 0.1) for i in range(1, 200)]
    events = [_event(10_000 + i, "prober", x) for i, x in enumerate(probes)]
    assert _novelty(engine, events, "prober") >= 40.0
