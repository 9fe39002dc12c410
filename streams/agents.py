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
from collections.abc import Sequence
from typing import Any

import structlog

from schemas.dead_letter import DeadLetter
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
            for ev in events:
                msg = ev.message
                self.positions[msg.tp] = msg.offset + 1
                origin = parse_origin(header_value(msg.headers, ORIGIN_HEADER))
                items.append(Item(bytes(ev.key or b""), bytes(ev.value or b""), origin))
                arrival = parse_arrival(header_value(msg.headers, ARRIVAL_HEADER))
                if arrival is not None:
                    arrivals.append(arrival)
            batch = self.scorer.score(items, self.table.get)
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
            for key, value in batch.states.items():
                self.table[key] = value
            self.metrics.events_processed.inc(batch.processed)
            self.metrics.events_skipped.inc(batch.skipped)
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
