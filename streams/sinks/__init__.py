"""Destinations for alerts, risk scores and dead letters."""

from streams.sinks.base import OutputRecord, RecordKind, Sink, SinkError
from streams.sinks.memory import ListSink

__all__ = ["ListSink", "OutputRecord", "RecordKind", "Sink", "SinkError"]
