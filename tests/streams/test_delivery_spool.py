"""The replay's sink guard: a sink that fails for good spools its records, never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.delivery import SPOOL_NAME, SinkSpool, SpoolingSink, spool_record
from streams.sinks import ListSink, OutputRecord, Sink, SinkError


def rec(n: int) -> OutputRecord:
    """An alert record with id a<n>."""
    return OutputRecord("alert", f"a{n}", "client-1", {"event": {"id": f"a{n}"}, "n": n})


class FailingSink(ListSink):
    """A list sink whose flushes fail from the ``fail_from``-th on, keeping what it held."""

    def __init__(self, fail_from: int = 1, fail_setup: bool = False) -> None:
        super().__init__("elasticsearch")
        self.fail_from = fail_from
        self.fail_setup = fail_setup
        self.flushes = 0

    def setup(self) -> None:
        """Fail when told to, like an unreachable server."""
        if self.fail_setup:
            raise SinkError("elasticsearch unreachable: ConnectionTimeout")

    def flush(self) -> None:
        """Deliver, or fail past the deadline with the buffer kept."""
        self.flushes += 1
        if self.flushes >= self.fail_from:
            raise SinkError("elasticsearch: 3 operations undelivered after 120s: timeout")
        super().flush()

    def close(self) -> None:
        """Flush only when something is buffered, as the search sink does."""
        try:
            if self.buffered:
                self.flush()
        finally:
            self.closed = True

    def take_undelivered(self) -> list[OutputRecord]:
        """What the failed flush kept."""
        out, self.buffered = self.buffered, []
        return out


def entries(path: Path) -> list[dict[str, object]]:
    """The spool's entries."""
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def spool(tmp_path: Path) -> SinkSpool:
    """A spool in a folder that does not exist yet."""
    return SinkSpool(tmp_path / "out" / SPOOL_NAME)


class TestSpoolingSink:
    """What the guard does while the sink works, after it fails, and when the spool fails."""

    def test_is_a_sink_and_passes_through_while_it_works(self, spool: SinkSpool) -> None:
        """A working sink gets every record and nothing is spooled (no file created)."""
        inner = ListSink("elasticsearch")
        guard = SpoolingSink(inner, spool, "http://es:9200", "default")
        assert isinstance(guard, Sink)
        guard.setup()
        guard.write([rec(1), rec(2)])
        guard.flush()
        guard.close()
        assert [r.id for r in inner.records] == ["a1", "a2"]
        assert (guard.spooled, guard.lost, guard.down) == (0, 0, None)
        assert not spool.path.exists()

    def test_failed_flush_spools_the_rest_of_the_run(self, spool: SinkSpool) -> None:
        """After one failed flush the sink gets nothing more; its records and later ones spool."""
        inner = FailingSink(fail_from=2)
        guard = SpoolingSink(inner, spool, "http://writer:pw@es:9200", "prod")
        guard.setup()
        guard.write([rec(1)])
        guard.flush()  # delivered
        guard.write([rec(2), rec(3)])
        guard.flush()  # fails: a2, a3 spooled
        guard.write([rec(4)])  # straight to the spool, no new attempt
        guard.flush()
        guard.close()
        assert [r.id for r in inner.records] == ["a1"]
        assert inner.flushes == 2
        assert guard.down is not None
        assert "undelivered" in guard.down
        got = entries(spool.path)
        assert [e["id"] for e in got] == ["a2", "a3", "a4"]
        assert guard.spooled == 3
        first = got[0]
        assert (first["sink"], first["namespace"], first["kind"]) == (
            "elasticsearch",
            "prod",
            "alert",
        )
        assert first["url"] == "http://**********@es:9200"  # never the password
        assert spool_record(first) == rec(2)

    def test_setup_failure_spools_everything(self, spool: SinkSpool) -> None:
        """A sink unreachable at setup is never flushed; every record is spooled."""
        inner = FailingSink(fail_setup=True)
        guard = SpoolingSink(inner, spool, "http://es:9200", "default")
        guard.setup()
        guard.write([rec(1), rec(2)])
        guard.flush()
        guard.close()
        assert inner.flushes == 0
        assert guard.spooled == 2
        assert "unreachable" in (guard.down or "")

    def test_failing_close_spools_the_last_buffer(self, spool: SinkSpool) -> None:
        """Records a final flush in close() could not deliver are spooled."""
        inner = FailingSink(fail_from=1)
        guard = SpoolingSink(inner, spool, "http://es:9200", "default")
        guard.write([rec(1)])
        guard.close()
        assert [e["id"] for e in entries(spool.path)] == ["a1"]

    def test_unwritable_spool_counts_lost_records(self, tmp_path: Path) -> None:
        """When the spool cannot be written the records are counted lost, with the reason."""
        blocker = tmp_path / "file"
        blocker.write_text("")
        guard = SpoolingSink(
            FailingSink(fail_setup=True), SinkSpool(blocker / SPOOL_NAME), "http://es", "default"
        )
        guard.setup()
        guard.write([rec(1), rec(2)])
        guard.close()
        assert (guard.spooled, guard.lost) == (0, 2)
        assert guard.error is not None
        assert "cannot write" in guard.error


class TestSpoolRecord:
    """Entries read back from a spool."""

    @pytest.mark.parametrize(
        "entry",
        [
            {"kind": "alert", "id": 5, "doc": {}},
            {"kind": "nope", "id": "x", "doc": {}},
            {"kind": "risk", "id": "r", "doc": []},
        ],
    )
    def test_bad_entries_are_errors(self, entry: dict[str, object]) -> None:
        """An entry without a known kind, a string id and an object doc is a ValueError."""
        with pytest.raises(ValueError, match="spool entry"):
            spool_record(entry)
