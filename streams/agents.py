"""The two thin stages of the worker, and the Faust-free logic they call.

Stage 1, *ingest*, reads the input topic (keyed by anything or nothing),
decodes and validates each message with :func:`schemas.decode_event`; an invalid
one goes to the dead-letter topic with its reason and original bytes, a valid
one is forwarded unchanged to the internal *by-client* topic keyed by its
``client_id``. This repartitioning puts all of one client's events, and its
state, on one partition.

Stage 2, *score*, reads the by-client topic in batches. For each event it loads
the client's state from the table, calls ``engine.step`` and keeps the new
state. Then, in this order: the batch's Alerts and RiskScores are sent and their
delivery awaited; the sinks are written and flushed, and the records a sink
rejected for good (``drain_rejected``, e.g. a search server's 400) are sent to
the dead-letter topic keyed by client and awaited; the new states are written
to the table (and so to its changelog); the events are acknowledged, and Faust
commits their offsets later, after flushing its producer. A crash at any point
leaves outputs delivered at least once and each event applied to the state
exactly once: stage 1 stamps each forwarded event with its position on the
*input* topic (partition, offset), a table value carries, per input partition,
the offset of the last event folded into it, and an event re-delivered after a
crash (by either stage) whose input offset is not beyond that is skipped: its
outputs were delivered before the state was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from detectors.engine import Engine
from detectors.state import ClientState
from schemas.alert import Alert, RiskRecord
from schemas.dead_letter import DeadLetter
from schemas.query import QueryEvent, decode_event
from streams.metrics import Health, Metrics
from streams.replay import dead_letter_record
from streams.sinks.base import OutputRecord, Sink, SinkError

log = structlog.get_logger("clonewatch.worker")

ARRIVAL_HEADER = "clonewatch-arrival"
ORIGIN_HEADER = "clonewatch-origin"
_HEAD = struct.Struct(">BH")  # version, number of positions
_POS = struct.Struct(">iq")  # input partition, offset
_ENVELOPE_VERSION = 2
Positions = dict[int, int]


# ---- table values ------------------------------------------------------------------------


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
    """The input position stamped on a forwarded event."""
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


# ---- pure pieces ------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Item:
    """One message of the by-client topic."""

    key: bytes
    value: bytes
    origin: tuple[int, int] | None  # (partition, offset) on the input topic


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
            if item.origin is not None:
                positions_of[item.key] = {**positions, item.origin[0]: item.origin[1]}
            out.processed += 1
        for o in self.engine.process_batch(events, states):
            client = o.user.id if isinstance(o, Alert) else o.client_id
            # A campaign alert may name an account with no event in this batch: its own key.
            out.collect(key_of.get(client) or client.encode("utf-8"), o)
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


def output_records(batch: ScoredBatch) -> list[OutputRecord]:
    """The batch's outputs as sink records with deterministic ids."""
    recs: list[OutputRecord] = []
    for key, alert in batch.alerts:
        recs.append(OutputRecord("alert", alert.event.id, key.decode(), alert.to_dict()))
    for key, risk in batch.risks:
        recs.append(OutputRecord("risk", risk.id, key.decode(), risk.to_dict()))
    recs.extend(dead_letter_record(dl) for dl in batch.dead_letters)
    return recs


