"""``clonewatch simulate``: write a labelled day of mixed traffic and its ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clonewatch.cli import CommandError
from clonewatch.commands.output_paths import check_distinct, check_writable
from clonewatch.extras import SIM_MODULES, require


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the simulate sub-command."""
    p = sub.add_parser(
        "simulate",
        help="write a labelled query log with benign clients and real extraction attacks",
        description="Simulate one day of prediction-API traffic on three scikit-learn victims "
        "(benign clients of six kinds, eight extraction attackers that really train a "
        "surrogate) and write it as QueryEvent JSONL (.gz accepted) plus a truth JSON.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="LOG.jsonl[.gz]", help="log path")
    p.add_argument("--truth", type=Path, required=True, metavar="TRUTH.json", help="truth path")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--scale", type=float, default=1.0, help="benign traffic scale (1.0: ~80k events)"
    )
    p.set_defaults(func=run_simulate)


def format_summary(summary: dict[str, Any]) -> str:
    """A readable summary of a simulation."""
    lines = [
        f"events       {summary['events']} ({summary['out_of_order']} out of order)",
        f"clients      {summary['clients']} ({summary['benign_clients']} benign, "
        f"{summary['attacker_clients']} attacker accounts)",
        f"seconds      {summary['seconds']}",
        "",
        f"{'attacker':24s} {'family':17s} {'model':14s} {'queries':>7s} {'fidelity':>8s}",
    ]
    for name, a in summary["attackers"].items():
        lines.append(
            f"{name:24s} {a['family']:17s} {a['model_id']:14s} {a['queries']:7d} "
            f"{a['final_fidelity']:8.3f}"
        )
    return "\n".join(lines)


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulation and print its summary."""
    require("sim", *SIM_MODULES)
    from clonewatch.sim import simulate  # noqa: PLC0415 - heavy (scikit-learn), only when used

    if not args.scale > 0:
        raise CommandError("--scale must be a positive number", 2)
    check_distinct({}, {"--out": args.out, "--truth": args.truth})
    check_writable("--out", args.out, make_parents=True)
    check_writable("--truth", args.truth, make_parents=True)
    try:
        summary = simulate(args.out, args.truth, seed=args.seed, scale=args.scale)
    except OSError as exc:
        raise CommandError(f"cannot write output: {exc}", 1) from exc
    print(format_summary(summary))
    return 0
