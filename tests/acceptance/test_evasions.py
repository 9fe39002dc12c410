"""The red team's evasions do what issue 17 says, on a small hand-made day, and the scorer
counts an attacker caught only when alerts name half of its keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from clonewatch.commands.redteam import score
from clonewatch.sim import evasions as ev
from clonewatch.sim.evasions import Day, ThresholdLearner


def _day() -> Day:
    """Two models; one benign key per model and one attacker key on model ``a``."""
    events = []
    for i in range(40):
        t = 1_000.0 + 10.0 * i
        events.append(
            ev._event(f"b{i}", t, "honest", "a", [float(i % 5), 1.0, 2.0])
            | {"output": {"label": 1, "confidence": 0.9, "probabilities": [0.1, 0.9]}}
        )
        events.append(ev._event(f"c{i}", t + 1, "other", "b", [float(i % 3), 4.0]))
        events.append(
            ev._event(f"x{i}", t + 2, "thief", "a", [0.5 * i, 0.0, 1.0])
            | {
                "output": {"label": 0, "confidence": 0.6, "probabilities": [0.6, 0.4]},
                "source_ip": "203.0.113.7",
                "user_agent": "curl/8.5.0",
                "labels": {"tenant": "tenant-thief"},
            }
        )
    return Day.of(events, {"thief": "thief"}, {"honest", "other"})


def _rng() -> np.random.Generator:
    return np.random.default_rng(5)


def _answer(model: str, x: Any) -> tuple[Any, Any]:
    p = np.full((len(x), 2), 0.5)
    return np.round(x, 4), p


class TestPurity:
    """Every evasion leaves its input day alone and is the same for the same seed."""

    def test_inputs_untouched_and_seeded(self) -> None:
        """Each catalogue entry returns a new day, equal across runs with one seed."""
        day = _day()
        before = [dict(e) for e in day.events]
        for name, fn in ev.catalogue(_answer).items():
            first = fn(day, _rng())
            second = fn(day, _rng())
            assert [dict(e) for e in day.events] == before, name
            assert first.events == second.events, name


class TestInjected:
    """Poisoning and dimension hijack add one event per model at the start, from accomplices."""

    def test_poison_one_event_per_model(self) -> None:
        """Two models: two poison events first, all features the value, model dimension kept."""
        out = ev.poison(_day(), _rng(), value=1e308)
        head = out.events[:2]
        assert {e["model_id"] for e in head} == {"a", "b"}
        assert all(set(e["features"]) == {1e308} for e in head)
        assert [len(e["features"]) for e in head] == [3, 2]
        assert ev.seconds(head[1]) < ev.seconds(out.events[2])
        assert out.accomplices == {ev.POISONER} and out.keys_used() == {"thief": ["thief"]}

    def test_hijack_one_feature_too_many(self) -> None:
        """The first event per model is a copy with one more feature."""
        out = ev.dimension_hijack(_day(), _rng())
        assert [len(e["features"]) for e in out.events[:2]] == [4, 3]
        assert out.events[0]["client_id"] == ev.HIJACKER


class TestTraffic:
    """Model hop, dilution and key rotation change the attacker's traffic as described."""

    def test_model_hop(self) -> None:
        """40 attack queries: after each 4th, eight decoy models get the same input."""
        out = ev.model_hop(_day(), _rng())
        thief = [e for e in out.events if e["client_id"] == "thief"]
        decoys = [e for e in thief if e["model_id"] != "a"]
        assert len(decoys) == 10 * 8 and len({e["model_id"] for e in decoys}) == 8
        assert decoys[0]["features"] == thief[3]["features"]

    def test_dilution_natural_padding(self) -> None:
        """k = 3: three of the benign key's inputs of the model per attack query, same key."""
        day = _day()
        out = ev.dilution(day, _rng(), k=3)
        thief = [e for e in out.events if e["client_id"] == "thief"]
        honest = {tuple(e["features"]) for e in day.events if e["client_id"] == "honest"}
        padding = [e for e in thief if tuple(e["features"]) in honest]
        assert len(thief) == 160 and len(padding) == 120
        assert all(e["source_ip"] == "203.0.113.7" for e in thief)
        times = [ev.seconds(e) for e in out.events]
        assert times == sorted(times)

    def test_rotation_keys_same_network(self) -> None:
        """Every 12 queries a new key and tenant, from the same address and user agent."""
        out = ev.key_rotation(_day(), _rng(), every=12)
        keys = out.keys_used()["thief"]
        assert len(keys) == 4
        mine = [e for e in out.events if out.owner.get(e["client_id"]) == "thief"]
        assert {e["source_ip"] for e in mine} == {"203.0.113.7"}
        assert len({e["labels"]["tenant"] for e in mine}) == 4

    def test_rotation_over_networks(self) -> None:
        """With new networks each key has its own address."""
        out = ev.key_rotation(_day(), _rng(), every=12, new_networks=True)
        mine = [e for e in out.events if out.owner.get(e["client_id"]) == "thief"]
        assert len({e["source_ip"] for e in mine}) == 4

    def test_outputs(self) -> None:
        """Label-only strips the attacker's probabilities; outputs removed strips everyone's."""
        lab = ev.label_only(_day(), _rng())
        assert {str(e["output"]) for e in lab.events if e["client_id"] == "thief"} == {
            "{'label': 0}"
        }
        assert any("probabilities" in e["output"] for e in lab.events if e["client_id"] == "honest")
        assert all("output" not in e for e in ev.outputs_removed(_day(), _rng()).events)

    def test_slow_days(self) -> None:
        """Three days: benign traffic three times with new ids, the attack spread over them."""
        out = ev.slow_days(_day(), _rng(), days=3)
        assert len(out.events) == 3 * 80 + 40
        assert len({e["event_id"] for e in out.events}) == len(out.events)
        thief = [ev.seconds(e) for e in out.events if e["client_id"] == "thief"]
        assert thief[-1] - thief[0] > 2 * 86_400 - 3 * 3_600 * 2


