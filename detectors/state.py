"""Per-client state: bounded, and serialisable without pickle for Faust tables."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig

FORMAT_VERSION: Final = 2
MAGIC: Final = b"CWS2"
_ARRAYS = {
    "ring": np.float32,
    "class_hist": np.float32,
    "cells": np.uint8,
    "ring_label": np.uint8,  # one byte each, so a reader that predates it skips it exactly
}
NO_LABEL: Final = 255
_NO_CRC = np.zeros(0, dtype=np.uint32)
_NO_CRC.setflags(write=False)
RING_START: Final = 4  # inputs a new ring has room for; it doubles up to the configured size


@lru_cache(maxsize=1024)
def _newest_first(size: int, pos: int) -> NDArray[np.intp]:
    """Ring indices from the newest slot back to the oldest (shared: read-only)."""
    idx = (pos - 1 - np.arange(size)) % size
    idx.setflags(write=False)
    return idx


@dataclass(slots=True)
class ModelClientState:
    """What Clonewatch remembers of one client on one model (bounded: the ring grows to at
    most the configured size)."""

    n: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    feature_n: int = 0
    output_n: int = 0
    ring: NDArray[np.float32] | None = None
    ring_len: int = 0
    ring_pos: int = 0
    ring_crc: NDArray[np.uint32] = field(default_factory=lambda: _NO_CRC)  # one per ring slot
    ring_label: NDArray[np.uint8] | None = None  # class bucket of each ring input (NO_LABEL)
    class_hist: NDArray[np.float32] | None = None
    cells: NDArray[np.uint8] | None = None
    distinct_cells: int = 0
    evidence: dict[str, float] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    risk: float = 0.0
    alerted_level: int = 0
    episode: int = 0
    quiet: int = 0  # consecutive queries with risk below the episode-reset level
    last_emit_n: int = 0
    last_emit_ts: float = 0.0
    source_ip: str | None = None

    def recent(self, k: int) -> NDArray[np.float32]:
        """The last ``k`` projected inputs, newest first (a copy)."""
        ring = self.ring
        if ring is None or self.ring_len == 0:
            return np.zeros((0, 0), dtype=np.float32)
        k = min(k, self.ring_len)
        return ring.take(_newest_first(ring.shape[0], self.ring_pos)[:k], axis=0)

    def recent_crcs(self, k: int) -> list[int]:
        """Checksums of the last ``k`` inputs, newest first."""
        crc: list[int] = self.ring_crc.tolist()
        if not crc or self.ring_len == 0:
            return []
        k = min(k, self.ring_len)
        pos = self.ring_pos
        rest = len(crc) - (k - pos)  # on wrap-around, the older slots come from the end back
        if k <= pos <= len(crc):
            return crc[pos - k : pos][::-1]
        if pos <= rest <= len(crc):
            return crc[:pos][::-1] + crc[rest:][::-1]
        newest = crc[pos - 1 :: -1] + crc[pos:][::-1] if pos else crc[::-1]  # an odd-sized one
        return newest[:k]

    def slot_crcs(self, k: int) -> NDArray[np.uint32]:
        """The ring's checksums slot by slot, so that the ``t``-th newest of the last ``k``
        is at slot ``(ring_pos - 1 - t) % capacity``, as in :meth:`recent_crcs`."""
        crc = self.ring_crc
        ring = self.ring
        if ring is None:
            return _NO_CRC
        cap = len(ring)
        if len(crc) == cap:
            return crc
        aligned = np.zeros(cap, dtype=np.uint32)  # a state with an odd number of checksums
        recent = self.recent_crcs(k)
        aligned[_newest_first(cap, self.ring_pos)[: len(recent)]] = recent
        return aligned

    def recent_labels(self, k: int) -> list[int]:
        """Class buckets of the last ``k`` inputs, newest first (NO_LABEL: unknown)."""
        if self.ring is None or self.ring_len == 0:
            return []
        k = min(k, self.ring_len)
        if self.ring_label is None:  # a state saved before labels were kept
            return [NO_LABEL] * k
        idx = _newest_first(self.ring.shape[0], self.ring_pos)[:k]
        labels: list[int] = self.ring_label[idx].tolist()
        return labels

    def push(self, z: NDArray[np.float32], crc: int, size: int, label: int | None = None) -> None:
        """Append a projected input (its checksum and class bucket) to the ring.

        The ring starts with room for a few inputs and doubles as it fills, up to ``size``
        (then it wraps): a client with three queries keeps three, not ``size``. A ring from
        an older, smaller configuration grows the same way, keeping its inputs.
        """
        ring = self.ring
        dim = len(z)
        # len() of an array is its first dimension, without building the shape tuple.
        if ring is None or not 0 < len(ring) <= size or ring.size != len(ring) * dim:
            cap = min(size, RING_START)
            ring = self.ring = np.zeros((cap, dim), dtype=np.float32)
            self.ring_crc = np.zeros(cap, dtype=np.uint32)
            self.ring_label = None
            self.ring_len = self.ring_pos = 0
        elif self.ring_len >= len(ring) and len(ring) < size:
            ring = self._grow(ring, min(size, 2 * len(ring)))
        cap = len(ring)
        labels = self.ring_label
        if labels is None or len(labels) != cap:
            labels = self.ring_label = np.full(cap, NO_LABEL, dtype=np.uint8)
        pos = self.ring_pos
        ring[pos] = z
        self.ring_crc[pos] = crc
        labels[pos] = NO_LABEL if label is None else label
        self.ring_pos = (pos + 1) % cap
        ring_len = self.ring_len + 1
        self.ring_len = ring_len if ring_len < cap else cap  # min(ring_len, cap)

    def _grow(self, ring: NDArray[np.float32], cap: int) -> NDArray[np.float32]:
        """Lay the full ring out oldest first in a larger one; the next slot is after them."""
        n = self.ring_len
        oldest_first = _newest_first(ring.shape[0], self.ring_pos)[:n][::-1]
        grown = np.zeros((cap, ring.shape[1]), dtype=np.float32)
        grown[:n] = ring[oldest_first]
        crc = np.zeros(cap, dtype=np.uint32)
        old = self.ring_crc[: ring.shape[0]]  # an odd-sized one is cut or padded with 0
        crc[: old.shape[0]] = old
        crc[:n] = crc[oldest_first]
        crc[n:] = 0
        self.ring_crc = crc
        labels = np.full(cap, NO_LABEL, dtype=np.uint8)
        if self.ring_label is not None and self.ring_label.shape[0] == ring.shape[0]:
            labels[:n] = self.ring_label[oldest_first]
        self.ring, self.ring_label, self.ring_pos = grown, labels, n
        return grown


@dataclass(slots=True)
class ClientState:
    """All of one client's per-model states, at most ``max_models`` of them (LRU).

    >>> s = ClientState()
    >>> s.model("m", EngineConfig()).n += 3
    >>> ClientState.from_bytes(s.to_bytes()).models["m"].n
    3
    """

    models: OrderedDict[str, ModelClientState] = field(default_factory=OrderedDict)
    lone: int = 0  # lone models this client counts for in the engine's fan-out rate (0-2)

    def model(
        self,
        model_id: str,
        config: EngineConfig,
        support: Callable[[str], int] | None = None,
    ) -> ModelClientState:
        """The state for ``model_id``, created (and another evicted) as needed.

        Without ``support`` the least recently used state goes. With it (distinct clients
        per model), the one evicted is the least supported, then the least risky, then the
        least recently used, never the one just created: queries to decoy model ids nobody
        else uses evict each other, not the state of a model the client really queries.

        >>> cfg = EngineConfig(max_models_per_client=2)
        >>> s = ClientState()
        >>> s.model("real", cfg).n = 50
        >>> users = {"real": 300}.get
        >>> for decoy in ("d1", "d2", "d3"):
        ...     _ = s.model(decoy, cfg, lambda m: users(m, 1))
        >>> list(s.models)
        ['real', 'd3']
        """
        st = self.models.get(model_id)
        if st is None:
            st = ModelClientState()
            self.models[model_id] = st
            while len(self.models) > config.max_models_per_client:
                if support is None:
                    self.models.popitem(last=False)
                else:
                    del self.models[self._victim(model_id, support)]
        else:
            self.models.move_to_end(model_id)
        return st

    def _victim(self, keep: str, support: Callable[[str], int]) -> str:
        """The state to evict: least supported, then lowest risk, then least recent."""
        best: tuple[int, float, int] | None = None
        victim = keep
        for age, (mid, m) in enumerate(self.models.items()):
            if mid == keep:
                continue
            key = (support(mid), m.risk, age)
            if best is None or key < best:
                best, victim = key, mid
        return victim

    def to_bytes(self) -> bytes:
        """Compact, pickle-free serialisation: a JSON header, then the raw arrays.

        Layout: ``CWS2``, the header length (4 bytes, big-endian), the header (JSON:
        per model its scalars and the dtype and shape of each array), then the
        arrays' bytes in header order. No pickle, so a changelog topic cannot carry code.
        """
        models = []
        blobs: list[bytes] = []
        for model_id, m in self.models.items():
            scalars: dict[str, Any] = {}
            arrays: list[list[Any]] = []
            for f in fields(m):
                v = getattr(m, f.name)
                if f.name in _ARRAYS:
                    if v is not None:
                        arrays.append([f.name, list(v.shape)])
                        blobs.append(np.ascontiguousarray(v, dtype=_ARRAYS[f.name]).tobytes())
                elif f.name == "ring_crc":
                    arrays.append([f.name, [len(v)]])
                    blobs.append(np.asarray(v, dtype=np.uint32).tobytes())
                else:
                    scalars[f.name] = v
            models.append([model_id, scalars, arrays])
        doc: dict[str, Any] = {"v": FORMAT_VERSION, "models": models}
        if self.lone:  # absent when 0: a state without fan-out reads and writes as before
            doc["lone"] = self.lone
        header = json.dumps(doc, separators=(",", ":"))
        head = header.encode("utf-8")
        return MAGIC + len(head).to_bytes(4, "big") + head + b"".join(blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> ClientState:
        """Inverse of ``to_bytes``; raises ValueError on a foreign or damaged state."""
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
            raise ValueError("not a Clonewatch client state of a known version")
        start = len(MAGIC) + 4
        size = int.from_bytes(data[len(MAGIC) : start], "big")
        obj = json.loads(data[start : start + size])
        if not isinstance(obj, dict) or obj.get("v") != FORMAT_VERSION:
            raise ValueError("not a Clonewatch client state of a known version")
        offset = start + size
        known = _FIELDS
        models: OrderedDict[str, ModelClientState] = OrderedDict()
        for model_id, scalars, arrays in obj["models"]:
            kwargs = {k: v for k, v in scalars.items() if k in known and k not in _ARRAYS}
            for name, shape in arrays:
                dtype = np.dtype(np.uint32 if name == "ring_crc" else _ARRAYS.get(name, np.uint8))
                count = math.prod(shape)
                if offset + count * dtype.itemsize > len(data):
                    raise ValueError("truncated Clonewatch client state")
                raw = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                if name in known:
                    kwargs[name] = raw.reshape(shape).copy()
                offset += count * dtype.itemsize
            models[model_id] = ModelClientState(**kwargs)
        lone = obj.get("lone", 0)
        return cls(models, lone if isinstance(lone, int) and 0 <= lone <= 2 else 0)


_FIELDS = frozenset(f.name for f in fields(ModelClientState))
