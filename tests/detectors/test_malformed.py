"""Wrong-shaped input is evidence, not noise (issue 17 item 2): an event of another dimension
than its model's is kept for a dead letter and counted, and a client that keeps sending
inputs its model cannot take raises ``malformed_input``, which alone stays below "high"."""

from __future__ import annotations

import json

import numpy as np

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.malformed import COUNT, MalformedInput
from detectors.support import OVERFLOW_MODEL
from schemas import Alert, QueryEvent, level_for_score

CONFIG = EngineConfig(warmup_events=128, warmup_min_clients=4)
T0 = 1_767_225_600.0


def _event(i: int, client: str, features: list[float], model: str = "m") -> QueryEvent:
    return QueryEvent.model_validate(
        {"event_id": f"e{i}", "timestamp": T0 + i, "client_id": client, "model_id": model,
         "features": features}
    )  # fmt: skip


def _warm(eng: Engine, n: int = 400, start: int = 0) -> int:
    """Natural traffic of 20 clients until the model's space is frozen; the next index."""
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        eng.process(_event(i, f"c{i % 20}", rng.normal(0.0, 1.0, 4).tolist()))
    assert eng.populations["m"].frozen
    return start + n


class TestDimensionMismatch:
    def test_rejected_with_its_reason_and_counted(self) -> None:
        """After the freeze an event of five features to a four-feature model is kept in
        ``rejected`` with the reason, counted, and counted against its client."""
        eng = Engine(CONFIG)
        i = _warm(eng)
        eng.process(_event(i, "odd", [0.0] * 5))
        assert [(ev.event_id, reason) for ev, reason in eng.rejected] == [
            (f"e{i}", "feature dimension mismatch: model m takes 4 features, got 5")
        ]
        assert eng.stats["feature_dim_mismatch"] == 1
        assert eng.clients["odd"].models["m"].values[COUNT] == 1.0

    def test_rejected_holds_only_the_last_batch(self) -> None:
        """Whoever does not drain it, it never grows past one batch."""
        eng = Engine(CONFIG)
        i = _warm(eng)
        for k in range(50):
            eng.process(_event(i + k, "odd", [0.0] * 5))
        assert len(eng.rejected) == 1
        eng.process_batch([_event(i + 100 + k, "odd", [0.0] * 3) for k in range(7)])
        assert len(eng.rejected) == 7

    def test_overflow_model_judges_no_shape(self) -> None:
        """Events pooled in the overflow model (which mixes models) are never rejected."""
        eng = Engine(EngineConfig(max_models=1, warmup_events=128, warmup_min_clients=4))
        _warm(eng)
        for k in range(5):
            eng.process(_event(900 + k, f"x{k}", [0.0] * 7, model=f"other-{k}"))
        assert eng.rejected == [] and eng.stats["feature_dim_mismatch"] == 0
        assert OVERFLOW_MODEL in eng.populations


class TestMalformedSignal:
    def test_persistent_wrong_shape_raises_the_signal_but_not_high(self) -> None:
        """200 queries, every one of the wrong shape: the signal is at its cap and names the
        count, and alone the client stays below "high" (a broken integration is not
        throttled for it)."""
        eng = Engine(CONFIG)
        i = _warm(eng)
        out = []
        for k in range(200):
            out += eng.process(_event(i + k, "broken", [0.0] * 5))
        st = eng.clients["broken"].models["m"]
        assert st.evidence[MalformedInput.name] >= CONFIG.cap_malformed - 0.1
        assert level_for_score(st.risk) in ("low", "moderate")
        alerts = [o.to_dict() for o in out if isinstance(o, Alert)]
        assert all(a["clonewatch"]["risk_level"] in ("low", "moderate") for a in alerts)
        assert alerts and "malformed_input" in json.dumps(alerts[-1])

    def test_out_of_domain_inputs_raise_it_too(self) -> None:
        """Inputs far outside the domain (clipped for scoring) count as malformed."""
        eng = Engine(CONFIG)
        i = _warm(eng)
        for k in range(30):
            eng.process(_event(i + k, "prober", [1e9, 0.0, 0.0, 0.0]))
        assert eng.clients["prober"].models["m"].values[COUNT] == 30.0
        assert eng.clients["prober"].models["m"].evidence[MalformedInput.name] > 5.0

    def test_honest_clients_have_none(self) -> None:
        """Natural traffic sends no malformed query, and the model's benign rate stays at
        its floor."""
        eng = Engine(CONFIG)
        _warm(eng, n=2000)
        for client in eng.clients.values():
            st = client.models["m"]
            assert COUNT not in st.values and MalformedInput.name not in st.evidence
        pop = eng.populations["m"]
        assert pop.malformed_hits == 0.0 and pop.malformed_seen > 0.0

    def test_one_typo_is_not_evidence(self) -> None:
        """One wrong-shaped query among many well-formed ones leaves nothing lasting."""
        eng = Engine(CONFIG)
        i = _warm(eng)
        eng.process(_event(i, "c1", [0.0] * 5))
        rng = np.random.default_rng(9)
        for k in range(1, 200):
            eng.process(_event(i + k, "c1", rng.normal(0.0, 1.0, 4).tolist()))
        assert MalformedInput.name not in eng.clients["c1"].models["m"].evidence
