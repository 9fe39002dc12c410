"""The Faust-free logic of the worker: routing, state envelopes, batch scoring, delivery."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from typing import cast

from detectors.engine import Engine
from schemas.alert import Alert
from schemas.dead_letter import DeadLetter
from schemas.query import QueryEvent
from streams.delivery import SinkHub, drain_rejected, rejected_key
from streams.metrics import Health, Metrics
from streams.scoring import Item, Scorer, pack_state, route, unpack_state
from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.memory import ListSink
from tests.detectors.campaign_support import campaign_stream
from tests.streams.broken_engine import BrokenBatches


def _line(i: int, client: str, spread: float) -> bytes:
    feats = [((i * 7919 + k * 104729) % 997) / 997 * spread for k in range(8)]
    return json.dumps(
        {
            "event_id": f"{client}-{i}",
            "timestamp": 1767225600 + i,
            "client_id": client,
            "model_id": "m",
            "features": feats,
            "output": {"label": i % 10, "confidence": 0.5},
        }
    ).encode()


def _items(n: int) -> list[Item]:
    items = []
    for i in range(n):
        client = f"c{i % 5}"
        items.append(Item(client.encode(), _line(i, client, 1.0 + (i % 5)), ((i % 5) % 2, i)))
    return items


class TestRoute:
    """Stage 1's decision for one message."""

    def test_valid_event_is_keyed_by_client(self) -> None:
        """A valid event is forwarded under its client_id whatever its original key."""
        r = route(_line(1, "acme", 1.0))
        assert r.client_key == b"acme"
        assert r.dead_letter is None

    def test_invalid_inputs_become_dead_letters_with_reasons(self) -> None:
        """Empty, binary, non-JSON and wrongly typed messages are dead-lettered with why."""
        cases = {
            None: "empty message",
            b"\xff\xfe": "not UTF-8 text",
            b"{nope": "not JSON",
            b'{"event_id": 1, "timestamp": 0, "client_id": "c", "model_id": "m"}': "invalid",
        }
        for raw, reason in cases.items():
            r = route(raw, source="t/0@5")
            assert r.client_key is None
            assert r.dead_letter is not None
            assert r.dead_letter.reason.startswith(reason)
            assert r.dead_letter.source == "t/0@5"


class TestEnvelope:
    """Table values carry the position of the last event folded in."""

    def test_round_trip(self) -> None:
        """Packing then unpacking gives back the positions and the state bytes."""
        blob = pack_state({7: 2**40, 0: 3}, b"\x00state")
        assert unpack_state(blob) == ({0: 3, 7: 2**40}, b"\x00state")


class TestScorer:
    """Stage 2's batch scoring."""

    def test_matches_the_in_process_engine(self) -> None:
        """Scoring in batches through table values gives replay's outputs in order."""
        items = _items(300)
        reference = Engine()
        expected = []
        for it in items:
            expected.extend(o.to_dict() for o in reference.process(_decode(it.value)))
        scorer = Scorer(Engine())
        table: dict[bytes, bytes] = {}
        got = []
        for start in range(0, len(items), 37):
            batch = scorer.score(items[start : start + 37], table.get)
            table.update(batch.states)
            # Alerts and risks come out grouped; compare as multisets of ids.
            got.extend(a.to_dict() for _, a in batch.alerts)
            got.extend(r.to_dict() for _, r in batch.risks)
        assert sorted(d["event"]["id"] for d in got) == sorted(d["event"]["id"] for d in expected)

    def test_campaign_alerts_are_keyed_by_their_own_account(self) -> None:
        """A campaign alert naming an account with no event in the batch goes under its key."""
        events = campaign_stream()
        items = [
            Item(e.client_id.encode(), e.model_dump_json().encode(), (0, i))
            for i, e in enumerate(events)
        ]
        expected = [o for o in Engine().process_batch(events) if isinstance(o, Alert)]
        scorer = Scorer(Engine())
        table: dict[bytes, bytes] = {}
        keyed: list[tuple[bytes, Alert]] = []
        for start in range(0, len(items), 50):
            batch = scorer.score(items[start : start + 50], table.get)
            table.update(batch.states)
            keyed.extend(batch.alerts)
        assert any(a.clonewatch.campaign_id for _, a in keyed)
        assert all(key == a.user.id.encode() for key, a in keyed)
        assert sorted(a.event.id for _, a in keyed) == sorted(a.event.id for a in expected)

    def test_redelivered_events_are_skipped(self) -> None:
        """Events already folded into the stored state are not applied twice."""
        items = _items(120)
        scorer = Scorer(Engine())
        table: dict[bytes, bytes] = {}
        first = scorer.score(items, table.get)
        table.update(first.states)
        assert first.processed == 120
        again = scorer.score(items[60:], table.get)
        assert again.skipped == 60
        assert again.processed == 0
        assert not again.alerts
        assert not again.risks

    def test_a_failing_batch_is_scored_event_by_event(self) -> None:
        """If the vectorised path raises, the same items are scored one by one from the table."""
        items = _items(120)
        expected = Scorer(Engine()).score(items, {}.get)
        got = Scorer(cast(Engine, BrokenBatches(Engine()))).score(items, {}.get)
        assert got.processed == expected.processed == 120
        assert sorted(r.id for _, r in got.risks) == sorted(r.id for _, r in expected.risks)
        assert got.states.keys() == expected.states.keys()

    def test_skip_is_per_input_partition(self) -> None:
        """An event from another input partition is applied even with a lower offset."""
        scorer = Scorer(Engine())
        first = scorer.score([Item(b"c", _line(1, "c", 1.0), (0, 50))], {}.get)
        table = dict(first.states)
        later = scorer.score([Item(b"c", _line(2, "c", 1.0), (1, 10))], table.get)
        assert later.processed == 1
        assert unpack_state(later.states[b"c"])[0] == {0: 50, 1: 10}


