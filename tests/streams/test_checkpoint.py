"""Population checkpoints written ahead of the table: records, overlay, and a crash anywhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from detectors.engine import Engine
from streams.agents import Checkpoints
from streams.checkpoint import Checkpoint, Overlay, decode, encode, is_head, newer, part_key
from streams.metrics import Metrics
from streams.scoring import Item, Scorer, pack_state
from tests.integration.stream_support import write_log

HEAD = b"app/w1"


class _Topic:
    """The population topic as compaction leaves it: the last value of each key."""

    def __init__(self) -> None:
        self.latest: dict[bytes, bytes] = {}
        self.sent = 0

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.latest[key] = value
        self.sent += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class _Worker:
    """The score stage's order of work on a dict table, without Faust or Kafka."""

    def __init__(self, topic: _Topic, table: dict[bytes, bytes], *, restore: bool) -> None:
        self.engine = Engine()
        self.topic, self.table = topic, table
        self.checkpoints = Checkpoints(
            engine=self.engine, topic=topic, head=HEAD, max_bytes=64 * 1024, metrics=Metrics()
        )
        if restore and HEAD in topic.latest:
            cp = decode(topic.latest, HEAD)
            self.engine.import_population(cp.population)
            self.checkpoints.resume(cp)
        self.scorer = Scorer(self.engine)
        self.alerts: dict[str, dict[str, Any]] = {}

    def batch(self, items: list[Item], keep: Callable[[bytes], bool] | None = None) -> None:
        """One batch; ``keep`` says which table writes survive (a crash after the checkpoint)."""
        overlay = self.checkpoints.overlay
        out = self.scorer.score(items, overlay.reader(self.table.get))
        for _, alert in out.alerts:
            self.alerts[alert.event.id] = alert.to_dict()
        asyncio.run(self.checkpoints.before_table_writes(out.states))
        for key, value in out.states.items():
            if keep is None or keep(key):
                self.table[key] = value
        overlay.written(out.states)


def _batches(lines: list[bytes], size: int) -> list[list[Item]]:
    items = [Item(json.loads(v)["client_id"].encode(), v, (0, i)) for i, v in enumerate(lines)]
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run(batches: list[list[Item]], crash: int | None, mode: str) -> dict[str, dict[str, Any]]:
    """Every alert (deduplicated by event id) of a run killed in batch ``crash``."""
    topic, table = _Topic(), {}
    first = _Worker(topic, table, restore=True)
    for b in batches[: crash if crash is not None else len(batches)]:
        first.batch(b)
    if crash is None:
        return first.alerts
    if mode == "half-written":  # checkpoint out, then every other table write lost
        first.batch(batches[crash], keep=lambda k: hash(k) % 2 == 0)
    second = _Worker(topic, table, restore=mode != "cold")
    for b in batches[max(0, crash - 2) :]:  # re-delivered from an older committed offset
        second.batch(b)
    return {**first.alerts, **second.alerts}


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[list[Item]]:
    """The crash test's log (calm clients, a fast and a slow attacker) in batches of 40."""
    events = write_log(tmp_path_factory.mktemp("log") / "log.jsonl", benign=14)
    return _batches([json.dumps(e).encode() for e in events], 40)


@pytest.fixture(scope="module")
def expected(batches: list[list[Item]]) -> dict[str, dict[str, Any]]:
    """The alerts of a run without a crash (replay's, one partition)."""
    alerts = _run(batches, None, "")
    assert alerts, "the log must raise alerts"
    return alerts


