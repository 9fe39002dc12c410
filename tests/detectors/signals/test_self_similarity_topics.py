"""In high dimension, a client keeping to one topic of a class is not self-similar."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import QueryEvent
from tests.detectors.self_similarity_support import labelled_events, near_own

DIM, TOPICS, CLASSES = 256, 24, 6
_rng = np.random.default_rng(11)
TOPIC_CENTRES = _rng.normal(size=(TOPICS, DIM))
TOPIC_CENTRES /= np.linalg.norm(TOPIC_CENTRES, axis=1, keepdims=True)
TOPIC_CLASS = np.arange(TOPICS) % CLASSES  # each class spans four topics


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = a / np.linalg.norm(a, axis=-1, keepdims=True)
    return out


def _docs(rng: np.random.Generator, n: int, topics: list[int] | None = None) -> np.ndarray:
    """Sentence-embedding-like unit vectors around topic centres."""
    t = rng.choice(topics or list(range(TOPICS)), size=n)
    return _unit(TOPIC_CENTRES[t] + rng.normal(0.0, 0.045, (n, DIM)))


def _events(client: str, xs: np.ndarray, start: int) -> list[QueryEvent]:
    labels = TOPIC_CLASS[np.argmax(xs @ TOPIC_CENTRES.T, axis=1)]
    return labelled_events(client, xs, [int(y) for y in labels], start)


@pytest.fixture
def engine() -> Engine:
    """An engine whose baseline has learned 60 natural clients asking about every topic."""
    rng = np.random.default_rng(0)
    eng = Engine(EngineConfig(seed=1))
    xs = _docs(rng, 60 * 24)
    natural = [ev for i in range(60) for ev in _events(f"u{i}", xs[i * 24 : (i + 1) * 24], i * 24)]
    natural.sort(key=lambda e: e.ts)
    eng.process_batch(natural)
    return eng


def test_one_topic_client_builds_none(engine: Engine) -> None:
    """Own inputs of one topic are only slightly nearer than the class's others: no evidence."""
    rng = np.random.default_rng(3)
    xs = _docs(rng, 160, topics=[5])
    assert near_own(engine, _events("one-topic", xs, 10_000), "one-topic") < 6.0


def test_perturbed_families_still_build_evidence(engine: Engine) -> None:
    """Sign-perturbed children of a few natural seeds are much nearer: caught."""
    rng = np.random.default_rng(4)
    xs = [_docs(rng, 8)]
    while sum(len(x) for x in xs) < 160:
        parents = np.vstack(xs)
        xs.append(_unit(parents + 0.01 * np.sign(rng.normal(size=parents.shape))))
    attack = np.vstack(xs)[:160]
    assert near_own(engine, _events("attacker", attack, 10_000), "attacker") > 20.0
