"""What every signal sees and returns."""

from __future__ import annotations

import math
from typing import ClassVar, Final, Protocol, Self

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig
from detectors.population import ModelPopulation
from detectors.state import ModelClientState

FloatArray = NDArray[np.float64]
LOG2: Final = math.log(2.0)


class Observation:
    """One query as the signals see it: projected input and model output, no raw values kept.

    (A plain class with its own ``__init__``, not a dataclass: compiled, a dataclass's
    generated ``__init__`` would still run as interpreted Python for every query.)
    """

    __slots__ = (
        "cell", "collinearity", "label", "margin", "nearest", "other_same", "other_same_count",
        "own_nearest", "own_same", "owner", "retry", "step", "step_count", "step_ratio", "tail",
        "ts",
    )  # fmt: skip

    # What ``repr`` shows (a compiled class keeps no ``__slots__`` to read them from).
    _shown: ClassVar[tuple[str, ...]] = (
        "owner", "ts", "nearest", "cell", "margin", "label", "retry", "step_ratio",
        "step_count", "step", "collinearity", "own_nearest", "own_same", "other_same",
        "other_same_count", "tail",
    )  # fmt: skip

    def __init__(
        self,
        owner: int,
        ts: float,
        nearest: float | None = None,
        cell: int | None = None,
        margin: float | None = None,
        label: int | None = None,
        retry: bool = False,
        step_ratio: float | None = None,
        step_count: int = 0,
        step: float | None = None,
        collinearity: float | None = None,
        own_nearest: float | None = None,
        own_same: list[float] | None = None,
        other_same: float | None = None,
        other_same_count: int = 0,
    ) -> None:
        self.owner = owner
        self.ts = ts
        self.nearest = nearest
        self.cell = cell
        self.margin = margin
        self.label = label
        self.retry = retry  # an exact repeat of one of the client's recent inputs
        self.step_ratio = step_ratio  # nearest step / median distance to recent inputs
        self.step_count = step_count  # how many recent inputs that ratio was measured against
        self.step = step  # the nearest step itself (distance to the nearest recent input)
        self.collinearity = collinearity  # |cos| between the last two steps
        self.own_nearest = own_nearest  # distance to the nearest of the client's recent inputs
        # Same class bucket only: distances to the client's recent inputs, nearest first
        # (empty when the nearest is the input just before: a continuation), and the
        # nearest of the other clients' reference inputs and how many of those there are.
        self.own_same: list[float] = [] if own_same is None else own_same
        self.other_same = other_same
        self.other_same_count = other_same_count
        # The largest per-query tail evidence (nats) any signal's look gave this query, or
        # None when no look was scored: what detectors.tail_count counts.
        self.tail: float | None = None

    def note_tail(self, e: float) -> None:
        """A signal's per-query tail evidence for this query: the largest is kept.

        >>> obs = Observation(owner=1, ts=0)
        >>> obs.note_tail(1.5); obs.note_tail(0.2); obs.tail
        1.5
        """
        tail = self.tail
        if tail is None or e > tail:
            self.tail = e

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._shown)
        return f"{type(self).__name__}({shown})"

    def self_surprise(self, min_reference: int, contrast: float = 1.0) -> float | None:
        """Surprise (nats) at how many of the client's own same-class inputs are nearer
        than every other client's, if the client's inputs were exchangeable with theirs.

        Among ``m`` own and ``R`` other inputs of the class, each ordering equally
        likely, the chance that the ``j`` nearest are all the client's own is
        ``m/(m+R) * (m-1)/(m+R-1) * ...`` (``j`` factors): a p-value, so the surprise
        ``-log`` of it is at most Exp(1)-distributed for natural traffic. Synthetic
        neighbours of earlier queries (JbDA, probes around a point) put several own
        inputs nearer than any natural one. ``None`` when there is nothing to test.

        With ``contrast`` below 1, an own input counts only when it is nearer than that
        share of the nearest other's distance. In high dimension distances concentrate,
        and a client keeping to one topic of a class (a sub-cluster) has many own inputs
        just nearer than the class's others; synthetic neighbours are much nearer. Fewer
        own inputs counted can only make the p-value larger, so it stays valid.

        >>> obs = Observation(owner=1, ts=0, own_same=[0.5, 0.9, 3.0], other_same=2.0,
        ...                   other_same_count=9)
        >>> round(obs.self_surprise(8), 3)  # 2 of 3 own nearer than 9 others: p = 3/12 * 2/11
        3.091
        >>> round(obs.self_surprise(8, contrast=0.4), 3)  # only 0.5 is nearer than 0.8
        1.386
        """
        other, own = self.other_same, self.own_same
        if not own or other is None or math.isnan(other) or self.other_same_count < min_reference:
            return None
        m, r = len(own), self.other_same_count
        log_p = 0.0
        limit = contrast * other
        for t, d in enumerate(own):
            if d >= limit:
                break
            log_p += math.log((m - t) / (m + r - t))
        return -log_p

    def fresh_share(self) -> float:
        """How much of this query is new ground: own-nearest over benign-nearest, at most 1.

        A query that is a near copy of one of the client's own recent queries repeats
        that query's evidence rather than adding independent evidence (a sensor
        streaming slowly drifting readings, consecutive video frames), so per-event
        tail evidence is counted in proportion to the distance it moved, measured
        against its distance to the other clients' inputs.

        >>> Observation(owner=1, ts=0, nearest=4.0, own_nearest=0.2).fresh_share()
        0.05
        """
        near = self.nearest
        if self.own_nearest is None or near is None or not 0.0 < near < math.inf:
            return 1.0  # no continuation, or no other client's input to measure against
        return min(1.0, self.own_nearest / near)


