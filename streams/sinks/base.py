"""The sink contract shared by every destination.

A sink is small: ``setup()`` creates its client and checks the connection,
``write(records)`` buffers (and may flush when its bounded buffer is full, which
is the backpressure: the caller waits), ``flush()`` delivers everything buffered
or raises :class:`SinkError`, and ``close()`` releases resources. The caller
commits its input position only after ``flush()`` returned, so delivery is
at-least-once; every record carries a deterministic ``id`` so that a repeat
overwrites instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

RecordKind = Literal["alert", "risk", "dead_letter"]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to deliver: its kind, deterministic id, partition key and wire document."""

    kind: RecordKind
    id: str
    key: str
    doc: dict[str, Any]


class SinkError(Exception):
    """Raised by ``flush`` when some records could not be delivered (nothing is committed)."""


@runtime_checkable
class Sink(Protocol):
    """A destination for output records."""

    name: str

    def setup(self) -> None:
        """Create clients, check the connection, create what must exist."""

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Buffer records; may block to flush when the buffer is full."""

    def flush(self) -> None:
        """Deliver every buffered record or raise SinkError."""

    def close(self) -> None:
        """Flush what can be flushed and release resources."""
