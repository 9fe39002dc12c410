"""River's own estimator checks on every signal's River-shaped adapter (detectors.river_shape)."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from river import base as river_base
from river import checks

import detectors
import detectors.signals
from detectors.river_shape import DETECTORS, SignalDetector

Row = tuple[dict[str, Any], bool]


def _stream(n: int, seed: int = 0) -> list[Row]:
    """A benign stream (confident answers, inputs around one centre) with 5 % anomalies:
    far inputs answered at the boundary, or a tiny step from the query before."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    last = np.zeros(6)
    for i in range(n):
        anomaly = i > n // 5 and rng.uniform() < 0.05
        if anomaly and rng.uniform() < 0.5:
            v, p = last + rng.normal(0, 1e-3, 6), 0.5
        elif anomaly:
            v, p = rng.uniform(8, 12, 6) * rng.choice([-1, 1], 6), 0.5
        else:
            v, p = rng.normal(0, 1, 6), float(rng.uniform(0.85, 1.0))
        x: dict[str, Any] = {f"f{j}": float(v[j]) for j in range(6)}
        x["proba_0"], x["proba_1"] = p, 1.0 - p
        rows.append((x, bool(anomaly)))
        last = v
    return rows


def _checks(model: SignalDetector) -> Iterator[Callable[[SignalDetector], None]]:
    """``river.checks.yield_checks``, each dataset check given a local stream.

    ``check_estimator`` would feed anomaly detectors River's CreditCard data set, a 150 MB
    download; the checks themselves are River's, run in the same order with the same skips.
    """
    for check in checks.yield_checks(model):
        if isinstance(check, functools.partial) and "dataset" in check.keywords:
            n = 2_000 if check.func is checks.common.check_bounded_memory_growth else 400
            local = functools.partial(check.func, dataset=_stream(n))
            local.__name__ = check.func.__name__  # type: ignore[attr-defined]
            yield local
        else:
            yield check


def _check_id(check: Callable[..., None]) -> str:
    return getattr(check, "__name__", repr(check))


CASES = [
    pytest.param(cls, check, id=f"{cls.__name__}-{i:02d}-{_check_id(check)}")
    for cls in DETECTORS
    for i, check in enumerate(_checks(cls()))
]


class TestRiverChecks:
    """Every adapter passes River's estimator checks but those it names in its skips."""

    @pytest.mark.parametrize(("cls", "check"), CASES)
    def test_river_check(self, cls: type[SignalDetector], check: Callable[..., None]) -> None:
        """One of River's checks, on a fresh clone (as ``check_estimator`` runs it)."""
        model = cls()
        name = _check_id(check)
        if name in model._unit_test_skips():
            pytest.skip(f"{cls.__name__} opts out of {name}")
        check(model.clone())


class TestAdapters:
    """The adapters cover every signal and behave as River detectors."""

    def test_one_adapter_per_signal(self) -> None:
        """Each engine signal has exactly one River-shaped adapter, exported from detectors."""
        signals = {getattr(detectors.signals, n) for n in detectors.signals.__all__}
        assert {cls.signal for cls in DETECTORS} == signals
        for cls in DETECTORS:
            assert issubclass(cls, river_base.AnomalyDetector)
            assert getattr(detectors, cls.__name__) is cls
            assert cls.__name__ in detectors.__all__

    @pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
    def test_score_is_pure(self, cls: type[SignalDetector]) -> None:
        """Scoring changes nothing: the pickled state is the same before and after."""
        model = cls(seed=3)
        for x, _ in _stream(300):
            model.learn_one(x)
        before = pickle.dumps(model)
        for x, _ in _stream(20, seed=1):
            model.score_one(x)
        assert pickle.dumps(model) == before

    @pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
    def test_pickle_scores_on_identically(self, cls: type[SignalDetector]) -> None:
        """A pickled adapter learns and scores on exactly as the original."""
        rows = _stream(400, seed=2)
        a = cls(seed=1)
        for x, _ in rows[:300]:
            a.learn_one(x)
        b = pickle.loads(pickle.dumps(a))  # noqa: S301 - our own object
        got_a, got_b = [], []
        for x, _ in rows[300:]:
            got_a.append(a.score_one(x))
            got_b.append(b.score_one(x))
            a.learn_one(x)
            b.learn_one(x)
        assert got_a == got_b

    def test_novelty_ranks_far_inputs_first(self) -> None:
        """Learned from benign traffic, novelty scores a far input above a typical one."""
        model = DETECTORS[0](seed=0)
        for x, y in _stream(800):
            if not y:
                model.learn_one(x)
        typical, far = _stream(1, seed=9)[0][0], {f"f{j}": 30.0 for j in range(6)}
        assert model.score_one(far) > model.score_one(typical) >= 0.0

    def test_named_clients_are_kept_apart(self) -> None:
        """With a client key, each client has its own state: one's queries do not move another's."""
        model = DETECTORS[1](seed=0)  # steps: the client's own history matters
        for i, (x, _) in enumerate(_stream(600)):
            model.learn_one({**x, "client": f"c{i % 6}"})
        probe = {f"f{j}": 0.5 for j in range(6)}
        alone = model.score_one({**probe, "client": "new"})
        assert alone == 0.0 or np.isfinite(alone)
        assert model.score_one({**probe, "client": "c1"}) >= 0.0

    def test_bad_probabilities_are_an_error(self) -> None:
        """A probability outside [0, 1] is refused with a clear error, not scored silently."""
        model = DETECTORS[3]()
        with pytest.raises(ValueError, match="probabilities"):
            model.learn_one({"a": 1.0, "proba_0": 1.5})
