"""Fan-out to models no one else uses, a client-level signal (issue 17 item 3)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import poisson

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.fanout import ModelFanout, poisson_tail_surprise
from detectors.state import ClientState
from schemas import Alert, QueryEvent

T0 = 1_767_225_600.0


def _event(i: int, client: str, model: str, ts: float) -> QueryEvent:
    return QueryEvent.model_validate(
        {
            "event_id": f"e{i}",
            "timestamp": ts,
            "client_id": client,
            "model_id": model,
            "features": [float(i % 7), 1.0],
        }
    )


def _hop_day() -> list[QueryEvent]:
    """Six clients on one model for two hours, a query each every 10 s; one of them also
    sends a query to each of eight decoy ids every 40 s, from the start."""
    events: list[QueryEvent] = []
    i = 0
    for t in range(0, 7200, 10):
        for c in range(6):
            events.append(_event(i, f"user-{c}", "real", T0 + t + c))
            i += 1
        if t % 40 == 0:
            for d in range(8):
                events.append(_event(i, "user-0", f"decoy-{d}", T0 + t + 0.01 * (d + 1)))
                i += 1
    return sorted(events, key=lambda e: e.timestamp)


class TestPoissonTail:
    """The surprise is -log of the Poisson upper tail, stable far out."""

    @pytest.mark.parametrize(("count", "rate"), [(1, 0.05), (2, 0.5), (7, 0.12), (8, 2.0)])
    def test_matches_scipy(self, count: int, rate: float) -> None:
        """Equal to -log of scipy's survival function P(X >= count)."""
        expected = -math.log(poisson.sf(count - 1, rate))
        assert poisson_tail_surprise(count, rate) == pytest.approx(expected, rel=1e-9)

    def test_grows_with_the_count(self) -> None:
        """More lone models, more surprise; none, none."""
        values = [poisson_tail_surprise(k, 0.1) for k in range(9)]
        assert values[0] == 0.0 and values == sorted(values)


class TestFanoutSignal:
    """A hopper's states carry model_fanout evidence once its decoys are known as lone."""

    def test_hopper_has_fanout_evidence_and_others_none(self) -> None:
        """After ten minutes the hopping client's real-model state carries the evidence,
        the other five clients' states never do, and its reading counts 7 lone models."""
        eng = Engine()
        eng.process_batch(_hop_day())
        hopper = eng.client_state("user-0")
        assert hopper is not None
        assert hopper.models["real"].evidence.get("model_fanout", 0.0) > 10.0
        for c in range(1, 6):
            st = eng.client_state(f"user-{c}")
            assert st is not None and "model_fanout" not in st.models["real"].evidence

    def test_alert_names_the_fanout(self) -> None:
        """An alert driven by fan-out says how many lone models the client queries."""
        out = Engine().process_batch(_hop_day())
        texts = [o.message for o in out if isinstance(o, Alert) and o.user.id == "user-0"]
        assert any("models almost no other client uses" in t for t in texts), texts

    def test_rate_is_the_population_mean_each_client_counting_at_most_two(self) -> None:
        """A client's lone models enter the population rate at most twice, above the floor."""
        cfg = EngineConfig(fanout_min_rate=0.01)
        fan = ModelFanout(cfg)
        fan.clients = 100
        client = ClientState()
        for m in range(6):
            client.model(f"d{m}", cfg)
        fan.update(client, lambda m: 1, dict.fromkeys(client.models, 0.0), ts=T0)
        assert client.lone == 2 and fan.rate() == pytest.approx(0.02)

    def test_lone_count_survives_serialisation(self) -> None:
        """The client's share of the population rate is kept in its serialised state."""
        s = ClientState()
        s.model("m", EngineConfig()).n = 1
        s.lone = 2
        assert ClientState.from_bytes(s.to_bytes()).lone == 2
        assert ClientState.from_bytes(ClientState().to_bytes()).lone == 0
