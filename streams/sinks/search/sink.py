"""The search sink: a bounded buffer, the bulk retry loop, outcomes and dead letters."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from schemas.dead_letter import DeadLetter
from streams.sinks.base import OutputRecord, Sink, SinkError
from streams.sinks.search.backend import (
    BulkHttpError,
    Product,
    SearchBackend,
    SearchUnavailableError,
    error_reason,
)
from streams.sinks.search.bulk import (
    BulkOp,
    ItemOutcome,
    LocalRejectError,
    classify_item,
    keep_newest_latest,
    operations_for,
    retryable_status,
)
from streams.sinks.search.install import detect_features, install
from streams.sinks.search.layout import Features, IndexNames
from streams.sinks.search.settings import SearchSettings

# Dead letters kept for drain_rejected(); beyond this the oldest are dropped (and counted).
MAX_REJECTED = 10_000

log = structlog.get_logger(__name__)


def _doc_size(doc: Mapping[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":"), default=str))


class SearchSink:
    """A bulk-indexing sink for Elasticsearch or OpenSearch (the Sink protocol).

    ``write`` buffers up to ``max_records`` records / ``max_bytes`` bytes and flushes
    synchronously when the buffer is full (backpressure) or its oldest record is
    older than ``max_age`` seconds (checked on every ``write`` and by
    :meth:`maybe_flush`). ``flush`` retries connection failures, 429 and 5xx with
    exponential backoff until ``flush_deadline`` seconds have passed, then raises
    SinkError and keeps the undelivered records. Items rejected for good (400 and
    other 4xx) become :class:`DeadLetter` records, taken with :meth:`drain_rejected`
    (at most ``MAX_REJECTED`` are kept undrained; ``rejected_dropped`` counts the rest).
    """

    def __init__(
        self,
        product: Product,
        backend_factory: Callable[[], SearchBackend],
        settings: SearchSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name: str = product
        self.product = product
        self.settings = settings
        self.names = IndexNames(settings.namespace)
        self._backend_factory = backend_factory
        self._backend: SearchBackend | None = None
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._buffer: list[OutputRecord] = []
        self._buffer_bytes = 0
        self._oldest: float | None = None
        self._rejected: list[DeadLetter] = []
        self.features: Features | None = None
        self.data_streams: bool | None = None
        self.setup_actions: list[tuple[str, str]] = []
        self.rejected_dropped = 0
        self.counts: dict[str, int] = {o.value: 0 for o in ItemOutcome}
        self._log = log.bind(sink=product, namespace=settings.namespace)

    # -- lifecycle

    def setup(self) -> None:
        """Connect, detect the cluster's features, install templates if managed."""
        backend = self._ensure_backend()
        try:
            self.features = detect_features(backend)
        except SearchUnavailableError as exc:
            raise SinkError(f"{self.product} unreachable: {exc}") from exc
        mode = self.settings.index_mode
        if mode == "auto":
            self.data_streams = self.features.data_streams
        else:
            self.data_streams = mode == "data_stream"
        features = replace(self.features, data_streams=self.data_streams)
        if self.settings.manage_templates:
            try:
                self.setup_actions = install(backend, features, self.names, self.settings.retention)
            except SearchUnavailableError as exc:
                raise SinkError(f"{self.product} unreachable: {exc}") from exc
            self._log.info("search_setup", actions=len(self.setup_actions))
        self._log.info(
            "search_sink_ready",
            version=self.features.version,
            data_streams=self.data_streams,
            lifecycle=self.features.lifecycle,
        )

    def _ensure_backend(self) -> SearchBackend:
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def close(self) -> None:
        """Flush what is buffered, then release the client (re-raising a flush failure)."""
        try:
            if self._buffer:
                self.flush()
        finally:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    # -- buffering

    @property
    def buffered(self) -> int:
        """Records waiting in the buffer."""
        return len(self._buffer)

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Buffer records, flushing synchronously whenever the buffer is full or old.

        A flush that fails raises SinkError with every record of this call that was not
        delivered still buffered (those after the full buffer too): :meth:`take_undelivered`
        then has each of them.
        """
        for pos, record in enumerate(records):
            self._append(record)
            if (
                len(self._buffer) >= self.settings.max_records
                or self._buffer_bytes >= self.settings.max_bytes
            ):
                try:
                    self.flush()
                except SinkError:
                    for rest in records[pos + 1 :]:
                        self._append(rest)
                    raise
        self.maybe_flush()

    def _append(self, record: OutputRecord) -> None:
        self._buffer.append(record)
        self._buffer_bytes += _doc_size(record.doc)
        if self._oldest is None:
            self._oldest = self._clock()

    def take_undelivered(self) -> list[OutputRecord]:
        """Take every buffered record (after a failed flush: those not delivered), emptying it."""
        out, self._buffer = self._buffer, []
        self._buffer_bytes = 0
        self._oldest = None
        return out

    def maybe_flush(self) -> bool:
        """Flush if the oldest buffered record is older than ``max_age``; True if it did."""
        if self._oldest is None or self._clock() - self._oldest < self.settings.max_age:
            return False
        self.flush()
        return True

    def drain_rejected(self) -> list[DeadLetter]:
        """Take the dead letters of items the server rejected for good (400 and other 4xx)."""
        out, self._rejected = self._rejected, []
        return out

    # -- delivery

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.max_backoff, self.settings.initial_backoff * float(2**attempt))
        return float(ceiling * self._rng.uniform(0.5, 1.0))

    def _reject(self, record: OutputRecord, index: str, reason: str) -> None:
        self.counts[ItemOutcome.REJECTED.value] += 1
        self._log.warning(
            "search_item_rejected",
            kind=record.kind,
            record_id=record.id,
            index=index,
            reason=reason.split(":", 1)[0],
        )
        raw = json.dumps(record.doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(self._rejected) >= MAX_REJECTED:
            self._rejected.pop(0)
            self.rejected_dropped += 1
            self._log.error("search_dead_letters_dropped", dropped=self.rejected_dropped)
        self._rejected.append(
            DeadLetter.of(
                raw,
                f"{self.product} rejected {record.kind} {record.id} for {index}: {reason}",
                source=f"sink:{self.product}",
            )
        )

    def flush(self) -> None:
        """Deliver every buffered record or raise SinkError (keeping what was not delivered)."""
        if not self._buffer:
            return
        if self.data_streams is None:
            self.setup()
        assert self.data_streams is not None  # noqa: S101 - set by setup()
        records = self._buffer
        ops: list[BulkOp] = []
        for pos, record in enumerate(records):
            try:
                ops.extend(operations_for(record, pos, self.names, self.data_streams))
            except LocalRejectError as exc:
                self._reject(record, "-", str(exc))
        pending = keep_newest_latest(ops)
        backend = self._ensure_backend()
        deadline = self._clock() + self.settings.flush_deadline
        attempt = 0
        while pending:
            failure: str
            try:
                answer = backend.bulk(
                    [line for op in pending for line in op.lines()], self.settings.refresh
                )
            except SearchUnavailableError as exc:
                failure = f"unreachable: {exc}"
            except BulkHttpError as exc:
                if not retryable_status(exc.status):
                    self._keep_unresolved(records, pending)
                    raise SinkError(f"{self.product} bulk failed: {exc}") from exc
                failure = str(exc)
            else:
                pending = self._handle_items(records, pending, answer)
                if not pending:
                    break
                failure = f"{len(pending)} items to retry"
            delay = self._backoff(attempt)
            if self._clock() + delay > deadline:
                self._keep_unresolved(records, pending)
                raise SinkError(
                    f"{self.product}: {len(pending)} operations undelivered after "
                    f"{self.settings.flush_deadline:g}s: {failure}"
                )
            self._log.warning(
                "search_flush_retry",
                attempt=attempt + 1,
                delay=round(delay, 3),
                pending=len(pending),
                failure=failure,
            )
            self._sleep(delay)
            attempt += 1
        self._buffer = []
        self._buffer_bytes = 0
        self._oldest = None

    def _keep_unresolved(self, records: list[OutputRecord], pending: Sequence[BulkOp]) -> None:
        keep = sorted({op.record_index for op in pending})
        self._buffer = [records[i] for i in keep]
        self._buffer_bytes = sum(_doc_size(r.doc) for r in self._buffer)

    def _handle_items(
        self, records: list[OutputRecord], sent: list[BulkOp], answer: Mapping[str, Any]
    ) -> list[BulkOp]:
        items = answer.get("items")
        if not isinstance(items, list) or len(items) != len(sent):
            raise SinkError(f"{self.product}: bulk answer has no item per operation")
        retry: list[BulkOp] = []
        for op, item in zip(sent, items, strict=True):
            result = next(iter(item.values())) if isinstance(item, Mapping) and item else {}
            status = int(result.get("status", 500))
            outcome = classify_item(op.op_type, status)
            if outcome is ItemOutcome.RETRY:
                retry.append(op)
            elif outcome is ItemOutcome.REJECTED:
                self._reject(records[op.record_index], op.index, error_reason(result))
            else:
                self.counts[outcome.value] += 1
        return retry


def _check_protocol(sink: SearchSink) -> Sink:
    return sink  # mypy checks that SearchSink satisfies the Sink protocol
