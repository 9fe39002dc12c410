"""Destinations for alerts, risk scores and dead letters."""

from streams.sinks.base import OutputRecord, RecordKind, Sink, SinkError

__all__ = ["OutputRecord", "RecordKind", "Sink", "SinkError"]
