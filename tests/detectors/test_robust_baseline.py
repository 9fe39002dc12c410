"""A model's feature space cannot be poisoned by far-out warm-up rows, and its dimension is the
one many clients agree on, not the first event's (issue 17 items 1 and 2)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.population import ModelPopulation, domain_fence, owner_hash
from detectors.population_codec import dump_populations, load_populations
from schemas import QueryEvent

CONFIG = EngineConfig(warmup_events=128, warmup_min_clients=4)


def _natural(rng: np.random.Generator, n: int, dim: int = 5) -> np.ndarray:
    return rng.normal(
        loc=np.arange(dim, dtype=np.float64), scale=1.0 + np.arange(dim), size=(n, dim)
    )


def _warm(pop: ModelPopulation, rows: np.ndarray, owners: list[int]) -> None:
    for owner, row in zip(owners, rows, strict=True):
        if pop.frozen:
            return
        pop.learn_warmup(owner, row)


class TestPoisonedWarmup:
    """One absurd row at the start of warm-up changes nothing of the standardiser."""

    @pytest.mark.parametrize("value", [1e12, 1e20, 1e308, -1e20])
    def test_far_out_row_is_left_out(self, value: float) -> None:
        """The frozen mean and scale equal those learned without the absurd row."""
        rows = _natural(np.random.default_rng(1), 200)
        owners = [i % 10 for i in range(200)]
        clean = ModelPopulation("m", CONFIG)
        _warm(clean, rows, owners)
        poisoned = ModelPopulation("m", CONFIG)
        poisoned.learn_warmup(99, np.full(5, value))
        _warm(poisoned, rows, owners)
        assert clean.frozen and poisoned.frozen and poisoned.excluded == 1
        assert clean.mean is not None and poisoned.mean is not None
        assert clean.scale is not None and poisoned.scale is not None
        # The poisoned space froze one natural row later (the absurd row took a slot).
        rows_used = np.vstack([rows[:127]])
        assert np.allclose(poisoned.mean, rows_used.mean(axis=0))
        assert np.allclose(poisoned.scale, rows_used.std(axis=0))
        assert np.all(np.isfinite(poisoned.scale)) and poisoned.fence_hi is not None

    def test_natural_rows_are_all_kept(self) -> None:
        """Natural, sparse and heavy-tailed features alike: no warm-up row is left out."""
        rng = np.random.default_rng(2)
        rows = np.hstack(
            [
                _natural(rng, 512, 3),
                (rng.random((512, 2)) < 0.02) * 16.0,  # sparse pixels, mostly 0
                rng.standard_t(3, size=(512, 1)),  # heavy tails
            ]
        )
        pop = ModelPopulation("m", CONFIG)
        _warm(pop, rows, [i % 20 for i in range(512)])
        assert pop.frozen and pop.excluded == 0

    def test_far_out_input_scores_finite_and_teaches_nothing(self) -> None:
        """After the freeze an absurd input is clipped into the domain and never learned."""
        eng = Engine(CONFIG)
        rng = np.random.default_rng(3)
        for i, row in enumerate(_natural(rng, 400)):
            eng.process(_event(f"n{i}", i, f"c{i % 40}", row.tolist()))
        pop = eng.populations["m"]
        assert pop.frozen and pop.novelty.count >= CONFIG.min_sketch
        x = pop.in_domain(np.full((1, 5), 1e308))
        assert np.all(np.isfinite(pop.project(x)))
        before = eng.stats["out_of_domain"]
        for i, row in enumerate(_natural(rng, 40)):
            eng.process(_event(f"p{i}", 400 + i, "poisoner", [1e20, *row[1:].tolist()]))
        assert eng.stats["out_of_domain"] > before  # its first query was left out
        owner = owner_hash("poisoner")
        assert owner not in pop.reference_owner.tolist()
        assert all(ls.owner != owner for ls in pop.pending)
        # Evidence against the sender: far-out inputs, scored at the fence, are very novel.
        assert eng.clients["poisoner"].models["m"].risk >= CONFIG.learn_below_risk


def _event(eid: str, t: float, client: str, features: list[float]) -> QueryEvent:
    return QueryEvent.model_validate(
        {"event_id": eid, "timestamp": 1_767_225_600 + t, "client_id": client, "model_id": "m",
         "features": features}
    )  # fmt: skip


class TestDimensionByAgreement:
    """The first event's shape does not decide the model's dimension."""

    def test_hijacking_first_event_loses_the_vote(self) -> None:
        """One client sends six features first; ten clients send five: the model takes five."""
        eng = Engine(CONFIG)
        eng.process(_event("h", 0, "hijacker", [0.0] * 6))
        rng = np.random.default_rng(4)
        for i, row in enumerate(_natural(rng, 200)):
            eng.process(_event(f"n{i}", 1 + i, f"c{i % 10}", row.tolist()))
        pop = eng.populations["m"]
        assert pop.frozen and pop.dim == 5
        assert not pop.accepts([0.0] * 6)

    def test_most_clients_win_over_most_rows(self) -> None:
        """Many rows from few clients lose to fewer rows from more clients."""
        pop = ModelPopulation("m", EngineConfig(warmup_events=1000, warmup_min_clients=4))
        for i in range(60):
            pop.learn_warmup(1 + i % 2, np.zeros(6))
        for i in range(30):
            pop.learn_warmup(10 + i % 5, np.zeros(5))
        assert pop.warmup.leading_dim() == (5, 30, 5)


class TestCodec:
    """The domain fence and the warm-up rows' owners survive a snapshot."""

    def test_round_trip(self) -> None:
        """Fence, excluded count and warm-up owners come back as they were."""
        frozen = ModelPopulation("a", CONFIG)
        frozen.learn_warmup(9, np.full(5, 1e20))
        _warm(frozen, _natural(np.random.default_rng(5), 200), [i % 10 for i in range(200)])
        warming = ModelPopulation("b", CONFIG)
        warming.learn_warmup(3, np.ones(5))
        back = load_populations(dump_populations({"a": frozen, "b": warming}), CONFIG)
        assert back["a"].fence_lo is not None and frozen.fence_lo is not None
        assert np.array_equal(back["a"].fence_lo, frozen.fence_lo)
        assert back["a"].excluded == 1
        assert back["b"].warmup.owners == [3] and back["b"].fence_lo is None

    def test_fence_of_a_constant_feature(self) -> None:
        """A feature with one value everywhere still gets a fence of positive width."""
        lo, hi = domain_fence(np.zeros((10, 2)))
        assert np.all(hi > lo)
