"""Spread of a client's predicted classes against the model's population prior."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from detectors.base import ConfiguredSignal, Observation, Reading, normal_tail_evidence
from detectors.kernels.client_sums import spread_terms
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class ClassSpreadSignal(ConfiguredSignal):
    """A class histogram more even than the model's traffic explains.

    Natural clients see classes roughly in the population's proportions (or
    fewer of them: a class-skewed client is concentrated, never flatter).
    Extraction wants every class, and adaptive Knockoff balances them on
    purpose, so the client's label entropy rises above the prior's. The test
    statistic is ``n * (H(client) - H(prior))`` with the plug-in bias
    corrected, divided by its standard deviation under the prior
    (``sqrt(n) * sd(-log p_Y)``); a model with a uniform prior gives no
    evidence here, which is correct: evenness is then natural.

    Examples
    --------
    >>> from detectors.population import ModelPopulation
    >>> from detectors.config import EngineConfig
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> pop.class_counts[:4] = [900, 60, 30, 10]      # a skewed model
    >>> sig, st = ClassSpreadSignal(cfg), ModelClientState()
    >>> for i in range(200):   # a client asking for every class equally often
    ...     st.output_n += 1
    ...     r = sig.update(Observation(owner=1, ts=0, label=i % 4), st, pop)
    >>> r.evidence > 15
    True
    """

    name: ClassVar[str] = "class_spread"

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Count the query's class and, every few queries, re-test the client's spread."""
        cfg = self.config
        if obs.label is None:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        hist32 = state.class_hist
        if hist32 is None:
            hist32 = state.class_hist = np.zeros(cfg.class_buckets, dtype=np.float32)
        # A count plus one, exact in float64 and so rounded to float32 as ``+= 1.0`` would.
        hist32[obs.label] = hist32.item(obs.label) + 1.0
        n = state.output_n
        if n < cfg.min_client_test or n % cfg.client_test_every:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        h_prior, sd = pop.class_terms()
        h_client, k = spread_terms(hist32)
        if sd < 0.05:
            state.values[self.name] = h_client - h_prior
            return Reading(h_client - h_prior, 0.0)
        t = n * (h_client - h_prior) + (k - 1) / 2.0
        e = min(cfg.cap_signal * 2, normal_tail_evidence(t / (math.sqrt(n) * sd)))
        state.values[self.name] = h_client - h_prior
        state.evidence[self.name] = e
        return Reading(h_client - h_prior, e)
