"""PRADA (Juuti et al., EuroS&P 2019): the published per-client extraction detector, a baseline.

For each client, and each class the model predicted for it, PRADA keeps a growing
set ``G_c`` of that client's queries. A new query of predicted class ``c`` gets
its minimum L2 distance to ``G_c`` (the first query of a class only founds
``G_c``); the distance joins the client's list ``D`` and the query joins ``G_c``
when the distance exceeds the class threshold ``T_c``, which is then raised to
``max(T_c, mean - std)`` of the distances with which members joined ``G_c``
(the founder counting as 0). Benign queries give roughly normally distributed
distances; synthetic attack queries (small steps, uniform noise) do not. Every
10 queries PRADA runs the Shapiro-Wilk test on ``D`` and raises the alarm when
the statistic ``W`` falls below ``delta`` (0.9).

As in the authors' code: ``D`` pools the classes that have at least 10
distances, values more than 3 standard deviations from its mean are dropped,
and the test only runs once more than 100 distances remain. The test runs when
the number of queries already processed is a multiple of 10.

Bounds (ours, to keep state fixed-size): a class's growing set stops growing at
``max_growing`` (2000) members, after which its queries still get distances;
``D`` keeps the latest ``max_distances`` (4096) distances, below scipy's
5000-sample limit for accurate Shapiro-Wilk p-values. State is plain numpy and
Python containers, so it pickles.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> honest = PradaClient()
>>> alarms = [honest.process(x, int(x[0] > 0)) for x in rng.normal(size=(400, 8))]
>>> any(alarms), honest.distances_seen
(False, 398)
>>> thief = PradaClient()   # a seed of 20 inputs, then small signed steps around them
>>> seed = rng.normal(size=(20, 8))
>>> steps = [s + 0.05 * rng.choice([-1.0, 1.0], size=8) for s in seed for _ in range(10)]
>>> alarms = [thief.process(x, int(x[0] > 0)) for x in list(seed) + steps]
>>> thief.alarmed, thief.alarm_at, round(thief.last_w, 2)
(True, 111, 0.22)
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.stats import shapiro

from schemas.query import QueryEvent

FloatArray = NDArray[np.float64]

DELTA = 0.9
MIN_DISTANCES = 100
CHECK_EVERY = 10
MIN_CLASS_DISTANCES = 10
OUTLIER_SIGMAS = 3.0
MAX_GROWING = 2000
MAX_DISTANCES = 4096


@dataclass
class _ClassSet:
    """The growing set of one predicted class and its threshold."""

    members: FloatArray
    size: int = 1
    join_sum: float = 0.0  # the founder joins with distance 0
    join_sumsq: float = 0.0
    threshold: float = 0.0

    def nearest(self, x: FloatArray) -> float:
        diff = self.members[: self.size] - x
        return float(np.sqrt(np.min(np.einsum("ij,ij->i", diff, diff))))

    def join(self, x: FloatArray, distance: float, cap: int) -> None:
        if self.size >= cap:
            return
        if self.size == len(self.members):
            grown = np.empty((min(cap, 2 * self.size), self.members.shape[1]))
            grown[: self.size] = self.members
            self.members = grown
        self.members[self.size] = x
        self.size += 1
        self.join_sum += distance
        self.join_sumsq += distance * distance
        mean = self.join_sum / self.size
        std = math.sqrt(max(0.0, self.join_sumsq / self.size - mean * mean))
        self.threshold = max(self.threshold, mean - std)


@dataclass
class PradaClient:
    """PRADA's state for one client on one model; ``process`` one query at a time."""

    delta: float = DELTA
    min_distances: int = MIN_DISTANCES
    check_every: int = CHECK_EVERY
    min_class_distances: int = MIN_CLASS_DISTANCES
    outlier_sigmas: float | None = OUTLIER_SIGMAS
    max_growing: int = MAX_GROWING
    max_distances: int = MAX_DISTANCES
    sets: dict[int, _ClassSet] = field(default_factory=dict)
    distances: deque[tuple[int, float]] = field(default_factory=deque)
    queries: int = 0
    distances_seen: int = 0
    attacker_present: bool = False
    alarmed: bool = False
    alarm_at: int | None = None
    last_w: float = 1.0

    def learn_one(self, x: Sequence[float] | FloatArray, y: int) -> None:
        """Add one query ``x`` whose predicted class is ``y``."""
        self.process(x, y)

    def score_one(self) -> float:
        """``1 - W`` of the latest test (0 before any test); above ``1 - delta`` alarms."""
        return 1.0 - self.last_w

    def process(self, x: Sequence[float] | FloatArray, y: int) -> bool:
        """Add one query and return whether PRADA currently reports an attack."""
        vec = np.asarray(x, dtype=np.float64)
        cls = self.sets.get(y)
        if cls is None or cls.members.shape[1] != len(vec):
            members = np.empty((8, len(vec)))
            members[0] = vec
            self.sets[y] = _ClassSet(members)
        else:
            distance = cls.nearest(vec)
            self.distances.append((y, distance))
            self.distances_seen += 1
            if len(self.distances) > self.max_distances:
                self.distances.popleft()
            if distance > cls.threshold:
                cls.join(vec, distance, self.max_growing)
        if self.queries % self.check_every == 0:
            self._test()
        self.queries += 1
        return self.attacker_present

    def _test(self) -> None:
        if len(self.distances) <= self.min_distances:
            return
        classes = np.fromiter((c for c, _ in self.distances), dtype=np.int64)
        values = np.fromiter((d for _, d in self.distances), dtype=np.float64)
        labels, counts = np.unique(classes, return_counts=True)
        keep = np.isin(classes, labels[counts >= self.min_class_distances])
        pooled = values[keep]
        if self.outlier_sigmas is not None and len(pooled):
            pooled = pooled[np.abs(pooled - pooled.mean()) < self.outlier_sigmas * pooled.std()]
        if len(pooled) <= self.min_distances:
            return
        if np.ptp(pooled) == 0.0:
            w = 1.0  # identical distances: no evidence against normality, W is undefined
        else:
            with warnings.catch_warnings():
                # scipy warns when the range is tiny; the statistic is still the answer
                warnings.simplefilter("ignore", UserWarning)
                w = float(shapiro(pooled).statistic)
        self.last_w = w
        self.attacker_present = w < self.delta
        if self.attacker_present and not self.alarmed:
            self.alarmed = True
            self.alarm_at = self.queries + 1