class TestRecords:
    """A checkpoint's records on the population topic."""

    def test_round_trip_in_parts(self) -> None:
        """A checkpoint larger than a message is cut into parts and read back whole."""
        rng = np.random.default_rng(0)
        states = {f"c{i}".encode(): rng.bytes(2000) for i in range(30)}
        cp = Checkpoint(3, b'{"v": 3}', states, {"t/0": 12})
        records = encode(cp, HEAD, 8 * 1024)
        assert len(records) > 2 and records[-1][0] == HEAD
        assert all(len(v) <= 8 * 1024 for _, v in records)
        back = decode(dict(records), HEAD)
        assert (back.seq, back.population, back.states, back.covers) == (
            3,
            b'{"v": 3}',
            states,
            {"t/0": 12},
        )

    def test_previous_checkpoint_whole_while_next_is_written(self) -> None:
        """Parts of the next checkpoint never overwrite those of the one its head names."""
        rng = np.random.default_rng(1)
        topic = dict(encode(Checkpoint(1, b"one", {b"a": rng.bytes(5000)}), HEAD, 2048))
        nxt = encode(Checkpoint(2, b"two", {b"b": rng.bytes(5000)}), HEAD, 2048)
        topic.update(nxt[:-1])  # killed before the head
        assert decode(topic, HEAD).population == b"one"
        topic.update(nxt[-1:])
        assert decode(topic, HEAD).population == b"two"

    def test_plain_blob_is_a_baseline(self) -> None:
        """A worker's key holding a bare population snapshot (the format before) loads."""
        assert decode({HEAD: b'{"v": 3, "models": {}}'}, HEAD).states == {}

    def test_missing_part_is_an_error(self) -> None:
        """A head whose parts are gone is refused, not read as an empty checkpoint."""
        topic = dict(encode(Checkpoint(5, b"x", {b"k": b"v"}), HEAD, 2048))
        del topic[part_key(HEAD, 1, 0)]
        with pytest.raises(ValueError, match="misses parts"):
            decode(topic, HEAD)

    def test_heads_and_parts(self) -> None:
        """Only heads name workers when a new worker looks for the freshest baseline."""
        assert is_head(HEAD) and not is_head(part_key(HEAD, 0, 0))


class TestOverlay:
    """A restarted worker reads the checkpoint's table values where the table lost them."""

    def test_reads_the_newer_value(self) -> None:
        """The checkpoint's value wins only when it has folded in more events."""
        old, new = pack_state({0: 4}, b"old"), pack_state({0: 9}, b"new")
        overlay = Overlay({b"a": new, b"b": old})
        table = {b"a": old, b"b": new}
        read = overlay.reader(table.get)
        assert (read(b"a"), read(b"b"), read(b"c")) == (new, new, None)
        assert overlay.used == 1 and newer(None, old)

    def test_forgets_what_was_rewritten(self) -> None:
        """Once the stage wrote a key, the table is the truth for it."""
        overlay = Overlay({b"a": pack_state({0: 9}, b"x")})
        overlay.written([b"a"])
        assert overlay.reader(dict[bytes, bytes]().get)(b"a") is None


class TestCrashAnywhere:
    """The stage's order of work with a crash in any batch gives the uninterrupted alerts."""

    @pytest.mark.parametrize("crash", [0, 1, 3, 6, 9, 12])
    @pytest.mark.parametrize("mode", ["before-checkpoint", "half-written"])
    def test_alerts_equal_an_uninterrupted_run(
        self,
        batches: list[list[Item]],
        expected: dict[str, dict[str, Any]],
        crash: int,
        mode: str,
    ) -> None:
        """Killed before a batch's checkpoint or after it with half its table writes lost."""
        assert _run(batches, crash, mode) == expected

    def test_a_cold_restart_differs(
        self, batches: list[list[Item]], expected: dict[str, dict[str, Any]]
    ) -> None:
        """Without the checkpoint (the worker before) the same crash changes the alerts."""
        assert _run(batches, 6, "cold") != expected

    def test_a_batch_that_teaches_nothing_writes_nothing(self) -> None:
        """No checkpoint is sent while the baseline stays the same."""
        topic = _Topic()
        worker = _Worker(topic, {}, restore=False)
        assert not asyncio.run(worker.checkpoints.before_table_writes({}))
        assert topic.sent == 0
