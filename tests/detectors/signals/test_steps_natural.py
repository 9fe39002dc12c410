"""A small step counts only when it lands nearer than any other client's natural input."""

from __future__ import annotations

import numpy as np

from detectors.base import Observation
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.signals.steps import StepSignal
from detectors.state import ModelClientState


def _chain(step: float, nearest: float) -> float:
    """The chain CUSUM after 30 queries whose steps are in the benign 10 % tail."""
    cfg = EngineConfig()
    pop = ModelPopulation("m", cfg)
    pop.step.extend(np.random.default_rng(0).uniform(0.3, 1.0, 500))
    sig, st = StepSignal(cfg), ModelClientState()
    obs = Observation(1, 0, step_ratio=0.1, step_count=8, step=step, nearest=nearest)
    for _ in range(30):
        sig.update(obs, st, pop)
    return st.values["chain_steps"]


def test_steps_nearer_than_natural_inputs_build_evidence() -> None:
    """Synthetic neighbours (JbDA children, gradient pairs) sit closer than anything natural."""
    assert _chain(step=0.2, nearest=1.0) > 20.0


def test_steps_within_natural_density_do_not() -> None:
    """A client asking about one dense region (one class, one user's photos) moves like this."""
    assert _chain(step=1.0, nearest=0.8) == 0.0
