"""A worker's kernel warm-up loads exactly what the engine's batches then call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from detectors import batch, population
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.kernels import jit, warmup
from tests.detectors.self_similarity_support import labelled_events


def signatures() -> dict[str, int]:
    """How many argument-type versions each loaded kernel has."""
    return {fn.__name__: len(d.signatures) for fn, d in jit._compiled.items()}


def counting(calls: Counter[str], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, counting its calls under ``name``."""

    def wrapper(*args: Any) -> Any:
        calls[name] += 1
        return fn(*args)

    return wrapper


def test_warm_up_covers_the_argument_types_the_engine_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After ``warm_up`` a batch through both kernels compiles no further version."""
    calls: Counter[str] = Counter()
    monkeypatch.setattr(batch, "geometry", counting(calls, "geometry", batch.geometry))
    monkeypatch.setattr(
        population, "nearest_rows", counting(calls, "nearest", population.nearest_rows)
    )
    warmup.warm_up()
    warmed = signatures()
    assert {"_geometry", "_nearest_rows", "_other_same_counts"} <= set(warmed)
    assert all(warmed.values())
    rng = np.random.default_rng(0)
    engine = Engine(EngineConfig(seed=0))
    events = [
        ev
        for c in range(8)
        for ev in labelled_events(f"c{c}", rng.normal(size=(60, 4)), [c % 3] * 60, 100 * c)
    ]
    engine.process_batch(sorted(events, key=lambda e: e.ts))
    assert engine.populations["m"].frozen
    assert calls["geometry"] > 0 and calls["nearest"] > 0  # the batch went through both
    assert signatures() == warmed
