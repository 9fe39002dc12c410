"""An in-memory sink: the records it delivers are kept in a list, for tests and dry runs.

:class:`ListSink` follows the :class:`~streams.sinks.base.Sink` contract with no product
behind it: ``write`` buffers, ``flush`` moves the buffer to :attr:`ListSink.records` (in
order, repeats included, as an at-least-once destination receives them), ``close`` flushes.
A test that needs a sink which refuses or fails subclasses it and overrides ``flush``.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.sinks.base import OutputRecord, SinkError


class ListSink:
    """A sink that keeps every delivered record in :attr:`records`.

    >>> from streams.sinks import ListSink, OutputRecord, Sink
    >>> sink = ListSink()
    >>> isinstance(sink, Sink)
    True
    >>> sink.setup()
    >>> sink.write([OutputRecord("alert", "a1", "client-7", {"user": {"id": "client-7"}})])
    >>> len(sink.buffered), len(sink.records)
    (1, 0)
    >>> sink.flush()
    >>> [(r.kind, r.id) for r in sink.records], sink.buffered
    ([('alert', 'a1')], [])
    >>> sink.close()
    >>> sink.write([OutputRecord("risk", "r1", "client-7", {})])
    Traceback (most recent call last):
    ...
    streams.sinks.base.SinkError: sink 'list' is closed
    """

    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.records: list[OutputRecord] = []
        """Every record delivered by a ``flush``, in delivery order."""
        self.buffered: list[OutputRecord] = []
        """Records written since the last ``flush``."""
        self.closed = False

    def setup(self) -> None:
        """Nothing to connect to."""

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Buffer the records (refused with :class:`SinkError` once the sink is closed)."""
        if self.closed:
            raise SinkError(f"sink {self.name!r} is closed")
        self.buffered.extend(records)

    def flush(self) -> None:
        """Deliver the buffered records to :attr:`records`."""
        self.records.extend(self.buffered)
        self.buffered.clear()

    def close(self) -> None:
        """Deliver what is buffered; later writes are refused."""
        self.flush()
        self.closed = True
