"""``clonewatch demo``: simulate, replay, evaluate and report in one go."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clonewatch.cli import CommandError
from clonewatch.commands.output_paths import check_writable
from clonewatch.commands.replay import replay_file
from clonewatch.extras import SIM_MODULES, require
from clonewatch.progress import step


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the demo sub-command."""
    d = sub.add_parser(
        "demo",
        help="simulate traffic with attackers, replay it, evaluate and report",
        description="Simulate a labelled log, replay it through the engine, evaluate against "
        "the truth and PRADA, and write an HTML report, all under --out.",
    )
    d.add_argument("--out", type=Path, default=Path("clonewatch-out"), help="output folder")
    d.add_argument("--seed", type=int, default=7, help="simulation seed")
    d.add_argument("--scale", type=float, default=1.0, help="traffic scale (1.0: ~80k events)")
    d.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Simulate, replay, evaluate and report into ``--out``."""
    require("sim", *SIM_MODULES)
    from clonewatch.evaluate import evaluate  # noqa: PLC0415 - heavy (scikit-learn)
    from clonewatch.report import write_report  # noqa: PLC0415
    from clonewatch.sim import simulate  # noqa: PLC0415 - heavy (scikit-learn)

    out: Path = args.out
    if not args.scale > 0:
        raise CommandError("--scale must be a positive number", 2)
    check_writable("--out", out / "report.html", make_parents=True)  # before minutes of work
    out.mkdir(parents=True, exist_ok=True)
    log_path, truth_path = out / "queries.jsonl.gz", out / "truth.json"
    step(f"[1/4] simulating traffic (seed {args.seed}, scale {args.scale}) -> {log_path}")
    simulate(log_path, truth_path, seed=args.seed, scale=args.scale)
    step("[2/4] replaying through the engine")
    result, _ = replay_file(
        str(log_path),
        alerts=out / "alerts.jsonl",
        scores=out / "scores.jsonl",
        dead_letter=out / "dead-letter.jsonl",
        keep_scores=True,
    )
    print(result.summary.format())
    step("[3/4] evaluating against the truth and the PRADA baseline")
    report = evaluate(log_path, truth_path, result.alerts)
    evaluation = report.to_dict()
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2), encoding="utf-8")
    print()
    print(report.format_table())
    step("[4/4] writing the HTML report")
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    html = write_report(out / "report.html", result.alerts, result.scores, evaluation, truth)
    print(f"\nreport: {html}\nalerts: {out / 'alerts.jsonl'}\nscores: {out / 'scores.jsonl'}")
    return 0
