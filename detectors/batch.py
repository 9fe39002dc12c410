"""Vectorised pre-computation of a micro-batch: everything that needs numpy, in few calls.

Within a batch the population baseline is fixed (it only changes at epoch
boundaries, where the engine starts a new batch), and each client's recent
inputs are simulated in order, so the results equal event-by-event processing.
The distances to each client's recent inputs are measured by a compiled kernel
(:mod:`detectors.kernels.geometry`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from detectors.base import Observation
from detectors.config import EngineConfig
from detectors.kernels.geometry import geometry
from detectors.kernels.slots import ring_slots
from detectors.population import ModelPopulation, output_bucket, owner_hash
from detectors.scratch import scratch
from detectors.state import NO_LABEL, ClientState, ModelClientState
from schemas import QueryEvent

FloatArray = NDArray[np.float64]


class Pre(Observation):
    """One event as the signals see it, with what the batch pass keeps for the engine: the
    projected input and its checksum, and the reference rows its distances were measured to
    (the engine adds the output's margin, and the class bucket when there is no input), and
    whether the raw input lay outside the model's domain (it was clipped into it)."""

    __slots__ = ("crc", "nearest_row", "other_same_row", "outside", "z")
    _shown: ClassVar[tuple[str, ...]] = (
        *Observation._shown, "z", "crc", "nearest_row", "other_same_row", "outside",
    )  # fmt: skip

    def __init__(
        self,
        owner: int,
        ts: float,
        nearest: float | None = None,
        cell: int | None = None,
        label: int | None = None,
        retry: bool = False,
        other_same: float | None = None,
        other_same_count: int = 0,
        z: NDArray[np.float32] | None = None,
        crc: int = 0,
        nearest_row: int = -1,
        other_same_row: int = -1,
        outside: bool = False,
    ) -> None:
        super().__init__(
            owner, ts, nearest=nearest, cell=cell, label=label, retry=retry,
            other_same=other_same, other_same_count=other_same_count,
        )  # fmt: skip
        self.z = z
        self.crc = crc
        self.nearest_row = nearest_row  # the reference row ``nearest`` was measured to
        self.other_same_row = other_same_row  # the reference row ``other_same`` was measured to
        self.outside = outside  # the raw input lay outside the model's domain fence


_BLANK = Pre(0, 0.0)  # a placeholder, never handed out


def input_crc(z: NDArray[np.float32]) -> int:
    """Checksum of a projected input, to recognise exact retries."""
    return zlib.crc32(z.tobytes())


def precompute(
    events: Sequence[QueryEvent],
    population: Callable[[str], ModelPopulation],
    store: Mapping[str, ClientState],
    config: EngineConfig,
) -> list[Pre]:
    """Projected inputs, novelty distances, cells, retries and step geometry of a batch."""
    pre = [_BLANK] * len(events)  # each replaced: by its group's Pre, else a fresh one
    groups: dict[str, list[int]] = {}
    pops: dict[str, ModelPopulation] = {}  # each model's, looked up once a batch
    for k, ev in enumerate(events):
        model_id = ev.model_id
        pop = pops.get(model_id)
        if pop is None:
            pop = pops[model_id] = population(model_id)
        if pop.frozen and pop.accepts(ev.features):
            groups.setdefault(model_id, []).append(k)
    for model_id, idx in groups.items():
        pop = pops[model_id]
        raw = np.asarray([events[k].features for k in idx], dtype=np.float64)
        x = pop.in_domain(raw)
        outside: list[bool] = (raw != x).any(axis=1).tolist()
        z = pop.project(x).astype(np.float32)
        owner_ids = [owner_hash(events[k].client_id) for k in idx]
        owners = np.asarray(owner_ids, dtype=np.int64)
        labels = [_bucket(events[k], config) for k in idx]
        lab = np.asarray(labels, dtype=np.int64)
        z64 = z.astype(np.float64)
        nb = pop.neighbours(z64, owners, lab)
        cells = pop.cells(z64).tolist()
        crcs = [input_crc(zr) for zr in z]
        retry, g = _steps(events, model_id, idx, z, z64, lab, crcs, store, config)
        rows = zip(
            idx, owner_ids, crcs, labels, cells, retry, nb.dist.tolist(), nb.row.tolist(),
            nb.same.tolist(), nb.same_row.tolist(), nb.same_count.tolist(), outside, strict=True,
        )  # fmt: skip
        for row, (k, owner, crc, label, cell, again, d, r, sd, sr, sc, out) in enumerate(rows):
            ts = events[k].timestamp.timestamp()  # QueryEvent.ts without its Python frame
            p = pre[k] = Pre(
                owner, ts, nearest=d, cell=cell, label=None if label < 0 else label, retry=again,
                other_same=sd, other_same_count=sc, z=z[row], crc=crc, nearest_row=r,
                other_same_row=sr, outside=out,
            )  # fmt: skip
            if g is not None and not again:
                _geometry_of(p, row, g, config.step_min_recent)
    return [
        Pre(owner_hash(ev.client_id), ev.timestamp.timestamp()) if p is _BLANK else p
        for p, ev in zip(pre, events, strict=True)
    ]


def _bucket(event: QueryEvent, config: EngineConfig) -> int:
    bucket = output_bucket(event.output, config.class_buckets)
    return -1 if bucket is None else bucket


class _Rows(NamedTuple):
    """A group's geometry, each column as a list (``same``: the array, read by slices)."""

    n_recent: list[int]
    own: list[float]
    tested: list[bool]
    ratio: list[float]
    step: list[float]
    same_n: list[int]
    same: NDArray[np.float64]
    cos: list[float]
    col_ok: list[bool]


def _geometry_of(p: Pre, row: int, g: _Rows, min_recent: int) -> None:
    """Fill in one event's own-input distances, steps and collinearity."""
    count = g.n_recent[row]
    if count and not math.isnan(own := g.own[row]):
        p.own_nearest = own
    if g.tested[row]:
        p.own_same = g.same[row, : g.same_n[row]].tolist()
    if count >= min_recent:
        p.step_ratio = g.ratio[row]
        p.step_count = count
        p.step = g.step[row]
    if g.col_ok[row]:
        p.collinearity = g.cos[row]


def _steps(
    events: Sequence[QueryEvent],
    model_id: str,
    idx: list[int],
    z: NDArray[np.float32],
    z64: NDArray[np.float64],
    lab: NDArray[np.int64],
    crcs: list[int],
    store: Mapping[str, ClientState],
    config: EngineConfig,
) -> tuple[list[bool], _Rows | None]:
    """Retry flags, and the nearest-step ratio, collinearity and same-class distances of one
    model's events: steps look at the last ``step_window`` distinct inputs, self-similarity
    at the last ``self_window`` (families of JbDA-style children may be further apart)."""
    allrows, gather, retry, row_labels = _recent_rows(
        events, model_id, idx, z, lab, crcs, store, config
    )
    flags: list[bool] = retry.tolist()
    if not (gather >= 0).any():
        return flags, None
    g = geometry(
        allrows, gather, z64, row_labels, lab,
        config.step_window, config.step_min_recent,
    )  # fmt: skip
    rows = _Rows(
        g.n_recent.tolist(), g.own.tolist(), g.tested.tolist(), g.ratio.tolist(),
        g.step.tolist(), g.same_n.tolist(), g.same, g.cos.tolist(), g.col_ok.tolist(),
    )  # fmt: skip
    return flags, rows


def _recent_rows(
    events: Sequence[QueryEvent],
    model_id: str,
    idx: list[int],
    z: NDArray[np.float32],
    lab: NDArray[np.int64],
    crcs: list[int],
    store: Mapping[str, ClientState],
    config: EngineConfig,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_], NDArray[np.uint8]]:
    """Every event's recent inputs as row ids into one array, newest first, and retries.

    An event's recent inputs are its client's earlier non-retry queries in this batch,
    newest first, then the client's ring read back from its newest slot, ``self_window``
    at most. Each ring is laid out once and read by index arithmetic; only clients with
    several events in the batch need a loop. Returns the rows (the batch's first), the
    row ids per event (-1: none), the retry flags, and each row's class bucket.
    """
    w = config.step_window
    w_all = max(w, config.self_window)
    n = len(idx)
    parts: list[NDArray[np.float32]] = [z]
    lab_parts = [np.where(lab < 0, NO_LABEL, lab).astype(np.uint8)]
    crc_parts = [np.asarray(crcs, dtype=np.uint32)]
    first = np.zeros(n, dtype=bool)  # a client's first event in the batch
    members: dict[str, tuple[list[int], ModelClientState | None]] = {}  # rows in order
    geo = [(0, 0, 1, 0)]  # per ring: (first row, next slot, capacity, length); 0: none
    ring_of: list[int] = []
    n_rows = n
    for row, k in enumerate(idx):
        client = events[k].client_id
        mine = members.get(client)
        if mine is not None:
            ring_of.append(ring_of[mine[0][0]])
            mine[0].append(row)
            continue
        state = store.get(client)
        st = state.models.get(model_id) if state is not None else None
        members[client] = ([row], st)
        first[row] = True
        ring = st.ring if st is not None else None
        if st is None or ring is None or not st.ring_len:
            ring_of.append(0)
            continue
        cap = len(ring)  # the first dimension, without building the shape tuple
        rl = st.ring_label
        if rl is None or len(rl) != cap:  # a state saved before labels were kept
            rl = np.full(cap, NO_LABEL, dtype=np.uint8)
        parts.append(ring)
        lab_parts.append(rl)
        crc_parts.append(st.slot_crcs(w))
        ring_of.append(len(geo))
        geo.append((n_rows, st.ring_pos, cap, min(st.ring_len, cap)))
        n_rows += cap
    # A client's first event is a retry when it repeats one of the ring's last w inputs.
    gm = np.asarray(geo, dtype=np.int64)[ring_of]
    gather, retry = ring_slots(gm, first, np.concatenate(crc_parts), w, w_all)
    for rows, st in members.values():
        if len(rows) > 1:
            ring_crcs = st.recent_crcs(w) if st is not None else []
            _batch_history(rows, gather, retry, crcs, ring_crcs, w, w_all)
    gather[retry] = -1
    labels = np.concatenate(lab_parts)
    allrows = np.concatenate(parts, out=scratch().array32("rows", (n_rows, z.shape[1])))
    return allrows, gather, retry, labels


def _batch_history(
    rows: list[int],
    gather: NDArray[np.int64],
    retry: NDArray[np.bool_],
    crcs: list[int],
    ring_crcs: list[int],
    w: int,
    w_all: int,
) -> None:
    """Put one client's earlier non-retry rows of the batch in front of its ring rows.

    ``crcs`` are the batch rows' checksums, ``ring_crcs`` the ring's, newest first.
    """
    first = rows[0]
    ring_ids = gather[first].tolist()  # the ring alone, newest first (-1: none)
    earlier: list[int] = [] if retry[first] else [first]
    for row in rows[1:]:
        m = min(len(earlier), w_all)
        recent = [crcs[r] for r in earlier[:w]] + ring_crcs[: max(w - m, 0)]
        if crcs[row] in recent:
            retry[row] = True
            continue
        gather[row] = earlier[:m] + ring_ids[: w_all - m]
        earlier.insert(0, row)
