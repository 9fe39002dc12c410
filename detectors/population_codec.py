"""Pickle-free serialisation of population baselines (JSON with base64 arrays)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from detectors.config import EngineConfig
from detectors.population import Lesson, ModelPopulation, Warmup
from detectors.sketch import TailSketch

# 2 added reference labels and the self-similarity calibration; 3 the domain fence and the
# owners of warm-up rows
FORMAT_VERSION = 3
READABLE = (1, 2, 3)
_ARRAYS = (
    "mean",
    "scale",
    "projection",
    "hyperplanes",
    "offsets",
    "reference",
    "reference_owner",
    "reference_label",
    "class_counts",
    "cell_counts",
    "fence_lo",
    "fence_hi",
)
_SKETCHES = ("novelty", "step", "step16", "step32", "collinear", "margin", "volume")
_SCALARS = (
    "dim",
    "reference_seen",
    "labels_seen",
    "epochs",
    "self_sum",
    "self_n",
    "offered_recent",
    "tail_recent",
    "withheld",
    "excluded",
    "tail_seen",
    "tail_hits",
    "malformed_seen",
    "malformed_hits",
)


def _arr(a: np.ndarray | None) -> list[Any] | None:
    if a is None:
        return None
    data = base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
    return [str(a.dtype), list(a.shape), data]


def _unarr(v: list[Any] | None) -> np.ndarray | None:
    if v is None:
        return None
    dtype, shape, data = v
    return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype)).reshape(shape).copy()


def _sketch(s: TailSketch) -> dict[str, Any]:
    k = min(s.seen, s.size)
    return {
        "values": _arr(s._values[:k]),
        "sorted": _arr(s._sorted),
        "since_sort": s._since_sort,
        "seen": s.seen,
        "rng": s._rng.bit_generator.state,
    }


def _unsketch(s: TailSketch, obj: dict[str, Any]) -> None:
    vals = _unarr(obj["values"])
    if vals is None:
        raise ValueError("sketch without values")
    s._values[: vals.shape[0]] = vals
    s._n_seen = int(obj["seen"])
    s._rng.bit_generator.state = obj["rng"]
    view = _unarr(obj["sorted"])
    s._sorted = view if view is not None else np.zeros(0)
    s._sorted_list = s._sorted.tolist()
    s.count = len(s._sorted_list)
    s._since_sort = int(obj["since_sort"])


def _lesson(ls: Lesson) -> dict[str, Any]:
    keys = ["owner", "novelty", "step", "collinear", "margin", "label", "cell", "volume"]
    keys += ["step_count", "self_surprise"]
    d = {k: getattr(ls, k) for k in keys}
    d["z"] = _arr(ls.z)
    return d


def _unlesson(d: dict[str, Any]) -> Lesson:
    return Lesson(**{**d, "z": _unarr(d["z"])})


def dump_populations(
    pops: dict[str, ModelPopulation],
    support: dict[str, list[int]] | None = None,
    pools: list[dict[str, Any]] | None = None,
) -> bytes:
    """Serialise baselines (and the models' distinct clients seen, ``support``, and the
    identity pools, ``pools``); the inverse is :func:`load_populations` (and
    :func:`load_support`, :func:`load_pools`). Readers that do not know ``support`` or
    ``pools`` ignore them."""
    models = {}
    for model_id, p in pops.items():
        obj: dict[str, Any] = {k: getattr(p, k) for k in _SCALARS}
        obj.update({k: _arr(getattr(p, k)) for k in _ARRAYS})
        obj["sketches"] = {k: _sketch(getattr(p, k)) for k in _SKETCHES}
        obj["rng"] = p.rng.bit_generator.state
        obj["pending"] = [_lesson(ls) for ls in p.pending]
        obj["warmup_rows"] = [_arr(r) for r in p.warmup.rows]
        obj["warmup_per_client"] = [[k, v] for k, v in p.warmup.per_client.items()]
        obj["warmup_owners"] = list(p.warmup.owners)
        models[model_id] = obj
    doc: dict[str, Any] = {"v": FORMAT_VERSION, "models": models}
    if support is not None:
        doc["support"] = support
    if pools is not None:
        doc["pools"] = pools
    return json.dumps(doc).encode("utf-8")


def load_pools(blob: bytes) -> list[dict[str, Any]]:
    """The identity pools a snapshot carries (none before they were kept)."""
    data = json.loads(blob)
    pools = data.get("pools") if isinstance(data, dict) else None
    return pools if isinstance(pools, list) else []


def load_support(blob: bytes) -> dict[str, list[int]]:
    """The models' distinct clients a snapshot carries (none before they were kept)."""
    data = json.loads(blob)
    support = data.get("support") if isinstance(data, dict) else None
    if not isinstance(support, dict):
        return {}
    return {str(m): [int(o) for o in owners] for m, owners in support.items()}


def load_populations(blob: bytes, config: EngineConfig) -> dict[str, ModelPopulation]:
    """Restore baselines written by :func:`dump_populations`."""
    data = json.loads(blob)
    if not isinstance(data, dict) or data.get("v") not in READABLE:
        raise ValueError("not a Clonewatch population snapshot of a known version")
    out: dict[str, ModelPopulation] = {}
    for model_id, obj in data["models"].items():
        p = ModelPopulation(model_id, config)
        for k in _SCALARS:
            if k in obj:  # a version-1 snapshot has no self-similarity calibration yet
                setattr(p, k, obj[k])
        for k in _ARRAYS:
            v = _unarr(obj.get(k))
            if v is not None or k in ("mean", "scale", "projection", "hyperplanes", "offsets"):
                setattr(p, k, v)
        for k in _SKETCHES:
            _unsketch(getattr(p, k), obj["sketches"][k])
        p.rng.bit_generator.state = obj["rng"]
        if "reference_label" not in obj:  # version 1: rows without labels
            p.reference_label = np.full(p.reference.shape[0], -1, dtype=np.int64)
        p.pending = [_unlesson(ls) for ls in obj["pending"]]
        rows = [r for r in (_unarr(v) for v in obj["warmup_rows"]) if r is not None]
        per_client = {int(k): int(v) for k, v in obj["warmup_per_client"]}
        # Before version 3 the owners of warm-up rows were not kept: each counts as its own.
        owners = [int(o) for o in obj.get("warmup_owners", range(-1, -len(rows) - 1, -1))]
        p.warmup = Warmup(rows=rows, per_client=per_client, owners=owners)
        out[model_id] = p
    return out
