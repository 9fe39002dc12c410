"""River anomaly detectors added as signals through EngineConfig (detectors/extras.py)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.extras import Extras, load_detector
from schemas import QueryEvent
from streams.settings import Settings
from tests.synthetic import synthetic_events

HST = (("river.anomaly.HalfSpaceTrees", {"seed": 0, "n_trees": 5, "height": 6}),)


def _run(config: EngineConfig) -> tuple[Engine, list[dict[str, Any]]]:
    """Score the synthetic day; every output as its wire document."""
    engine = Engine(config)
    docs: list[dict[str, Any]] = []
    events = [QueryEvent.model_validate(e) for e in synthetic_events(seed=3)]
    for i in range(0, len(events), 256):
        docs.extend(out.to_dict() for out in engine.process_batch(events[i : i + 256]))
    return engine, docs


def _signal_names(docs: list[dict[str, Any]]) -> set[str]:
    return {s["name"] for d in docs for s in d["clonewatch"].get("signals") or []}


class TestLoading:
    """Only River's anomaly detectors may be named, with parameters that fit."""

    def test_a_river_anomaly_detector_loads(self) -> None:
        """A dotted path of river.anomaly with parameters gives a fresh detector."""
        det = load_detector("river.anomaly.HalfSpaceTrees", {"seed": 1})
        assert type(det).__name__ == "HalfSpaceTrees"

    @pytest.mark.parametrize(
        "path",
        ["os.system", "builtins.eval", "river.linear_model.LinearRegression", "river.anomaly.Nope"],
    )
    def test_anything_else_is_refused(self, path: str) -> None:
        """A path outside river, or a river class that is no anomaly detector, is refused."""
        with pytest.raises(ValueError, match="extra detector"):
            load_detector(path, {})

    def test_bad_parameters_are_refused(self) -> None:
        """Parameters the class does not take are a clear error, not a crash later."""
        with pytest.raises(ValueError, match="bad parameters"):
            load_detector("river.anomaly.HalfSpaceTrees", {"no_such": 1})

    def test_the_worker_environment_names_them_as_json(self) -> None:
        """CLONEWATCH_ENGINE__EXTRA_DETECTORS takes the same list as JSON."""
        env = {
            "CLONEWATCH_ENGINE__EXTRA_DETECTORS": '[["river.anomaly.HalfSpaceTrees", {"seed": 0}]]'
        }
        settings = Settings.load(env=env, config_file=None)
        extras = Extras(EngineConfig(**settings.engine))
        assert [s.name for s in extras.signals] == ["half_space_trees"]


class TestInTheEngine:
    """An extra detector is one more signal, calibrated on the model's own traffic."""

    def test_its_reading_is_in_the_risk_scores(self) -> None:
        """Risk scores name the extra signal beside the six built-in ones."""
        _, docs = _run(EngineConfig(extra_detectors=HST))
        assert "half_space_trees" in _signal_names(docs)

    def test_benign_clients_stay_unflagged_and_the_attacker_is_caught(self) -> None:
        """With HalfSpaceTrees added, no benign client reaches high and the attacker does."""
        _, docs = _run(EngineConfig(extra_detectors=HST))
        high = {
            d["user"]["id"]
            for d in docs
            if d["event"]["kind"] == "alert" and d["event"]["severity"] >= 73
        }
        assert "attacker-0" in high
        assert not {c for c in high if str(c).startswith("benign")}

    def test_a_configuration_with_extras_pickles(self) -> None:
        """The configuration naming extra detectors pickles by value, as workers pass it."""
        cfg = EngineConfig(extra_detectors=HST)
        again = pickle.loads(pickle.dumps(cfg))  # noqa: S301 - our own bytes
        assert again == cfg
        assert [s.name for s in Extras(again).signals] == ["half_space_trees"]

    def test_without_extras_nothing_changes(self) -> None:
        """No extra detector configured: no extra signal, and the same documents every run."""
        _, plain = _run(EngineConfig())
        assert "half_space_trees" not in _signal_names(plain)
        _, again = _run(EngineConfig(extra_detectors=()))
        assert again == plain
