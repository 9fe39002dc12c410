"""Per-model population baseline: what benign traffic to one model looks like.

Learned online from clients that are not flagged, with each client's share
thinned (a heavy client teaches about as much as a light one), and applied in
epochs so that results do not depend on how events are batched.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig
from detectors.kernels.nearest import nearest_rows, other_same_counts
from detectors.scratch import scratch
from detectors.sketch import TailSketch
from schemas import ModelOutput
from schemas.registry import RegisteredModel

FloatArray = NDArray[np.float64]
SELF_PRIOR: Final = 32.0  # pseudo-queries behind the self-similarity scale before any is learned
# A lesson beyond the 95th percentile of benign novelty is "tail".
TAIL_NATS: Final = -math.log(0.05)
TAIL_SHARE: Final = 0.1  # at most this share of recently offered lessons may teach from the tail
TAIL_MEMORY: Final = 512.0  # lessons over which that share is measured (exponential decay)
# A value this many robust spreads from its feature's warm-up median is out of the model's domain.
FENCE_WIDTH: Final = 50.0


@lru_cache(maxsize=65_536)
def stable_hash(text: str) -> int:
    """A 63-bit hash that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


_OWNERS: dict[str, int] = {}  # recent clients' ids and their hashes
_MEMO_MAX: Final = 1 << 14


def owner_hash(client_id: str) -> int:
    """``stable_hash`` of a client id, remembered for recent ids (forgotten all at once when
    the memory is full: cheaper per query than an LRU)."""
    h = _OWNERS.get(client_id)
    if h is None:
        if len(_OWNERS) >= _MEMO_MAX:
            _OWNERS.clear()
        h = _OWNERS[client_id] = stable_hash(client_id)
    return h


_LABELS: dict[tuple[str | int, int], int] = {}  # labels repeat: each hashed once


def label_bucket(label: str | int, buckets: int) -> int:
    """The class bucket of a label, stable across workers."""
    key = (label, buckets)
    bucket = _LABELS.get(key)
    if bucket is None:
        if len(_LABELS) >= _MEMO_MAX:
            _LABELS.clear()
        bucket = _LABELS[key] = stable_hash(f"label:{label}") % buckets
    return bucket


def output_bucket(output: ModelOutput | None, buckets: int) -> int | None:
    """The class bucket of a model answer: its label, else its most probable class.

    >>> output_bucket(ModelOutput(probabilities=[0.2, 0.8]), 32) == label_bucket(1, 32)
    True
    >>> output_bucket(ModelOutput(probabilities=[0.4, 0.4, 0.2]), 32) == label_bucket(0, 32)
    True
    """
    if output is None:
        return None
    label = output.label
    probabilities = output.probabilities
    if label is None and probabilities:  # the first most probable class (a tie: the first)
        label = max(range(len(probabilities)), key=probabilities.__getitem__)
    return None if label is None else label_bucket(label, buckets)


def learn_eligible(n: int) -> bool:
    """Whether a client's n-th query may teach the baseline: its first 16, then rarely.

    Every fourth query up to the 64th (so that steps measured against fuller
    windows are learned early too), then powers of two and every 64th: a
    client with thousands of queries teaches about as much as one with a hundred.

    >>> [n for n in range(1, 200) if learn_eligible(n)][14:]
    [15, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 128, 192]
    """
    return n <= 16 or (n <= 64 and n % 4 == 0) or (n & (n - 1)) == 0 or n % 64 == 0


def step_bucket(count: int) -> int:
    """Window-size bucket of a step ratio: 0 for 8-15 recent inputs, 1 for 16-31, 2 for 32+."""
    return 0 if count < 16 else 1 if count < 32 else 2


@dataclass(slots=True)
class Neighbours:
    """Nearest reference inputs of other clients: any class, and the query's own class."""

    dist: FloatArray
    row: NDArray[np.int64]
    same: FloatArray  # NaN: no other client's input of the class
    same_row: NDArray[np.int64]
    same_count: NDArray[np.int64]  # searched rows of other clients in the query's class


