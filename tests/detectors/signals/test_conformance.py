"""One conformance suite for every extraction signal, River-style."""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import detectors
import detectors.signals
from detectors.base import Observation, Reading
from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ClientState, ModelClientState

ROOT = Path(detectors.__file__).resolve().parent.parent  # the package's __init__ is never compiled


def _signal_classes() -> list[type]:
    """Every signal class defined in a module of ``detectors.signals``, sub-packages too."""
    found = []
    package = detectors.signals
    for mod in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and hasattr(cls, "update")
                and isinstance(getattr(cls, "name", None), str)  # not the Signal protocol
            ):
                found.append(cls)
    return found


SIGNALS = _signal_classes()


def _ready_population(seed: int = 0) -> ModelPopulation:
    rng = np.random.default_rng(seed)
    pop = ModelPopulation("m", EngineConfig(seed=seed))
    for sketch in (pop.novelty, *pop.step_sketches(), pop.collinear, pop.margin, pop.volume):
        sketch.extend(rng.uniform(0.0, 1.0, 300))
    pop.class_counts[:3] += [500, 300, 200]
    pop.cell_counts[:16] += 100
    return pop


def _observations(seed: int, n: int = 120) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [
        Observation(
            owner=1,
            ts=float(i),
            nearest=float(rng.uniform(0, 2)),
            cell=int(rng.integers(0, 256)),
            margin=float(rng.uniform()),
            label=int(rng.integers(0, 3)),
            step_ratio=float(rng.uniform()),
            step_count=int(rng.integers(8, 33)),
            collinearity=float(rng.uniform()),
        )
        for i in range(n)
    ]


def _run(
    cls: type, obs: list[Observation], seed: int = 0
) -> tuple[list[Reading], ModelClientState]:
    cfg = EngineConfig(seed=seed)
    sig, st, pop = cls(cfg), ModelClientState(), _ready_population(seed)
    out = []
    for o in obs:
        st.n += 1
        st.feature_n += 1
        st.output_n += 1
        out.append(sig.update(o, st, pop))
        st.last_ts = o.ts
    return out, st


def _skip_unless_checked(cls: type, check: str) -> None:
    """Skip ``check`` for a signal that names it in its ``_unit_test_skips()``."""
    if check in cls._unit_test_skips():
        pytest.skip(f"{cls.__name__} opts out of {check}")


class TestSignalDiscovery:
    """The suite finds every signal, and the package exports each one it finds."""

    def test_every_signal_is_found(self) -> None:
        """The suite sees all six signals, so a new one cannot skip it."""
        assert {c.name for c in SIGNALS} == {
            "novelty",
            "steps",
            "coverage",
            "low_margin",
            "class_spread",
            "volume",
        }

    def test_every_signal_is_exported(self) -> None:
        """Each signal is in ``detectors.signals.__all__`` and ``detectors.__all__``, as itself."""
        for cls in SIGNALS:
            assert cls.__name__ in detectors.signals.__all__
            assert cls.__name__ in detectors.__all__
            assert getattr(detectors, cls.__name__) is cls

    def test_skips_name_real_checks(self) -> None:
        """A skip names a check of the conformance class, so a typo cannot hide a check."""
        checks = {n.removeprefix("test_") for n in dir(TestSignalConformance) if n[:5] == "test_"}
        for cls in SIGNALS:
            assert isinstance(cls._unit_test_skips(), set)
            assert cls._unit_test_skips() <= checks


@pytest.mark.parametrize("cls", SIGNALS, ids=lambda c: c.name)
class TestSignalConformance:
    """Checks every signal must pass, but those it names in ``_unit_test_skips()``."""

    def test_docstring_with_example(self, cls: type) -> None:
        """Each signal documents itself with a runnable example (read from its source)."""
        _skip_unless_checked(cls, "docstring_with_example")
        source = ROOT.joinpath(*cls.__module__.split(".")).with_suffix(".py")
        tree = ast.parse(source.read_text())
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
        doc = ast.get_docstring(node)
        assert doc and ">>>" in doc

    def test_same_seed_same_readings(self, cls: type) -> None:
        """Identical input and seed give identical readings."""
        _skip_unless_checked(cls, "same_seed_same_readings")
        a, _ = _run(cls, _observations(3))
        b, _ = _run(cls, _observations(3))
        assert [(r.value, r.evidence) for r in a] == [(r.value, r.evidence) for r in b]

    def test_missing_inputs_give_no_evidence(self, cls: type) -> None:
        """An observation without features or output adds no evidence."""
        _skip_unless_checked(cls, "missing_inputs_give_no_evidence")
        readings, _ = _run(cls, [Observation(owner=1, ts=float(i)) for i in range(50)])
        assert all(r.evidence == 0.0 for r in readings)

    def test_missing_inputs_read_finite(self, cls: type) -> None:
        """An observation without features or output gives a finite value and evidence >= 0."""
        _skip_unless_checked(cls, "missing_inputs_read_finite")
        readings, _ = _run(cls, [Observation(owner=1, ts=float(i)) for i in range(50)])
        assert all(np.isfinite(r.value) and r.evidence >= 0 for r in readings)

    def test_evidence_is_bounded_and_finite(self, cls: type) -> None:
        """Evidence stays finite, non-negative and under the engine's caps."""
        _skip_unless_checked(cls, "evidence_is_bounded_and_finite")
        readings, _ = _run(cls, _observations(5, n=400))
        assert all(0.0 <= r.evidence <= 2 * EngineConfig().cap_signal + 1 for r in readings)

    def test_state_survives_serialisation_and_pickle(self, cls: type) -> None:
        """Client state round-trips through bytes and pickle and scores on identically."""
        _skip_unless_checked(cls, "state_survives_serialisation_and_pickle")
        obs = _observations(7)
        _, st = _run(cls, obs[:60])
        copy = ClientState.from_bytes(ClientState({"m": st}).to_bytes()).models["m"]
        pickled = pickle.loads(pickle.dumps(st))  # noqa: S301 - our own object
        cfg, pop = EngineConfig(), _ready_population()
        r1 = cls(cfg).update(obs[60], st, pop)
        r2 = cls(cfg).update(obs[60], copy, _ready_population())
        r3 = cls(cfg).update(obs[60], pickled, _ready_population())
        assert (r1.value, r1.evidence) == (r2.value, r2.evidence) == (r3.value, r3.evidence)

    def test_signal_is_picklable(self, cls: type) -> None:
        """A signal object pickles (it holds configuration only)."""
        _skip_unless_checked(cls, "signal_is_picklable")
        sig = cls(EngineConfig())
        assert pickle.loads(pickle.dumps(sig)).name == sig.name  # noqa: S301 - our own object
