"""Vectorised pre-computation of a micro-batch: everything that needs numpy, in few calls.

Within a batch the population baseline is fixed (it only changes at epoch
boundaries, where the engine starts a new batch), and each client's recent
inputs are simulated in order, so the results equal event-by-event processing.
The distances to each client's recent inputs are measured by a compiled kernel
(:mod:`detectors.geometry`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig
from detectors.geometry import geometry
from detectors.population import ModelPopulation, output_bucket, stable_hash
from detectors.scratch import scratch
from detectors.state import NO_LABEL, ModelClientState
from schemas import QueryEvent

FloatArray = NDArray[np.float64]


@dataclass(slots=True)
class Pre:
    """What the vectorised pass computed for one event."""

    z: NDArray[np.float32] | None = None
    crc: int = 0
    nearest: float | None = None
    nearest_row: int = -1  # the reference row ``nearest`` was measured to
    cell: int | None = None
    retry: bool = False
    step_ratio: float | None = None
    step_count: int = 0
    step: float | None = None  # the nearest step itself
    collinearity: float | None = None
    own_nearest: float | None = None  # distance to the nearest of the client's recent inputs
    label: int = -1  # class bucket of the answer (-1: none)
    # Distances to the recent own inputs of the same class, nearest first (empty when the
    # nearest is the input just before: a continuation of a stream is not tested).
    own_same: list[float] = field(default_factory=list)
    other_same: float | None = None  # nearest other client's reference input of the same class
    other_same_row: int = -1  # the reference row ``other_same`` was measured to
    other_same_count: int = 0


_BLANK = Pre()  # a placeholder, never handed out


def input_crc(z: NDArray[np.float32]) -> int:
    """Checksum of a projected input, to recognise exact retries."""
    return zlib.crc32(z.tobytes())


def precompute(
    events: Sequence[QueryEvent],
    population: Callable[[str], ModelPopulation],
    state_of: Callable[[QueryEvent], ModelClientState | None],
    config: EngineConfig,
) -> list[Pre]:
    """Projected inputs, novelty distances, cells, retries and step geometry of a batch."""
    pre = [_BLANK] * len(events)  # each replaced: by its group's Pre, else a fresh one
    groups: dict[str, list[int]] = {}
    for k, ev in enumerate(events):
        pop = population(ev.model_id)
        if pop.frozen and pop.accepts(ev.features):
            groups.setdefault(ev.model_id, []).append(k)
    for model_id, idx in groups.items():
        pop = population(model_id)
        x = np.asarray([events[k].features for k in idx], dtype=np.float64)
        z = pop.project(x).astype(np.float32)
        owners = np.asarray([stable_hash(events[k].client_id) for k in idx], dtype=np.int64)
        labels = [_bucket(events[k], config) for k in idx]
        lab = np.asarray(labels, dtype=np.int64)
        z64 = z.astype(np.float64)
        nb = pop.neighbours(z64, owners, lab)
        cells = pop.cells(z64).tolist()
        counts = nb.same_count.tolist()
        found = zip(
            idx, nb.dist.tolist(), nb.row.tolist(), nb.same.tolist(), nb.same_row.tolist(),
            strict=True,
        )  # fmt: skip
        for row, (k, d, r, sd, sr) in enumerate(found):
            zr = z[row]
            pre[k] = Pre(
                z=zr, crc=input_crc(zr), nearest=d, nearest_row=r, cell=cells[row],
                label=labels[row], other_same=sd, other_same_row=sr, other_same_count=counts[row],
            )  # fmt: skip
        _steps(events, idx, z, z64, lab, pre, state_of, config)
    return [Pre() if p is _BLANK else p for p in pre]


def _bucket(event: QueryEvent, config: EngineConfig) -> int:
    bucket = output_bucket(event.output, config.class_buckets)
    return -1 if bucket is None else bucket


def _steps(
    events: Sequence[QueryEvent],
    idx: list[int],
    z: NDArray[np.float32],
    z64: NDArray[np.float64],
    lab: NDArray[np.int64],
    pre: list[Pre],
    state_of: Callable[[QueryEvent], ModelClientState | None],
    config: EngineConfig,
) -> None:
    """Retry flags, nearest-step ratio, collinearity and same-class distances for one model's
    events: steps look at the last ``step_window`` distinct inputs, self-similarity at the
    last ``self_window`` (families of JbDA-style children may be further apart)."""
    allrows, gather, retry, row_labels = _recent_rows(events, idx, z, lab, pre, state_of, config)
    for row in np.flatnonzero(retry).tolist():
        pre[idx[row]].retry = True
    if not (gather >= 0).any():
        return
    g = geometry(
        allrows, gather, z64, row_labels, lab,
        config.step_window, config.step_min_recent,
    )  # fmt: skip
    counts, own, tested = g.n_recent.tolist(), g.own.tolist(), g.tested.tolist()
    ratios, steps, same_ns = g.ratio.tolist(), g.step.tolist(), g.same_n.tolist()
    coss, col_ok = g.cos.tolist(), g.col_ok.tolist()
    min_recent = config.step_min_recent
    for row, k in enumerate(idx):
        p = pre[k]
        if p.retry:
            continue
        if counts[row] and own[row] == own[row]:  # not NaN
            p.own_nearest = own[row]
        if tested[row]:
            p.own_same = g.same[row, : same_ns[row]].tolist()
        if counts[row] >= min_recent:
            p.step_ratio = ratios[row]
            p.step_count = counts[row]
            p.step = steps[row]
        if col_ok[row]:
            p.collinearity = coss[row]


def _recent_rows(
    events: Sequence[QueryEvent],
    idx: list[int],
    z: NDArray[np.float32],
    lab: NDArray[np.int64],
    pre: list[Pre],
    state_of: Callable[[QueryEvent], ModelClientState | None],
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
    crcs = [pre[k].crc for k in idx]
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
        st = state_of(events[k])
        members[client] = ([row], st)
        first[row] = True
        if st is None or st.ring is None or not st.ring_len:
            ring_of.append(0)
            continue
        cap = st.ring.shape[0]
        rl = st.ring_label
        if rl is None or rl.shape[0] != cap:  # a state saved before labels were kept
            rl = np.full(cap, NO_LABEL, dtype=np.uint8)
        parts.append(st.ring)
        lab_parts.append(rl)
        crc_parts.append(st.slot_crcs(w))
        ring_of.append(len(geo))
        geo.append((n_rows, st.ring_pos, cap, min(st.ring_len, cap)))
        n_rows += cap
    gm = np.asarray(geo, dtype=np.int64)[ring_of]
    j = np.arange(w_all)
    ring_ok = j < gm[:, 3:4]
    gather = np.where(ring_ok, gm[:, 0:1] + (gm[:, 1:2] - 1 - j) % gm[:, 2:3], -1)
    # A client's first event is a retry when it repeats one of the ring's last w inputs.
    near = gather[:, :w]
    same = np.concatenate(crc_parts)[near] == crc_parts[0][:, None]
    retry = first & (same & (near >= 0)).any(axis=1)
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
