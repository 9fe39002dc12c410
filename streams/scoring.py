"""The worker's logic without Faust: routing, the by-client envelope, batch scoring.

Everything here is plain Python over bytes and engine objects, so it is imported
and unit-tested without Faust (``tests/unit/test_streams_agents.py`` checks that
importing this module does not import ``faust``). The agents in
:mod:`streams.agents` decode a Faust event into an :class:`Item` or a raw value,
call :func:`route` or :meth:`Scorer.score`, and send what comes back.

Exactly-once state: stage 1 stamps each forwarded event with its position on the
*input* topic (:func:`origin_header`), a table value carries, per input
partition, the offset of the last event folded into it (:func:`pack_state`),
and the scorer skips an event re-delivered after a crash whose input offset is
not beyond that: its outputs were delivered before the state was written.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from detectors.engine import Engine
from detectors.state import ClientState
from schemas.alert import Alert, RiskRecord
from schemas.dead_letter import DeadLetter
from schemas.query import QueryEvent, decode_event

log = structlog.get_logger("clonewatch.worker")

ARRIVAL_HEADER = "clonewatch-arrival"
ORIGIN_HEADER = "clonewatch-origin"
_HEAD = struct.Struct(">BH")  # version, number of positions
_POS = struct.Struct(">iq")  # input partition, offset
_ENVELOPE_VERSION = 2
Positions = dict[int, int]


# ---- table values and headers ------------------------------------------------------------


def pack_state(positions: Positions, state: bytes) -> bytes:
    """A table value: per input partition the offset of the last event folded in, then state.

    >>> unpack_state(pack_state({3: 41, 0: 7}, b"xyz"))
    ({0: 7, 3: 41}, b'xyz')
    """
    parts = [_HEAD.pack(_ENVELOPE_VERSION, len(positions))]
    parts.extend(_POS.pack(p, o) for p, o in sorted(positions.items()))
    parts.append(state)
    return b"".join(parts)


def unpack_state(blob: bytes) -> tuple[Positions, bytes]:
    """``(positions, state bytes)`` of a table value."""
    version, n = _HEAD.unpack_from(blob)
    if version != _ENVELOPE_VERSION:
        raise ValueError(f"unknown state envelope version {version}")
    positions: Positions = {}
    at = _HEAD.size
    for _ in range(n):
        p, o = _POS.unpack_from(blob, at)
        positions[p] = o
        at += _POS.size
    return positions, blob[at:]


def origin_header(partition: int, offset: int) -> bytes:
    """The input position stamped on a forwarded event.

    >>> origin_header(2, 15)
    b'2:15'
    """
    return f"{partition}:{offset}".encode()


def parse_origin(value: bytes | None) -> tuple[int, int] | None:
    """The input position of a forwarded event, if stamped.

    >>> parse_origin(b"2:15"), parse_origin(None), parse_origin(b"x")
    ((2, 15), None, None)
    """
    if not value:
        return None
    try:
        p, o = value.decode().split(":", 1)
        return int(p), int(o)
    except ValueError:
        return None


def parse_arrival(value: bytes | None) -> float | None:
    """The arrival time stamped on a forwarded event (for the latency metric), if readable.

    >>> parse_arrival(b"1767225600.5"), parse_arrival(None), parse_arrival(b"soon")
    (1767225600.5, None, None)
    """
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# ---- stage 1 -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Routed:
    """Where stage 1 sends one input message."""

    client_key: bytes | None  # set for a valid event
    dead_letter: DeadLetter | None  # set for an invalid one


def route(raw: bytes | None, received_at: float | None = None, source: str | None = None) -> Routed:
    """Decode one input message: a client key for a valid event, else a dead letter.

    >>> route(b'{"oops').dead_letter.reason.startswith("not JSON")
    True
    """
    decoded = decode_event(raw or b"", received_at=received_at)
    if isinstance(decoded, DeadLetter):
        if source is not None:
            decoded = decoded.model_copy(update={"source": source})
        return Routed(None, decoded)
    return Routed(decoded.client_id.encode("utf-8"), None)


# ---- stage 2 -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One message of the by-client topic."""

    key: bytes
    value: bytes
    origin: tuple[int, int] | None  # (partition, offset) on the input topic


