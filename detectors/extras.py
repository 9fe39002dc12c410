"""Any River anomaly detector as one more signal of the engine, configured without code.

``EngineConfig(extra_detectors=(("river.anomaly.HalfSpaceTrees", {"seed": 0}),))``, or in the
worker's environment ``CLONEWATCH_ENGINE__EXTRA_DETECTORS='[["river.anomaly.HalfSpaceTrees",
{"seed": 0}]]'``, adds a signal named after the class (``half_space_trees``). For each model it
keeps one clone of the detector (``river.base.Base.clone``) and:

* feeds it each query's projected input, what the model's baseline gives (standardised and
  projected to ``projection_dim`` dimensions, as ``{0: z0, 1: z1, ...}``), so it sees inputs in
  the same scale-free space as the other signals; before the model's feature space is frozen
  (its warm-up) it scores nothing;
* learns only what the baseline learns: the lessons the population admitted in an epoch
  (clients below ``learn_below_risk``, each client's share thinned, out-of-distribution lessons
  capped by the poisoning guard), so no client can teach it more than it teaches the baseline;
* calibrates its raw score into tail evidence against the model's own population of scores:
  every 4th admitted input is held out (never learned) and the 256 most recent held-out inputs
  are rescored by the current detector after each epoch it learns (split conformal
  calibration, so a detector whose scale moves as it learns is compared with its own current
  scores). ``-log P(benign score >= s)`` is about Exp(1) for benign traffic, like every other
  per-query signal, and enters the same fast and slow CUSUMs, so the combiner adds it as one
  more signal (its name in alerts and risk scores, capped like the others).

Only classes of the ``river`` package that are anomaly detectors may be named: a dotted path in
an environment variable must not be a way to import and run arbitrary code.

>>> from detectors.config import EngineConfig
>>> extras = Extras(EngineConfig(extra_detectors=(("river.anomaly.HalfSpaceTrees", {"seed": 0}),)))
>>> [s.name for s in extras.signals]
['half_space_trees']
>>> try:
...     load_detector("os.system", {})
... except ValueError as exc:
...     print(exc)
extra detector 'os.system': only river's anomaly detectors may be named (river.<module>.<Class>)
"""

from __future__ import annotations

import bisect
import importlib
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from numpy.typing import NDArray
from river import base as river_base  # the River package

from detectors.base import Observation, Reading, cusum, ewma
from detectors.config import EngineConfig
from detectors.population import Lesson
from detectors.state import ModelClientState

_SQRT_HALF = math.sqrt(0.5)


