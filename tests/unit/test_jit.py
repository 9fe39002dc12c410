"""A worker's kernel warm-up loads exactly what the engine's batches then call."""

from __future__ import annotations

import numpy as np
from self_similarity_support import labelled_events

from detectors import jit
from detectors.config import EngineConfig
from detectors.engine import Engine


def signatures() -> dict[str, int]:
    """How many argument-type versions each loaded kernel has."""
    return {fn.__name__: len(d.signatures) for fn, d in jit._compiled.items()}


def test_warm_up_covers_the_argument_types_the_engine_passes() -> None:
    """After ``warm_up`` a batch through both kernels compiles no further version."""
    jit.warm_up()
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
    out = engine.process_batch(sorted(events, key=lambda e: e.ts))
    assert engine.populations["m"].frozen
    assert isinstance(out, list)
    assert signatures() == warmed