def dumps(doc: dict[str, Any]) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---- sinks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record a sink refused for good (e.g. a search server's 400), bound for the dead letters."""

    sink: str
    key: bytes | None  # the client of the rejected alert or risk, when the document names one
    dead_letter: DeadLetter


def rejected_key(dl: DeadLetter) -> bytes | None:
    """The client a rejected sink document belongs to (its ``user.id``), if it names one.

    >>> rejected_key(DeadLetter.of(b'{"user": {"id": "acme"}}', "rejected"))
    b'acme'
    >>> rejected_key(DeadLetter.of(b'{"reason": "not JSON"}', "rejected")) is None
    True
    """
    if dl.raw_encoding != "utf-8" or dl.raw_truncated:
        return None
    try:
        doc = json.loads(dl.raw)
    except ValueError:
        return None
    user = doc.get("user") if isinstance(doc, dict) else None
    client = user.get("id") if isinstance(user, dict) else None
    return client.encode("utf-8") if isinstance(client, str) and client else None


def drain_rejected(sink: Sink) -> list[Rejected]:
    """Take what ``sink`` rejected for good, if it keeps such records (``drain_rejected``)."""
    drain = getattr(sink, "drain_rejected", None)
    if drain is None:
        return []
    return [
        Rejected(sink.name, rejected_key(dl), dl) for dl in drain() if isinstance(dl, DeadLetter)
    ]


class SinkHub:
    """Writes records to every sink and flushes, retrying until they succeed.

    A failing sink blocks the batch (and so the commit of its offsets): that is
    the backpressure, and it keeps delivery at-least-once. After each successful
    flush the records a sink rejected for good are drained and returned, so that
    the caller sends them to the dead-letter topic before committing.
    """

    def __init__(
        self, sinks: Sequence[Sink], metrics: Metrics, health: Health, max_backoff: float = 30.0
    ) -> None:
        self.sinks = list(sinks)
        self.metrics = metrics
        self.health = health
        self.max_backoff = max_backoff

    async def deliver(self, records: Sequence[OutputRecord]) -> list[Rejected]:
        """Deliver ``records`` to every sink (write then flush, in a thread); return rejects."""
        rejected: list[Rejected] = []
        if not self.sinks or not records:
            return rejected
        for sink in self.sinks:
            delay = 0.5
            while True:
                try:
                    await asyncio.to_thread(_write_flush, sink, records)
                except (SinkError, OSError) as exc:
                    self.metrics.sink_failures.labels(sink.name).inc()
                    self.metrics.retries.labels(f"sink:{sink.name}").inc()
                    failing = dict(self.health.sink_failing)
                    failing[sink.name] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    self.health.set(sink_failing=failing)
                    log.warning("sink_flush_failed", sink=sink.name, error=str(exc)[:200])
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                self.metrics.sink_writes.labels(sink.name).inc(len(records))
                if sink.name in self.health.sink_failing:
                    failing = dict(self.health.sink_failing)
                    failing.pop(sink.name, None)
                    self.health.set(sink_failing=failing)
                break
            # A retry writes the batch again, so a record rejected by a failed attempt may be
            # rejected twice: keep one dead letter per (sink, reason, document).
            seen: set[tuple[str, str, str]] = set()
            for r in drain_rejected(sink):
                mark = (r.sink, r.dead_letter.reason, r.dead_letter.raw)
                if mark not in seen:
                    seen.add(mark)
                    rejected.append(r)
        return rejected


def _write_flush(sink: Sink, records: Sequence[OutputRecord]) -> None:
    sink.write(records)
    sink.flush()


# ---- Faust agents -----------------------------------------------------------------------


def _header(headers: Any, name: str) -> bytes | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        if k == name:
            return bytes(v) if v is not None else None
    return None


class Stages:
    """The agents' bodies; ``create_app`` binds them to topics and the table."""

    def __init__(
        self,
        *,
        scorer: Scorer,
        metrics: Metrics,
        health: Health,
        sinks: SinkHub,
        by_client: Any,
        alerts: Any,
        risk: Any,
        dead_letter: Any,
        table: Any,
        batch_max: int,
        batch_within: float,
    ) -> None:
        self.scorer = scorer
        self.metrics = metrics
        self.health = health
        self.sinks = sinks
        self.by_client = by_client
        self.alerts = alerts
        self.risk = risk
        self.dead_letter = dead_letter
        self.table = table
        self.batch_max = batch_max
        self.batch_within = batch_within
        self.positions: dict[Any, int] = {}  # TP -> next offset to process

    async def _send_dead_letters(self, dls: Sequence[DeadLetter], futures: list[Any]) -> None:
        for dl in dls:
            self.metrics.dead_letters.labels(self.metrics.dead_letter_reason(dl.reason)).inc()
            value = dumps(dl.model_dump(mode="json", exclude_none=True))
            futures.append(await self.dead_letter.send(value=value))

    async def _send_rejected(self, rejected: Sequence[Rejected]) -> None:
        """Send records the sinks rejected for good to the dead-letter topic; await delivery."""
        futures: list[Any] = []
        for r in rejected:
            self.metrics.sink_rejected.labels(r.sink).inc()
            log.warning("sink_record_dead_lettered", sink=r.sink, reason=r.dead_letter.reason[:200])
            value = dumps(r.dead_letter.model_dump(mode="json", exclude_none=True))
            futures.append(await self.dead_letter.send(key=r.key, value=value))
        if futures:
            await asyncio.gather(*futures)

    async def ingest(self, stream: Any) -> None:
        """Stage 1: validate and repartition by client, dead-letter the rest."""
        async for events in stream.take_events(self.batch_max, self.batch_within):
            futures: list[Any] = []
            dls: list[DeadLetter] = []
            for ev in events:
                msg = ev.message
                self.metrics.events_in.inc()
                self.positions[msg.tp] = msg.offset + 1
                arrival = float(msg.timestamp) if msg.timestamp else time.time()
                routed = route(
                    ev.value,
                    received_at=arrival,
                    source=f"{msg.topic}/{msg.partition}@{msg.offset}",
                )
                if routed.dead_letter is not None:
                    dls.append(routed.dead_letter)
                    continue
                futures.append(
                    await self.by_client.send(
                        key=routed.client_key,
                        value=ev.value,
                        headers={
                            ARRIVAL_HEADER: repr(arrival).encode(),
                            ORIGIN_HEADER: origin_header(msg.partition, msg.offset),
                        },
                    )
                )
            await self._send_dead_letters(dls, futures)
            rejected = await self.sinks.deliver([dead_letter_record(d) for d in dls])
            if futures:
                await asyncio.gather(*futures)
            await self._send_rejected(rejected)
            self.health.set(last_event_at=time.time())

    async def score(self, stream: Any) -> None:
        """Stage 2: engine step per event, outputs delivered, then state written."""
        async for events in stream.take_events(self.batch_max, self.batch_within):
            t0 = time.perf_counter()
            items: list[Item] = []
            arrivals: list[float] = []
            for ev in events:
                msg = ev.message
                self.positions[msg.tp] = msg.offset + 1
                origin = parse_origin(_header(msg.headers, ORIGIN_HEADER))
                items.append(Item(bytes(ev.key or b""), bytes(ev.value or b""), origin))
                hdr = _header(msg.headers, ARRIVAL_HEADER)
                if hdr is not None:
                    with contextlib.suppress(ValueError):
                        arrivals.append(float(hdr))
            batch = self.scorer.score(items, self.table.get)
            futures: list[Any] = []
            for key, alert in batch.alerts:
                self.metrics.alerts.labels(alert.clonewatch.risk_level).inc()
                futures.append(await self.alerts.send(key=key, value=dumps(alert.to_dict())))
            for key, risk in batch.risks:
                futures.append(await self.risk.send(key=key, value=dumps(risk.to_dict())))
            self.metrics.risk_scores.inc(len(batch.risks))
            await self._send_dead_letters(batch.dead_letters, futures)
            if futures:
                await asyncio.gather(*futures)
            await self._send_rejected(await self.sinks.deliver(output_records(batch)))
            for key, value in batch.states.items():
                self.table[key] = value
            self.metrics.events_processed.inc(batch.processed)
            self.metrics.events_skipped.inc(batch.skipped)
            now = time.time()
            for a in arrivals:
                self.metrics.latency.observe(max(0.0, now - a))
            self.metrics.batch_seconds.observe(time.perf_counter() - t0)
