"""The Faust-free logic of the worker's stages: routing, state envelopes, batch scoring."""

from __future__ import annotations

import json

from detectors.engine import Engine
from schemas.query import QueryEvent
from streams.agents import Item, Scorer, pack_state, route, unpack_state


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
