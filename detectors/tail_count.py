"""Evidence that accumulates over suspicious queries, however many natural ones pad them.

The per-signal CUSUMs (:func:`detectors.base.cusum`) subtract a drift of 1.9 to 3 nats per
query: four natural queries between two attack queries drain what the attack query added,
so padding an attack with natural traffic averages its evidence away. This test counts
instead. A query is *suspicious* when one of its per-query looks (novelty, low margin, a
small step, collinear steps, self-similarity) lands beyond ``tail_threshold`` nats, a tail
a benign query reaches with probability about ``exp(-tail_threshold)`` per look.

The rate at which the model's own benign population sends such queries is learned from
the first 64 queries of each client below the learning risk (so no client weighs more),
starting from a prior of ``tail_prior`` queries at the nominal rate ``LOOKS *
exp(-tail_threshold)``, and never above it: the looks are calibrated, so more is not
benign, and many padded keys (a campaign) cannot raise it.

Per (client, model) two Wald Bernoulli CUSUMs test the client's rate against
``tail_ratio`` (2.5) and ``tail_ratio_fast`` (8) times that rate: a hit adds
``log(p1/p0)``, a natural query costs only ``-log((1-p1)/(1-p0))`` (about 0.1 nats for the
first at a benign rate of 6 %), so a key that sends one attack query in five still
climbs; the better of the two looks, less log 2, is the count. As a log-likelihood-ratio
CUSUM its benign tail is ``exp(-s)``: the sum is itself a surprise in nats (capped at
``cap_count``, so it alone reaches "high", never "critical"). It is a second look at the
evidence of the signals it counts from, so it reports only what it adds beyond the
strongest of them (less log 2 again): undiluted, those signals say it already.

>>> from detectors.base import Observation
>>> from detectors.config import EngineConfig
>>> from detectors.population import ModelPopulation
>>> from detectors.state import ModelClientState
>>> cfg = EngineConfig()
>>> test, pop, st = TailCount(cfg), ModelPopulation("m", cfg), ModelClientState()
>>> pop.tail_seen, pop.tail_hits = 4000.0, 120.0  # the model's benign clients: 3 % suspicious
>>> def query(tail):
...     obs = Observation(owner=1, ts=0)
...     obs.tail = tail
...     return test.update(obs, st, pop)
>>> [query(0.5) for _ in range(50)][-1] is None  # natural queries: nothing to report
True
>>> for i in range(200):  # one query in five far in the tail, four natural ones
...     r = query(9.0 if i % 5 == 0 else 0.3)
>>> round(r.value, 2), r.evidence > 20
(0.18, True)
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import LOG2, Observation, Reading, bernoulli_cusum, ewma
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState

LOOKS = 5.0  # per-query looks whose tails count: novelty, low margin, small step, line, self
FAST = "tail_count_fast"  # the state key of the quicker CUSUM
SOURCES = ("novelty", "low_margin", "steps")  # the signals those looks belong to
# The lowest benign rate used, as a share of the nominal one: a model whose benign traffic
# is very quiet would otherwise make a heavy honest client with a few more tail queries look
# like a padded attacker (a batch client of the demo day, at 0.25). Chosen on two simulated
# days: 0.25 flags that client, 0.5 misses two padded attackers at 3:1 and 4:1.
FLOOR = 0.35
PER_CLIENT = 64  # queries of one (client, model) the benign rate counts at most
_DECAY_AT = 4096.0  # the population's counts are halved beyond this many queries


class TailCount:
    """Bernoulli CUSUM, per (client, model), of queries in the tail of the benign traffic."""

    name: ClassVar[str] = "tail_count"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.nominal = min(0.5, LOOKS * math.exp(-config.tail_threshold))

    def rate(self, pop: ModelPopulation) -> float:
        """The model's benign rate of suspicious queries, with the prior, kept between a
        0.35 of the nominal rate and the nominal rate itself: each look is calibrated to
        a tail of ``exp(-tail_threshold)`` on the model's benign traffic, so more than
        ``LOOKS`` times that is not benign; many padded keys (a campaign) cannot raise it."""
        cfg = self.config
        p = (pop.tail_hits + cfg.tail_prior * self.nominal) / (pop.tail_seen + cfg.tail_prior)
        low, high = FLOOR * self.nominal, self.nominal
        return low if p < low else high if p > high else p

    def update(
        self, obs: Observation, state: ModelClientState, pop: ModelPopulation
    ) -> Reading | None:
        """Count one query; the reading while the CUSUM is above 0 (``None`` otherwise, and
        the evidence key is dropped, so a quiet client's risk is computed as without it)."""
        tail = obs.tail
        if tail is None:  # no look was scored (a retry, an uncalibrated model)
            return None
        hit = tail >= self.config.tail_threshold
        values = state.values
        if not hit and values.get(self.name, 0.0) == 0.0 and values.get(FAST, 0.0) == 0.0:
            # Both CUSUMs at 0 stay there on a natural query (and the evidence is already
            # dropped): most queries of most clients, so nothing else to compute.
            ewma(state, "tail_share", 0.0)
            return None
        cfg = self.config
        p0 = self.rate(pop)
        cap = 2.0 * cfg.cap_signal
        # Two alternatives: a rate a few times the benign one (heavy padding), and a much
        # higher one (light padding, quicker); the better look, less log 2.
        slow = bernoulli_cusum(state, self.name, hit, p0, min(0.9, cfg.tail_ratio * p0), cap)
        fast = bernoulli_cusum(state, FAST, hit, p0, min(0.9, cfg.tail_ratio_fast * p0), cap)
        s = (slow if slow > fast else fast) - LOG2
        share = ewma(state, "tail_share", 1.0 if hit else 0.0)
        # The count is another look at the evidence its sources already report: it counts
        # only beyond the strongest of them (less log 2 for the second look), so an
        # undiluted attack is not scored twice and a diluted one keeps what the count shows.
        evidence = state.evidence
        best = 0.0
        for key in SOURCES:
            v = evidence.get(key, 0.0)
            best = v if v > best else best
        extra = s - best - LOG2
        if extra <= 0.0:
            evidence.pop(self.name, None)
            return None
        evidence[self.name] = extra
        return Reading(share, extra)

    def learn(self, obs: Observation, pop: ModelPopulation, n: int, risk: float) -> None:
        """Count the query towards the model's benign rate: the first ``PER_CLIENT`` queries
        of each (client, model) below the learning risk, so no client weighs more."""
        if obs.tail is None or n > PER_CLIENT or risk >= self.config.learn_below_risk:
            return
        pop.tail_seen += 1.0
        if obs.tail >= self.config.tail_threshold:
            pop.tail_hits += 1.0
        if pop.tail_seen > _DECAY_AT:  # recent traffic counts: a drift is learned
            pop.tail_seen *= 0.5
            pop.tail_hits *= 0.5
