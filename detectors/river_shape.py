"""River's anomaly-detector shape for every extraction signal: ``learn_one`` / ``score_one``.

Each class here is a :class:`river.base.AnomalyDetector` (River 0.26 keeps the base class in
``river.base``; ``river.anomaly`` holds the detectors) that runs the *same* code as the engine
on a stream of dicts: the batch pass (:func:`detectors.batch.precompute`), the per-model
baseline (:class:`~detectors.population.ModelPopulation`) and the engine's signal class. It is
the River-facing view of a signal, for notebooks, ``river.evaluate`` and River's own estimator
checks; the engine keeps calling the (compiled) signals directly, so this module is not compiled
(it subclasses River's Python classes) and costs the engine nothing.

What ``x`` holds:

* numeric feature values under any keys: the raw input of one query. The feature names are
  fixed by the first ``learn_one`` (sorted by name, so their order in the dict does not matter);
  a feature missing later takes its running mean (``river.stats.Mean``), an extra one is
  ignored, a non-finite value counts as missing;
* optionally the model's answer: ``proba_<k>`` keys (class ``k``'s probability; ``k`` sorted as
  numbers when they are) give the output probabilities;
* optionally ``client`` (the client id, any string or number) and ``ts`` (epoch seconds): the
  keys are the ``client_key`` and ``time_key`` parameters. Without a client, the stream is cut
  into *sessions* of ``session`` queries, each one pseudo-client; without a time, the queries
  come one a second.

``learn_one(x)`` is one benign query: it updates its client's state with every signal, exactly
as the engine does, and teaches the population what the engine would teach (the warm-up of the
standardiser, then lessons applied in epochs). The population is what *other* clients taught,
as in the engine: novelty is measured against earlier sessions' inputs, never the current one's.
``score_one(x)`` is the signal's evidence in nats (what it hands the combiner) if ``x`` were the
client's next query, computed on a copy: scoring changes nothing. Higher is more anomalous; 0
means nothing unusual (or not enough learned yet).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = NoveltyDetector(seed=1)
>>> for _ in range(600):
...     det.learn_one({f"f{i}": float(v) for i, v in enumerate(rng.normal(0, 1, 4))})
>>> far = {"f0": 40.0, "f1": -40.0, "f2": 40.0, "f3": 40.0}
>>> det.score_one(far) > det.score_one({"f0": 0.1, "f1": 0.0, "f2": -0.2, "f3": 0.3})
True
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import numpy as np
from river import base as river_base  # the River package, not this module
from river import stats as river_stats

from detectors.base import ConfiguredSignal, Reading, Signal
from detectors.batch import precompute
from detectors.config import EngineConfig
from detectors.population import Lesson, ModelPopulation, output_bucket
from detectors.population_codec import dump_populations, load_populations
from detectors.signals.class_spread import ClassSpreadSignal
from detectors.signals.coverage import CoverageSignal
from detectors.signals.low_margin import LowMarginSignal, output_margin
from detectors.signals.novelty import NoveltySignal
from detectors.signals.steps import StepSignal
from detectors.signals.volume import VolumeSignal
from detectors.state import ClientState
from schemas import ModelOutput, QueryEvent

MODEL = "river"  # the one model id the adapter's population is kept under
EPOCH = 1_767_225_600.0  # a stream without times starts here, one query a second
LAST_TS = 32_503_680_000.0  # year 3000: later (or negative) times are not times
_SIGNALS: tuple[type[ConfiguredSignal], ...] = (
    NoveltySignal, StepSignal, CoverageSignal, LowMarginSignal, ClassSpreadSignal, VolumeSignal,
)  # fmt: skip


def _finite(v: Any) -> float | None:
    """A feature value as a float, or None when it is not a finite number."""
    if isinstance(v, bool) or not isinstance(v, int | float | np.number):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _class_key(k: str) -> tuple[int, float, str]:
    """Order ``proba_<k>`` classes as numbers when they are, else by name."""
    try:
        return (0, float(k), "")
    except ValueError:
        return (1, 0.0, k)


class SignalDetector(river_base.AnomalyDetector):
    """An engine signal in River's anomaly-detector shape (see the module docstring).

    Parameters
    ----------
    seed
        The engine's seed (projection, reservoirs): same seed and stream, same scores.
    session
        Queries per pseudo-client when ``x`` names no client.
    max_clients
        Client states kept (least recently used forgotten): memory stays bounded.
    warmup_events
        Inputs the standardiser learns before the feature space is frozen.
    client_key, time_key, proba_prefix
        The keys of ``x`` that carry the client id, the time and the output probabilities.
    """

    signal: ClassVar[type[ConfiguredSignal]] = NoveltySignal  # each subclass names its own

    def __init__(
        self,
        seed: int = 0,
        session: int = 32,
        max_clients: int = 16,
        warmup_events: int = 128,
        client_key: str = "client",
        time_key: str = "ts",
        proba_prefix: str = "proba_",
    ) -> None:
        self.seed = seed
        self.session = session
        self.max_clients = max_clients
        self.warmup_events = warmup_events
        self.client_key = client_key
        self.time_key = time_key
        self.proba_prefix = proba_prefix
        self._reset()

    def _reset(self) -> None:
        self._config = EngineConfig(
            seed=self.seed, warmup_events=max(1, self.warmup_events), max_clients=self.max_clients
        )
        self._population = ModelPopulation(MODEL, self._config)
        self._signals = tuple(cast(Signal, cls(self._config)) for cls in _SIGNALS)
        self._own = self._signals[_SIGNALS.index(self.signal)]
        self._clients: OrderedDict[str, ClientState] = OrderedDict()
        self._names: tuple[Any, ...] | None = None  # feature names, fixed by the first lesson
        self._means: dict[Any, river_stats.Mean] = {}
        self._learned = 0  # queries learned without a client (they make up the sessions)
        self._clock = 0  # queries learned, the time of a stream without times

    # ------------------------------------------------------------------ River API
    def learn_one(self, x: dict[Any, Any]) -> None:
        """Fold one benign query into its client's state and teach the population."""
        if not self._names:  # fixed by the first lesson with features
            names = [k for k in x if self._is_feature(k, x[k])]
            self._names = tuple(sorted(names, key=str))
        for k in self._names:
            v = _finite(x.get(k))
            if v is not None:
                self._means.setdefault(k, river_stats.Mean()).update(v)
        client = self._client_of(x)
        event = self._event(x, client)
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = ClientState()
            while len(self._clients) > max(1, self.max_clients):
                self._clients.popitem(last=False)
        self._clients.move_to_end(client)
        self._observe(event, state, learn=True)
        self._clock += 1
        if self.client_key not in x:
            self._learned += 1

    def score_one(self, x: dict[Any, Any]) -> float:
        """The signal's evidence (nats) if ``x`` were its client's next query; pure."""
        if self._names is None:
            return 0.0
        client = self._client_of(x)
        kept = self._clients.get(client)
        state = ClientState() if kept is None else ClientState.from_bytes(kept.to_bytes())
        return float(self._observe(self._event(x, client), state, learn=False).evidence)

    # ------------------------------------------------------------------ the engine's path
    def _observe(self, event: QueryEvent, state: ClientState, learn: bool) -> Reading:
        """One query through the batch pass and the signals, as ``Engine._score`` does."""
        cfg, pop = self._config, self._population
        features = event.features
        has_features = pop.accepts(features) if learn or pop.dim is not None else False
        pre = precompute([event], lambda _: pop, {event.client_id: state}, cfg)[0]
        st = state.model(MODEL, cfg)
        st.n += 1
        if st.n == 1:
            st.first_ts = st.last_emit_ts = pre.ts
        if pre.z is not None:
            st.feature_n += 1
        if event.output is not None:
            pre.margin = output_margin(event.output.probabilities, event.output.confidence)
            if pre.z is None:
                pre.label = output_bucket(event.output, cfg.class_buckets)
            if pre.label is not None:
                st.output_n += 1
        if not learn:  # scoring: only this signal, on a copy of the state
            return self._own.update(pre, st, pop)
        readings = {sig.name: sig.update(pre, st, pop) for sig in self._signals}
        if pre.z is not None and not pre.retry:
            st.push(pre.z, pre.crc, cfg.ring_size, pre.label)
        st.last_ts = max(st.last_ts, pre.ts)
        if pre.retry:
            return readings[self._own.name]
        if has_features and not pop.frozen and features is not None:
            pop.learn_warmup(pre.owner, np.asarray(features, dtype=np.float64))
        pop.teach(
            Lesson(
                owner=pre.owner,
                z=None if pre.z is None else pre.z.astype(np.float64),
                novelty=readings[NoveltySignal.name].lesson,
                step=readings[StepSignal.name].lesson,
                step_count=pre.step_count,
                self_surprise=pre.self_surprise(cfg.self_min_reference, cfg.self_contrast),
                collinear=pre.collinearity,
                margin=readings[LowMarginSignal.name].lesson,
                label=pre.label,
                cell=pre.cell,
                volume=float(readings[VolumeSignal.name].lesson or 0.0),
            )
        )
        return readings[self._own.name]

    # ------------------------------------------------------------------ reading x
    def _is_feature(self, key: Any, value: Any) -> bool:
        reserved = key in (self.client_key, self.time_key)
        output = isinstance(key, str) and key.startswith(self.proba_prefix)
        return not reserved and not output and _finite(value) is not None

    def _client_of(self, x: dict[Any, Any]) -> str:
        named = x.get(self.client_key)
        if named is not None and not isinstance(named, bool) and str(named):
            return f"client:{named}"
        return f"session:{self._learned // max(1, self.session)}"

    def _event(self, x: dict[Any, Any], client: str) -> QueryEvent:
        names = self._names or ()
        features: list[float] = []
        for k in names:
            v = _finite(x.get(k))
            if v is None:
                mean = self._means.get(k)
                v = 0.0 if mean is None else float(mean.get())
            features.append(v)
        probs = sorted(
            (k[len(self.proba_prefix) :], _finite(v))
            for k, v in x.items()
            if isinstance(k, str) and k.startswith(self.proba_prefix)
        )
        probs.sort(key=lambda kv: _class_key(kv[0]))
        output = None
        if probs and all(p is not None and 0.0 <= p <= 1.0 for _, p in probs):
            output = ModelOutput(probabilities=[float(p or 0.0) for _, p in probs])
        elif probs:
            raise ValueError(f"{self.proba_prefix}<k> values must be probabilities in [0, 1]")
        ts = _finite(x.get(self.time_key))
        if ts is not None and not 0.0 <= ts < LAST_TS:
            ts = None  # not a time a query can carry: one a second, as without
        return QueryEvent.model_construct(
            event_id=f"river-{self._clock}",
            timestamp=datetime.fromtimestamp(EPOCH + self._clock if ts is None else ts, UTC),
            client_id=client,
            model_id=MODEL,
            features=features or None,
            output=output,
        )

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """The parameters and learned state, the baseline and client states without pickle
        (their own codecs: a compiled baseline cannot be pickled field by field)."""
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["_names"] = self._names
        state["_means"] = self._means  # River's statistics pickle as they are
        state["_learned"], state["_clock"] = self._learned, self._clock
        state["_population"] = dump_populations({MODEL: self._population})
        state["_clients"] = [(c, s.to_bytes()) for c, s in self._clients.items()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from :meth:`__getstate__`."""
        for k, v in state.items():
            if not k.startswith("_"):
                setattr(self, k, v)
        self._reset()
        self._names = state["_names"]
        self._means = state["_means"]
        self._learned, self._clock = state["_learned"], state["_clock"]
        self._population = load_populations(state["_population"], self._config)[MODEL]
        for c, blob in state["_clients"]:
            self._clients[c] = ClientState.from_bytes(blob)

    def _unit_test_skips(self) -> set[str]:
        """River's checks this adapter opts out of, by name (none: it passes them all)."""
        return set()


class NoveltyDetector(SignalDetector):
    """The ``novelty`` signal in River's shape: inputs far from other clients' benign inputs.

    >>> det = NoveltyDetector()
    >>> det.score_one({"a": 1.0})  # nothing learned yet
    0.0
    """

    signal = NoveltySignal


class StepsDetector(SignalDetector):
    """The ``steps`` signal in River's shape: small systematic steps between a client's queries.

    >>> StepsDetector(session=64).session
    64
    """

    signal = StepSignal


class CoverageDetector(SignalDetector):
    """The ``coverage`` signal in River's shape: a client sweeping the input space.

    >>> CoverageDetector().score_one({"a": 1.0})
    0.0
    """

    signal = CoverageSignal


class LowMarginDetector(SignalDetector):
    """The ``low_margin`` signal in River's shape: answers near the decision boundary.

    >>> det = LowMarginDetector()
    >>> det.learn_one({"a": 1.0, "proba_0": 0.9, "proba_1": 0.1})
    >>> det.score_one({"a": 1.0, "proba_0": 0.5, "proba_1": 0.5})  # sketch not ready yet
    0.0
    """

    signal = LowMarginSignal


class ClassSpreadDetector(SignalDetector):
    """The ``class_spread`` signal in River's shape: classes spread more evenly than traffic.

    >>> ClassSpreadDetector(proba_prefix="p").proba_prefix
    'p'
    """

    signal = ClassSpreadSignal


class VolumeDetector(SignalDetector):
    """The ``volume`` signal in River's shape: many queries, fast (capped: context only).

    >>> VolumeDetector().score_one({"a": 1.0})
    0.0
    """

    signal = VolumeSignal

    def _unit_test_skips(self) -> set[str]:
        """``check_roc_auc``: volume counts a client's queries and their rate and never reads
        ``x``, so ranking single queries by it measures when they came, not what they are."""
        return {"check_roc_auc"}


DETECTORS: tuple[type[SignalDetector], ...] = (
    NoveltyDetector, StepsDetector, CoverageDetector,
    LowMarginDetector, ClassSpreadDetector, VolumeDetector,
)  # fmt: skip
