"""The PRADA baseline behaves as published (Juuti et al. 2019, authors' code)."""

from __future__ import annotations

import pickle

import numpy as np

from detectors.reference.prada import Prada, PradaClient
from schemas.query import QueryEvent


def _chain(rng: np.random.Generator, seeds: int = 20, per_seed: int = 10) -> list[np.ndarray]:
    base = rng.normal(size=(seeds, 8))
    steps = [s + 0.05 * rng.choice([-1.0, 1.0], size=8) for s in base for _ in range(per_seed)]
    return list(base) + steps


class TestGrowingSet:
    """Growing sets, distances and thresholds."""

    def test_first_query_of_a_class_has_no_distance(self) -> None:
        """The founder of each class joins without a distance."""
        p = PradaClient()
        p.process([0.0, 0.0], 0)
        p.process([5.0, 5.0], 1)
        assert p.distances_seen == 0
        p.process([3.0, 4.0], 0)
        assert list(p.distances) == [(0, 5.0)]

    def test_threshold_is_mean_minus_std_of_join_distances(self) -> None:
        """After joins at 0 (founder), 4 and 2, the threshold is mean - std of {0, 4, 2}."""
        p = PradaClient()
        for x in ([0.0], [4.0], [6.0]):
            p.process(x, 0)
        expected = np.mean([0, 4, 2]) - np.std([0, 4, 2])
        assert np.isclose(p.sets[0].threshold, expected)
        assert p.sets[0].size == 3

    def test_close_query_does_not_join(self) -> None:
        """A query nearer than the threshold gets a distance but does not grow the set."""
        p = PradaClient()
        for x in ([0.0], [10.0], [20.0], [10.5]):
            p.process(x, 0)
        assert p.sets[0].size == 3
        assert p.distances_seen == 3

    def test_growing_set_and_distances_are_capped(self) -> None:
        """State stays bounded whatever the client's volume."""
        p = PradaClient(max_growing=50, max_distances=300)
        for x in np.random.default_rng(1).normal(size=(1000, 4)):
            p.process(x, 0)
        assert p.sets[0].size == 50
        assert len(p.distances) == 300
        assert p.distances_seen == 999


class TestShapiroTest:
    """When the normality test runs and what it decides."""

    def test_no_test_before_more_than_100_distances(self) -> None:
        """With 100 distances or fewer PRADA never alarms, whatever they look like."""
        p = PradaClient()
        alarms = [p.process(x, 0) for x in _chain(np.random.default_rng(2), 10, 9)]
        assert len(alarms) == 100
        assert not any(alarms)
        assert p.last_w == 1.0

    def test_natural_queries_pass(self) -> None:
        """Gaussian inputs give normal-looking distances: no alarm."""
        p = PradaClient()
        rng = np.random.default_rng(3)
        assert not any(p.process(x, int(x[0] > 0)) for x in rng.normal(size=(600, 8)))
        assert p.last_w >= 0.9

    def test_small_step_chains_alarm(self) -> None:
        """Seeds followed by tiny signed steps (JbDA-like) fail the test and alarm."""
        p = PradaClient()
        for x in _chain(np.random.default_rng(4)):
            p.process(x, int(x[0] > 0))
        assert p.alarmed
        assert p.alarm_at is not None and 100 < p.alarm_at <= 220
        assert p.score_one() > 0.1

    def test_pickled_state_continues_identically(self) -> None:
        """A pickled and restored client gives the same decisions afterwards."""
        rng = np.random.default_rng(5)
        stream = _chain(rng)
        a = PradaClient()
        for x in stream[:90]:
            a.process(x, int(x[0] > 0))
        b = pickle.loads(pickle.dumps(a))  # noqa: S301 - round trip of our own object
        rest_a = [a.process(x, int(x[0] > 0)) for x in stream[90:]]
        rest_b = [b.process(x, int(x[0] > 0)) for x in stream[90:]]
        assert rest_a == rest_b
        assert a.last_w == b.last_w


class TestStream:
    """PRADA over QueryEvents, one state per (client, model)."""

    def test_first_alarm_counts_the_clients_queries(self) -> None:
        """An attacker interleaved with an honest client alarms; the honest one does not."""
        rng = np.random.default_rng(6)
        prada = Prada()
        thief = _chain(rng)
        honest = rng.normal(size=(len(thief), 8))
        for i, (t, h) in enumerate(zip(thief, honest, strict=True)):
            for cid, x in (("thief", t), ("honest", h)):
                prada.process(
                    QueryEvent.model_validate(
                        {
                            "event_id": f"{cid}-{i}",
                            "timestamp": 1_800_000_000 + i,
                            "client_id": cid,
                            "model_id": "m",
                            "features": x.tolist(),
                            "output": {"label": int(x[0] > 0)},
                        }
                    )
                )
        assert ("thief", "m") in prada.first_alarm
        assert ("honest", "m") not in prada.first_alarm

    def test_events_without_features_are_skipped(self) -> None:
        """An event with no input vector cannot be scored and leaves no state."""
        prada = Prada()
        event = QueryEvent.model_validate(
            {"event_id": "e", "timestamp": 0, "client_id": "c", "model_id": "m"}
        )
        assert prada.process(event) is False
        assert prada.clients == {}
