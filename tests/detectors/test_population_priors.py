"""What the client-level tests derive from a model's class and cell counts follows every epoch."""

from __future__ import annotations

import math

import numpy as np

from detectors.config import EngineConfig
from detectors.population import Lesson, ModelPopulation


def _lesson(label: int, cell: int) -> Lesson:
    return Lesson(
        owner=1, z=None, novelty=None, step=None, collinear=None, margin=None,
        label=label, cell=cell, volume=1.0,
    )  # fmt: skip


def _fresh(pop: ModelPopulation) -> tuple[float, float, np.ndarray]:
    prior = pop.class_counts / pop.class_counts.sum()
    h = float((prior * -np.log(prior)).sum())
    sd = math.sqrt(max(float((prior * np.log(prior) ** 2).sum()) - h**2, 0.0))
    return h, sd, np.log1p(-pop.cell_counts / pop.cell_counts.sum())


def test_kept_terms_equal_a_fresh_computation_after_each_epoch() -> None:
    """Class entropy, its spread and the cells' log(1 - p) are recomputed when counts move."""
    cfg = EngineConfig()
    pop = ModelPopulation("m", cfg)
    rng = np.random.default_rng(5)
    for _ in range(4):
        before = pop.class_terms()
        for _ in range(cfg.epoch_events):  # one epoch of skewed lessons
            pop.teach(_lesson(int(rng.integers(0, 3)), int(rng.integers(0, 8))))
        h, sd, miss = _fresh(pop)
        assert pop.class_terms() == (h, sd) != before
        np.testing.assert_array_equal(pop.cell_log_miss(), miss)
    assert not pop.cell_log_miss().flags.writeable
