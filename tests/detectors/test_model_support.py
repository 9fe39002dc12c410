"""Bounded models (issue 19) and decoy models that cannot evict (issue 17 item 3)."""

from __future__ import annotations

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.state import ClientState
from detectors.support import OVERFLOW_MODEL, ModelSupport
from schemas import QueryEvent

T0 = 1_767_225_600.0


def _event(i: int, client: str, model: str, ts: float | None = None) -> QueryEvent:
    return QueryEvent.model_validate(
        {
            "event_id": f"e{i}",
            "timestamp": T0 + i if ts is None else ts,
            "client_id": client,
            "model_id": model,
            "features": [float(i % 5), 1.0],
        }
    )


def _popular(models: int, clients: int = 5) -> list[QueryEvent]:
    """Each of ``models`` models queried by ``clients`` distinct clients."""
    return [
        _event(m * clients + c, f"user-{c}", f"real-{m}")
        for m in range(models)
        for c in range(clients)
    ]


class TestModelCap:
    """The engine tracks at most max_models baselines; popular models are never evicted."""

    def test_decoy_flood_keeps_models_bounded_and_popular_ones_tracked(self) -> None:
        """2,000 made-up ids from one key leave at most max_models baselines, the popular
        models among them, and the evictions counted."""
        eng = Engine(EngineConfig(max_models=64))
        eng.process_batch(_popular(4))
        flood = [_event(100 + i, "flooder", f"decoy-{i}") for i in range(2000)]
        eng.process_batch(flood)
        assert len(eng.populations) <= 64
        assert {f"real-{m}" for m in range(4)} <= set(eng.populations)
        stats = eng.model_stats()
        assert stats["models_tracked"] <= 64 and stats["models_evicted"] >= 2000 - 64

    def test_beyond_the_cap_of_popular_models_events_are_pooled(self) -> None:
        """When every tracked model has many clients, a new id is scored in the overflow
        model, counted, and no tracked model is evicted."""
        eng = Engine(EngineConfig(max_models=3))
        eng.process_batch(_popular(3))
        eng.process_batch([_event(900 + i, "late", f"new-{i}") for i in range(10)])
        assert set(eng.populations) == {"real-0", "real-1", "real-2", OVERFLOW_MODEL}
        assert eng.model_stats()["model_overflow_events"] == 10
        assert eng.model_stats()["models_evicted"] == 0

    def test_overflow_baseline_changing_mid_batch(self) -> None:
        """Many popular ids past the bound, in batches: the overflow baseline freezes and
        moves mid-batch, and the rest of the batch is refreshed against it (this raised
        KeyError on the first overflowed model id before)."""
        eng = Engine(EngineConfig(max_models=4))
        events = [
            _event(m * 5 + c, f"user-{(m * 5 + c) % 50}", f"id-{m}") for m in range(400)
            for c in range(5)
        ]  # fmt: skip
        for start in range(0, len(events), 256):
            eng.process_batch(events[start : start + 256])
        stats = eng.model_stats()
        assert stats["models_tracked"] <= 4
        assert stats["model_overflow_events"] > 1000
        assert eng.populations[OVERFLOW_MODEL].frozen

    def test_support_counts_distinct_clients_up_to_the_lone_bound(self) -> None:
        """Repeated queries of one client do not make a model popular."""
        sup = ModelSupport(EngineConfig(lone_model_clients=4))
        sup.admit("m", frozen=lambda m: False)
        for _ in range(10):
            sup.see("m", 7)
        assert sup.support("m") == 1 and sup.lone("m")
        for owner in range(10):
            sup.see("m", owner)
        assert sup.support("m") == 4 and not sup.lone("m")


class TestClientDecoys:
    """Queries to decoy model ids evict each other, not the model the client really uses."""

    def test_real_model_state_survives_a_decoy_hop(self) -> None:
        """A client that queries a popular model, then 20 decoys after each query, keeps
        its state of the popular model (its query count keeps rising)."""
        eng = Engine()
        eng.process_batch(_popular(1, clients=6))
        i = 1000
        for _ in range(10):
            eng.process(_event(i, "hopper", "real-0"))
            i += 1
            for d in range(20):
                eng.process(_event(i, "hopper", f"decoy-{d}"))
                i += 1
        state = eng.client_state("hopper")
        assert state is not None and len(state.models) <= EngineConfig().max_models_per_client
        assert state.models["real-0"].n == 10

    def test_without_support_the_oldest_state_goes(self) -> None:
        """Called without support counts (as before), the client's store is LRU."""
        cfg = EngineConfig(max_models_per_client=2)
        s = ClientState()
        for m in ("a", "b", "c"):
            s.model(m, cfg)
        assert list(s.models) == ["b", "c"]

    def test_among_popular_models_the_riskiest_stays(self) -> None:
        """With equal support, the state with evidence is kept over quieter ones."""
        cfg = EngineConfig(max_models_per_client=2)
        s = ClientState()
        s.model("attacked", cfg).risk = 60.0
        s.model("quiet", cfg)
        s.model("newer", cfg, lambda m: 4)
        assert list(s.models) == ["attacked", "newer"]


class TestSnapshot:
    """The models' distinct-client counts travel with the baseline snapshot."""

    def test_support_survives_export_and_import(self) -> None:
        """A restarted engine (a worker after kill -9) ranks models as the one before did."""
        engine = Engine(EngineConfig())
        engine.process_batch(_popular(3))
        before = {m: engine.support.support(m) for m in engine.populations}
        again = Engine(EngineConfig())
        again.import_population(engine.export_population())
        assert {m: again.support.support(m) for m in again.populations} == before
        assert max(before.values()) > 0
