"""Bulk operations from output records, and the classification of per-item results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from schemas.alert import ClonewatchContext
from streams.sinks.base import OutputRecord
from streams.sinks.search.layout import IndexNames, latest_risk_id, parse_timestamp


class ItemOutcome(Enum):
    """What to do with one bulk item result."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    REJECTED = "rejected"


def classify_item(op_type: str, status: int) -> ItemOutcome:
    """Classify one bulk item: 2xx written, 409 on create already there, 429/5xx retried.

    >>> [classify_item(*c).value for c in (("create", 409), ("index", 503), ("index", 400))]
    ['duplicate', 'retry', 'rejected']
    """
    if 200 <= status < 300:
        return ItemOutcome.WRITTEN
    if status == 409:
        # create: the same _id is already there, which is what a replay means.
        # update/index: a concurrent version conflict, worth another try.
        return ItemOutcome.DUPLICATE if op_type == "create" else ItemOutcome.RETRY
    if status in (408, 429) or status >= 500:
        return ItemOutcome.RETRY
    return ItemOutcome.REJECTED


def retryable_status(status: int) -> bool:
    """Whether a whole-request HTTP status is worth retrying."""
    return status in (408, 429) or status >= 500


@dataclass(slots=True)
class BulkOp:
    """One bulk operation derived from a record."""

    record_index: int
    op_type: Literal["create", "index", "update"]
    index: str
    doc_id: str
    source: dict[str, Any]

    def lines(self) -> list[dict[str, Any]]:
        """The action line and its source line."""
        meta: dict[str, Any] = {"_index": self.index, "_id": self.doc_id}
        if self.op_type == "update":
            meta["retry_on_conflict"] = 3
        return [{self.op_type: meta}, self.source]


class LocalRejectError(Exception):
    """A record that cannot become a bulk operation (sent to the dead letter)."""


_OPTIONAL_CONTEXT_FIELDS = tuple(
    name for name, info in ClonewatchContext.model_fields.items() if not info.is_required()
)


def latest_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The latest-risk document: optional context fields explicitly null.

    An upsert merges objects, so a campaign that ended must be cleared, not kept.
    """
    out = dict(doc)
    context = dict(out.get("clonewatch") or {})
    for name in _OPTIONAL_CONTEXT_FIELDS:
        context.setdefault(name, None)
    out["clonewatch"] = context
    return out


def operations_for(
    record: OutputRecord, record_index: int, names: IndexNames, data_streams: bool
) -> list[BulkOp]:
    """The bulk operations that deliver one record (a risk record makes two)."""
    doc = record.doc
    if record.kind == "dead_letter":
        return [BulkOp(record_index, "index", names.dead_letter, record.id, dict(doc))]
    base = names.alert if record.kind == "alert" else names.risk_history
    try:
        when = parse_timestamp(doc.get("@timestamp"))
    except (TypeError, ValueError) as exc:
        raise LocalRejectError(f"{record.kind} {record.id}: bad @timestamp: {exc}") from exc
    target = base if data_streams else IndexNames.dated(base, when)
    ops = [BulkOp(record_index, "create", target, record.id, dict(doc))]
    if record.kind == "risk":
        user = doc.get("user") or {}
        context = doc.get("clonewatch") or {}
        client, model = user.get("id"), context.get("model_id")
        if not isinstance(client, str) or not isinstance(model, str):
            raise LocalRejectError(
                f"risk {record.id}: user.id and clonewatch.model_id are required"
            )
        ops.append(
            BulkOp(
                record_index,
                "update",
                names.risk_latest,
                latest_risk_id(client, model),
                {"doc": latest_doc(doc), "doc_as_upsert": True},
            )
        )
    return ops


def keep_newest_latest(ops: Sequence[BulkOp]) -> list[BulkOp]:
    """Drop latest-risk upserts superseded by a newer one of the same _id in the same batch."""
    newest: dict[str, tuple[datetime, int]] = {}
    for pos, op in enumerate(ops):
        if op.op_type != "update":
            continue
        when = parse_timestamp(op.source["doc"].get("@timestamp"))
        best = newest.get(op.doc_id)
        if best is None or when >= best[0]:
            newest[op.doc_id] = (when, pos)
    keep = {pos for _, pos in newest.values()}
    return [op for pos, op in enumerate(ops) if op.op_type != "update" or pos in keep]
