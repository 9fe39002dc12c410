"""One reader for every log a command reads: query logs, alerts, scores, spools.

:class:`LogReader` opens a path, ``-`` (standard input), a named pipe or a
process substitution (``/dev/fd/N``) alike, recognises gzip by its magic bytes
(never by the file's suffix, so a gzip stream on standard input works too), and
yields the log's non-blank lines numbered as they are in the file, without their
line ending. The size cap is applied *while* reading: a line longer than
``max_line_bytes`` is never held whole in memory; the reader keeps its first
:data:`HEAD_BYTES` bytes and its length, skips to the next newline and yields an
:class:`OversizeLine` in its place, which the caller dead-letters
(:meth:`OversizeLine.dead_letter`) with a reason, those first bytes and the
length. A file that cannot be opened, or a stream that breaks off (a truncated
or corrupt gzip file), raises :class:`UnreadableInputError` with a readable
message, never a traceback from the decompressor.

:func:`read_objects` reads a JSONL file of JSON objects (our own outputs:
alerts, risk scores, dead-letter spools) through the same reader and names the
file and line of anything that is not one.

>>> import tempfile, gzip, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
>>> _ = path.write_bytes(gzip.compress(b'{"a": 1}\\n\\n' + b"x" * 300_000 + b"\\n{}\\n"))
>>> with LogReader(path) as reader:
...     for number, line in reader:
...         print(number, line if isinstance(line, bytes) else line.size)
1 b'{"a": 1}'
3 300000
4 b'{}'
>>> reader.lines, reader.records, reader.oversize
(4, 3, 1)
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from schemas.dead_letter import DeadLetter
from schemas.query import MAX_EVENT_BYTES

MAX_LINE_BYTES = MAX_EVENT_BYTES  # a query log's line cap: a longer event is dead-lettered anyway
OUTPUT_LINE_BYTES = 16 * 1024 * 1024  # our own outputs (a campaign alert lists its accounts)
HEAD_BYTES = 256  # what an oversize line keeps for its dead letter
_SKIP_BYTES = 64 * 1024  # read size while skipping the rest of an oversize line
_GZIP_MAGIC = b"\x1f\x8b"
_LINE_END = b"\r\n"


class UnreadableInputError(OSError):
    """A log could not be opened or read to its end (missing, a directory, broken gzip)."""


class MalformedLogError(ValueError):
    """A JSONL line is not what the reader of that file needs (names the file and line)."""


@dataclass(frozen=True, slots=True)
class OversizeLine:
    """Stands for a line longer than the cap: its first bytes and its length, not the line."""

    lineno: int  # the physical line number in the log, from 1
    head: bytes  # the first HEAD_BYTES bytes
    size: int  # its length in bytes, without the line ending
    limit: int  # the cap it exceeded

    @property
    def reason(self) -> str:
        """The dead-letter reason, the same words the event decoder uses for a large event.

        >>> OversizeLine(1, b"{", 70_000, 65_536).reason
        'event larger than 65536 bytes'
        """
        return f"event larger than {self.limit} bytes"

    def dead_letter(
        self, source: str | None = None, received_at: float | None = None
    ) -> DeadLetter:
        """The dead letter of this line: its reason, first bytes (whole characters) and length.

        >>> dl = OversizeLine(7, b'{"a": "\\xc3\\xa9\\xc3', 90_000, 65_536).dead_letter("log:7")
        >>> dl.raw, dl.raw_size, dl.raw_truncated, dl.source
        ('{"a": "é', 90000, True, 'log:7')
        """
        dl = DeadLetter.of(_whole_characters(self.head), self.reason, received_at, source)
        return dl.model_copy(update={"raw_size": self.size, "raw_truncated": True})


Numbered = tuple[int, bytes | OversizeLine]  # (physical line number, the line or its stand-in)


def _whole_characters(head: bytes) -> bytes:
    """``head`` without a UTF-8 character cut in two at its end (so it stays text)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return head[: exc.start]
    return head


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with the bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._read = getattr(rest, "read1", rest.read)  # what is there, without waiting for more

    def readable(self) -> bool:
        """Always: it is an input."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the prefix first, then from the stream."""
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._read(len(view))
        view[: len(data)] = data
        return len(data)


