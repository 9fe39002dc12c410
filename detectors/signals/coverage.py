"""How widely a client covers the input space, against natural traffic."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from detectors.base import ConfiguredSignal, Observation, Reading, normal_tail_evidence
from detectors.kernels.client_sums import coverage_terms
from detectors.population import ModelPopulation
from detectors.state import ModelClientState


class CoverageSignal(ConfiguredSignal):
    """Distinct random-projection cells a client visits, against what its volume predicts.

    Each projected input falls in one of ``2**bits`` LSH cells cut at the
    population's medians. A client drawing its queries like the population
    visits about ``E = sum_c 1 - (1 - p_c)**n`` distinct cells after ``n``
    queries; the signal is the normal tail evidence of the observed count above
    that (variance ``sum_c q_c (1 - q_c)`` plus 10 % model error). Attacks that sweep the input box
    (uniform retraining, coverage-maximising active learning, k-center
    selection) visit far more cells than natural traffic; narrow or repetitive
    clients visit fewer and score nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> from detectors.config import EngineConfig
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> pop.cell_counts[:8] += 1000.0   # natural traffic lives in 8 cells
    >>> sig, st = CoverageSignal(cfg), ModelClientState()
    >>> for c in range(64):    # a client sweeping 64 different cells
    ...     st.feature_n += 1
    ...     r = sig.update(Observation(owner=1, ts=0, cell=c), st, pop)
    >>> r.evidence > 15
    True
    """

    name: ClassVar[str] = "coverage"

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Mark the query's cell and, every few queries, re-test the client's coverage."""
        cfg = self.config
        if obs.cell is None:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        cells = state.cells
        if cells is None:
            cells = state.cells = np.zeros((2**cfg.coverage_bits) // 8, dtype=np.uint8)
        byte, bit = divmod(obs.cell, 8)
        seen = cells.item(byte)  # a Python int: no numpy scalar arithmetic per query
        if not seen >> bit & 1:
            cells[byte] = seen | 1 << bit
            state.distinct_cells += 1
        n = state.feature_n
        if n < cfg.min_client_test or n % cfg.client_test_every:
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        expected, var = coverage_terms(n, pop.cell_log_miss())
        # The prior is itself estimated: allow 10 % model error on the expectation.
        z = (state.distinct_cells - expected) / math.sqrt(var + 1.0 + (0.1 * expected) ** 2)
        ratio = state.distinct_cells / max(expected, 1.0)
        e = min(cfg.cap_signal * 2, normal_tail_evidence(z))
        state.values[self.name] = ratio
        state.evidence[self.name] = e
        return Reading(ratio, e)
