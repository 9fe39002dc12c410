"""A client that keeps sending inputs its model cannot take: a signal of its own.

A query is *malformed* when its features do not fit the model's input dimension (known from
the registry, or once the feature space froze) or lie outside the model's domain (the
domain fence: the registry's stated ranges, or the robust fence learned at the freeze).
Such a query teaches nothing and is scored clipped; an honest integration sends almost
none, while a prober of the input space, a fuzzer or a dimension-hijacker keeps sending
them.

The rate at which the model's own benign population sends malformed queries is learned as
:mod:`detectors.tail_count` learns its rate: the first 64 queries of each (client, model)
below the learning risk, from a prior of ``malformed_prior`` queries at ``PRIOR_RATE``, and
never below ``FLOOR`` (so a model whose traffic is clean does not make one honest typo
look like an attack). Per (client, model) a Wald Bernoulli CUSUM tests the client's rate
against ``RATIO`` times that rate; less log 2, it is a surprise in nats, capped at
``cap_malformed`` (12): a client's own integration bug can reach "low" or "moderate" on
its own, never "high". With other evidence (novelty of the clipped inputs, steps) it
corroborates.

>>> from detectors.config import EngineConfig
>>> from detectors.population import ModelPopulation
>>> from detectors.state import ModelClientState
>>> cfg = EngineConfig()
>>> sig, pop, st = MalformedInput(cfg), ModelPopulation("m", cfg), ModelClientState()
>>> [sig.update(False, st, pop) for _ in range(20)][-1] is None  # well-formed: nothing
True
>>> for i in range(60):  # one query in three outside the domain
...     r = sig.update(i % 3 == 0, st, pop)
>>> round(r.value), round(r.evidence)  # 20 malformed queries; the cap, 12 nats, alone
(20, 12)
"""

from __future__ import annotations

from typing import ClassVar

from detectors.base import LOG2, Reading, bernoulli_cusum
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState

PRIOR_RATE = 0.005  # the benign rate assumed before the model's traffic says otherwise
FLOOR = 0.002  # the lowest benign rate used: one typo in a clean model is not an attack
CEILING = 0.2  # the highest: a model whose traffic is mostly malformed tests nothing
RATIO = 10.0  # the alternative: ten times the benign rate
PER_CLIENT = 64  # queries of one (client, model) the benign rate counts at most
COUNT = "malformed_n"  # the state key of the client's count of malformed queries
_DECAY_AT = 4096.0  # the population's counts are halved beyond this many queries


class MalformedInput:
    """Bernoulli CUSUM, per (client, model), of queries the model cannot take."""

    name: ClassVar[str] = "malformed_input"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def rate(self, pop: ModelPopulation) -> float:
        """The model's benign rate of malformed queries, with the prior, within the bounds."""
        prior = self.config.malformed_prior
        p = (pop.malformed_hits + prior * PRIOR_RATE) / (pop.malformed_seen + prior)
        return FLOOR if p < FLOOR else CEILING if p > CEILING else p

    def update(self, bad: bool, state: ModelClientState, pop: ModelPopulation) -> Reading | None:
        """Count one query; the reading while the CUSUM is above log 2 (``None`` otherwise,
        and the evidence key is dropped)."""
        values = state.values
        if bad:
            values[COUNT] = values.get(COUNT, 0.0) + 1.0
        elif values.get(self.name, 0.0) == 0.0:
            return None  # most queries of most clients: nothing to compute
        p0 = self.rate(pop)
        p1 = min(0.9, RATIO * p0)
        cap = self.config.cap_malformed
        s = bernoulli_cusum(state, self.name, bad, p0, p1, cap + LOG2) - LOG2
        evidence = state.evidence
        if s <= 0.0:
            evidence.pop(self.name, None)
            return None
        evidence[self.name] = s
        return Reading(values.get(COUNT, 0.0), s)

    def learn(self, bad: bool, pop: ModelPopulation, n: int, risk: float) -> None:
        """Count the query towards the model's benign rate: the first ``PER_CLIENT`` queries
        of each (client, model) below the learning risk, so no client weighs more."""
        if n > PER_CLIENT or risk >= self.config.learn_below_risk:
            return
        pop.malformed_seen += 1.0
        if bad:
            pop.malformed_hits += 1.0
        if pop.malformed_seen > _DECAY_AT:
            pop.malformed_seen *= 0.5
            pop.malformed_hits *= 0.5
