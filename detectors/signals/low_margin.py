"""Share of low-margin outputs: queries placed near the decision boundary."""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import ConfiguredSignal, Observation, Reading, cusum, ewma
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


def output_margin(probabilities: list[float] | None, confidence: float | None) -> float | None:
    """Top-1 minus top-2 probability, or the confidence when only that is known.

    >>> output_margin([0.1, 0.5, 0.4], None), output_margin(None, 0.9), output_margin(None, None)
    (0.09999999999999998, 0.9, None)
    """
    if probabilities and len(probabilities) >= 2:
        # The first two of sorted(probabilities, reverse=True), in one pass: a value
        # replaces only a smaller one, so among equals the earlier stays first, as there.
        first = second = -math.inf
        for p in probabilities:
            if p > first:
                first, second = p, first
            elif p > second:
                second = p
        return first - second
    if probabilities:
        return probabilities[0]
    return confidence


class LowMarginSignal(ConfiguredSignal):
    """Outputs whose margin lies in the lower tail of the model's benign outputs.

    Uncertainty-sampling attacks (ActiveThief, adaptive Knockoff rounds) and
    boundary searches pick inputs the model is unsure about; benign traffic is
    mostly confident. Calibrated on the model's own margin distribution, so a
    model that is rarely confident does not make every client suspect.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> from detectors.config import EngineConfig
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> pop.margin.extend(np.random.default_rng(0).beta(5, 1, 500))
    >>> sig, st = LowMarginSignal(cfg), ModelClientState()
    >>> [round(sig.update(Observation(owner=1, ts=0, margin=0.9), st, pop).evidence, 1)] * 1
    [0.0]
    >>> r = [sig.update(Observation(owner=1, ts=0, margin=0.02), st, pop) for _ in range(8)]
    >>> r[-1].evidence > 20
    True
    """

    name: ClassVar[str] = "low_margin"

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Fold one output's margin into the client's evidence."""
        m = obs.margin
        if m is None or obs.retry:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        e = pop.margin.lower(m) if pop.margin.count >= self.config.min_sketch else 0.0
        e *= obs.fresh_share()
        obs.note_tail(e)
        value = ewma(state, self.name, e)
        return Reading(value, cusum(state, self.name, e, self.config), lesson=m)
