"""Distance structure between a client's successive queries."""

from __future__ import annotations

import math

from detectors.base import Observation, Reading, cusum, ewma
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class StepSignal:
    """Small systematic steps and line searches between a client's own queries.

    Two scale-free views of each query against the client's last few distinct
    inputs (computed for a whole micro-batch in :mod:`detectors.batch`):
    the nearest step divided by the median distance to those inputs (lower
    tail against benign clients' same ratio; a client whose natural inputs are
    all alike keeps a ratio near that of everyone else) and the collinearity
    ``|cos|`` of the last two steps (upper tail). Exact repeats of a recent
    input are retries, not steps: they add nothing. JbDA augmentation, Tramèr
    path finding, cryptanalytic line searches and the ``(x, x+eps*u)`` pairs
    of gradient-estimating data-free attacks show here.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> rng = np.random.default_rng(0)
    >>> pop.step.extend(rng.uniform(0.3, 1.0, 500)); pop.collinear.extend(rng.uniform(0, 0.6, 500))
    >>> sig, st = StepSignal(cfg), ModelClientState()
    >>> natural = [sig.update(Observation(1, 0, step_ratio=0.7, collinearity=0.2), st, pop)]
    >>> natural[-1].evidence
    0.0
    >>> line = [sig.update(Observation(1, 0, step_ratio=0.1, collinearity=1.0), st, pop)
    ...         for _ in range(10)]
    >>> line[-1].evidence > 20
    True
    """

    name = "steps"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Fold the step from the client's recent queries to this one into its evidence."""
        cfg = self.config
        if obs.retry or (obs.step_ratio is None and obs.collinearity is None):
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        e_step = e_col = 0.0
        if obs.step_ratio is not None and pop.step.count >= cfg.min_sketch:
            e_step = pop.step.lower(obs.step_ratio)
        if obs.collinearity is not None and pop.collinear.count >= cfg.min_sketch:
            e_col = pop.collinear.upper(obs.collinearity)
        e = max(0.0, max(e_step, e_col) - math.log(2.0))  # the better of two looks
        value = ewma(state, self.name, e)
        return Reading(value, cusum(state, self.name, e, cfg), lesson=obs.step_ratio)