class Reading:
    """A signal's verdict on a client after one query.

    ``value`` is the readable statistic behind it, ``evidence`` the accumulated
    evidence in nats (0 means nothing unusual), ``lesson`` what the query
    teaches the population when the client may teach it.
    """

    __slots__ = ("evidence", "lesson", "value")

    def __init__(self, value: float, evidence: float, lesson: float | None = None) -> None:
        self.value = value
        self.evidence = evidence
        self.lesson = lesson

    def __repr__(self) -> str:
        return f"Reading(value={self.value!r}, evidence={self.evidence!r}, lesson={self.lesson!r})"


class ConfiguredSignal:
    """What every signal shares: the engine's configuration, and pickling by it (compiled
    classes cannot be filled in after construction)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def __reduce__(self) -> tuple[type[Self], tuple[EngineConfig]]:
        return type(self), (self.config,)

    @classmethod
    def _unit_test_skips(cls) -> set[str]:
        """The conformance checks this signal opts out of, by name (River's convention).

        ``tests/unit/test_detectors_conformance.py`` runs every check on every signal of
        :mod:`detectors.signals` except those named here; a signal overrides this and says
        why beside each name.
        """
        return set()


class Signal(Protocol):
    """An extraction signal: updates one client's state with one observation."""

    @property
    def name(self) -> str:
        """The signal's name: its key in state, readings and alerts (a class constant)."""
        ...

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Score the observation against the population and fold it into the client state."""
        ...


def cusum(state: ModelClientState, name: str, increment: float, config: EngineConfig) -> float:
    """Page's CUSUMs of per-event tail evidence, returned as one surprise in nats.

    Per-event evidence of a population-typical query is about Exp(1) (mean 1).
    With a drift ``d`` above that mean, a benign client's sum
    ``S = max(0, S + e - d)`` keeps falling back to 0 and exceeds s with
    probability about ``exp(-rate * s)``, where ``rate`` solves
    ``exp(-d * rate) = 1 - rate``; ``rate * S`` is therefore a surprise
    comparable with ``-log p`` of the client-level tests. A fast CUSUM
    (drift 3) reacts within a few queries to inputs far in the tail; a slow one
    (drift 1.9) accumulates a persistent moderate shift, such as perturbed
    natural inputs. The better of the two looks, less log 2, is the surprise.
    """
    surprise = state.evidence[name] = cusum_surprise(state, name, increment, config)
    return surprise


def cusum_surprise(
    state: ModelClientState, key: str, increment: float, config: EngineConfig
) -> float:
    """Update the fast and slow CUSUMs kept under ``key`` and return their surprise."""
    fast_key, slow_key = _cusum_keys(key)
    values = state.values
    cap = 2.0 * config.cap_signal
    # min(max(0.0, x), limit) and max(a, b) spelt as comparisons: the same floats, faster.
    fast = values.get(fast_key, 0.0) + increment - config.cusum_drift
    fast = fast if fast > 0.0 else 0.0
    limit = cap / config.cusum_rate
    fast = limit if limit < fast else fast
    slow = values.get(slow_key, 0.0) + increment - config.slow_drift
    slow = slow if slow > 0.0 else 0.0
    limit = cap / config.slow_rate
    slow = limit if limit < slow else slow
    values[fast_key] = fast
    values[slow_key] = slow
    best = config.cusum_rate * fast
    other = config.slow_rate * slow
    best = (other if other > best else best) - LOG2
    return best if best > 0.0 else 0.0


_KEYS: dict[str, tuple[str, str]] = {}  # a signal's CUSUM keys, built once per name


def _cusum_keys(key: str) -> tuple[str, str]:
    keys = _KEYS.get(key)
    if keys is None:
        keys = _KEYS[key] = ("cusum_" + key, "slow_" + key)
    return keys


def bernoulli_cusum(
    state: ModelClientState, key: str, hit: bool, p0: float, p1: float, cap: float
) -> float:
    """Wald's CUSUM for the rate of tail hits: benign rate ``p0`` against ``p1``.

    Each event adds ``log(p1/p0)`` when it lands in the population's lower
    ``p0`` tail and ``log((1-p1)/(1-p0))`` otherwise. The increments are
    bounded, so a few extreme events cannot build evidence; only a client whose
    events land in the tail persistently more often than ``p0`` does. For a
    log-likelihood-ratio CUSUM the benign tail rate is exactly 1, so the sum is
    itself a surprise in nats.
    """
    inc = math.log(p1 / p0) if hit else math.log((1.0 - p1) / (1.0 - p0))
    s = state.values.get(key, 0.0) + inc
    s = s if s > 0.0 else 0.0  # min(max(0.0, s), cap)
    s = cap if cap < s else s
    state.values[key] = s
    return s


def ewma(state: ModelClientState, name: str, value: float, alpha: float = 0.05) -> float:
    """An exponentially weighted mean kept in the client state's ``values``."""
    values = state.values
    prev = values.get(name)
    out = value if prev is None else (1 - alpha) * prev + alpha * value
    values[name] = out
    return out


def normal_tail_evidence(z: float) -> float:
    """``-log P(Z >= z)`` for a standard normal Z (0 for z <= 0)."""
    if z <= 0.0:
        return 0.0
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    if p > 0.0:
        return -math.log(p)
    return 0.5 * z * z + math.log(z * math.sqrt(2.0 * math.pi))
