"""``clonewatch evaluate``: score alerts against a labelled log's truth, next to PRADA."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clonewatch.cli import CommandError
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
    p.add_argument("log", type=Path, metavar="LOG", help="the labelled log (.gz accepted)")
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


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print both tables."""
    require("sim", *SIM_MODULES)
    from clonewatch.evaluate import evaluate, read_alerts  # noqa: PLC0415 - loads the engine

    for path, what in ((args.log, "log"), (args.truth, "truth")):
        if not path.is_file():
            raise CommandError(f"{what} file not found: {path}", 1)
    try:
        alerts = read_alerts(args.alerts) if args.alerts is not None else None
        report = evaluate(args.log, args.truth, alerts, flag_level=args.flag_level)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"cannot evaluate: {exc}", 1) from exc
    print(report.format_table())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
