"""The one log reader: input forms, gzip by magic, the line cap applied while reading."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import IO

import pytest

from clonewatch.cli import main
from clonewatch.commands.produce import messages
from clonewatch.evaluate import read_alerts
from clonewatch.report import ReportInputError, load_jsonl
from schemas.dead_letter import DeadLetter
from streams.logread import (
    HEAD_BYTES,
    MAX_LINE_BYTES,
    LogReader,
    MalformedLogError,
    OversizeLine,
    UnreadableInputError,
    read_log,
    read_objects,
)
from streams.replay import replay_path
from streams.sinks.http_delivery import DeadLetterFile

LINES = b'{"a":1}\n\n{"b":2}\r\n   \n{"c":3}'  # blank lines, CRLF, no final newline
EXPECTED = [(1, b'{"a":1}'), (3, b'{"b":2}'), (5, b'{"c":3}')]

# Reads a log given as argv[1] from stdin or a path and prints its numbered lines as JSON.
PRINT_LINES = textwrap.dedent(
    """
    import json, sys
    from streams.logread import OversizeLine, read_log
    out = []
    for number, line in read_log(sys.argv[1]):
        out.append([number, line.size if isinstance(line, OversizeLine) else line.decode()])
    print(json.dumps(out))
    """
)


def _run_reader(arg: str, stdin: bytes | None = None) -> list[list[object]]:
    proc = subprocess.run(
        [sys.executable, "-c", PRINT_LINES, arg], input=stdin, capture_output=True, check=True
    )
    lines: list[list[object]] = json.loads(proc.stdout)
    return lines


def _feed(target: str | IO[bytes], data: bytes, chunk: int = 1 << 16) -> threading.Thread:
    """Write ``data`` to a FIFO path or an open pipe from a thread, ``chunk`` bytes at a time."""

    def write() -> None:
        out = Path(target).open("wb", buffering=0) if isinstance(target, str) else target  # noqa: SIM115
        with out:
            for at in range(0, len(data), chunk):
                out.write(data[at : at + chunk])

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _text_lines(got: list[list[object]]) -> list[tuple[int, bytes]]:
    return [(int(str(n)), str(s).encode()) for n, s in got]


class TestPlainFiles:
    """A plain JSONL file."""

    def test_lines_are_numbered_as_in_the_file_and_blank_ones_skipped(self, tmp_path: Path) -> None:
        """Blank lines are skipped, CRLF endings removed, numbers stay physical."""
        path = tmp_path / "log.jsonl"
        path.write_bytes(LINES)
        with LogReader(path) as reader:
            assert list(reader) == EXPECTED
        assert (reader.lines, reader.records, reader.oversize) == (5, 3, 0)

    def test_a_missing_file_or_a_directory_is_unreadable(self, tmp_path: Path) -> None:
        """Opening fails with a message naming the path, not a traceback."""
        with pytest.raises(UnreadableInputError, match=r"cannot read .*nope\.jsonl"):
            LogReader(tmp_path / "nope.jsonl")
        with pytest.raises(UnreadableInputError, match="cannot read"):
            LogReader(tmp_path)

    def test_an_empty_file_has_no_lines(self, tmp_path: Path) -> None:
        """An empty log yields nothing and counts nothing."""
        path = tmp_path / "empty.jsonl"
        path.write_bytes(b"")
        assert list(read_log(path)) == []


class TestGzip:
    """Gzip is recognised by its magic bytes, wherever the bytes come from."""

    def test_gzip_by_magic_not_by_suffix(self, tmp_path: Path) -> None:
        """A gzip file named .jsonl is decompressed; a plain file named .gz is read as text."""
        packed, plain = tmp_path / "packed.jsonl", tmp_path / "plain.jsonl.gz"
        packed.write_bytes(gzip.compress(LINES))
        plain.write_bytes(LINES)
        assert list(read_log(packed)) == EXPECTED
        assert list(read_log(plain)) == EXPECTED

    def test_gzip_on_standard_input(self) -> None:
        """``-`` reads a gzip stream piped to standard input."""
        assert _text_lines(_run_reader("-", gzip.compress(LINES))) == EXPECTED

    def test_plain_text_on_standard_input(self) -> None:
        """``-`` reads plain text piped to standard input as well."""
        assert _text_lines(_run_reader("-", LINES)) == EXPECTED

    def test_truncated_gzip_is_a_clear_error(self, tmp_path: Path) -> None:
        """A gzip stream that breaks off raises UnreadableInputError after the lines it gave."""
        path = tmp_path / "cut.jsonl.gz"
        path.write_bytes(gzip.compress(b'{"a": 1}\n' * 10_000)[:200])
        seen: list[object] = []
        with pytest.raises(UnreadableInputError, match="broke off"):
            seen.extend(read_log(path))
        assert all(line == b'{"a": 1}' for _, line in seen)  # type: ignore[misc]

    def test_corrupt_gzip_is_a_clear_error(self, tmp_path: Path) -> None:
        """Garbage after a gzip header raises UnreadableInputError, not zlib's error."""
        path = tmp_path / "bad.jsonl"
        path.write_bytes(gzip.compress(b"x" * 1000)[:10] + b"\x00garbage" * 50)
        with pytest.raises(UnreadableInputError, match="broke off"):
            list(read_log(path))

    def test_replay_of_a_truncated_gzip_exits_1_without_a_traceback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The replay command turns a broken input into one error line and exit code 1."""
        path = tmp_path / "cut.jsonl.gz"
        path.write_bytes(gzip.compress(b'{"a": 1}\n' * 10_000)[:200])
        assert main(["replay", str(path)]) == 1
        err = capsys.readouterr().err
        assert "broke off" in err
        assert "Traceback" not in err


class TestPipes:
    """Named pipes and process substitution read like standard input."""

    def test_a_fifo(self, tmp_path: Path) -> None:
        """A FIFO holding a gzip stream is read to its end."""
        fifo = tmp_path / "queries.fifo"
        os.mkfifo(fifo)
        writer = _feed(str(fifo), gzip.compress(LINES))
        assert list(read_log(fifo)) == EXPECTED
        writer.join(5)

    def test_process_substitution(self) -> None:
        """``/dev/fd/N`` (what ``<(zcat ...)`` gives) is read like a file."""
        r, w = os.pipe()
        try:
            writer = _feed(os.fdopen(w, "wb", buffering=0), LINES, chunk=1)  # a byte at a time
            assert list(read_log(f"/dev/fd/{r}")) == EXPECTED
            writer.join(5)
        finally:
            os.close(r)

    def test_gzip_arriving_one_byte_at_a_time(self) -> None:
        """The gzip magic is recognised even when the pipe gives it one byte at a time."""
        r, w = os.pipe()
        try:
            writer = _feed(os.fdopen(w, "wb", buffering=0), gzip.compress(LINES), chunk=1)
            assert list(read_log(f"/dev/fd/{r}")) == EXPECTED
            writer.join(5)
        finally:
            os.close(r)


class TestOversize:
    """A line over the cap is never held whole: a marker with its first bytes and length."""

    def test_the_cap_is_the_event_size_limit(self) -> None:
        """The cap is the 256 KiB of the event contract."""
        assert MAX_LINE_BYTES == 256 * 1024

    def test_a_line_at_the_cap_is_a_line_one_over_is_a_marker(self, tmp_path: Path) -> None:
        """Exactly the cap passes whole; one byte more (with CRLF) gives a marker."""
        at, over = b"a" * MAX_LINE_BYTES, b"b" * (MAX_LINE_BYTES + 1)
        path = tmp_path / "log.jsonl"
        path.write_bytes(at + b"\r\n" + over + b"\r\n{}\n")
        got = list(read_log(path))
        assert got[0] == (1, at)
        assert got[1] == (2, OversizeLine(2, over[:HEAD_BYTES], len(over), MAX_LINE_BYTES))
        assert got[2] == (3, b"{}")

    def test_a_long_line_is_skipped_to_its_end(self, tmp_path: Path) -> None:
        """A 1 MiB line ending in CRLF gives its length without the ending; reading goes on."""
        big = b'{"features": [' + b"0.5, " * 200_000 + b"1]}"
        path = tmp_path / "log.jsonl"
        path.write_bytes(b"{}\n" + big + b"\r\n\n" + b'{"z": 1}')
        with LogReader(path) as reader:
            got = list(reader)
        assert got[1] == (2, OversizeLine(2, big[:HEAD_BYTES], len(big), MAX_LINE_BYTES))
        assert got[2] == (4, b'{"z": 1}')
        assert (reader.lines, reader.records, reader.oversize) == (4, 3, 1)

    def test_a_long_blank_line_is_skipped_like_any_blank_line(self, tmp_path: Path) -> None:
        """Whitespace over the cap is still a blank line."""
        path = tmp_path / "log.jsonl"
        path.write_bytes(b" " * (3 * MAX_LINE_BYTES) + b"\n{}\n")
        assert list(read_log(path)) == [(2, b"{}")]

    def test_the_marker_becomes_a_dead_letter_with_its_length(self) -> None:
        """The dead letter has the decoder's reason, the first bytes and the true size."""
        dl = OversizeLine(9, b"x" * HEAD_BYTES, 10**9, MAX_LINE_BYTES).dead_letter("log:9")
        assert dl.reason == f"event larger than {MAX_LINE_BYTES} bytes"
        assert (dl.raw, dl.raw_size, dl.raw_truncated) == ("x" * HEAD_BYTES, 10**9, True)
        assert dl.source == "log:9"

    def test_replay_dead_letters_an_oversize_line(self, tmp_path: Path) -> None:
        """The replay counts the line, dead-letters it with source, size and first bytes."""
        path = tmp_path / "log.jsonl"
        path.write_bytes(b"\n" + b"{" * (MAX_LINE_BYTES * 3) + b"\n")
        result = replay_path(path, keep_dead_letters=True)
        assert (result.summary.events, result.summary.dead_letters) == (1, 1)
        (doc,) = result.dead_letters
        assert doc["source"] == f"{path}:2"
        assert doc["raw_size"] == MAX_LINE_BYTES * 3
        assert doc["raw"] == "{" * HEAD_BYTES
        assert doc["reason"].startswith("event larger than")


