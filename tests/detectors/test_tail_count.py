"""The count of suspicious queries: evidence padding cannot average away (issue 17 item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import Observation
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState
from detectors.tail_count import PER_CLIENT, TailCount


def _query(test: TailCount, st: ModelClientState, pop: ModelPopulation, tail: float) -> float:
    obs = Observation(owner=1, ts=0)
    obs.tail = tail
    reading = test.update(obs, st, pop)
    return 0.0 if reading is None else reading.evidence


def _calibrated(rate: float, cfg: EngineConfig) -> ModelPopulation:
    """A model whose benign clients send suspicious queries at ``rate`` (0.5 % to 9 %)."""
    pop = ModelPopulation("m", cfg)
    pop.tail_seen, pop.tail_hits = 4000.0, 4000.0 * rate
    return pop


def _queries_to(level: float, k: int, seed: int = 0) -> int:
    """Queries until the evidence reaches ``level`` when each attack query (a hit 80 % of
    the time) is padded with ``k`` natural ones (hits at the benign 5 %)."""
    cfg = EngineConfig()
    test, pop, st = TailCount(cfg), _calibrated(0.05, cfg), ModelClientState()
    rng = np.random.default_rng(seed)
    for n in range(1, 20_000):
        attack = n % (k + 1) == 0
        hit = rng.random() < (0.8 if attack else 0.05)
        if _query(test, st, pop, 9.0 if hit else 0.5) >= level:
            return n
    return 20_000


class TestBenignStaysQuiet:
    """A client sending suspicious queries at its model's own rate builds no evidence."""

    @pytest.mark.parametrize("rate", [0.01, 0.05, 0.09])
    def test_at_the_population_rate(self, rate: float) -> None:
        """Over 20,000 queries at the model's rate, the evidence stays below 12 nats."""
        cfg = EngineConfig()
        test, pop, st = TailCount(cfg), _calibrated(rate, cfg), ModelClientState()
        rng = np.random.default_rng(1)
        top = max(_query(test, st, pop, 9.0 if rng.random() < rate else 0.5) for _ in range(20_000))
        assert top < 12.0


class TestPaddingDelaysOnly:
    """Padding k natural queries per attack query delays the evidence about k + 1 times."""

    def test_every_ratio_reaches_high_evidence(self) -> None:
        """Evidence of 30 nats is reached under 0:1 to 4:1 padding, later as k grows, and
        under 4:1 within 12 times the undiluted count."""
        counts = [_queries_to(30.0, k) for k in (0, 1, 2, 4)]
        assert counts == sorted(counts)
        assert counts[-1] <= 12 * counts[0] and counts[-1] < 20_000


class TestRateLearning:
    """The benign rate is the model's own, and no client can weigh more than others."""

    def test_rate_follows_the_population(self) -> None:
        """Teaching queries with 10 % suspicious ones move the rate to about 10 %."""
        cfg = EngineConfig()
        test, pop = TailCount(cfg), ModelPopulation("m", cfg)
        for i in range(3000):
            obs = Observation(owner=i, ts=0)
            obs.tail = 9.0 if i % 10 == 0 else 0.1
            test.learn(obs, pop, n=1, risk=0.0)
        assert test.rate(pop) == pytest.approx(0.1, abs=0.01)

    def test_rate_never_exceeds_the_nominal_rate(self) -> None:
        """Teaching queries that are nearly all suspicious (many padded keys) cannot raise
        the benign rate above the looks' nominal rate."""
        cfg = EngineConfig()
        test, pop = TailCount(cfg), ModelPopulation("m", cfg)
        for i in range(3000):
            obs = Observation(owner=i, ts=0)
            obs.tail = 9.0
            test.learn(obs, pop, n=1, risk=0.0)
        assert test.rate(pop) == pytest.approx(test.nominal)

    def test_heavy_or_risky_clients_do_not_teach(self) -> None:
        """Queries past a client's first PER_CLIENT, or from a risky client, are not counted."""
        cfg = EngineConfig()
        test, pop = TailCount(cfg), ModelPopulation("m", cfg)
        obs = Observation(owner=1, ts=0)
        obs.tail = 9.0
        test.learn(obs, pop, n=PER_CLIENT + 1, risk=0.0)
        test.learn(obs, pop, n=1, risk=cfg.learn_below_risk)
        assert pop.tail_seen == 0.0

    def test_counts_only_beyond_its_sources(self) -> None:
        """When novelty already reports more than the count, the count adds nothing."""
        cfg = EngineConfig()
        test, pop, st = TailCount(cfg), _calibrated(0.05, cfg), ModelClientState()
        st.evidence["novelty"] = 64.0  # as much as the count can ever reach
        assert max(_query(test, st, pop, 9.0) for _ in range(30)) == 0.0
        assert "tail_count" not in st.evidence
