"""Queries nearer to the client's own earlier ones than to anyone else's, class by class."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.state import ClientState, ModelClientState
from schemas import QueryEvent
from tests.detectors.self_similarity_support import labelled_events, near_own

DIM, CLASSES = 8, 4
CENTRES = np.random.default_rng(7).normal(0.0, 3.0, (CLASSES, DIM))


def _label(x: np.ndarray) -> int:
    return int(np.argmin(((CENTRES - x) ** 2).sum(axis=1)))


def _events(client: str, xs: np.ndarray, start: int = 0) -> list[QueryEvent]:
    return labelled_events(client, xs, [_label(x) for x in xs], start)


def _natural(rng: np.random.Generator, n: int, classes: list[int] | None = None) -> np.ndarray:
    pick = rng.choice(classes or list(range(CLASSES)), size=n)
    out: np.ndarray = CENTRES[pick] + rng.normal(0.0, 1.0, (n, DIM))
    return out


@pytest.fixture
def engine() -> Engine:
    """An engine whose baseline has learned 60 natural clients of four classes."""
    rng = np.random.default_rng(0)
    eng = Engine(EngineConfig(seed=1))
    xs = _natural(rng, 60 * 24)
    natural = [
        ev
        for i in range(60)
        for ev in _events(f"user-{i}", xs[i * 24 : (i + 1) * 24], start=i * 24)
    ]
    natural.sort(key=lambda e: e.ts)
    eng.process_batch(natural)
    return eng


def test_augmented_families_build_evidence(engine: Engine) -> None:
    """JbDA-style children of a few seeds, interleaved by family, are caught by this test."""
    rng = np.random.default_rng(2)
    family = _natural(rng, 8)
    xs = [family]
    while sum(len(x) for x in xs) < 160:
        parents = np.vstack(xs)
        xs.append(parents + 0.3 * np.sign(rng.normal(size=parents.shape)))
    attack = np.vstack(xs)[:160]
    assert near_own(engine, _events("attacker", attack, 10_000), "attacker") > 20.0


def test_class_skewed_natural_client_builds_none(engine: Engine) -> None:
    """A client asking almost only about one class is compared within that class."""
    rng = np.random.default_rng(3)
    skewed = _natural(rng, 160, classes=[2] * 9 + [0])
    assert near_own(engine, _events("skewed", skewed, 10_000), "skewed") < 6.0


def test_natural_client_builds_none(engine: Engine) -> None:
    """A heavy client of natural inputs stays exchangeable with everyone else."""
    rng = np.random.default_rng(4)
    heavy = _natural(rng, 300)
    assert near_own(engine, _events("heavy", heavy, 10_000), "heavy") < 6.0


def test_continuing_stream_builds_none(engine: Engine) -> None:
    """A sensor-like random walk is self-similar by nature: its continuations do not count."""
    rng = np.random.default_rng(5)
    walk = CENTRES[1] + np.cumsum(rng.normal(0.0, 0.05, (300, DIM)), axis=0)
    assert near_own(engine, _events("sensor", walk, 10_000), "sensor") < 6.0


def test_state_saved_before_labels_still_scores(engine: Engine) -> None:
    """A client state written without ring labels loads, and its labels fill in as it goes."""
    rng = np.random.default_rng(6)
    first = _events("old", _natural(rng, 40), 10_000)
    engine.process_batch(first)
    state = engine.clients["old"]
    state.models["m"].ring_label = None
    restored = ClientState.from_bytes(state.to_bytes())
    assert restored.models["m"].ring_label is None
    assert restored.models["m"].recent_labels(3) == [255, 255, 255]
    out = engine.step(_events("old", _natural(rng, 1), 20_000)[0], restored)[0]
    assert out.models["m"].ring_label is not None


def test_baseline_saved_before_labels_still_loads(engine: Engine) -> None:
    """A version-1 population snapshot loads with unlabelled reference rows and the prior scale."""
    snapshot = json.loads(engine.export_population())
    snapshot["v"] = 1
    for model in snapshot["models"].values():
        for key in ("reference_label", "self_sum", "self_n"):
            del model[key]
    fresh = Engine(EngineConfig(seed=1))
    fresh.import_population(json.dumps(snapshot).encode())
    pop = fresh.populations["m"]
    assert (pop.reference_label == -1).all() and len(pop.reference_label) == len(pop.reference)
    assert pop.self_scale() == 1.0


def test_ring_grows_with_the_client_and_keeps_its_inputs() -> None:
    """A light client's ring holds what it sent; a ring of an older size grows keeping order."""
    st = ModelClientState()
    rows = np.arange(40 * 2, dtype=np.float32).reshape(40, 2)
    for i in range(3):
        st.push(rows[i], i, 64, label=i)
    assert st.ring is not None and st.ring.shape[0] == 4
    for i in range(3, 40):  # grows 4 -> 8 -> ... -> 64 as it fills
        st.push(rows[i], i, 64, label=i % 7)
    assert st.ring.shape[0] == 64
    assert (st.recent(40) == rows[::-1]).all()
    assert st.recent_crcs(5) == [39, 38, 37, 36, 35]
    old = ModelClientState()  # a 32-slot ring from an older configuration, wrapped
    for i in range(40):
        old.push(rows[i], i, 32, label=1)
    old.push(rows[0] + 100, 100, 64, label=2)
    assert old.ring is not None and old.ring.shape[0] == 64 and old.ring_len == 33
    assert old.recent_crcs(3) == [100, 39, 38]
    assert old.recent_labels(2) == [2, 1]


@pytest.mark.parametrize("shape", [(0, 2), (4, 3), (128, 2)])
def test_a_ring_that_cannot_be_continued_starts_afresh(shape: tuple[int, int]) -> None:
    """An empty ring, another input dimension, or more slots than configured: a new ring."""
    st = ModelClientState(ring=np.ones(shape, dtype=np.float32), ring_len=shape[0])
    st.ring_crc = np.zeros(shape[0], dtype=np.uint32)
    st.push(np.array([5.0, 6.0], dtype=np.float32), 7, 64, label=1)
    assert st.ring is not None and st.ring.shape == (4, 2) and st.ring_len == 1
    assert st.recent_crcs(2) == [7] and st.recent_labels(2) == [1]


@pytest.mark.parametrize("count", [3, 8, 11])
def test_slot_checksums_line_up_with_the_ring_even_when_their_number_is_off(count: int) -> None:
    """Slot checksums read newest first equal recent_crcs, also for a state with too few or many."""
    st = ModelClientState()
    rows = np.arange(13 * 2, dtype=np.float32).reshape(13, 2)
    for i in range(13):  # an 8-slot ring, wrapped
        st.push(rows[i], 1000 + i, 8)
    st.ring_crc = np.arange(500, 500 + count, dtype=np.uint32)
    assert st.ring is not None
    cap, pos = st.ring.shape[0], st.ring_pos
    for k in (1, 5, 8):
        newest = [(pos - 1 - t) % cap for t in range(min(k, st.ring_len))]
        recent = st.recent_crcs(k)
        assert st.slot_crcs(k)[newest[: len(recent)]].tolist() == recent
