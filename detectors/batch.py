"""Vectorised pre-computation of a micro-batch: everything that needs numpy, in few calls.

Within a batch the population baseline is fixed (it only changes at epoch
boundaries, where the engine starts a new batch), and each client's recent
inputs are simulated in order, so the results equal event-by-event processing.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig
from detectors.population import ModelPopulation, output_bucket, stable_hash
from detectors.scratch import scratch
from detectors.state import NO_LABEL, ModelClientState
from schemas import QueryEvent

FloatArray = NDArray[np.float64]
TINY = 1e-9


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
    pre = [Pre() for _ in events]
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
        nb = pop.neighbours(z.astype(np.float64), owners, lab)
        counts = pop.same_class_counts(owners, lab).tolist()
        cells = pop.cells(z.astype(np.float64)).tolist()
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
        _steps(events, idx, z, pre, state_of, config)
    return pre


def _bucket(event: QueryEvent, config: EngineConfig) -> int:
    bucket = output_bucket(event.output, config.class_buckets)
    return -1 if bucket is None else bucket


def _steps(
    events: Sequence[QueryEvent],
    idx: list[int],
    z: NDArray[np.float32],
    pre: list[Pre],
    state_of: Callable[[QueryEvent], ModelClientState | None],
    config: EngineConfig,
) -> None:
    """Retry flags, nearest-step ratio, collinearity and same-class distances for one model's
    events: steps look at the last ``step_window`` distinct inputs, self-similarity at the
    last ``self_window`` (families of JbDA-style children may be further apart)."""
    w = config.step_window
    w_all = max(w, config.self_window)
    rows: list[NDArray[np.float32]] = [z]
    n_rows = z.shape[0]
    # client -> (row ids, crcs, class buckets) of its recent inputs, newest first
    recent: dict[str, tuple[list[int], list[int], list[int]]] = {}
    pad = [-1] * w_all
    gathered: list[list[int]] = []  # per event: row ids of its recent inputs, -1 padded
    glabels: list[list[int]] = []  # per event: their class buckets, -2 padded (matches none)
    lpad = [-2] * w_all
    for row, k in enumerate(idx):
        client = events[k].client_id
        sim = recent.get(client)
        if sim is None:
            st = state_of(events[k])
            ids: list[int] = []
            crcs: list[int] = []
            labs: list[int] = []
            if st is not None and st.ring is not None and st.ring_len:
                past = st.recent(w_all)
                rows.append(past)
                ids = list(range(n_rows, n_rows + past.shape[0]))
                n_rows += past.shape[0]
                crcs = st.recent_crcs(w_all)
                labs = st.recent_labels(w_all)
            sim = (ids, crcs, labs)
            recent[client] = sim
        ids, crcs, labs = sim
        p = pre[k]
        if p.crc in crcs[:w]:  # an exact repeat of one of the last step_window inputs
            p.retry = True
            gathered.append(pad)
            glabels.append(lpad)
            continue
        gathered.append(ids + pad[len(ids) :])
        glabels.append(labs + lpad[len(labs) :])
        ids.insert(0, row)
        crcs.insert(0, p.crc)
        labs.insert(0, NO_LABEL if p.label < 0 else p.label)
        del ids[w_all:], crcs[w_all:], labs[w_all:]
    gather = np.asarray(gathered, dtype=np.int64)
    valid_all = gather >= 0
    if not valid_all.any():
        return
    # vstack, astype, fancy indexing and ** 2 as before, but in kept buffers (scratch.py)
    ws, dim = scratch(), z.shape[1]
    allrows = np.concatenate(rows, out=ws.array("rows", (n_rows, dim)))
    zz = z.astype(np.float64)
    prev = ws.array("prev", (*gather.shape, dim))
    np.take(allrows, np.where(valid_all, gather, 0), axis=0, out=prev, mode="clip")  # all in range
    diff = np.subtract(prev, zz[:, None, :], out=ws.array("diff", prev.shape))
    dist_all = np.sqrt(np.square(diff, out=diff).sum(axis=2))
    valid, dist = valid_all[:, :w], dist_all[:, :w]  # what steps look at
    count = valid.sum(axis=1)
    enough = count >= config.step_min_recent
    ratio = np.full(len(idx), np.nan)
    step = np.full(len(idx), np.nan)
    if enough.any():
        # Nearest and median distance to the valid recent inputs (invalid slots sort last).
        d = np.where(valid[enough], dist[enough], np.inf)
        d.sort(axis=1)
        c = count[enough]
        r = np.arange(c.shape[0])
        median = 0.5 * (d[r, (c - 1) // 2] + d[r, c // 2])
        ratio[enough] = d[:, 0] / (median + TINY)
        step[enough] = d[:, 0]
    with np.errstate(all="ignore"):
        v1 = zz - prev[:, 0, :]
        v2 = prev[:, 0, :] - prev[:, 1, :]
        n1 = np.linalg.norm(v1, axis=1)
        n2 = np.linalg.norm(v2, axis=1)
        cos = np.abs((v1 * v2).sum(axis=1)) / (n1 * n2 + TINY)
    col_ok = ((count >= 2) & (n1 > TINY) & (n2 > TINY)).tolist()
    ratios, counts, coss, enoughs = ratio.tolist(), count.tolist(), cos.tolist(), enough.tolist()
    steps = step.tolist()
    with np.errstate(all="ignore"):
        masked = np.where(valid, dist, np.inf)
        # Only a query whose nearest own input is the one just before it continues a
        # stream (a drifting sensor, video frames); probes around a point or around
        # earlier parents (equation solving, JbDA) are not continuations.
        nearest_slot = masked.argmin(axis=1)
        own = np.where(nearest_slot == 0, masked[:, 0], np.nan).tolist()
        # The same within the query's own class; a continuation is not tested.
        label = np.asarray([pre[k].label for k in idx], dtype=np.int64)
        same = valid_all & (np.asarray(glabels, dtype=np.int64) == label[:, None])
        same_n = same.sum(axis=1)
        ms = np.where(same, dist_all, np.inf)
        tested = ((same_n > 0) & (ms.argmin(axis=1) > 0)).tolist()
        ms.sort(axis=1)
    same_ns = same_n.tolist()
    for row, k in enumerate(idx):
        p = pre[k]
        if p.retry:
            continue
        if counts[row] and own[row] == own[row]:  # not NaN
            p.own_nearest = own[row]
        if tested[row]:
            p.own_same = ms[row, : same_ns[row]].tolist()
        if enoughs[row]:
            p.step_ratio = ratios[row]
            p.step_count = counts[row]
            p.step = steps[row]
        if col_ok[row]:
            p.collinearity = coss[row]
