"""``clonewatch evaluate``: score alerts against a labelled log's truth, next to PRADA."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clonewatch.cli import CommandError
from clonewatch.commands.output_paths import check_distinct, check_writable
from clonewatch.extras import SIM_MODULES, require

LEVELS = ("low", "moderate", "high", "critical")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the evaluate sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="compare alerts (or a replay) with the truth of a labelled log, and PRADA",
        description="Per attacker: caught, queries to first alert, surrogate fidelity by "
        "then; per benign kind: share flagged. The same table for the PRADA baseline run "
        "on the same stream. Without --alerts the engine replays LOG in-process. TRUTH is the "
        "simulator's, or a hand-made one that gives only each client's role (docs/simulation.md).",
    )
    p.add_argument(
        "log", metavar="LOG", help="the labelled log (.gz accepted, - for standard input)"
    )
    p.add_argument("--truth", type=Path, required=True, metavar="TRUTH.json")
    p.add_argument("--alerts", type=Path, metavar="ALERTS.jsonl", help="alerts to evaluate")
    p.add_argument(
        "--flag-level",
        choices=LEVELS,
        default="high",
        help="lowest alert level that flags a client (default high)",
    )
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write the results as JSON")
    p.set_defaults(func=run_evaluate)


def _log_kind(log: str) -> str:
    """``file`` for a regular file, ``stream`` for stdin, a FIFO or a ``/dev/fd`` pipe."""
    if log == "-":
        return "stream"
    try:
        mode = Path(log).stat().st_mode
    except FileNotFoundError:
        raise CommandError(f"log file not found: {log}", 1) from None
    except OSError as exc:
        raise CommandError(f"cannot read log {log}: {exc.strerror}", 1) from None
    if stat.S_ISDIR(mode):
        raise CommandError(f"cannot read log {log}: it is a directory", 1)
    return "file" if stat.S_ISREG(mode) else "stream"


@contextmanager
def _readable_twice(log: str) -> Iterator[str]:
    """``log`` itself when it is a file, else a temporary copy of the stream, deleted after.

    Evaluating without ``--alerts`` reads the log twice (the replay, then the truth's
    pass), so a stream is copied to disk first, in 1 MiB chunks: memory stays flat.
    """
    if _log_kind(log) == "file":
        yield log
        return
    fd, tmp = tempfile.mkstemp(prefix="clonewatch-evaluate-", suffix=".log")
    try:
        with os.fdopen(fd, "wb") as out:
            if log == "-":
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            else:
                with Path(log).open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print both tables."""
    require("sim", *SIM_MODULES)
    from clonewatch.evaluate import evaluate, read_alerts  # noqa: PLC0415 - loads the engine

    check_distinct(
        {"LOG": args.log, "--truth": args.truth, "--alerts": args.alerts}, {"--json": args.json}
    )
    if args.log == "-" and str(args.alerts) == "-":
        raise CommandError("LOG and --alerts cannot both be standard input", 2)
    if not args.truth.is_file():
        raise CommandError(f"truth file not found: {args.truth}", 1)
    if args.json is not None:
        check_writable("--json", args.json, make_parents=True)
    try:
        alerts = read_alerts(args.alerts) if args.alerts is not None else None
        if alerts is not None:
            _log_kind(args.log)
            report = evaluate(args.log, args.truth, alerts, flag_level=args.flag_level)
        else:
            with _readable_twice(args.log) as log:
                report = evaluate(log, args.truth, None, flag_level=args.flag_level)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"cannot evaluate: {exc}", 1) from exc
    print(report.format_table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
