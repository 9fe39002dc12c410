"""Volume and rate of a client's queries: context, never enough alone to alert."""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import ConfiguredSignal, Observation, Reading
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class VolumeSignal(ConfiguredSignal):
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
    >>> from detectors.config import EngineConfig
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

    name: ClassVar[str] = "volume"

    @classmethod
    def _unit_test_skips(cls) -> set[str]:
        """Every query counts towards volume, one without features or output too."""
        return {"missing_inputs_give_no_evidence"}

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Update the client's rate and score its volume."""
        cfg = self.config
        values = state.values
        seen = state.n
        n = seen if seen > 1 else 1  # max(state.n, 1)
        log_n = math.log(n)
        gap_fast, gap_slow = values.get("gap_fast"), values.get("gap_slow")
        if seen > 1:
            gap = obs.ts - state.last_ts
            gap = 0.0 if gap < 0.0 else gap  # max(gap, 0.0)
            fast = gap if gap_fast is None else gap_fast
            slow = gap if gap_slow is None else gap_slow
            gap_fast = values["gap_fast"] = 0.7 * fast + 0.3 * gap
            gap_slow = values["gap_slow"] = 0.99 * slow + 0.01 * gap
        e = 0.0
        sketch = pop.volume
        if sketch.count >= cfg.min_sketch:
            e = 0.25 * sketch.upper(log_n)
        if gap_fast is not None and gap_slow is not None and gap_slow > 0 and n > 50:
            burst = math.log(gap_slow / (1e-3 if gap_fast < 1e-3 else gap_fast)) - 1.0
            e += 0.25 * (burst if burst > 0.0 else 0.0)
        cap = cfg.cap_volume
        e = e if e < cap else cap  # min(cap, e)
        state.evidence[self.name] = e
        return Reading(float(n), e, lesson=log_n)