def _sniffed(fh: IO[bytes]) -> IO[bytes]:
    """``fh`` as it is, or decompressed when its first two bytes are the gzip magic."""
    head = fh.read(2)
    if fh.seekable():
        fh.seek(0)
    else:  # a pipe, FIFO or /dev/fd/N: put the two bytes back in front
        fh = io.BufferedReader(_Prefixed(head, fh))
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


class LogReader:
    """The numbered non-blank lines of one log, each capped at ``max_line_bytes``.

    Iterating yields ``(line number, line)`` with the line's bytes (without its
    ending) or an :class:`OversizeLine`. ``lines`` counts the physical lines read,
    ``records`` those yielded, ``oversize`` the oversize ones among them. Use it as
    a context manager (standard input is never closed).
    """

    def __init__(self, path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.name = str(path)
        self.max_line_bytes = max_line_bytes
        self.lines = 0
        self.records = 0
        self.oversize = 0
        self._own: IO[bytes] | None = None
        try:
            if self.name == "-":
                self._fh = _sniffed(sys.stdin.buffer)
            else:
                self._own = Path(path).open("rb")  # noqa: SIM115 - closed by close()
                self._fh = _sniffed(self._own)
        except OSError as exc:
            self.close()
            raise UnreadableInputError(f"cannot read {self.name}: {exc.strerror or exc}") from exc

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (and its decompressor); standard input stays open."""
        fh = getattr(self, "_fh", None)
        if fh is not None and fh is not sys.stdin.buffer and fh is not self._own:
            fh.close()  # the decompressor or the prefix wrapper (not stdin underneath)
        if self._own is not None:
            self._own.close()

    def __iter__(self) -> Iterator[Numbered]:
        try:
            yield from self._numbered()
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableInputError(
                f"{self.name}: input broke off after line {self.lines}: {exc}"
            ) from exc

    def _numbered(self) -> Iterator[Numbered]:
        cap = self.max_line_bytes
        limit = cap + len(_LINE_END)  # a line of ``cap`` bytes still fits with its "\r\n"
        readline = self._fh.readline
        while line := readline(limit):
            self.lines += 1
            if line[-1:] == b"\n" or len(line) < limit:  # the whole line (or the last one)
                raw = line.rstrip(_LINE_END)
                if not raw or raw.isspace():  # a blank line (without copying it to strip it)
                    continue
                self.records += 1
                if len(raw) <= cap:
                    yield self.lines, raw
                else:
                    self.oversize += 1
                    yield self.lines, OversizeLine(self.lines, raw[:HEAD_BYTES], len(raw), cap)
                continue
            big = self._skip_rest(line)
            if big is not None:
                self.records += 1
                self.oversize += 1
                yield self.lines, big

    def _skip_rest(self, start: bytes) -> OversizeLine | None:
        """Read past the rest of a line that began with ``start``, keeping only its length.

        None when the whole line was blank (only whitespace), which is skipped like any.
        """
        size, blank, trailing = len(start), start.isspace(), 0
        part = start
        while True:
            ending = len(part) - len(part.rstrip(_LINE_END))
            trailing = trailing + ending if ending == len(part) else ending
            if part[-1:] == b"\n":
                break
            part = self._fh.readline(_SKIP_BYTES)
            if not part:
                break
            size += len(part)
            blank = blank and part.isspace()
        if blank:
            return None
        return OversizeLine(self.lines, start[:HEAD_BYTES], size - trailing, self.max_line_bytes)


def read_log(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Numbered]:
    """The numbered lines of a log (see :class:`LogReader`), closing it when done."""
    with LogReader(path, max_line_bytes=max_line_bytes) as reader:
        yield from reader


def read_objects(
    path: str | Path, *, max_line_bytes: int = OUTPUT_LINE_BYTES
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, in order (blank lines skipped).

    A line that is not JSON, not a JSON object, not UTF-8 or over the cap raises
    :class:`MalformedLogError` naming ``path:line``; an unreadable file raises
    :class:`UnreadableInputError`.
    """
    for number, line in read_log(path, max_line_bytes=max_line_bytes):
        where = f"{path}:{number}"
        if isinstance(line, OversizeLine):
            raise MalformedLogError(
                f"{where}: a line of {line.size} bytes, over the limit of {line.limit}"
            )
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedLogError(f"{where}: not JSON: {exc.msg}") from exc
        except UnicodeDecodeError as exc:
            raise MalformedLogError(f"{where}: not UTF-8 text") from exc
        if not isinstance(doc, dict):
            raise MalformedLogError(f"{where}: not a JSON object")
        yield doc
