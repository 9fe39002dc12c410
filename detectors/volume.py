"""Volume and rate of a client's queries: context, never enough alone to alert."""

from __future__ import annotations

import math

from detectors.base import Observation, Reading
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class VolumeSignal:
    """How many queries the client sent, and how fast, against the model's clients.

    Heavy integrations and batch jobs are honest and loud, so this signal is
    capped (``cap_volume``) below the lowest alert level: it can only tip a
    client that other signals already implicate. The evidence is a quarter of
    the upper-tail evidence of ``log(n)`` among the population's clients, plus
    a burst term when the client's current rate (EWMA of inter-arrival time)
    is far above its own history.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> pop.volume.extend(np.log(np.arange(1, 300)))
    >>> sig, st = VolumeSignal(cfg), ModelClientState()
    >>> for i in range(5000):
    ...     st.n = i + 1
    ...     r = sig.update(Observation(owner=1, ts=float(i)), st, pop)
    >>> 0 < r.evidence <= cfg.cap_volume
    True
    """

    name = "volume"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Update the client's rate and score its volume."""
        n = max(state.n, 1)
        gap = max(obs.ts - state.last_ts, 0.0) if state.n > 1 else None
        if gap is not None:
            fast = state.values.get("gap_fast", gap)
            slow = state.values.get("gap_slow", gap)
            state.values["gap_fast"] = 0.7 * fast + 0.3 * gap
            state.values["gap_slow"] = 0.99 * slow + 0.01 * gap
        e = 0.0
        if pop.volume.count >= self.config.min_sketch:
            e = 0.25 * pop.volume.upper(math.log(n))
        gap_fast, gap_slow = state.values.get("gap_fast"), state.values.get("gap_slow")
        if gap_fast is not None and gap_slow is not None and gap_slow > 0 and n > 50:
            e += 0.25 * max(0.0, math.log(gap_slow / max(gap_fast, 1e-3)) - 1.0)
        e = min(self.config.cap_volume, e)
        state.evidence[self.name] = e
        return Reading(float(n), e, lesson=math.log(n))
