"""The engine: detection on a toy stream, determinism, batching, bounded state, contracts."""

from __future__ import annotations

import pickle

import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.state import ClientState
from schemas import Alert, QueryEvent, RiskRecord, RiskScore
from tests.synthetic import synthetic_events


@pytest.fixture(scope="module")
def toy() -> list[QueryEvent]:
    """A toy stream: 40 natural clients and one uniform-random attacker."""
    return [QueryEvent.model_validate(e) for e in synthetic_events(seed=1)]


def _alerts(outputs: list[Alert | RiskRecord]) -> list[Alert]:
    return [o for o in outputs if isinstance(o, Alert)]


class TestDetection:
    """The attacker is caught early and natural clients are not."""

    def test_attacker_alerted_benign_not(self, toy: list[QueryEvent]) -> None:
        """Only the attacker reaches an alert, and at high level within 60 queries."""
        alerts = _alerts(Engine().process_batch(toy))
        flagged = {a.user.id for a in alerts}
        assert flagged == {"attacker-0"}
        high = [a for a in alerts if a.clonewatch.risk_level in ("high", "critical")]
        assert high and high[0].clonewatch.queries_observed <= 60

    def test_alert_explains_itself(self, toy: list[QueryEvent]) -> None:
        """An alert names the signals behind it, with shares that sum to its score."""
        alert = _alerts(Engine().process_batch(toy))[-1]
        shares = sum(s.score for s in alert.clonewatch.signals)
        assert alert.clonewatch.signals[0].name == "novelty"
        assert shares == pytest.approx(alert.event.risk_score, abs=0.5)
        assert "attacker-0" in alert.message and alert.clonewatch.trigger_event_id

    def test_levels_rise_without_repeats(self, toy: list[QueryEvent]) -> None:
        """Each level is alerted at most once per episode, in rising order."""
        alerts = _alerts(Engine().process_batch(toy))
        ranks = [a.event.severity for a in alerts]
        assert ranks == sorted(set(ranks))

    def test_without_features_or_output_nothing_breaks(self, toy: list[QueryEvent]) -> None:
        """Events stripped of features and output still score (volume only) and never alert."""
        bare = [e.model_copy(update={"features": None, "output": None}) for e in toy]
        assert _alerts(Engine().process_batch(bare)) == []


class TestDeterminism:
    """Same input and seed, same outputs, however the events are batched."""

    def test_batching_does_not_change_results(self, toy: list[QueryEvent]) -> None:
        """One big batch, batches of 7, and one event at a time agree exactly."""
        big = [o.to_dict() for o in Engine().process_batch(toy)]
        eng = Engine()
        small = [
            o.to_dict() for i in range(0, len(toy), 7) for o in eng.process_batch(toy[i : i + 7])
        ]
        assert big == small

    def test_step_with_external_state_equals_process(self, toy: list[QueryEvent]) -> None:
        """The Faust path (explicit state, serialised each time) equals the in-process path."""
        expected = [o.to_dict() for o in Engine().process_batch(toy)]
        eng = Engine()
        states: dict[str, bytes] = {}
        got = []
        for ev in toy:
            blob = states.get(ev.client_id)
            state, outs = eng.step(ev, ClientState.from_bytes(blob) if blob else None)
            states[ev.client_id] = state.to_bytes()
            got.extend(o.to_dict() for o in outs)
        assert got == expected

    def test_batch_with_external_states_equals_process(self, toy: list[QueryEvent]) -> None:
        """Batches scored against a caller's state map (Faust tables) equal the in-process run."""
        expected = [o.to_dict() for o in Engine().process_batch(toy)]
        eng = Engine()
        blobs: dict[str, bytes] = {}
        got = []
        for i in range(0, len(toy), 97):
            batch = toy[i : i + 97]
            states = {
                c: ClientState.from_bytes(blobs[c])
                for c in {e.client_id for e in batch}
                if c in blobs
            }
            got.extend(o.to_dict() for o in eng.process_batch(batch, states))
            blobs.update({c: st.to_bytes() for c, st in states.items()})
        assert got == expected
        assert not eng.clients  # the engine's own store was not used

    def test_population_snapshot_resumes_identically(self, toy: list[QueryEvent]) -> None:
        """Exporting and importing the baseline mid-stream changes nothing downstream."""
        full = [o.to_dict() for o in Engine().process_batch(toy)]
        a = Engine()
        first = [o.to_dict() for o in a.process_batch(toy[:1500])]
        b = Engine()
        b.import_population(a.export_population())
        b.clients = pickle.loads(pickle.dumps(a.clients))  # noqa: S301 - our own objects
        rest = [o.to_dict() for o in b.process_batch(toy[1500:])]
        assert first + rest == full