# Measures the peak resident growth of reading a log with one huge line (argv[1]) and of
# replaying it, each after its imports; prints the growths in bytes and what was read.
MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from streams.logread import OversizeLine, read_log
    from streams.replay import replay_path

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    before = peak()
    sizes = [l.size if isinstance(l, OversizeLine) else len(l) for _, l in read_log(sys.argv[1])]
    read_growth = peak() - before
    before = peak()
    summary = replay_path(sys.argv[1]).summary
    replay_growth = peak() - before
    print(json.dumps({"read": read_growth, "replay": replay_growth, "sizes": sizes,
                      "dead_letters": summary.dead_letters, "valid": summary.valid}))
    """
)


@pytest.fixture(scope="module")
def huge_gzip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small gzip file holding one valid event, a 256 MiB line, and another valid event."""
    event = json.dumps(
        {"event_id": "e1", "timestamp": 1767225600, "client_id": "c", "model_id": "m"}
    ).encode()
    path = tmp_path_factory.mktemp("huge") / "huge.jsonl.gz"
    chunk = b'{"pad": "' + b"A" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(event + b"\n")
        for _ in range(256):
            out.write(chunk)
        out.write(b'"}\n' + event.replace(b"e1", b"e2") + b"\n")
    return path


class TestFlatMemory:
    """Reading a 256 MiB line inside a small gzip file keeps memory flat."""

    @pytest.mark.slow
    def test_a_256_mib_line_costs_no_memory(self, huge_gzip: Path) -> None:
        """Peak resident memory grows by less than 64 MiB while reading and replaying it."""
        assert huge_gzip.stat().st_size < 2 * 1024 * 1024
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, str(huge_gzip)],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(proc.stdout)
        line = 256 * (1 << 20) + len('{"pad": "') * 256 + len('"}')
        assert got["sizes"][1] == line
        assert (got["dead_letters"], got["valid"]) == (1, 2)
        assert got["read"] < 64 * 1024 * 1024, got
        assert got["replay"] < 64 * 1024 * 1024, got


