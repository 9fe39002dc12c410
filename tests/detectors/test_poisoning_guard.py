"""A burst of far-out lessons cannot rewrite a model's baseline; a real drift still can, slowly."""

from __future__ import annotations

import numpy as np

from detectors.config import EngineConfig
from detectors.population import Lesson, ModelPopulation


def _lesson(novelty: float, owner: int = 1) -> Lesson:
    return Lesson(
        owner=owner, z=None, novelty=novelty, step=None, collinear=None, margin=None,
        label=None, cell=None, volume=1.0,
    )  # fmt: skip


def _population(rng: np.random.Generator) -> ModelPopulation:
    pop = ModelPopulation("m", EngineConfig())
    pop.novelty.extend(np.abs(rng.normal(size=500)))
    return pop


def test_natural_lessons_are_all_taught() -> None:
    """Lessons drawn from the population itself are never withheld for being in the tail."""
    rng = np.random.default_rng(0)
    pop = _population(rng)
    for v in np.abs(rng.normal(size=2000)):
        pop.teach(_lesson(float(v)))
    assert pop.withheld == 0


def test_a_burst_of_tail_lessons_is_mostly_withheld() -> None:
    """A burst of far-out lessons teaches at most a tenth of what is offered."""
    pop = _population(np.random.default_rng(1))
    before = pop.novelty.seen
    for _ in range(640):
        pop.teach(_lesson(9.0))
    taught = pop.novelty.seen - before
    assert pop.withheld > 0.8 * 640 and taught <= 0.1 * 640 + 32


def test_a_real_drift_is_still_learned() -> None:
    """When all traffic moves, a steady tenth is taught, so the baseline follows, slowly."""
    pop = _population(np.random.default_rng(2))
    for _ in range(5000):
        pop.teach(_lesson(4.0))
    assert pop.novelty.upper(4.0) < 3.0  # 4.0 is no longer in the benign 5 % tail
