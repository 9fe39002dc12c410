"""The embedded default: run the engine in-process over a QueryEvent log file."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import Alert, DeadLetter, QueryEvent, decode_event
from streams.delivery import dead_letter_record, drain_rejected, to_record
from streams.logread import LogReader, Numbered, OversizeLine, UnreadableInputError
from streams.sinks.base import OutputRecord, Sink

BATCH_SIZE = 256
YOUNG_GC_THRESHOLD = 20_000  # container allocations between young collections while replaying
# What the summary's events/s measures: the run as it went, not a benchmark's warm rate.
RATE_NOTE = "whole run: decoding and first-use JIT compilation included; make bench: warm rate"


@dataclass(slots=True)
class ReplaySummary:
    """Counts and speed of one replay."""

    events: int = 0
    valid: int = 0
    dead_letters: int = 0
    clients: int = 0
    alerts_by_level: dict[str, int] = field(default_factory=dict)
    risk_scores: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    sink_rejected: int = 0  # documents a search server refused for good (they are dead letters)
    models: int = 0  # model baselines held at the end (at most EngineConfig.max_models)
    models_evicted: int = 0  # lone baselines evicted to make room for a new model id
    model_overflow_events: int = 0  # events scored in the shared __overflow__ model
    models_registered: int = 0  # models the registry names (outside the bound)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        """Throughput over the whole replay (decode included)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def _model_note(self) -> str:
        parts = []
        if self.models_registered:
            parts.append(f"{self.models_registered} in the model registry")
        if self.models_evicted:
            parts.append(f"{self.models_evicted} lone ones evicted to make room")
        if self.model_overflow_events:
            parts.append(f"{self.model_overflow_events} events beyond the bound in __overflow__")
        return f" ({', '.join(parts)})" if parts else ""

    def format(self) -> str:
        """A readable multi-line summary."""
        levels = ", ".join(f"{k} {v}" for k, v in sorted(self.alerts_by_level.items())) or "none"
        return (
            f"events       {self.events}\n"
            f"valid        {self.valid}\n"
            f"clients      {self.clients}\n"
            f"models       {self.models}{self._model_note()}\n"
            f"alerts       {sum(self.alerts_by_level.values())} ({levels})\n"
            f"risk scores  {self.risk_scores}\n"
            f"dead letters {self.dead_letters}"
            + (f" (and {self.sink_rejected} refused by a sink)\n" if self.sink_rejected else "\n")
            + f"events/s     {self.events_per_second:,.0f} ({RATE_NOTE})"
        )


@dataclass(slots=True)
class ReplayResult:
    """What a replay produced (alerts always kept; risk scores and dead letters on request)."""

    summary: ReplaySummary
    alerts: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect young objects less often while replaying; the thresholds are restored after.

    Scoring allocates a few dozen short-lived containers per event while a batch of
    events stays alive, so with the default threshold (700) the collector ran every
    ~20 events and kept promoting live batches into the oldest generation, whose
    full scans then cost about 5 % of a replay. Garbage is still collected.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], YOUNG_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class UnwritableOutputError(OSError):
    """An output file could not be opened for writing (no such directory, permission, ...)."""


class _Writer:
    """Writes each record kind as JSONL to its own optional file."""

    def __init__(self, paths: dict[str, Path | None]) -> None:
        self.files: dict[str, IO[bytes] | None] = {}
        for kind, path in paths.items():
            try:
                self.files[kind] = path.open("wb") if path else None
            except OSError as exc:
                self.close()
                why = exc.strerror or exc
                raise UnwritableOutputError(f"cannot write {path}: {why}") from exc

    def write(self, kind: str, doc: dict[str, Any]) -> None:
        fh = self.files.get(kind)
        if fh is not None:
            fh.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        for fh in self.files.values():
            if fh is not None:
                fh.close()


def replay_lines(lines: Iterable[bytes], **kwargs: Any) -> ReplayResult:
    """Run the engine over raw JSONL lines held in memory, numbered from 1 (blank ones skipped).

    A log on disk or a stream goes through :func:`replay_path`, whose reader caps each line
    while reading; these lines are already whole, and the decoder dead-letters a large one.
    """
    numbered = ((n, raw) for n, raw in enumerate(lines, start=1) if raw and not raw.isspace())
    return replay_numbered(numbered, **kwargs)


