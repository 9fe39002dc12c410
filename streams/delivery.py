"""Delivery of the worker's and the replay's outputs: sink records, the sink hub, rejects.

:func:`to_record` and :func:`dead_letter_record` turn engine outputs and dead
letters into :class:`~streams.sinks.base.OutputRecord` with deterministic ids
(the replay and the worker build the same ones); :func:`output_records` does it
for a scored batch. :class:`SinkHub` writes records to every sink and flushes,
retrying until each succeeds, and returns what a sink refused for good
(:class:`Rejected`), which the caller sends to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from detectors.outputs import Output, digest
from schemas.alert import Alert
from schemas.dead_letter import DeadLetter
from streams.sinks.base import OutputRecord, RecordKind, Sink, SinkError

if TYPE_CHECKING:  # the replay builds records without loading the metrics registry
    from streams.metrics import Health, Metrics
    from streams.scoring import ScoredBatch

log = structlog.get_logger("clonewatch.worker")


# ---- records ------------------------------------------------------------------------------


def to_record(out: Output, doc: dict[str, Any] | None = None) -> OutputRecord:
    """The sink record of an engine output (``doc``: its wire form, if already built)."""
    doc = out.to_dict() if doc is None else doc
    kind: RecordKind = "alert" if isinstance(out, Alert) else "risk"
    return OutputRecord(kind=kind, id=doc["event"]["id"], key=doc["user"]["id"], doc=doc)


def dead_letter_record(dl: DeadLetter) -> OutputRecord:
    """The sink record of a dead letter (id: hash of its bytes and reason)."""
    doc = dl.model_dump(mode="json", exclude_none=True)
    return OutputRecord(kind="dead_letter", id=digest("dl", dl.raw, dl.reason), key="", doc=doc)


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
    """Compact JSON bytes (the value of an output message).

    >>> dumps({"a": 1, "b": "é"})
    b'{"a":1,"b":"\\xc3\\xa9"}'
    """
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---- rejects ------------------------------------------------------------------------------


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


# ---- the hub ------------------------------------------------------------------------------


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