class Lesson:
    """What one eligible event teaches the population (applied at the next epoch)."""

    __slots__ = (
        "cell", "collinear", "label", "margin", "novelty", "owner", "self_surprise", "step",
        "step_count", "volume", "z",
    )  # fmt: skip

    def __init__(
        self,
        owner: int,
        z: FloatArray | None,
        novelty: float | None,
        step: float | None,
        collinear: float | None,
        margin: float | None,
        label: int | None,
        cell: int | None,
        volume: float,
        step_count: int = 0,
        self_surprise: float | None = None,  # see Observation.self_surprise
    ) -> None:
        self.owner = owner
        self.z = z
        self.novelty = novelty
        self.step = step
        self.collinear = collinear
        self.margin = margin
        self.label = label
        self.cell = cell
        self.volume = volume
        self.step_count = step_count
        self.self_surprise = self_surprise


@dataclass(slots=True)
class Warmup:
    """Standardiser statistics gathered before the feature space is frozen: the rows, the
    client each came from, and how many each client gave."""

    rows: list[FloatArray] = field(default_factory=list)
    per_client: dict[int, int] = field(default_factory=dict)
    owners: list[int] = field(default_factory=list)

    def leading_dim(self) -> tuple[int, int, int]:
        """The input dimension most distinct clients sent, its rows and its clients.

        The model's dimension is what many clients agree on, never the first event's: one
        client sending a wrong shape first cannot fix it.

        >>> w = Warmup([np.zeros(3), np.zeros(2), np.zeros(2)], owners=[7, 8, 9])
        >>> w.leading_dim()
        (2, 2, 2)
        """
        clients: dict[int, set[int]] = {}
        rows: dict[int, int] = {}
        for i, r in enumerate(self.rows):
            d = r.shape[0]
            clients.setdefault(d, set()).add(self.owners[i] if i < len(self.owners) else -1 - i)
            rows[d] = rows.get(d, 0) + 1
        if not rows:
            return 0, 0, 0
        best = max(rows, key=lambda d: (len(clients[d]), rows[d], -d))
        return best, rows[best], len(clients[best])


