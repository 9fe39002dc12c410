"""The worker's two Faust agents: each decodes a batch, calls a pure function, sends.

Stage 1, *ingest*, reads the input topic (keyed by anything or nothing) and
:func:`~streams.scoring.route` s each message: an invalid one goes to the
dead-letter topic with its reason, a valid one is forwarded unchanged to the
internal *by-client* topic keyed by its ``client_id``, stamped with its input
position. This repartitioning puts all of one client's events, and its state,
on one partition.

Stage 2, *score*, reads the by-client topic in batches and hands them to
:meth:`~streams.scoring.Scorer.score` with the table's lookup. Then, in this
order: the batch's Alerts and RiskScores are sent and their delivery awaited;
the sinks are written and flushed (:class:`~streams.delivery.SinkHub`), and the
records a sink rejected for good are sent to the dead-letter topic keyed by
client and awaited; the new states are written to the table (and so to its
changelog); the events are acknowledged, and Faust commits their offsets later,
after flushing its producer. A crash at any point leaves outputs delivered at
least once and each event applied to the state exactly once (see
:mod:`streams.scoring`).

:func:`~streams.app.build_pipeline` binds the two stages to topics and the table;
the pure logic lives in :mod:`streams.scoring`, delivery in :mod:`streams.delivery`,
and the Faust workarounds in :mod:`streams.faust_compat`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from detectors.engine import Engine
from schemas.dead_letter import DeadLetter
from streams.checkpoint import Checkpoint, Overlay, encode
from streams.delivery import Rejected, SinkHub, dead_letter_record, dumps, output_records
from streams.faust_compat import header_value
from streams.metrics import Health, Metrics
from streams.scoring import (
    ARRIVAL_HEADER,
    ORIGIN_HEADER,
    Item,
    Scorer,
    origin_header,
    parse_arrival,
    parse_origin,
    route,
)

log = structlog.get_logger("clonewatch.worker")


class Checkpoints:
    """The score stage's population checkpoints, written ahead of the batch's table writes.

    ``changelog`` collects the delivery futures of the table's changelog writes
    (:func:`~streams.faust_compat.collect_changelog_sends`): they are awaited before a
    checkpoint goes out, so that the table is never behind the checkpoint before it.
    """

    def __init__(
        self, *, engine: Engine, topic: Any, head: bytes, max_bytes: int, metrics: Metrics
    ) -> None:
        self.engine = engine
        self.topic = topic
        self.head = head
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.changelog: list[Any] = []
        self.overlay = Overlay()
        self.seq = 0
        self.covers: dict[str, int] = {}  # "topic/partition" -> next by-client offset
        self._last = engine.export_population()

    def resume(self, cp: Checkpoint) -> None:
        """Continue after the checkpoint a restarted worker loaded (its population imported)."""
        self.seq = cp.seq
        self.covers = dict(cp.covers)
        self.overlay = Overlay(cp.states)
        self._last = self.engine.export_population()

    async def before_table_writes(self, states: Mapping[bytes, bytes]) -> bool:
        """Checkpoint the baseline with ``states`` if it changed since the last; say if so."""
        t0 = time.perf_counter()
        blob = self.engine.export_population()
        if blob == self._last:
            self.changelog[:] = [f for f in self.changelog if not f.done()]
            return False
        sent = list(self.changelog)
        await _delivered(sent)  # the table is not behind the previous checkpoint
        del self.changelog[: len(sent)]
        self.seq += 1
        cp = Checkpoint(self.seq, blob, dict(states), dict(self.covers))
        records = encode(cp, self.head, self.max_bytes)
        await _delivered([await self.topic.send(key=k, value=v) for k, v in records])
        self._last = blob
        self.metrics.population_checkpoints.inc()
        log.debug(
            "population_checkpoint",
            seq=self.seq,
            bytes=sum(len(v) for _, v in records),
            states=len(states),
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )
        return True


class Stages:
    """The agents' bodies and the topics, table and sinks they send to."""

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
        checkpoints: Checkpoints,
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
        self.checkpoints = checkpoints
        self.batch_max = batch_max
        self.batch_within = batch_within
        self.positions: dict[Any, int] = {}  # TP -> next offset to process

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
                where = f"{msg.topic}/{msg.partition}@{msg.offset}"
                routed = route(ev.value, received_at=arrival, source=where)
                if routed.dead_letter is not None:
                    dls.append(routed.dead_letter)
                    continue
                stamp = {
                    ARRIVAL_HEADER: repr(arrival).encode(),
                    ORIGIN_HEADER: origin_header(msg.partition, msg.offset),
                }
                sent = await self.by_client.send(
                    key=routed.client_key, value=ev.value, headers=stamp
                )
                futures.append(sent)
            futures += await self._send_dead_letters(dls)
            rejected = await self.sinks.deliver([dead_letter_record(d) for d in dls])
            await _delivered(futures)
            await self._send_rejected(rejected)
            self.health.set(last_event_at=time.time())

    async def score(self, stream: Any) -> None:
        """Stage 2: engine step per event, outputs delivered, then state written."""
        async for events in stream.take_events(self.batch_max, self.batch_within):
            t0 = time.perf_counter()
            items: list[Item] = []
            arrivals: list[float] = []
            covers = self.checkpoints.covers
            for ev in events:
                msg = ev.message
                self.positions[msg.tp] = msg.offset + 1
                covers[f"{msg.topic}/{msg.partition}"] = msg.offset + 1
                origin = parse_origin(header_value(msg.headers, ORIGIN_HEADER))
                items.append(Item(bytes(ev.key or b""), bytes(ev.value or b""), origin))
                arrival = parse_arrival(header_value(msg.headers, ARRIVAL_HEADER))
                if arrival is not None:
                    arrivals.append(arrival)
            overlay = self.checkpoints.overlay  # a restarted worker's last checkpoint
            batch = self.scorer.score(items, overlay.reader(self.table.get))
            futures: list[Any] = []
            for key, alert in batch.alerts:
                self.metrics.alerts.labels(alert.clonewatch.risk_level).inc()
                futures.append(await self.alerts.send(key=key, value=dumps(alert.to_dict())))
            for key, risk in batch.risks:
                futures.append(await self.risk.send(key=key, value=dumps(risk.to_dict())))
            self.metrics.risk_scores.inc(len(batch.risks))
            futures += await self._send_dead_letters(batch.dead_letters)
            await _delivered(futures)
            await self._send_rejected(await self.sinks.deliver(output_records(batch)))
            await self.checkpoints.before_table_writes(batch.states)
            for key, value in batch.states.items():
                self.table[key] = value
            overlay.written(batch.states)
            self.metrics.events_processed.inc(batch.processed)
            self.metrics.events_skipped.inc(batch.skipped)
            self.metrics.observe_models(self.scorer.engine.model_stats())
            now = time.time()
            for a in arrivals:
                self.metrics.latency.observe(max(0.0, now - a))
            self.metrics.batch_seconds.observe(time.perf_counter() - t0)

    async def _send_dead_letters(self, dls: Sequence[DeadLetter]) -> list[Any]:
        """Send dead letters to their topic (unkeyed); the delivery futures, to await."""
        futures: list[Any] = []
        for dl in dls:
            self.metrics.dead_letters.labels(self.metrics.dead_letter_reason(dl.reason)).inc()
            value = dumps(dl.model_dump(mode="json", exclude_none=True))
            futures.append(await self.dead_letter.send(value=value))
        return futures

    async def _send_rejected(self, rejected: Sequence[Rejected]) -> None:
        """Send records the sinks rejected for good to the dead-letter topic; await delivery."""
        futures: list[Any] = []
        for r in rejected:
            self.metrics.sink_rejected.labels(r.sink).inc()
            log.warning("sink_record_dead_lettered", sink=r.sink, reason=r.dead_letter.reason[:200])
            value = dumps(r.dead_letter.model_dump(mode="json", exclude_none=True))
            futures.append(await self.dead_letter.send(key=r.key, value=value))
        await _delivered(futures)


async def _delivered(futures: Sequence[Any]) -> None:
    """Wait until the broker has confirmed every send."""
    if futures:
        await asyncio.gather(*futures)