class TestObjects:
    """JSONL files of our own outputs (alerts, scores, spools)."""

    def _file(self, tmp_path: Path, data: bytes) -> Path:
        path = tmp_path / "out.jsonl"
        path.write_bytes(data)
        return path

    def test_objects_are_read_in_order(self, tmp_path: Path) -> None:
        """Every object is returned; blank lines are skipped; gzip is accepted."""
        path = self._file(tmp_path, gzip.compress(b'{"a": 1}\n\n{"b": [2]}\n'))
        assert list(read_objects(path)) == [{"a": 1}, {"b": [2]}]

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b"not json", r"out\.jsonl:2: not JSON"),
            (b"[1, 2]", r"out\.jsonl:2: not a JSON object"),
            (b'"\xff"', r"out\.jsonl:2: not UTF-8 text"),
        ],
    )
    def test_a_bad_line_names_file_and_line(
        self, tmp_path: Path, line: bytes, message: str
    ) -> None:
        """Anything but a JSON object raises MalformedLogError with path:line."""
        path = self._file(tmp_path, b"{}\n" + line + b"\n")
        with pytest.raises(MalformedLogError, match=message):
            list(read_objects(path))

    def test_an_oversize_line_is_an_error_not_a_read(self, tmp_path: Path) -> None:
        """A line over the caller's cap is reported with its size."""
        path = self._file(tmp_path, b'{"a": "' + b"x" * 5000 + b'"}\n')
        with pytest.raises(MalformedLogError, match=r"out\.jsonl:1: a line of 5009 bytes"):
            list(read_objects(path, max_line_bytes=1000))