def domain_fence(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per feature, the range outside which a value is far out of the model's domain.

    The median plus or minus :data:`FENCE_WIDTH` robust spreads: the interquartile range, at
    least the median interquartile range over features (a sparse feature, mostly one value,
    has none of its own), else the median 1-99 % span, else 1. Medians and quartiles move
    little when a few rows are absurd, so one client cannot stretch the fence to fit them.

    >>> lo, hi = domain_fence(np.array([[0.0], [1.0], [2.0], [3.0], [1e20]]))
    >>> float(lo[0]), float(hi[0])
    (-98.0, 102.0)
    """
    med = np.median(rows, axis=0)
    q1, q3, p1, p99 = np.percentile(rows, [25.0, 75.0, 1.0, 99.0], axis=0)
    iqr = q3 - q1
    floor = float(np.median(iqr))
    if not floor > 0.0:
        floor = float(np.median(p99 - p1))
    if not floor > 0.0:
        floor = 1.0
    spread = np.maximum(iqr, floor)
    return med - FENCE_WIDTH * spread, med + FENCE_WIDTH * spread


class ModelPopulation:
    """The benign baseline of one model: standardiser, reference inputs, signal sketches."""

    def __init__(
        self, model_id: str, config: EngineConfig, known: RegisteredModel | None = None
    ) -> None:
        self.model_id = model_id
        self.config = config
        # What the model registry states (schemas/registry.py): its dimension from the first
        # event, and its feature ranges as the domain fence.
        self.known = known
        seed = (config.seed * 1_000_003 + stable_hash(model_id)) % (2**32)
        self.rng = np.random.default_rng(seed)
        self.dim: int | None = None if known is None else known.n_features
        self.mean: FloatArray | None = None
        self.scale: FloatArray | None = None
        self.projection: FloatArray | None = None
        self.hyperplanes: FloatArray | None = None
        self.offsets: FloatArray | None = None
        self.warmup = Warmup()
        # The model's domain (see domain_fence), fixed with the feature space; None before.
        self.fence_lo: FloatArray | None = None
        self.fence_hi: FloatArray | None = None
        stated = self._stated_fence()
        if stated is not None:  # the registry's ranges: the domain from the first event
            self.fence_lo, self.fence_hi = stated
        self.excluded = 0  # warm-up rows left out of the standardiser as out of domain
        self.reference = np.zeros((0, config.projection_dim), dtype=np.float64)
        self.reference_owner = np.zeros(0, dtype=np.int64)
        self.reference_label = np.zeros(0, dtype=np.int64)  # class bucket, -1 unknown
        self.reference_seen = 0
        self._ref_sq: FloatArray | None = None  # squared norms of the reference rows (cache)
        self.changed_rows: list[int] = []  # reference rows the last epoch added or replaced
        self.admitted: list[Lesson] = []  # the lessons the last epoch admitted (extra signals)
        self.novelty = TailSketch(config.sketch_size, seed=seed + 1)
        # The nearest-step ratio shrinks as the window fills: one sketch per window size.
        self.step = TailSketch(config.sketch_size, seed=seed + 2)
        self.step16 = TailSketch(config.sketch_size, seed=seed + 6)
        self.step32 = TailSketch(config.sketch_size, seed=seed + 7)
        self.collinear = TailSketch(config.sketch_size, seed=seed + 3)
        self.margin = TailSketch(config.sketch_size, seed=seed + 4)
        self.volume = TailSketch(config.sketch_size, seed=seed + 5)
        self.class_counts = np.ones(config.class_buckets, dtype=np.float64) * 0.5
        self.labels_seen = 0
        # Self-similarity calibration: the total and count of eligible queries' surprises,
        # starting from a prior of SELF_PRIOR queries at the exchangeable mean (at most 1).
        self.self_sum = SELF_PRIOR
        self.self_n = SELF_PRIOR
        self.cell_counts = np.ones(2**config.coverage_bits, dtype=np.float64) * 0.1
        self.pending: list[Lesson] = []
        self.epochs = 0
        self._class_terms: tuple[int, float, float] | None = None  # (epoch, entropy, sd)
        self._cell_log_miss: tuple[int, FloatArray] | None = None  # (epoch, log(1 - prior))
        # Poisoning guard: decayed counts of lessons offered and of tail lessons taught
        # (a prior of 64 lessons at the nominal 5 %), and how many tail lessons were withheld.
        self.offered_recent = 64.0
        self.tail_recent = 3.2
        self.withheld = 0
        # Teaching queries seen, and those of them suspicious (detectors/tail_count.py).
        self.tail_seen = 0.0
        self.tail_hits = 0.0
        # Teaching queries seen, and those of them malformed (detectors/malformed.py).
        self.malformed_seen = 0.0
        self.malformed_hits = 0.0

    # ------------------------------------------------------------------ features
    @property
    def frozen(self) -> bool:
        """Whether the feature space (standardiser and projection) is fixed."""
        return self.projection is not None

    def accepts(self, features: list[float] | None) -> bool:
        """Whether an event's features fit this model's input dimension.

        Before the feature space is frozen any shape is taken (warm-up keeps each shape's
        rows apart, and the dimension most clients agree on wins at the freeze), unless the
        model registry states the dimension: then only that one, from the first event.
        """
        if not features:
            return False
        return self.dim is None or len(features) == self.dim

    def in_domain(self, x: FloatArray) -> FloatArray:
        """Rows of raw features clipped into the model's domain (unchanged inside it).

        A far-out input is scored where the fence is, very novel, instead of as an
        overflowing number that would poison every distance computed with it.
        """
        if self.fence_lo is None or self.fence_hi is None:
            return x
        out: FloatArray = np.clip(x, self.fence_lo, self.fence_hi)
        return out

    def outside(self, features: list[float]) -> bool:
        """Whether any feature lies outside the model's domain (False while it has no fence:
        before the freeze, unless the model registry states its ranges)."""
        lo, hi = self.fence_lo, self.fence_hi
        if lo is None or hi is None or len(features) != lo.shape[0]:
            return False
        x = np.asarray(features, dtype=np.float64)
        return bool(((x < lo) | (x > hi)).any())

    def _stated_fence(self) -> tuple[FloatArray, FloatArray] | None:
        """The registry's feature ranges as the domain fence, if it states them."""
        ranges = None if self.known is None else self.known.feature_ranges
        if ranges is None:
            return None
        bounds = np.asarray(ranges, dtype=np.float64)
        return bounds[:, 0].copy(), bounds[:, 1].copy()

    def register(self, known: RegisteredModel) -> bool:
        """Apply a registry entry to a restored baseline; False (unchanged) when the baseline
        froze with another dimension than the registry states."""
        if self.dim is not None and self.dim != known.n_features and self.frozen:
            return False
        self.known = known
        self.dim = known.n_features
        stated = self._stated_fence()
        if stated is not None:
            self.fence_lo, self.fence_hi = stated
        return True

    def project(self, x: FloatArray) -> FloatArray:
        """Standardise and project rows of raw features (needs a frozen space)."""
        if self.mean is None or self.scale is None or self.projection is None:
            raise RuntimeError("feature space not frozen yet")
        out: FloatArray = ((x - self.mean) / self.scale) @ self.projection
        return out

    def _freeze(self) -> None:
        dim, n_rows, _ = self.warmup.leading_dim()
        if self.known is not None:
            dim = self.known.n_features
            n_rows = sum(1 for r in self.warmup.rows if r.shape[0] == dim)
        if not n_rows:
            raise RuntimeError("no input dimension yet")
        self.dim = dim
        rows = np.vstack([r for r in self.warmup.rows if r.shape[0] == dim])
        # Rows far outside the domain the other rows agree on teach nothing: one absurd
        # input (1e20 in every feature) would otherwise set every feature's mean and scale.
        # A registry's stated ranges are the domain itself.
        lo, hi = self._stated_fence() or domain_fence(rows)
        inside = ((rows >= lo) & (rows <= hi)).all(axis=1)
        if 2 * int(inside.sum()) >= rows.shape[0]:
            self.excluded = int(rows.shape[0] - inside.sum())
            rows = rows[inside]
        self.fence_lo, self.fence_hi = lo, hi
        self.mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        floor = 0.05 * float(np.median(std)) + 1e-6
        self.scale = np.maximum(std, floor)
        k = self.config.projection_dim
        if self.dim <= k:
            proj = np.zeros((self.dim, k))
            proj[:, : self.dim] = np.eye(self.dim)
        else:
            proj = self.rng.standard_normal((self.dim, k)) / math.sqrt(k)
        self.projection = proj
        bits = self.config.coverage_bits
        self.hyperplanes = self.rng.standard_normal((k, bits))
        zs = self.project(rows)
        # Cut each hyperplane at the median of the warm-up data so cells split it evenly.
        self.offsets = np.median(zs @ self.hyperplanes, axis=0)
        self.warmup = Warmup()

    def cells(self, z: FloatArray) -> NDArray[np.int64]:
        """LSH cell of each projected row."""
        if self.hyperplanes is None or self.offsets is None:
            raise RuntimeError("feature space not frozen yet")
        bits = (z @ self.hyperplanes > self.offsets).astype(np.int64)
        weights = 1 << np.arange(bits.shape[1], dtype=np.int64)
        out: NDArray[np.int64] = bits @ weights
        return out

    def neighbours(
        self,
        z: FloatArray,
        owner: NDArray[np.int64],
        label: NDArray[np.int64],
        columns: list[int] | None = None,
    ) -> Neighbours:
        """For each projected row: the nearest reference input of another client, and the
        nearest of another client in the row's class bucket (label -1: none), with the
        reference rows they are (-1: none). One distance matrix serves both.

        With ``columns``, only those reference rows are searched (an epoch's changes).
        """
        n = z.shape[0]
        ref = self.reference
        if ref.shape[0] == 0 or n == 0 or (columns is not None and not columns):
            nan, none = np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
            return Neighbours(nan, none, nan.copy(), none.copy(), np.zeros(n, dtype=np.int64))
        if self._ref_sq is None or self._ref_sq.shape[0] != ref.shape[0]:
            self._ref_sq = (ref * ref).sum(axis=1)
        ref_sq, ref_owner, ref_label = self._ref_sq, self.reference_owner, self.reference_label
        if columns is not None:
            ref, ref_sq = ref[columns], ref_sq[columns]
            ref_owner, ref_label = ref_owner[columns], ref_label[columns]
        # |z|^2 + |ref|^2 - 2 z.ref, the product in a kept buffer, the rest in the kernel
        zr2 = np.matmul(2.0 * z, ref.T, out=scratch().array("zr", (n, ref.shape[0])))
        best, best_d2, sbest, sval, count = nearest_rows(
            zr2, (z * z).sum(axis=1), ref_sq, owner, ref_owner, label, ref_label
        )
        dist: FloatArray = np.sqrt(np.maximum(best_d2, 0.0))
        found = np.isfinite(sval)
        same: FloatArray = np.where(found, np.sqrt(np.maximum(sval, 0.0)), np.nan)
        if columns is not None:
            cols = np.asarray(columns, dtype=np.int64)
            best, sbest = cols[best], cols[sbest]
        return Neighbours(dist, best, same, np.where(found, sbest, -1), count)

    def same_class_counts(
        self, owner: NDArray[np.int64], label: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """How many reference inputs of each row's class bucket come from other clients."""
        return other_same_counts(owner, label, self.reference_owner, self.reference_label)

    def self_scale(self) -> float:
        """The population's mean self-similarity surprise, at least 1.

        Exchangeable traffic averages at most 1 nat; natural clients that are more
        self-similar than that (one user's similar photos) raise the mean, and a
        client's surprise is divided by it, so the test allows for exactly that much.
        """
        return max(1.0, self.self_sum / self.self_n)

    # ------------------------------------------------------------------ learning
    def learn_warmup(self, owner: int, x: FloatArray) -> bool:
        """Feed the standardiser during warm-up; True once this froze the space."""
        cfg = self.config
        taken = self.warmup.per_client.get(owner, 0)
        if taken >= cfg.warmup_per_client:
            return False
        self.warmup.per_client[owner] = taken + 1
        self.warmup.rows.append(x)
        self.warmup.owners.append(owner)
        _, n_rows, n_clients = self.warmup.leading_dim()
        enough = n_rows >= cfg.warmup_events
        varied = n_clients >= cfg.warmup_min_clients
        # Rows of other shapes count towards a bound too: warm-up memory stays bounded.
        full = n_rows >= 4 * cfg.warmup_events or len(self.warmup.rows) >= 8 * cfg.warmup_events
        if (enough and varied) or full:
            self._freeze()
            return True
        return False

    def teach(self, lesson: Lesson) -> bool:
        """Queue a lesson; True when this closed an epoch and changed the baseline."""
        self.pending.append(lesson)
        if len(self.pending) >= self.config.epoch_events:
            self.apply_pending()
            return True
        return False

    def apply_pending(self) -> None:
        """Apply queued lessons to the baseline (one epoch)."""
        self.changed_rows = []
        self.admitted = []
        # Each sketch takes its values in lesson order, in one add_all (one generator call).
        offered: dict[TailSketch, list[float]] = {}
        steps = self.step_sketches()
        for ls in self.pending:
            if not self._admit(ls):
                continue
            self.admitted.append(ls)
            if ls.z is not None:
                self._add_reference(ls.owner, ls.z, -1 if ls.label is None else ls.label)
            if ls.self_surprise is not None:
                self.self_sum += ls.self_surprise
                self.self_n += 1.0
            if ls.novelty is not None:
                offered.setdefault(self.novelty, []).append(ls.novelty)
            if ls.step is not None:
                offered.setdefault(steps[step_bucket(ls.step_count)], []).append(ls.step)
            if ls.collinear is not None:
                offered.setdefault(self.collinear, []).append(ls.collinear)
            if ls.margin is not None:
                offered.setdefault(self.margin, []).append(ls.margin)
            if ls.label is not None:
                self.class_counts[ls.label] += 1.0
                self.labels_seen += 1
            if ls.cell is not None:
                self.cell_counts[ls.cell] += 1.0
            offered.setdefault(self.volume, []).append(ls.volume)
        for sketch, values in offered.items():
            sketch.add_all(values)
        self.pending = []
        self.epochs += 1

    def _admit(self, ls: Lesson) -> bool:
        """Whether a lesson may teach: tail lessons only up to a fixed share of all offered.

        Benign traffic puts about 5 % of its inputs in the novelty tail, so up to 10 % of
        recent lessons may come from there and a real drift is still learned, slowly. A burst
        of out-of-distribution lessons from many fresh accounts (a campaign warming the
        baseline up to its own inputs before its other accounts strike) is mostly withheld.
        """
        decay = 1.0 - 1.0 / TAIL_MEMORY
        self.offered_recent = self.offered_recent * decay + 1.0
        self.tail_recent *= decay
        if ls.novelty is None or self.novelty.count < self.config.min_sketch:
            return True
        if self.novelty.upper(ls.novelty) < TAIL_NATS:
            return True
        if self.tail_recent + 1.0 > TAIL_SHARE * self.offered_recent:
            self.withheld += 1
            return False
        self.tail_recent += 1.0
        return True

    def _add_reference(self, owner: int, z: FloatArray, label: int) -> None:
        size = self.config.reference_size
        n = self.reference_seen
        if self.reference.shape[0] < size:
            self.changed_rows.append(self.reference.shape[0])
            self.reference = np.vstack([self.reference, z[None, :]])
            self.reference_owner = np.append(self.reference_owner, owner)
            self.reference_label = np.append(self.reference_label, label)
            self._ref_sq = None
        else:
            j = int(self.rng.integers(0, n + 1))
            if j < size:
                self.changed_rows.append(j)
                self.reference[j] = z
                self.reference_owner[j] = owner
                self.reference_label[j] = label
                if self._ref_sq is not None:
                    self._ref_sq[j] = (self.reference[j : j + 1] ** 2).sum(axis=1)[0]
        self.reference_seen = n + 1

    def step_sketches(self) -> tuple[TailSketch, TailSketch, TailSketch]:
        """The step-ratio sketches by window bucket."""
        return self.step, self.step16, self.step32

    def step_sketch_for(self, count: int) -> TailSketch | None:
        """The ready sketch for a window of ``count`` inputs, else the next fuller one.

        A fuller window's ratios are smaller, so falling back upward is conservative.
        """
        sketches = self.step_sketches()
        for b in range(step_bucket(count), 3):
            if sketches[b].count >= self.config.min_sketch:
                return sketches[b]
        return None

    # ------------------------------------------------------------------ priors
    def class_prior(self) -> FloatArray:
        """Smoothed class-bucket frequencies of the population."""
        out: FloatArray = self.class_counts / self.class_counts.sum()
        return out

    def cell_prior(self) -> FloatArray:
        """Smoothed LSH-cell frequencies of the population."""
        out: FloatArray = self.cell_counts / self.cell_counts.sum()
        return out

    # The counts change only when an epoch is applied (``apply_pending``), so what the
    # client-level tests derive from them is kept until the next epoch.
    def class_terms(self) -> tuple[float, float]:
        """The class prior's entropy ``sum(p * -log p)`` and the standard deviation of the
        surprisal ``-log p`` under it."""
        kept = self._class_terms
        if kept is None or kept[0] != self.epochs:
            prior = self.class_prior()
            surprisal = -np.log(prior)
            h_prior = float((prior * surprisal).sum())
            sd = math.sqrt(max(float((prior * surprisal**2).sum()) - h_prior**2, 0.0))
            kept = self._class_terms = (self.epochs, h_prior, sd)
        return kept[1], kept[2]

    def cell_log_miss(self) -> FloatArray:
        """``log(1 - p)`` for each LSH cell's prior ``p`` (read-only)."""
        kept = self._cell_log_miss
        if kept is None or kept[0] != self.epochs:
            miss = np.log1p(-self.cell_prior())
            miss.setflags(write=False)
            kept = self._cell_log_miss = (self.epochs, miss)
        return kept[1]
