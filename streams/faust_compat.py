"""Where the worker works around Faust (faust-streaming 0.15 with aiokafka 0.14).

Each function here exists because Faust does something the worker cannot live
with; its docstring says what Faust does and why we work around it, so that a
Faust upgrade can check each one and delete it when it is no longer needed.
Faust objects are ``Any`` here (Faust is untyped) and this module never imports
``faust`` itself: it patches the objects it is handed.
"""

from __future__ import annotations

import asyncio
from typing import Any


def header_value(headers: Any, name: str) -> bytes | None:
    """The value of header ``name`` of a received message, whichever shape Faust gave.

    What Faust does: ``Message.headers`` is typed ``HeadersArg``, a mapping *or* a
    sequence of ``(name, value)`` pairs. Records from Kafka arrive as aiokafka's
    list of pairs (values may be None), while a message Faust builds itself (an
    agent sending to a topic it also reads, in-memory tests) keeps the dict that
    was passed to ``Topic.send(headers=...)``. Why we work around it: the stages
    read their two headers from either shape, and always get ``bytes``.

    >>> header_value([("a", b"1"), ("b", None)], "a"), header_value({"a": b"1"}, "b")
    (b'1', None)
    >>> header_value(None, "a") is None
    True
    """
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        if k == name:
            return bytes(v) if v is not None else None
    return None


def gate_stream_fetches(app: Any) -> None:
    """Fetch no record of a stream partition until the tables are recovered.

    What Faust does: it drops records of stream partitions that arrive while a
    rebalance or a table recovery is under way, counting on a seek back to the
    committed offsets to fetch them again. Two paths slip past that seek:

    * Faust hands aiokafka its live set of active partitions. A fetch that starts while
      only the changelog is active and returns after recovery has paused it (the set is
      momentarily empty, which aiokafka reads as "every partition") or resumed the streams
      drains the stream partitions too and advances the consumer's position past records
      that Faust then filters out, or delivers into the agents' queues;
    * at the end of recovery Faust resumes the stream partitions, seeks to the committed
      offsets, and only then resumes flow control, which clears the agents' queues: records
      fetched in between are discarded after the seek.

    Why we work around it: aiokafka does not move a partition without a committed
    offset (or with 0 committed), so nothing brings such records back: the worker
    idles with its position at the high water while they were never processed (the
    restart hang of test_stream_crash.py, also faust-streaming issue #596). Here each
    fetch gets a frozen copy of the active partitions, without the non-changelog ones
    until the tables report ready (``actives_ready``, set after that last queue
    clear): a stream partition is then only drained once its records can reach the
    agents, from the position the recovery left.
    """
    new_consumer = app._new_consumer

    def gated_consumer() -> Any:
        consumer = new_consumer()
        getmany = consumer._getmany

        # Faust calls _getmany(active_partitions=..., timeout=...) by keyword, hence the name.
        async def _getmany(active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            if active_partitions is None:  # client-only apps fetch everything
                return await getmany(active_partitions=None, timeout=timeout)
            ready = app.tables.actives_ready
            changelogs = app.tables.changelog_topics
            tps = frozenset(tp for tp in active_partitions if ready or tp.topic in changelogs)
            if not tps:  # an empty set would make aiokafka return every partition
                await asyncio.sleep(min(timeout, 0.05))
                return {}
            return await getmany(active_partitions=tps, timeout=timeout)

        consumer._getmany = _getmany
        return consumer

    app._new_consumer = gated_consumer


def collect_changelog_sends(table: Any, futures: list[Any]) -> None:
    """Append the delivery future of each of ``table``'s changelog writes to ``futures``.

    What Faust does: ``table[key] = value`` sends the changelog record "soon" (through
    its producer buffer) and keeps the future to itself; only a commit, which flushes
    the producer first, tells that the writes were delivered. Why we work around it: a
    population checkpoint must never be ahead of the table writes of the batches before
    it (``streams.agents.Checkpoints`` awaits these futures before writing one), and the
    only handle on a write is the future ``Table.send_changelog`` returns.
    """
    send = table.send_changelog

    def send_changelog(*args: Any, **kwargs: Any) -> Any:
        fut = send(*args, **kwargs)
        futures.append(fut)
        return fut

    table.send_changelog = send_changelog