def _decode(raw: bytes) -> QueryEvent:
    return QueryEvent.model_validate_json(raw)


class _RejectingSink(ListSink):
    """The in-memory sink refusing documents marked ``bad`` for good, like a 400."""

    def __init__(self, name: str, fail_first: int = 0) -> None:
        super().__init__(name)
        self.fail_first = fail_first
        self._rejected: list[DeadLetter] = []

    @property
    def stored(self) -> list[str]:
        """Ids delivered, each once (a retried flush delivers again: at least once)."""
        return list(dict.fromkeys(r.id for r in self.records))

    def flush(self) -> None:
        """Deliver the good records, keep the bad ones as dead letters; fail the first flushes."""
        good = [r for r in self.buffered if not r.doc.get("bad")]
        for r in self.buffered:
            if r.doc.get("bad"):
                self._rejected.append(DeadLetter.of(json.dumps(r.doc).encode(), f"bad {r.id}"))
        self.buffered[:] = good
        super().flush()
        if self.fail_first > 0:
            self.fail_first -= 1
            raise SinkError("temporarily down")

    def drain_rejected(self) -> list[DeadLetter]:
        """Take the dead letters."""
        out, self._rejected = self._rejected, []
        return out


class _PlainSink(_RejectingSink):
    """A sink without ``drain_rejected`` (like the webhook)."""

    drain_rejected = None  # type: ignore[assignment]  # the attribute is absent in spirit


def _alert_record(i: int, client: str, *, bad: bool = False) -> OutputRecord:
    doc: dict[str, object] = {"user": {"id": client}, "n": i}
    if bad:
        doc["bad"] = True
    return OutputRecord("alert", f"a{i}", client, doc)


class TestRejectedRecords:
    """Records a sink refuses for good are returned for the dead-letter topic."""

    def test_rejected_key_is_the_documents_client(self) -> None:
        """An alert or risk names its client in user.id; a dead letter or binary does not."""
        alert = DeadLetter.of(b'{"user": {"id": "attacker-1"}, "x": 1}', "400")
        assert rejected_key(alert) == b"attacker-1"
        assert rejected_key(DeadLetter.of(b'{"reason": "x", "raw": "y"}', "400")) is None
        assert rejected_key(DeadLetter.of(b"\xff\xfe", "400")) is None
        assert rejected_key(DeadLetter.of(b"[1, 2]", "400")) is None

    def test_hub_returns_rejects_keyed_by_client_once(self) -> None:
        """deliver drains each sink after its flush: rejects come back once, with sink and key."""
        sink = _RejectingSink("elasticsearch")
        metrics = Metrics()
        hub = SinkHub([sink], metrics, Health())
        records = [_alert_record(1, "c1"), _alert_record(2, "c2", bad=True), _alert_record(3, "c3")]
        (rej,) = asyncio.run(hub.deliver(records))
        assert (rej.sink, rej.key) == ("elasticsearch", b"c2")
        assert rej.dead_letter.reason == "bad a2"
        assert json.loads(rej.dead_letter.original_bytes())["n"] == 2
        assert sink.stored == ["a1", "a3"]
        assert asyncio.run(hub.deliver([_alert_record(4, "c4")])) == []
        assert b'clonewatch_sink_writes_total{sink="elasticsearch"} 4.0' in metrics.render()

    def test_rejects_of_a_failed_attempt_are_drained_after_the_retry(self) -> None:
        """A reject of a flush that then failed comes back once, after the retry succeeded."""
        sink = _RejectingSink("opensearch", fail_first=1)
        hub = SinkHub([sink], Metrics(), Health(), max_backoff=0.5)
        (rej,) = asyncio.run(hub.deliver([_alert_record(7, "c7", bad=True)]))
        assert rej.key == b"c7"
        assert sink.fail_first == 0

    def test_sinks_without_drain_give_nothing(self) -> None:
        """A sink that keeps no rejects (no drain_rejected) adds nothing to the return value."""
        plain, searching = _PlainSink("webhook"), _RejectingSink("elasticsearch")
        hub = SinkHub([plain, searching], Metrics(), Health())
        got = asyncio.run(hub.deliver([_alert_record(1, "c1", bad=True)]))
        assert [(r.sink, r.key) for r in got] == [("elasticsearch", b"c1")]
        assert drain_rejected(plain) == []


class TestWithoutFaust:
    """The scoring and delivery logic is importable and usable without Faust."""

    PROGRAM = textwrap.dedent(
        """
        import sys
        import streams.delivery, streams.faust_compat, streams.scoring
        from detectors.engine import Engine

        line = sys.argv[1].encode()
        item = streams.scoring.Item(b"c", line, (0, 1))
        batch = streams.scoring.Scorer(Engine()).score([item], {}.get)
        assert batch.processed == 1, batch
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("faust", "mode")))
        """
    )

    def test_scoring_and_delivery_do_not_import_faust(self) -> None:
        """A fresh interpreter importing them (and scoring one item) never loads faust."""
        line = _line(1, "c", 1.0).decode()
        proc = subprocess.run(
            [sys.executable, "-c", self.PROGRAM, line], capture_output=True, text=True, check=True
        )
        assert proc.stdout.strip() == "[]"
