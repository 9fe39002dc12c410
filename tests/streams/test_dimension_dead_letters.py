"""An event whose dimension is not its model's is a dead letter ``feature dimension mismatch``
in replay and in the worker's scorer, and is still counted against its client (issue 17
item 2): nothing accepted is lost, and ``events == valid + dead letters`` holds."""

from __future__ import annotations

import json
from typing import cast

import numpy as np

from detectors.config import EngineConfig
from detectors.engine import Engine
from streams.replay import replay_lines
from streams.scoring import Item, Scorer
from tests.streams.broken_engine import BrokenBatches

CONFIG = EngineConfig(warmup_events=128, warmup_min_clients=4)


def _line(i: int, client: str, dim: int, rng: np.random.Generator) -> bytes:
    return json.dumps(
        {"event_id": f"e{i}", "timestamp": 1_767_225_600 + i, "client_id": client,
         "model_id": "m", "features": rng.normal(0.0, 1.0, dim).tolist()}
    ).encode()  # fmt: skip


def _log() -> list[bytes]:
    """400 natural four-feature events, then 10 five-feature ones from one client."""
    rng = np.random.default_rng(0)
    natural = [_line(i, f"c{i % 20}", 4, rng) for i in range(400)]
    return natural + [_line(400 + k, "odd", 5, rng) for k in range(10)]


def test_replay_dead_letters_them_with_their_line() -> None:
    result = replay_lines(_log(), engine=Engine(CONFIG), keep_dead_letters=True)
    s = result.summary
    assert s.events == 410 and s.dead_letters == 10 and s.valid == 400
    assert s.dead_letter_reasons == {"feature dimension mismatch": 10}
    first = result.dead_letters[0]
    assert first["reason"] == "feature dimension mismatch: model m takes 4 features, got 5"
    assert first["source"] == "log:401" and json.loads(first["raw"])["event_id"] == "e400"


def test_scorer_dead_letters_them_and_still_counts_the_client() -> None:
    engine = Engine(CONFIG)
    table: dict[bytes, bytes] = {}
    items = [
        Item(json.loads(line)["client_id"].encode(), line, (0, k)) for k, line in enumerate(_log())
    ]
    for start in range(0, len(items), 50):
        batch = Scorer(engine).score(items[start : start + 50], table.get)
        table.update(batch.states)
    reasons = [dl.reason for dl in batch.dead_letters]
    assert reasons == ["feature dimension mismatch: model m takes 4 features, got 5"] * 10
    assert json.loads(batch.dead_letters[0].original_bytes())["event_id"] == "e400"
    assert engine.stats["feature_dim_mismatch"] == 10


def test_the_step_fallback_dead_letters_them_too() -> None:
    engine = Engine(CONFIG)
    log = _log()
    replay_lines(log[:400], engine=engine)  # the model's space frozen on natural traffic
    items = [Item(b"odd", line, (0, 400 + k)) for k, line in enumerate(log[400:])]
    batch = Scorer(cast(Engine, BrokenBatches(engine))).score(items, {}.get)
    assert [dl.reason.split(":")[0] for dl in batch.dead_letters] == [
        "feature dimension mismatch"
    ] * 10
