"""``clonewatch report``: one self-contained HTML file from alerts and risk scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from clonewatch.cli import CommandError
from clonewatch.commands.output_paths import check_distinct, check_writable
from clonewatch.report import ReportInputError, load_json, load_jsonl, write_report


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="write the HTML report of a run",
        description=(
            "Write one self-contained HTML file (opens offline): clients ranked by risk, "
            "risk over time per flagged client with its alerts, the signals behind each "
            "alert, and the evaluation table when given."
        ),
    )
    parser.add_argument("--alerts", type=Path, required=True, help="alerts JSONL (from replay)")
    parser.add_argument("--scores", type=Path, required=True, help="risk scores JSONL")
    parser.add_argument("--truth", type=Path, help="truth labels JSON (marks each client)")
    parser.add_argument("--evaluation", type=Path, help="evaluation JSON (clonewatch evaluate)")
    parser.add_argument("--out", type=Path, required=True, help="HTML file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the inputs, write the report, print its path."""
    check_distinct(
        {
            "--alerts": args.alerts,
            "--scores": args.scores,
            "--truth": args.truth,
            "--evaluation": args.evaluation,
        },
        {"--out": args.out},
    )
    check_writable("--out", args.out, make_parents=True)
    try:
        alerts = load_jsonl(args.alerts)
        scores = load_jsonl(args.scores)
        truth = load_json(args.truth) if args.truth else None
        evaluation = load_json(args.evaluation) if args.evaluation else None
    except ReportInputError as exc:
        raise CommandError(str(exc)) from exc
    if evaluation is not None and not isinstance(evaluation, dict):
        raise CommandError(f"{args.evaluation}: the evaluation must be a JSON object")
    try:
        path = write_report(args.out, alerts, scores, evaluation, truth)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(path)
    return 0
