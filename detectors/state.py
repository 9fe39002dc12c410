"""Per-client state: bounded, and serialisable without pickle for Faust tables."""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.config import EngineConfig

FORMAT_VERSION = 1
_ARRAYS = {"ring": np.float32, "class_hist": np.float32, "cells": np.uint8}


@dataclass(slots=True)
class ModelClientState:
    """What Clonewatch remembers of one client on one model (fixed size)."""

    n: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    feature_n: int = 0
    output_n: int = 0
    ring: NDArray[np.float32] | None = None
    ring_len: int = 0
    ring_pos: int = 0
    ring_crc: list[int] = field(default_factory=list)
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
        """The last ``k`` projected inputs, newest first."""
        if self.ring is None or self.ring_len == 0:
            return np.zeros((0, 0), dtype=np.float32)
        size = self.ring.shape[0]
        k = min(k, self.ring_len)
        idx = [(self.ring_pos - 1 - i) % size for i in range(k)]
        return self.ring[idx]

    def recent_crcs(self, k: int) -> list[int]:
        """Checksums of the last ``k`` inputs, newest first."""
        if not self.ring_crc or self.ring_len == 0:
            return []
        size = len(self.ring_crc)
        return [self.ring_crc[(self.ring_pos - 1 - i) % size] for i in range(min(k, self.ring_len))]

    def push(self, z: NDArray[np.float32], crc: int, size: int) -> None:
        """Append a projected input (and its checksum) to the ring."""
        if self.ring is None or self.ring.shape != (size, z.shape[0]):
            self.ring = np.zeros((size, z.shape[0]), dtype=np.float32)
            self.ring_crc = [0] * size
            self.ring_len = self.ring_pos = 0
        self.ring[self.ring_pos] = z
        self.ring_crc[self.ring_pos] = crc
        self.ring_pos = (self.ring_pos + 1) % size
        self.ring_len = min(self.ring_len + 1, size)

    def to_obj(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays as base64)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in _ARRAYS:
                if v is not None:
                    out[f.name] = [list(v.shape), base64.b64encode(v.tobytes()).decode("ascii")]
            elif isinstance(v, dict | list):
                out[f.name] = v.copy()
            else:
                out[f.name] = v
        return out

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> ModelClientState:
        """Inverse of ``to_obj``; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in obj.items():
            if k not in known:
                continue
            if k in _ARRAYS:
                shape, data = v
                arr = np.frombuffer(base64.b64decode(data), dtype=_ARRAYS[k]).reshape(shape)
                kwargs[k] = arr.copy()
            else:
                kwargs[k] = v
        return cls(**kwargs)


@dataclass(slots=True)
class ClientState:
    """All of one client's per-model states, at most ``max_models`` of them (LRU).

    >>> s = ClientState()
    >>> s.model("m", EngineConfig()).n += 3
    >>> ClientState.from_bytes(s.to_bytes()).models["m"].n
    3
    """

    models: OrderedDict[str, ModelClientState] = field(default_factory=OrderedDict)

    def model(self, model_id: str, config: EngineConfig) -> ModelClientState:
        """The state for ``model_id``, created (and the oldest evicted) as needed."""
        st = self.models.get(model_id)
        if st is None:
            st = ModelClientState()
            self.models[model_id] = st
            while len(self.models) > config.max_models_per_client:
                self.models.popitem(last=False)
        else:
            self.models.move_to_end(model_id)
        return st

    def to_bytes(self) -> bytes:
        """Compact, pickle-free serialisation (JSON with base64 arrays)."""
        obj = {"v": FORMAT_VERSION, "models": [[k, m.to_obj()] for k, m in self.models.items()]}
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> ClientState:
        """Inverse of ``to_bytes``; raises ValueError on a foreign or newer format."""
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("v") != FORMAT_VERSION:
            raise ValueError("not a Clonewatch client state of a known version")
        return cls(OrderedDict((k, ModelClientState.from_obj(m)) for k, m in obj["models"]))