class TestDriftedCustomers:
    """New honest tenants whose natural inputs differ from the model's usual traffic."""

    def test_new_benign_keys_per_model_in_time_order(self) -> None:
        """Twelve keys per model, every one benign, the log still in time order."""
        out = ev.drifted_customers(_day(), _rng(), shape="shifted", answer=_answer)
        drifted = {e["client_id"] for e in out.events if e["client_id"].startswith("drift-")}
        assert len(drifted) == 24 and drifted <= out.benign
        assert out.owner == _day().owner
        times = [ev.seconds(e) for e in out.events]
        assert times == sorted(times)
        assert len({e["event_id"] for e in out.events}) == len(out.events)

    def test_each_shape_moves_the_inputs(self) -> None:
        """Shifted and rescaled inputs differ from the benign ones in mean or spread; a class
        subset keeps at most two of the answered classes; all stay in the benign range."""
        day = _day()
        honest = np.asarray([e["features"] for e in day.events if e["client_id"] == "honest"])

        def drifted(shape: str) -> np.ndarray:
            out = ev.drifted_customers(day, _rng(), shape=shape, answer=_answer)
            rows = [e["features"] for e in out.events if e["client_id"].startswith(
                f"drift-{shape.replace(' ', '-')}-a-")]  # fmt: skip
            return np.asarray(rows)

        shifted = drifted("shifted")
        assert abs(shifted[:, 0].mean() - honest[:, 0].mean()) > 0.2  # clipped to the range
        assert shifted.min() >= honest.min() and shifted.max() <= honest.max()
        assert abs(drifted("rescaled")[:, 0].std() - honest[:, 0].std()) > 0.05
        assert set(drifted("class subset")[:, 0].tolist()) <= set(honest[:, 0].tolist())
        source = drifted("other source")
        assert not np.allclose(source[:, 0].mean(), honest[:, 0].mean())


class TestThresholdLearner:
    """The adaptive attacker retires keys before the count at which it was first noticed."""

    def test_budget_after_a_throttle(self) -> None:
        """Noticed after 20 queries: each later key sends at most 9."""
        tl = ThresholdLearner(_rng())
        for _ in range(20):
            tl.key_for("t", "t")
        tl.noticed("t")
        keys = [tl.key_for("t", "t") for _ in range(27)]
        assert "t" not in keys and len(set(keys)) == 3


class TestScore:
    """Caught means flag-level alerts name at least half of the attacker's keys."""

    @staticmethod
    def _alert(user: str, level: str, trigger: str, members: list[str] | None = None) -> Any:
        cw: dict[str, Any] = {"risk_level": level, "trigger_event_id": trigger}
        if members:
            cw["campaign_members"] = members
        return {"user": {"id": user}, "clonewatch": cw}

    def test_half_of_the_keys(self) -> None:
        """Four keys: two named catches, a moderate alert does not, one benign key is flagged."""
        day = ev.key_rotation(_day(), _rng(), every=10)
        keys = day.keys_used()["thief"]
        first_of = {e["client_id"]: e["event_id"] for e in reversed(day.events)}
        row = score(
            day,
            [
                self._alert(keys[1], "high", first_of[keys[1]]),
                self._alert(keys[2], "moderate", first_of[keys[2]]),
                self._alert("honest", "critical", "b3"),
            ],
            evasion="test",
        )
        assert row.caught == 0 and row.benign_flagged == 1
        row = score(
            day,
            [self._alert(keys[1], "high", first_of[keys[1]], members=[keys[1], keys[3]])],
            evasion="test",
        )
        (thief,) = row.attackers
        assert thief.caught and thief.keys_named == 2 and thief.queries_to_alert == 11