@dataclass
class Prada:
    """PRADA over a stream: one :class:`PradaClient` per (client, model).

    ``process(event)`` returns whether the event's client is currently reported;
    ``first_alarm`` maps (client, model) to the query count of its first alarm.
    Events without features or without a label (nor probabilities) are skipped.
    """

    delta: float = DELTA
    clients: dict[tuple[str, str], PradaClient] = field(default_factory=dict)
    first_alarm: dict[tuple[str, str], int] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def process(self, event: QueryEvent) -> bool:
        """Feed one event; whether PRADA reports its client after it."""
        key = (event.client_id, event.model_id)
        self.counts[key] = self.counts.get(key, 0) + 1
        label = _label(event)
        if event.features is None or label is None:
            state = self.clients.get(key)
            return bool(state and state.attacker_present)
        state = self.clients.get(key)
        if state is None:
            state = self.clients[key] = PradaClient(delta=self.delta)
        alarm = state.process(event.features, label)
        if alarm and key not in self.first_alarm:
            self.first_alarm[key] = self.counts[key]
        return alarm


def _label(event: QueryEvent) -> int | None:
    out = event.output
    if out is None:
        return None
    if isinstance(out.label, int):
        return out.label
    if out.probabilities:
        return int(np.argmax(out.probabilities))
    if isinstance(out.label, str):
        return zlib.crc32(out.label.encode("utf-8"))
    return None
