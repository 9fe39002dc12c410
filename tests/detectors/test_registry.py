"""A model registry (schemas/registry.py) in the engine: the stated dimension from the first
event, the stated ranges as the domain, and registered models outside the model bound
(issue 17 item 1, issue 19)."""

from __future__ import annotations

import numpy as np

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.population import owner_hash
from detectors.support import OVERFLOW_MODEL
from schemas import QueryEvent
from schemas.registry import ModelRegistry, RegisteredModel

CONFIG = EngineConfig(warmup_events=128, warmup_min_clients=4)
T0 = 1_767_225_600.0


def _registry(**models: RegisteredModel) -> ModelRegistry:
    return ModelRegistry(version=1, models=models)


def _event(
    i: int, client: str, features: list[float], model: str = "m", output: object = None
) -> QueryEvent:
    doc: dict[str, object] = {
        "event_id": f"e{i}-{model}",
        "timestamp": T0 + i,
        "client_id": client,
        "model_id": model,
        "features": features,
    }
    if output is not None:
        doc["output"] = output
    return QueryEvent.model_validate(doc)


def _natural(n: int, dim: int = 3, seed: int = 1) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(n, dim)).tolist()  # type: ignore[no-any-return]


class TestStatedDimension:
    def test_wrong_shaped_first_event_is_refused_at_once(self) -> None:
        """With the dimension stated, a first event of another shape never enters warm-up,
        and the model freezes with the stated dimension."""
        eng = Engine(CONFIG, _registry(m=RegisteredModel(n_features=3)))
        eng.process(_event(0, "hijacker", [0.0] * 4))
        assert eng.stats["feature_dim_mismatch"] == 1
        assert eng.populations["m"].warmup.rows == []
        for i, row in enumerate(_natural(200)):
            eng.process(_event(1 + i, f"c{i % 10}", row))
        pop = eng.populations["m"]
        assert pop.frozen and pop.dim == 3

    def test_stated_dimension_beats_a_majority_of_another(self) -> None:
        """Even when most warm-up rows have another shape, the stated one is the model's."""
        eng = Engine(CONFIG, _registry(m=RegisteredModel(n_features=3)))
        for i in range(300):
            eng.process(_event(i, f"x{i % 20}", [0.5] * 4))
        for i, row in enumerate(_natural(200)):
            eng.process(_event(300 + i, f"c{i % 10}", row))
        pop = eng.populations["m"]
        assert pop.frozen and pop.dim == 3
        assert eng.stats["feature_dim_mismatch"] >= 300


class TestStatedRanges:
    def test_out_of_range_inputs_never_teach_from_the_first_event(self) -> None:
        """Before any freeze, values outside the stated ranges are out of domain: counted,
        kept out of warm-up, while in-range rows of the same client teach as usual."""
        known = RegisteredModel(n_features=3, feature_ranges=[(0.0, 1.0)] * 3)
        eng = Engine(CONFIG, _registry(m=known))
        eng.process(_event(0, "poisoner", [1e20, 0.5, 0.5]))
        eng.process(_event(1, "poisoner", [2.0, 0.5, 0.5]))  # just outside: also refused
        assert eng.stats["out_of_domain"] == 2
        assert owner_hash("poisoner") not in eng.populations["m"].warmup.owners
        eng.process(_event(2, "honest", [0.2, 0.5, 0.5]))
        assert eng.populations["m"].warmup.owners == [owner_hash("honest")]

    def test_frozen_fence_is_the_stated_range(self) -> None:
        """The domain fence after the freeze is what the registry says, not the data's."""
        known = RegisteredModel(n_features=3, feature_ranges=[(-2.0, 2.0)] * 3)
        eng = Engine(CONFIG, _registry(m=known))
        for i, row in enumerate(_natural(200)):
            eng.process(_event(i, f"c{i % 10}", row))
        pop = eng.populations["m"]
        assert pop.frozen and pop.fence_lo is not None and pop.fence_hi is not None
        assert pop.fence_lo.tolist() == [-2.0] * 3 and pop.fence_hi.tolist() == [2.0] * 3


class TestStatedClasses:
    def test_answers_of_another_class_count_are_counted(self) -> None:
        eng = Engine(CONFIG, _registry(m=RegisteredModel(n_features=3, n_classes=3)))
        eng.process(_event(0, "c", [0.1] * 3, output={"probabilities": [0.2, 0.3, 0.5]}))
        eng.process(_event(1, "c", [0.1] * 3, output={"probabilities": [0.4, 0.6]}))
        assert eng.stats["output_class_mismatch"] == 1


class TestPinnedModels:
    def test_a_decoy_flood_never_evicts_or_pools_a_registered_model(self) -> None:
        """With room for 3 models, 500 made-up ids cannot push out a registered model that
        only one client uses; the bound still holds for the others."""
        eng = Engine(EngineConfig(max_models=3), _registry(fraud=RegisteredModel(n_features=2)))
        eng.process(_event(0, "only-user", [0.1, 0.2], model="fraud"))
        eng.process_batch(
            [_event(1 + i, "flooder", [0.1, 0.2], model=f"decoy-{i}") for i in range(500)]
        )
        eng.process(_event(600, "only-user", [0.1, 0.2], model="fraud"))
        assert "fraud" in eng.populations
        assert eng.support.bounded <= 3
        assert eng.model_stats()["models_registered"] == 1
        # Its events are its own: none went to the overflow model.
        assert eng.clients["only-user"].models["fraud"].n == 2
        assert OVERFLOW_MODEL not in eng.clients["only-user"].models

    def test_registered_models_survive_a_baseline_round_trip(self) -> None:
        """An engine restored from a snapshot keeps the registry's place, dimension, fence."""
        reg = _registry(m=RegisteredModel(n_features=3, feature_ranges=[(0.0, 1.0)] * 3))
        eng = Engine(CONFIG, reg)
        for i, row in enumerate(_natural(200)):
            eng.process(_event(i, f"c{i % 10}", row))
        back = Engine(CONFIG, reg)
        back.import_population(eng.export_population())
        pop = back.populations["m"]
        assert pop.frozen and pop.dim == 3 and pop.known is not None
        assert "m" in back.support.pinned and back.stats["registry_conflicts"] == 0

    def test_a_snapshot_frozen_with_another_dimension_is_kept_and_counted(self) -> None:
        """A registry stating 4 features for a model whose saved baseline froze with 3 does
        not break the baseline: it is kept, the conflict counted."""
        eng = Engine(CONFIG)
        for i, row in enumerate(_natural(200)):
            eng.process(_event(i, f"c{i % 10}", row))
        back = Engine(CONFIG, _registry(m=RegisteredModel(n_features=4)))
        back.import_population(eng.export_population())
        assert back.stats["registry_conflicts"] == 1
        assert back.populations["m"].dim == 3