class TestBounds:
    """State is capped whatever the traffic."""

    def test_client_state_size_is_capped(self, toy: list[QueryEvent]) -> None:
        """A client's serialised state stops growing after its ring fills."""
        eng = Engine()
        sizes = []
        attacker = [e for e in toy if e.client_id == "attacker-0"]
        for i, ev in enumerate(toy + attacker * 3):
            eng.process(ev.model_copy(update={"event_id": f"x{i}"}))
            st = eng.client_state("attacker-0")
            if st is not None and i % 200 == 0:
                sizes.append(len(st.to_bytes()))
        assert max(sizes) < 14_000  # a ring of 64 float32 inputs of 32 dimensions is 8 KiB
        assert sizes[-1] <= max(sizes[len(sizes) // 2 :])

    def test_tracked_clients_are_capped(self) -> None:
        """The in-process store evicts the least recent client beyond max_clients."""
        eng = Engine(EngineConfig(max_clients=10))
        for i in range(25):
            eng.process(
                QueryEvent.model_validate(
                    {
                        "event_id": str(i),
                        "timestamp": 1e9 + i,
                        "client_id": f"c{i}",
                        "model_id": "m",
                    }
                )
            )
        assert len(eng.clients) == 10 and eng.stats["clients_evicted"] == 15

    def test_models_per_client_are_capped(self) -> None:
        """One client querying many models keeps at most max_models_per_client states."""
        eng = Engine(EngineConfig(max_models_per_client=3))
        for i in range(9):
            eng.process(
                QueryEvent.model_validate(
                    {
                        "event_id": str(i),
                        "timestamp": 1e9 + i,
                        "client_id": "c",
                        "model_id": f"m{i}",
                    }
                )
            )
        state = eng.client_state("c")
        assert state is not None and list(state.models) == ["m6", "m7", "m8"]


class TestContracts:
    """Outputs follow the wire contracts exactly."""

    def test_alert_wire_form(self, toy: list[QueryEvent]) -> None:
        """An alert carries the ECS and ATLAS fields the SOC tools read."""
        doc = _alerts(Engine().process_batch(toy))[0].to_dict()
        assert doc["event"]["kind"] == "alert"
        assert doc["event"]["category"] == ["intrusion_detection", "api"]
        assert doc["event"]["severity"] in (21, 47, 73, 99)
        assert doc["threat"]["technique"]["subtechnique"]["id"] == "AML.T0024.002"
        assert doc["threat"]["tactic"]["id"] == "AML.TA0010"
        assert doc["user"]["id"] == "attacker-0" and doc["source"]["ip"] == "10.0.0.1"
        assert doc["@timestamp"].endswith("Z")
        assert set(doc["clonewatch"]) >= {"model_id", "risk_level", "queries_observed", "signals"}

    def test_alert_ids_are_deterministic(self, toy: list[QueryEvent]) -> None:
        """Replaying the same stream yields the same alert ids."""
        a = [x.event.id for x in _alerts(Engine().process_batch(toy))]
        b = [x.event.id for x in _alerts(Engine().process_batch(toy))]
        assert a == b and len(set(a)) == len(a)

    def test_risk_scores_are_rate_limited(self, toy: list[QueryEvent]) -> None:
        """Risk scores come at most every N events or T seconds per client, plus one per alert."""
        cfg = EngineConfig(risk_every_n=50, risk_every_seconds=3600)
        outs = Engine(cfg).process_batch(toy)
        per_client: dict[str, int] = {}
        for o in outs:
            if isinstance(o, RiskRecord):
                per_client[o.client_id] = per_client.get(o.client_id, 0) + 1
        # 60 queries over a day: at most 24 hourly emissions plus one at the 50th query.
        assert max(v for k, v in per_client.items() if k.startswith("benign")) <= 26
        assert all(o.level for o in outs if isinstance(o, RiskRecord))

    def test_risk_records_satisfy_the_risk_score_contract(self, toy: list[QueryEvent]) -> None:
        """Every risk document the engine builds validates as a RiskScore and dumps back equal."""
        records = [o for o in Engine().process_batch(toy) if isinstance(o, RiskRecord)]
        assert records
        for r in records:
            model = r.as_model()
            assert isinstance(model, RiskScore)
            assert model.to_dict() == r.doc
            assert (model.event.id, model.user.id, model.user.risk.calculated_level) == (
                r.id,
                r.client_id,
                r.level,
            )


class TestHysteresis:
    """An alert episode ends only after a sustained quiet spell."""

    def test_quiet_spell_ends_the_episode(self, toy: list[QueryEvent]) -> None:
        """A client alerted before is re-armed only after 100 consecutive quiet queries."""
        eng = Engine()
        eng.process_batch(toy)
        state = ClientState()
        model = state.model("toy", eng.config)
        model.alerted_level, model.n = 3, 500
        natural = [e for e in toy if e.client_id.startswith("benign")][:150]
        for i, ev in enumerate(natural):
            state, _ = eng.step(ev.model_copy(update={"client_id": "returning"}), state)
            if i == 50:
                assert state.models["toy"].alerted_level == 3  # a short lull changes nothing
        assert state.models["toy"].episode == 1 and state.models["toy"].alerted_level == 0


class TestStateCodec:
    """The binary client-state format refuses what it did not write."""

    def test_damaged_or_foreign_state_is_refused(self, toy: list[QueryEvent]) -> None:
        """Truncated, foreign and empty blobs raise ValueError instead of loading garbage."""
        eng = Engine()
        eng.process_batch(toy)
        state = eng.client_state("attacker-0")
        assert state is not None
        blob = state.to_bytes()
        assert ClientState.from_bytes(blob).to_bytes() == blob
        for bad in (blob[: len(blob) // 2], b'{"v": 1, "models": []}', b""):
            with pytest.raises(ValueError, match="Clonewatch client state"):
                ClientState.from_bytes(bad)
