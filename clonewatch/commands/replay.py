"""``clonewatch replay``: the embedded default, no infrastructure.

The local outputs (alerts, scores, dead letters) never depend on a search sink: a sink
unreachable at the start or failing a flush past its deadline is given up for the run and
what it did not get goes to the sink spool (``--sink-spool DIR``), for ``clonewatch
redeliver``. Such a run still completes, prints its summary with what was not delivered,
and exits 3 (:data:`UNDELIVERED`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from threadpoolctl import threadpool_limits

from clonewatch.cli import CommandError
from clonewatch.commands.output_paths import check_distinct, check_writable, claim_default
from clonewatch.commands.sink_options import SEARCH_KINDS, add_search_arguments, search_sinks
from clonewatch.progress import progress
from detectors.config import EngineConfig
from detectors.engine import Engine
from streams.delivery import SPOOL_NAME, SinkSpool, SpoolingSink
from streams.logread import LogReader
from streams.registry import read_registry
from streams.replay import (
    ReplayResult,
    UnreadableInputError,
    UnwritableOutputError,
    replay_numbered,
)
from streams.sinks.base import Sink

log = structlog.get_logger()

# The exit code of a replay that completed with documents spooled, not delivered.
UNDELIVERED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the replay sub-command."""
    p = sub.add_parser(
        "replay",
        help="run the detection engine in-process over a QueryEvent log",
        description="Replay a JSONL QueryEvent log (.gz accepted, - for stdin) through the engine.",
    )
    p.add_argument("log", help="JSONL log file, .gz accepted, or - for standard input")
    p.add_argument(
        "--alerts",
        type=Path,
        help="write alerts as JSONL here (default: alerts.jsonl next to the log, or in the "
        "current folder for standard input; alerts-2.jsonl... when that exists)",
    )
    p.add_argument("--scores", type=Path, help="write risk scores as JSONL here")
    p.add_argument("--dead-letter", type=Path, help="write dead-letter records as JSONL here")
    p.add_argument(
        "--seed", type=int, default=0, help="engine seed (same input and seed, same alerts)"
    )
    p.add_argument(
        "--max-models",
        type=_positive,
        default=EngineConfig().max_models,
        metavar="N",
        help="model baselines held at most (default %(default)s, about 130 KB each); past it "
        "lone model ids evict each other, then new ids share one __overflow__ model",
    )
    p.add_argument(
        "--model-registry",
        type=Path,
        metavar="FILE",
        help="a model registry (JSON, docs/detection.md): each model's feature count and "
        "ranges, known from the first event; registered models are outside --max-models",
    )
    add_search_arguments(p)  # --elasticsearch URL, --opensearch URL, --namespace
    p.add_argument(
        "--sink-spool",
        type=Path,
        metavar="DIR",
        help=f"where documents a search sink did not take go ({SPOOL_NAME}, created only then; "
        "default: the alerts file's folder); send them with clonewatch redeliver",
    )
    p.add_argument(
        "--load-baseline",
        type=Path,
        metavar="FILE",
        help="start from the per-model baselines saved by an earlier --save-baseline",
    )
    p.add_argument(
        "--save-baseline",
        type=Path,
        metavar="FILE",
        help="save the per-model baselines this replay learned (they hold sample inputs)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run_replay)


def _positive(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _engine(args: argparse.Namespace) -> Engine:
    """An engine with the registry given, warm-started from a saved baseline if one is."""
    try:
        registry = None if args.model_registry is None else read_registry(args.model_registry)
    except ValueError as exc:
        raise CommandError(str(exc), 1) from exc
    engine = Engine(EngineConfig(seed=args.seed, max_models=args.max_models), registry)
    baseline: Path | None = args.load_baseline
    if baseline is not None:
        try:
            engine.import_population(baseline.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read {baseline}: {exc.strerror or exc}", 1) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{baseline} is not a Clonewatch baseline: {exc}", 1) from exc
    return engine


def spool_folder(args: argparse.Namespace) -> Path:
    """Where the sink spool goes: ``--sink-spool``, else the folder of the alerts."""
    if args.sink_spool is not None:
        return Path(args.sink_spool)
    if args.alerts is not None:
        return Path(args.alerts).resolve().parent
    return default_alerts_folder(args.log)


def _sinks(args: argparse.Namespace) -> list[SpoolingSink]:
    """The search sinks, each spooling what it cannot deliver; set up (a failure: spooled)."""
    spool = SinkSpool(spool_folder(args) / SPOOL_NAME)
    sinks = [
        SpoolingSink(sink, spool, getattr(args, sink.name), args.namespace)
        for sink in search_sinks(args)
    ]
    for sink in sinks:
        sink.setup()
    return sinks


def undelivered_lines(sinks: list[SpoolingSink]) -> list[str]:
    """Summary lines for sinks that did not take everything (none when all delivered)."""
    lines = []
    for sink in sinks:
        if sink.spooled:
            lines.append(
                f"undelivered  {sink.spooled} {sink.name} documents spooled to {sink.spool.path} "
                f"({sink.down}); send them with: clonewatch redeliver {sink.spool.path}"
            )
        if sink.lost:
            lines.append(f"lost         {sink.lost} {sink.name} documents: {sink.error}")
    return lines


def default_alerts_folder(log_path: str) -> Path:
    """Where alerts go without ``--alerts``: next to a log file, else the current folder."""
    if log_path != "-" and Path(log_path).is_file():
        folder = Path(log_path).resolve().parent
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    return Path.cwd()


def replay_file(
    log_path: str,
    *,
    seed: int = 0,
    alerts: Path | None = None,
    scores: Path | None = None,
    dead_letter: Path | None = None,
    sinks: Sequence[Sink] | None = None,
    keep_scores: bool = False,
    engine: Engine | None = None,
    default_alerts: bool = False,
) -> tuple[ReplayResult, Path | None]:
    """Replay with a progress bar, one BLAS thread (the engine is single-core by design).

    ``log_path`` is anything :class:`~streams.logread.LogReader` opens: a file, ``-``, a
    FIFO or ``/dev/fd/N``; one that cannot be opened is an error before any output is
    written. With ``default_alerts`` and no ``alerts``, the alerts go to a new file
    (:func:`default_alerts_folder`), created only once the log is open. Returns the
    result and the alerts file.
    """
    with progress("replay") as advance, threadpool_limits(1):
        try:
            with LogReader(log_path) as reader:
                if alerts is None and default_alerts:
                    alerts = claim_default(default_alerts_folder(log_path), "alerts", ".jsonl")
                result = replay_numbered(
                    reader,
                    source=str(log_path),
                    engine=engine or Engine(EngineConfig(seed=seed)),
                    alerts_path=alerts,
                    scores_path=scores,
                    dead_letter_path=dead_letter,
                    sinks=sinks or [],
                    keep_scores=keep_scores,
                    on_progress=advance,
                )
        except (UnreadableInputError, UnwritableOutputError) as exc:
            raise CommandError(str(exc), 1) from exc
    return result, alerts


def check_paths(args: argparse.Namespace) -> None:
    """Refuse outputs that are inputs or each other (exit 2), then unwritable ones (exit 1)."""
    outputs: dict[str, Path | None] = {
        "--alerts": args.alerts,
        "--scores": args.scores,
        "--dead-letter": args.dead_letter,
        "--save-baseline": args.save_baseline,
    }
    uses_spool = any(getattr(args, kind, None) for kind in SEARCH_KINDS)
    if uses_spool:
        outputs["--sink-spool"] = spool_folder(args) / SPOOL_NAME
    check_distinct(
        {
            "LOG": args.log,
            "--load-baseline": args.load_baseline,
            "--model-registry": args.model_registry,
        },
        outputs,
        may_replace={"--save-baseline": "--load-baseline"},
    )
    for name, path in outputs.items():
        if path is not None:  # the spool's folder is made when first needed
            check_writable(name, path, make_parents=name == "--sink-spool")


def run_replay(args: argparse.Namespace) -> int:
    """Replay a log and print the summary (where the alerts went, what was not delivered).

    Exit 0, or :data:`UNDELIVERED` when a sink's documents were spooled, or 1 (after
    the summary) when some could not even be spooled.
    """
    check_paths(args)
    engine = _engine(args)
    sinks = _sinks(args)
    try:
        result, alerts_path = replay_file(
            args.log,
            seed=args.seed,
            alerts=args.alerts,
            scores=args.scores,
            dead_letter=args.dead_letter,
            sinks=sinks,
            engine=engine,
            default_alerts=True,
        )
    finally:
        for sink in sinks:
            sink.close()
    if args.save_baseline is not None:
        try:
            args.save_baseline.write_bytes(engine.export_population())
        except OSError as exc:
            why = exc.strerror or exc
            raise CommandError(f"cannot write {args.save_baseline}: {why}", 1) from exc
    s = result.summary
    log.info("replay_done", events=s.events, alerts=len(result.alerts), dead_letters=s.dead_letters)
    spooled = {sink.name: sink.spooled for sink in sinks if sink.spooled}
    lost = {sink.name: sink.lost for sink in sinks if sink.lost}
    if args.json:
        out: dict[str, Any] = {
            "events": s.events,
            "valid": s.valid,
            "clients": s.clients,
            "models": s.models,
            "models_evicted": s.models_evicted,
            "model_overflow_events": s.model_overflow_events,
            "models_registered": s.models_registered,
            "alerts_by_level": s.alerts_by_level,
            "risk_scores": s.risk_scores,
            "dead_letters": s.dead_letters,
            "dead_letter_reasons": s.dead_letter_reasons,
            "events_per_second": round(s.events_per_second, 1),
            "alerts_file": str(alerts_path),
            "sink_rejected": s.sink_rejected,
            "undelivered": spooled,
            "lost": lost,
        }
        if spooled:
            out["sink_spool"] = str(sinks[0].spool.path)
        print(json.dumps(out, indent=2))
    else:
        print(s.format())
        chosen = "" if args.alerts is not None else " (the default; --alerts FILE to choose)"
        print(f"alerts file  {alerts_path}{chosen}")
        for line in undelivered_lines(sinks):
            print(line)
    if lost:
        return 1
    return UNDELIVERED if spooled else 0