def load_detector(path: str, params: Mapping[str, Any]) -> river_base.AnomalyDetector:
    """A new River anomaly detector from its dotted path and parameters (checked)."""
    module, _, name = path.rpartition(".")
    if not (module == "river" or module.startswith("river.")) or not name.isidentifier():
        raise ValueError(
            f"extra detector {path!r}: only river's anomaly detectors may be named "
            "(river.<module>.<Class>)"
        )
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError as exc:
        raise ValueError(f"extra detector {path!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, river_base.AnomalyDetector)):
        raise ValueError(f"extra detector {path!r} is not a river anomaly detector")
    try:
        detector = cls(**dict(params))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra detector {path!r}: bad parameters: {exc}") from None
    return detector


def signal_name(path: str, taken: set[str]) -> str:
    """The signal name of a detector class: its name in snake case, numbered when repeated.

    >>> signal_name("river.anomaly.HalfSpaceTrees", set()), signal_name("x.LODA", {"loda"})
    ('half_space_trees', 'loda_2')
    """
    cls = path.rpartition(".")[2]
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _as_dict(z: NDArray[Any]) -> dict[Hashable, Any]:
    """A projected input as River's feature dict, each coordinate mapped into (0, 1) by the
    normal CDF (monotone: order and neighbourhoods kept; River's HalfSpaceTrees, like several
    of its detectors, expects features in [0, 1]).

    >>> import numpy as np
    >>> _as_dict(np.array([0.0, 10.0]))
    {0: 0.5, 1: 1.0}
    """
    return {i: 0.5 * math.erfc(-v * _SQRT_HALF) for i, v in enumerate(z.tolist())}


HOLD_OUT: Final = 4  # every 4th admitted lesson calibrates instead of teaching
CALIBRATION: Final = 256  # the most recent held-out inputs the scores are calibrated on


class _PerModel:
    """One model's clone of the detector and its held-out calibration inputs.

    The calibration scores are the current detector's scores of recent admitted inputs it
    never learned (split conformal calibration), rescored after every epoch it learns: a
    detector whose scale moves as it learns (HalfSpaceTrees scores 0 until its first window
    is full, then swaps windows) is always compared with its own current scores.
    """

    __slots__ = ("detector", "held", "next_held", "scores", "seen")

    def __init__(self, detector: river_base.AnomalyDetector) -> None:
        self.detector = detector
        self.held: list[dict[Hashable, Any]] = []  # a ring of held-out inputs
        self.next_held = 0
        self.scores: list[float] = []  # their current scores, sorted
        self.seen = 0  # admitted lessons with an input

    def learn(self, lessons: Sequence[Lesson]) -> None:
        """Learn the admitted lessons, holding every HOLD_OUT-th out; rescore the held."""
        for ls in lessons:
            if ls.z is None:
                continue
            x = _as_dict(ls.z)
            self.seen += 1
            if self.seen % HOLD_OUT:
                self.detector.learn_one(x)
            elif len(self.held) < CALIBRATION:
                self.held.append(x)
            else:
                self.held[self.next_held] = x
                self.next_held = (self.next_held + 1) % CALIBRATION
        raw = (float(self.detector.score_one(x)) for x in self.held)
        self.scores = sorted(v for v in raw if math.isfinite(v))

    def evidence(self, x: dict[Hashable, Any]) -> float:
        """``-log P(held-out score >= this score)``, with the conformal ``+1``s."""
        n = len(self.scores)
        raw = float(self.detector.score_one(x))
        if not math.isfinite(raw):
            return 0.0
        at_or_above = n - bisect.bisect_left(self.scores, raw)
        return -math.log((at_or_above + 1) / (n + 1))


class ExtraSignal:
    """One configured River detector, as a signal: a clone per model, scores calibrated."""

    def __init__(self, path: str, params: Mapping[str, Any], name: str, config: EngineConfig):
        self.path = path
        self.params = dict(params)
        self.name = name
        self.config = config
        self.template = load_detector(path, self.params)
        self.models: dict[str, _PerModel] = {}

    def _model(self, model_id: str) -> _PerModel:
        m = self.models.get(model_id)
        if m is None:
            m = self.models[model_id] = _PerModel(self.template.clone())
        return m

    def update(
        self, model_id: str, z: NDArray[Any] | None, obs: Observation, state: ModelClientState
    ) -> Reading:
        """Score one query's projected input and fold its tail evidence into the client's."""
        name = self.name
        if z is None or obs.retry:
            return Reading(state.values.get(name, 0.0), state.evidence.get(name, 0.0))
        m = self.models.get(model_id)
        e = 0.0
        if m is not None and len(m.scores) >= self.config.min_sketch:
            e = m.evidence(_as_dict(z)) * obs.fresh_share()
        value = ewma(state, name, e)
        return Reading(value, cusum(state, name, e, self.config))

    def learn(self, model_id: str, lessons: Sequence[Lesson]) -> None:
        """Learn the lessons the model's baseline admitted (some held out to calibrate)."""
        self._model(model_id).learn(lessons)


class Extras:
    """The extra River detectors an :class:`~detectors.config.EngineConfig` names."""

    def __init__(self, config: EngineConfig) -> None:
        taken = {"novelty", "steps", "coverage", "low_margin", "class_spread", "volume"}
        taken |= {"tail_count", "model_fanout"}  # the engine's own evidence beyond signals
        self.signals: list[ExtraSignal] = []
        for entry in config.extra_detectors:
            path, params = _entry(entry)
            name = signal_name(path, taken)
            taken.add(name)
            self.signals.append(ExtraSignal(path, params, name, config))

    def forget(self, model_id: str) -> None:
        """Drop the detectors' clones of a model the engine no longer tracks."""
        for sig in self.signals:
            sig.models.pop(model_id, None)

    def score(
        self,
        model_id: str,
        z: NDArray[Any] | None,
        obs: Observation,
        state: ModelClientState,
        readings: dict[str, Reading],
    ) -> None:
        """Add each extra signal's reading (its evidence goes into the client's state)."""
        for sig in self.signals:
            readings[sig.name] = sig.update(model_id, z, obs, state)

    def learn(self, model_id: str, lessons: Sequence[Lesson]) -> None:
        """Teach every extra detector what the model's baseline admitted in an epoch."""
        for sig in self.signals:
            sig.learn(model_id, lessons)


def _entry(entry: Any) -> tuple[str, Mapping[str, Any]]:
    """``(path, params)`` from a config entry: a pair, or a bare path (no parameters)."""
    if isinstance(entry, str):
        return entry, {}
    if (
        isinstance(entry, Sequence)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], Mapping)
    ):
        return entry[0], entry[1]
    raise ValueError(
        f'extra detector {entry!r}: expected ["river.<module>.<Class>", {{parameters}}]'
    )
