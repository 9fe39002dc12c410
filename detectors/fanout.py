"""Fan-out to models no one else uses: a client-level signal, ``model_fanout``.

An attacker who sends its queries to decoy model ids (to dilute its state, or to evict
it) queries many models that hardly any other client uses. Per client, the engine counts
the *lone* models among those it keeps state for (fewer than ``lone_model_clients``
distinct clients, known for at least ``fanout_after_s``, so a model's first minutes do
not count), and tests that count against the population: the number of lone models of a
client is taken as Poisson with the mean the engine's clients show (each client counting
at most 2, so a swarm of fan-out keys cannot make fan-out look normal; at least
``fanout_min_rate``). ``-log P(Poisson(rate) >= count)`` is the surprise in nats; a client
keeps state for at most ``max_models_per_client`` models, which bounds the count.

>>> poisson_tail_surprise(7, 0.12) > 20, round(poisson_tail_surprise(1, 1.0), 3)
(True, 0.459)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import ClassVar

from detectors.base import Reading
from detectors.config import EngineConfig
from detectors.state import ClientState, ModelClientState


def poisson_tail_surprise(count: int, rate: float) -> float:
    """``-log P(X >= count)`` for X ~ Poisson(rate), summed from the tail (no cancellation).

    >>> round(poisson_tail_surprise(0, 0.5), 3), round(poisson_tail_surprise(2, 0.05), 2)
    (0.0, 6.72)
    """
    if count <= 0:
        return 0.0
    log_term = -rate + count * math.log(rate) - math.lgamma(count + 1)
    total, term, j = 1.0, 1.0, count
    while term > 1e-12 * total:
        j += 1
        term *= rate / j
        total += term
    surprise = -(log_term + math.log(total))
    return surprise if surprise > 0.0 else 0.0


class ModelFanout:
    """The population's rate of lone models per client, and each client's test against it.

    >>> cfg = EngineConfig()
    >>> fan, client = ModelFanout(cfg), ClientState()
    >>> for m in ("real", "d1", "d2", "d3"):
    ...     client.model(m, cfg).n = 1
    >>> fan.clients = 400
    >>> users = {"real": 4}
    >>> first_seen = dict.fromkeys(client.models, 0.0)  # all four known since 0 s
    >>> r = fan.update(client, lambda m: users.get(m, 1), first_seen, ts=1000.0)
    >>> r.value, r.evidence > 10  # three lone models, where clients have 0.05 on average
    (3.0, True)
    """

    name: ClassVar[str] = "model_fanout"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.clients = 0  # clients seen (a state's first query)
        self.lone_total = 0  # sum over clients of their lone models, each at most 2

    def rate(self) -> float:
        """Lone models per client in the population (at least ``fanout_min_rate``)."""
        rate = self.lone_total / self.clients if self.clients else 0.0
        floor = self.config.fanout_min_rate
        return floor if rate < floor else rate

    def update(
        self,
        client: ClientState,
        support: Callable[[str], int],
        first_ts: Mapping[str, float],
        ts: float,
    ) -> Reading | None:
        """Count the client's lone models now; the reading when there are enough to test."""
        cfg = self.config
        need, after = cfg.lone_model_clients, cfg.fanout_after_s
        lone = 0
        for model_id in client.models:
            users = support(model_id)  # 0: a model the engine no longer tracks (lone)
            if users == 0 or (users < need and ts - first_ts.get(model_id, ts) >= after):
                lone += 1
        mine = lone if lone < 2 else 2
        if mine != client.lone:
            self.lone_total += mine - client.lone
            client.lone = mine
        if lone < cfg.fanout_min_lone:
            return None
        return Reading(float(lone), poisson_tail_surprise(lone, self.rate()))

    def apply(self, st: ModelClientState, reading: Reading | None) -> None:
        """Put the client's fan-out surprise into the evidence of the model it queried."""
        if reading is None or reading.evidence <= 0.0:
            st.evidence.pop(self.name, None)
        else:
            st.evidence[self.name] = reading.evidence
