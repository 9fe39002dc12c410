"""Delivery of the worker's and the replay's outputs: sink records, the sink hub, rejects.

:func:`to_record` and :func:`dead_letter_record` turn engine outputs and dead
letters into :class:`~streams.sinks.base.OutputRecord` with deterministic ids
(the replay and the worker build the same ones); :func:`output_records` does it
for a scored batch. :class:`SinkHub` writes records to every sink and flushes,
retrying until each succeeds, and returns what a sink refused for good
(:class:`Rejected`), which the caller sends to the dead-letter topic.

The replay has no topic to read again, so it wraps each remote sink in a
:class:`SpoolingSink`: a sink that fails for good (unreachable at setup, or a flush
past its deadline) gets nothing more in this run, and every record it did not deliver
goes to a :class:`SinkSpool` (JSONL) that ``clonewatch redeliver`` sends later; the
local outputs never wait on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from detectors.outputs import Output, digest
from schemas.alert import Alert
from schemas.dead_letter import DeadLetter
from streams.redact import redact, redact_url
from streams.sinks.base import OutputRecord, RecordKind, Sink, SinkError
from streams.sinks.http_delivery import DeadLetterFile, utc_now_iso

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


# ---- the replay's spool -------------------------------------------------------------------

SPOOL_NAME = "clonewatch-sink-spool.jsonl"


class SinkSpool:
    """The JSONL file of search documents a sink did not deliver, for ``clonewatch redeliver``.

    One entry a line: the sink (``elasticsearch`` or ``opensearch``), its URL without
    credentials, the namespace, the record (``kind``, ``id``, ``key``, ``doc``), the
    failure and when. Appends are locked and fsynced (:class:`DeadLetterFile`); the file
    is created on the first entry only. Resending is idempotent: the ids are deterministic.
    """

    def __init__(self, path: str | Path) -> None:
        self.file = DeadLetterFile(path)

    @property
    def path(self) -> Path:
        """The spool file."""
        return self.file.path

    def append(
        self, sink: str, url: str, namespace: str, records: Sequence[OutputRecord], error: str
    ) -> None:
        """Append ``records`` as entries of ``sink`` (raises OSError when it cannot)."""
        when = utc_now_iso()
        self.file.append(
            [
                {
                    "sink": sink,
                    "url": redact_url(url),
                    "namespace": namespace,
                    "kind": r.kind,
                    "id": r.id,
                    "key": r.key,
                    "doc": r.doc,
                    "error": error,
                    "spooled_at": when,
                }
                for r in records
            ]
        )


def spool_record(entry: dict[str, Any]) -> OutputRecord:
    """The record of one spool entry (ValueError when the entry is not one).

    >>> spool_record({"kind": "alert", "id": "a1", "key": "c", "doc": {"x": 1}}).id
    'a1'
    """
    kind, rid, doc = entry.get("kind"), entry.get("id"), entry.get("doc")
    if kind not in ("alert", "risk", "dead_letter") or not isinstance(rid, str):
        raise ValueError("a spool entry needs kind alert, risk or dead_letter and a string id")
    if not isinstance(doc, dict):
        raise ValueError(f"spool entry {rid}: doc is not an object")
    return OutputRecord(kind=kind, id=rid, key=str(entry.get("key") or ""), doc=doc)


class SpoolingSink:
    """A sink that never raises: once its sink fails for good, records go to the spool.

    ``setup``, ``write``, ``flush`` and ``close`` pass through until the sink raises
    SinkError or OSError (the search sink does so when unreachable at setup or when a
    flush outlives its deadline). From then on the sink is down for the rest of the run:
    what it held undelivered and every later record are appended to ``spool``, so the
    caller's local outputs never wait on a hung server more than once. ``spooled``
    counts the records in the spool, ``lost`` those the spool itself could not take
    (with ``error`` saying why); both are 0 while the sink works.
    """

    def __init__(self, sink: Sink, spool: SinkSpool, url: str, namespace: str) -> None:
        self.sink = sink
        self.name: str = sink.name
        self.spool = spool
        self.url = url
        self.namespace = namespace
        self.down: str | None = None  # why the sink was given up, once it was
        self.spooled = 0
        self.lost = 0
        self.error: str | None = None

    def setup(self) -> None:
        """Set the sink up; a failure marks it down (nothing to spool yet)."""
        self._guard(self.sink.setup)

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Write to the sink, or to the spool once it is down."""
        if self.down is not None:
            self._spool(records)
        elif records:
            self._guard(lambda: self.sink.write(records))

    def flush(self) -> None:
        """Flush the sink unless it is down."""
        if self.down is None:
            self._guard(self.sink.flush)

    def close(self) -> None:
        """Flush and release the sink (what a final flush did not deliver is spooled)."""
        if self.down is not None:
            self._spool(self._take_undelivered())  # nothing for close() to flush
        try:
            self.sink.close()
        except (SinkError, OSError) as exc:
            self._give_up(exc)
        finally:
            self._spool(self._take_undelivered())

    def drain_rejected(self) -> list[DeadLetter]:
        """The sink's dead letters of documents the server refused for good."""
        return [r.dead_letter for r in drain_rejected(self.sink)]

    def _guard(self, step: Any) -> None:
        try:
            step()
        except (SinkError, OSError) as exc:
            self._give_up(exc)
            self._spool(self._take_undelivered())

    def _give_up(self, exc: BaseException) -> None:
        if self.down is None:
            self.down = redact(f"{type(exc).__name__}: {exc}")[:500]
            log.warning(
                "sink_down_spooling",
                sink=self.name,
                reason=self.down,
                spool=str(self.spool.path),
            )

    def _take_undelivered(self) -> list[OutputRecord]:
        take = getattr(self.sink, "take_undelivered", None)
        return list(take()) if take is not None else []

    def _spool(self, records: Sequence[OutputRecord]) -> None:
        if not records:
            return
        try:
            self.spool.append(self.name, self.url, self.namespace, records, self.down or "")
        except OSError as exc:
            failure = f"cannot write {self.spool.path}: {exc.strerror or exc}"
        else:
            self.spooled += len(records)
            return
        self.lost += len(records)
        if self.error is None:
            self.error = failure
            log.error("sink_spool_failed", sink=self.name, error=failure)


def _check_spooling(sink: SpoolingSink) -> Sink:
    return sink  # mypy checks that SpoolingSink satisfies the Sink protocol