@dataclass
class ScoredBatch:
    """What one batch of stage 2 produced."""

    alerts: list[tuple[bytes, Alert]] = field(default_factory=list)
    risks: list[tuple[bytes, RiskRecord]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    states: dict[bytes, bytes] = field(default_factory=dict)  # client -> table value
    processed: int = 0
    skipped: int = 0

    def admit(self, item: Item, positions: Positions) -> QueryEvent | None:
        """The item's event, unless it is already folded into the state or undecodable."""
        if item.origin is not None and item.origin[1] <= positions.get(item.origin[0], -1):
            self.skipped += 1
            return None
        decoded = decode_event(item.value)
        if isinstance(decoded, DeadLetter):  # only if the by-client topic was written by others
            self.dead_letters.append(decoded)
            return None
        return decoded

    def collect(self, key: bytes, output: Alert | RiskRecord) -> None:
        """Keep one engine output under its client's key."""
        if isinstance(output, Alert):
            self.alerts.append((key, output))
        else:
            self.risks.append((key, output))


def _load(blob: bytes | None) -> tuple[Positions, ClientState | None]:
    if blob is None:
        return {}, None
    positions, raw_state = unpack_state(blob)
    return positions, ClientState.from_bytes(raw_state) if raw_state else None


class Scorer:
    """Stage 2's logic without Faust: a batch of items and a state lookup in, outputs out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def score(self, items: Sequence[Item], lookup: Callable[[bytes], bytes | None]) -> ScoredBatch:
        """Score the items not already folded into their client's state, as one micro-batch.

        The engine's vectorised batch path does the work against the table's states.
        Should it fail, the batch is scored again event by event from the table's
        states (nothing was written yet), so that one bad event only dead-letters itself.
        """
        try:
            return self._score_batch(items, lookup)
        except Exception:  # one bad event must not stop the worker
            log.exception("engine_batch_error", items=len(items))
            return self._score_each(items, lookup)

    def _score_batch(
        self, items: Sequence[Item], lookup: Callable[[bytes], bytes | None]
    ) -> ScoredBatch:
        out = ScoredBatch()
        positions_of: dict[bytes, Positions] = {}
        loaded: dict[bytes, ClientState] = {}
        states: dict[str, ClientState] = {}  # client id -> state, as the engine wants them
        key_of: dict[str, bytes] = {}
        events: list[QueryEvent] = []
        raw_of: dict[int, bytes] = {}  # id of an event -> its message, for a dead letter
        for item in items:
            if item.key not in positions_of:
                positions, state = _load(lookup(item.key))
                positions_of[item.key] = positions
                if state is not None:
                    loaded[item.key] = state
            positions = positions_of[item.key]
            decoded = out.admit(item, positions)
            if decoded is None:
                continue
            client = decoded.client_id
            if client not in key_of:
                key_of[client] = item.key
                state = loaded.get(item.key)
                if state is not None:
                    states[client] = state
            events.append(decoded)
            raw_of[id(decoded)] = item.value
            if item.origin is not None:
                positions_of[item.key] = {**positions, item.origin[0]: item.origin[1]}
            out.processed += 1
        for o in self.engine.process_batch(events, states):
            client = o.user.id if isinstance(o, Alert) else o.client_id
            # A campaign alert may name an account with no event in this batch: its own key.
            out.collect(key_of.get(client) or client.encode("utf-8"), o)
        for ev, reason in self.engine.rejected:  # scored, and a dead letter (wrong dimension)
            out.dead_letters.append(DeadLetter.of(raw_of[id(ev)], reason))
        client_of = {key: client for client, key in key_of.items()}
        for key, positions in positions_of.items():
            owner = client_of.get(key)
            st = states.get(owner) if owner is not None else loaded.get(key)
            out.states[key] = pack_state(positions, st.to_bytes() if st is not None else b"")
        return out

    def _score_each(
        self, items: Sequence[Item], lookup: Callable[[bytes], bytes | None]
    ) -> ScoredBatch:
        """Apply ``engine.step`` to each item (the fallback path)."""
        out = ScoredBatch()
        live: dict[bytes, tuple[Positions, ClientState | None]] = {}
        for item in items:
            positions, state = live[item.key] if item.key in live else _load(lookup(item.key))
            event = out.admit(item, positions)
            if event is None:
                continue
            new_state: ClientState | None
            outputs: Sequence[Alert | RiskRecord]
            try:
                new_state, outputs = self.engine.step(event, state)
                out.dead_letters.extend(
                    DeadLetter.of(item.value, reason) for _, reason in self.engine.rejected
                )
            except Exception as exc:  # one bad event must not stop the worker
                log.exception("engine_error", client_id=event.client_id, event_id=event.event_id)
                out.dead_letters.append(
                    DeadLetter.of(item.value, f"engine error: {type(exc).__name__}")
                )
                new_state = state
                outputs = []
            if item.origin is not None:
                positions = {**positions, item.origin[0]: item.origin[1]}
            live[item.key] = (positions, new_state)
            out.processed += 1
            for o in outputs:  # a campaign alert on another account goes under that account
                if isinstance(o, Alert) and o.user.id != event.client_id:
                    out.collect(o.user.id.encode("utf-8"), o)
                else:
                    out.collect(item.key, o)
        for key, (positions, state) in live.items():
            out.states[key] = pack_state(positions, state.to_bytes() if state is not None else b"")
        return out
