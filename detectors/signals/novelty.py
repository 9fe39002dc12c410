"""Novelty of a client's inputs against the benign population of the model."""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import ConfiguredSignal, Observation, Reading, cusum, ewma
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class NoveltySignal(ConfiguredSignal):
    """Distance from each query to the nearest benign input of *other* clients.

    The population keeps a reservoir of projected benign inputs of the model and
    the distribution of this distance over benign traffic; a query far in its
    upper tail adds evidence. Comparing with other clients only means a heavy
    client cannot vouch for itself, and an attacker's own queries never make
    its later queries look familiar. Off-manifold families (uniform random
    retraining, equation solving, JbDA perturbations, out-of-domain Knockoff
    data, data-free generators) all light it up.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> from detectors.config import EngineConfig
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> pop.novelty.extend(np.abs(np.random.default_rng(0).normal(size=500)))
    >>> sig, st = NoveltySignal(cfg), ModelClientState()
    >>> typical = [sig.update(Observation(owner=1, ts=0, nearest=0.5), st, pop) for _ in range(20)]
    >>> typical[-1].evidence
    0.0
    >>> far = [sig.update(Observation(owner=1, ts=0, nearest=9.0), st, pop) for _ in range(5)]
    >>> far[-1].evidence > 20
    True
    """

    name: ClassVar[str] = "novelty"

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Fold one query's novelty into the client's evidence."""
        d = obs.nearest
        if d is None or math.isnan(d) or obs.retry:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        e = 0.0
        sketch = pop.novelty
        if sketch.count >= self.config.min_sketch:
            e = sketch.upper(d)
            top = sketch.maximum()
            if d > top > 0.0:  # beyond anything benign seen: grow with the log-ratio
                e += min(6.0, 3.0 * math.log(d / top))
        e *= obs.fresh_share()
        obs.note_tail(e)
        value = ewma(state, self.name, e)
        return Reading(value, cusum(state, self.name, e, self.config), lesson=d)