class TestEveryCommand:
    """Each command that reads a log reads it through the one reader."""

    def test_produce_sends_a_dead_letter_for_an_oversize_line(self, tmp_path: Path) -> None:
        """produce's messages: lines as they are, a dead letter in place of an oversize one."""
        path = tmp_path / "q.jsonl"
        path.write_bytes(gzip.compress(b"{}\n" + b"x" * (MAX_LINE_BYTES + 5) + b"\n[]\n"))
        got = list(messages(str(path)))
        assert got[0] == b"{}"
        assert got[2] == b"[]"
        assert isinstance(got[1], DeadLetter)
        assert (got[1].source, got[1].raw_size) == (f"{path}:2", MAX_LINE_BYTES + 5)

    def test_evaluate_reads_gzip_alerts_by_magic(self, tmp_path: Path) -> None:
        """evaluate's alert file may be gzip whatever its name; a bad line is a ValueError."""
        path = tmp_path / "alerts.jsonl"
        path.write_bytes(gzip.compress(b'{"user": {"id": "a"}}\n'))
        assert read_alerts(path) == [{"user": {"id": "a"}}]
        path.write_bytes(b"{}\n7\n")
        with pytest.raises(ValueError, match=r"alerts\.jsonl:2: not a JSON object"):
            read_alerts(path)

    def test_report_inputs_name_file_and_line(self, tmp_path: Path) -> None:
        """report's loader turns reader errors into its own input error."""
        path = tmp_path / "scores.jsonl"
        path.write_bytes(b'{"a": 1}\n{nope\n')
        with pytest.raises(ReportInputError, match=r"scores\.jsonl:2: not JSON"):
            load_jsonl(path)
        with pytest.raises(ReportInputError, match="cannot read"):
            load_jsonl(tmp_path / "missing.jsonl")

    def test_redeliver_spool_lines_are_checked(self, tmp_path: Path) -> None:
        """The dead-letter spool redeliver reads names a bad line by file and number."""
        spool = DeadLetterFile(tmp_path / "spool.jsonl")
        spool.append([{"sink": "webhook", "body": "{}"}])
        assert spool.read() == [{"sink": "webhook", "body": "{}"}]
        with spool.path.open("a") as out:
            out.write("oops\n")
        with pytest.raises(ValueError, match=r"spool\.jsonl:2: not JSON"):
            spool.read()