def replay_numbered(
    lines: Iterable[Numbered],
    *,
    engine: Engine | None = None,
    alerts_path: Path | None = None,
    scores_path: Path | None = None,
    dead_letter_path: Path | None = None,
    keep_scores: bool = False,
    keep_dead_letters: bool = False,
    sinks: Sequence[Sink] = (),
    source: str = "log",
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Run the engine over numbered JSONL lines (a :class:`~streams.logread.LogReader`).

    Invalid lines, and the oversize ones the reader stood in for, become dead letters
    whose ``source`` is ``<source>:<line number>``. Documents a sink refused for good
    (its ``drain_rejected``) are dead letters too, counted as ``sink_rejected``.
    """
    engine = engine or Engine(EngineConfig())
    summary = ReplaySummary()
    result = ReplayResult(summary)
    writer = _Writer({"alert": alerts_path, "risk": scores_path, "dead_letter": dead_letter_path})
    levels: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    batch: list[QueryEvent] = []
    lines_of: dict[int, tuple[int, bytes]] = {}  # id of a batched event -> its line

    def run_batch() -> None:
        outputs = engine.process_batch(batch)
        for ev, reason in engine.rejected:  # scored, and a dead letter (wrong dimension)
            lineno, raw = lines_of[id(ev)]
            dead(DeadLetter.of(raw, reason, source=f"{source}:{lineno}"))
            summary.valid -= 1
        batch.clear()
        lines_of.clear()
        records: list[OutputRecord] = []
        for out in outputs:
            doc = out.to_dict()
            if isinstance(out, Alert):
                writer.write("alert", doc)
                result.alerts.append(doc)
                levels[doc["clonewatch"]["risk_level"]] += 1
            else:
                writer.write("risk", doc)
                summary.risk_scores += 1
                if keep_scores:
                    result.scores.append(doc)
            if sinks:  # records only for sinks: the files take the documents directly
                records.append(to_record(out, doc))
        for sink in sinks:
            sink.write(records)
        drain_sinks()

    def dead(dl: DeadLetter) -> None:
        summary.dead_letters += 1
        reasons[dl.reason.split(":")[0]] += 1
        rec = dead_letter_record(dl)
        writer.write("dead_letter", rec.doc)
        for sink in sinks:
            sink.write([rec])
        if keep_dead_letters:
            result.dead_letters.append(rec.doc)

    def drain_sinks() -> None:
        for sink in sinks:
            for rejected in drain_rejected(sink):
                doc = rejected.dead_letter.model_dump(mode="json", exclude_none=True)
                writer.write("dead_letter", doc)
                summary.sink_rejected += 1
                if keep_dead_letters:
                    result.dead_letters.append(doc)

    with _fewer_collections():
        try:
            for lineno, raw in lines:  # blank lines are skipped by the reader
                summary.events += 1
                line = b"" if isinstance(raw, OversizeLine) else raw
                decoded = raw.dead_letter() if isinstance(raw, OversizeLine) else decode_event(line)
                if isinstance(decoded, DeadLetter):
                    dead(decoded.model_copy(update={"source": f"{source}:{lineno}"}))
                else:
                    summary.valid += 1
                    batch.append(decoded)
                    lines_of[id(decoded)] = (lineno, line)
                    if len(batch) >= BATCH_SIZE:
                        run_batch()
                if on_progress is not None and summary.events % 1000 == 0:
                    on_progress(1000)
            if batch:
                run_batch()
            for sink in sinks:
                sink.flush()
            drain_sinks()
        finally:
            writer.close()
    summary.seconds = time.perf_counter() - started
    summary.clients = len(engine.clients)
    models = engine.model_stats()
    summary.models = models["models_tracked"]
    summary.models_evicted = models["models_evicted"]
    summary.model_overflow_events = models["model_overflow_events"]
    summary.models_registered = models["models_registered"]
    summary.alerts_by_level = dict(levels)
    summary.dead_letter_reasons = dict(reasons)
    return result


def replay_path(path: str | Path, **kwargs: Any) -> ReplayResult:
    """Replay a log: a path (gzip recognised by its magic bytes), ``-``, a FIFO or /dev/fd/N.

    Raises :class:`~streams.logread.UnreadableInputError` when the log cannot be opened or
    breaks off (the outputs written until then are kept).
    """
    with LogReader(path) as reader:
        return replay_numbered(reader, source=str(path), **kwargs)


__all__ = [
    "ReplayResult",
    "ReplaySummary",
    "UnreadableInputError",
    "UnwritableOutputError",
    "dead_letter_record",
    "replay_lines",
    "replay_numbered",
    "replay_path",
    "to_record",
]
