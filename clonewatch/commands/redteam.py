"""``clonewatch redteam``: replay one simulated day under each evasion of issue 17 and score it.

The day (``clonewatch simulate --seed 3`` by default) is simulated once; each evasion of
:mod:`clonewatch.sim.evasions` rewrites it, and the rewritten day is replayed through the
engine in-process. Per evasion the table gives:

- *caught*: attackers with alerts at ``high`` or above (the flag level) that name, as the
  alert's client or as a member of a campaign alert, at least half of the keys the attacker
  used;
- *median queries to alert*: over attackers, the attacker's queries (all its keys, in log
  order, padding and decoys included) up to and including the trigger of the first flag-level
  alert naming one of its keys, for caught attackers (a missed one counts as never);
- *benign flagged*: benign keys named by a flag-level alert, and their share of all benign keys.

:func:`run_redteam` returns the rows, for tests; :func:`format_table` prints them.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import multiprocessing
import statistics
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import structlog
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from clonewatch.cli import CommandError
from clonewatch.extras import SIM_MODULES, require
from clonewatch.progress import progress
from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import LEVEL_ORDER, Alert, QueryEvent, RiskLevel, decode_event
from streams.replay import replay_lines

if TYPE_CHECKING:  # the simulator imports scikit-learn: only when the command runs
    from clonewatch.sim.evasions import Answer, Day

log = structlog.get_logger(__name__)

Floats = NDArray[np.float64]
ADAPTIVE = "threshold learner (adaptive)"
DEFAULT_SEED = 3


@dataclass
class AttackerOutcome:
    """How one attacker fared under one evasion."""

    name: str
    keys: int
    queries: int
    keys_named: int
    caught: bool
    queries_to_alert: int | None


@dataclass
class RedteamRow:
    """One evasion's line of the table, with each attacker's outcome."""

    evasion: str
    attackers: list[AttackerOutcome]
    benign_clients: int
    benign_flagged: int
    accomplices: int = 0
    accomplices_flagged: int = 0
    benign_flagged_keys: list[str] = field(default_factory=list)
    events: int = 0
    dead_letters: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    engine_warnings: dict[str, int] = field(default_factory=dict)  # Python warnings raised
    seconds: float = 0.0

    @property
    def caught(self) -> int:
        """Attackers caught."""
        return sum(a.caught for a in self.attackers)

    @property
    def median_queries_to_alert(self) -> float:
        """Median over attackers of queries to the first flag-level alert (missed: infinity)."""
        if not self.attackers:
            return math.inf
        return float(
            statistics.median(
                math.inf if a.queries_to_alert is None else a.queries_to_alert
                for a in self.attackers
            )
        )

    @property
    def benign_flag_rate(self) -> float:
        """Share of benign keys flagged."""
        return self.benign_flagged / self.benign_clients if self.benign_clients else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data (the ``--json`` output)."""
        median = self.median_queries_to_alert
        return {
            "evasion": self.evasion,
            "caught": self.caught,
            "attackers_total": len(self.attackers),
            "median_queries_to_alert": None if math.isinf(median) else median,
            "benign_clients": self.benign_clients,
            "benign_flagged": self.benign_flagged,
            "benign_flag_rate": round(self.benign_flag_rate, 6),
            "accomplices": self.accomplices,
            "accomplices_flagged": self.accomplices_flagged,
            "benign_flagged_keys": self.benign_flagged_keys,
            "events": self.events,
            "dead_letters": self.dead_letters,
            "dead_letter_reasons": self.dead_letter_reasons,
            "engine_warnings": self.engine_warnings,
            "seconds": round(self.seconds, 2),
            "attackers": [asdict(a) for a in self.attackers],
        }


def level_name(level: str) -> RiskLevel:
    """A risk level's name, checked."""
    for name in LEVEL_ORDER:
        if name == level:
            return name
    raise ValueError(f"unknown risk level {level!r}")


def _names(alert: Mapping[str, Any]) -> set[str]:
    """The keys an alert names: its client and, for a campaign alert, every member."""
    cw = alert.get("clonewatch") or {}
    user = (alert.get("user") or {}).get("id")
    names = {str(m) for m in cw.get("campaign_members") or []}
    if user is not None:
        names.add(str(user))
    return names


def _rank(alert: Mapping[str, Any]) -> int:
    return LEVEL_ORDER.get((alert.get("clonewatch") or {}).get("risk_level", "none"), 0)


def score(
    day: Day,
    alerts: Iterable[Mapping[str, Any]],
    *,
    evasion: str,
    flag_level: str = "high",
) -> RedteamRow:
    """Score one replayed day (a :class:`clonewatch.sim.evasions.Day`) against its alerts."""
    flag_rank = LEVEL_ORDER[level_name(flag_level)]
    index: dict[str, int] = {}
    positions: dict[str, list[int]] = {name: [] for name in day.attackers}
    for i, e in enumerate(day.events):
        index[str(e["event_id"])] = i
        name = day.owner.get(e["client_id"])
        if name is not None:
            positions.setdefault(name, []).append(i)
    named: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    benign: set[str] = set()
    accomplices: set[str] = set()
    for alert in alerts:
        if _rank(alert) < flag_rank:
            continue
        trigger = index.get(str((alert.get("clonewatch") or {}).get("trigger_event_id")))
        for key in _names(alert):
            if key in day.benign:
                benign.add(key)
            elif key in day.accomplices:
                accomplices.add(key)
            elif (name := day.owner.get(key)) is not None:
                named.setdefault(name, set()).add(key)
                if trigger is not None:
                    q = bisect.bisect_right(positions[name], trigger)
                    first[name] = min(first.get(name, q), q)
    outcomes = []
    for name, keys in day.keys_used().items():
        hit = len(named.get(name, set()) & set(keys))
        caught = bool(keys) and 2 * hit >= len(keys)
        outcomes.append(
            AttackerOutcome(
                name=name,
                keys=len(keys),
                queries=len(positions.get(name, [])),
                keys_named=hit,
                caught=caught,
                queries_to_alert=first.get(name) if caught else None,
            )
        )
    return RedteamRow(
        evasion=evasion,
        attackers=outcomes,
        benign_clients=len(day.benign),
        benign_flagged=len(benign),
        accomplices=len(day.accomplices),
        accomplices_flagged=len(accomplices),
        benign_flagged_keys=sorted(benign),
        events=len(day.events),
    )


def _replay(day: Day, config: EngineConfig) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Alerts, dead letters and their reasons of one replay of the day."""
    result = replay_lines(
        (orjson.dumps(e) for e in day.events), engine=Engine(config), source="redteam"
    )
    s = result.summary
    return result.alerts, s.dead_letters, dict(s.dead_letter_reasons)


def _adaptive(
    day: Day, rng: np.random.Generator, config: EngineConfig
) -> tuple[Day, list[dict[str, Any]], int, dict[str, int]]:
    """Run the threshold learner against the engine: the day is rewritten as it replays.

    Before each attack query every earlier event has been scored, so the attacker decides
    its key on what the gateway would have told it by then.
    """
    from clonewatch.sim.evasions import ThresholdLearner, rewrite_key  # noqa: PLC0415

    learner = ThresholdLearner(rng)
    sense = LEVEL_ORDER[level_name(learner.sense)]
    engine = Engine(config)
    pending: list[QueryEvent] = []
    alerts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}

    def flush() -> None:
        for out in engine.process_batch(pending):
            if isinstance(out, Alert):
                doc = out.to_dict()
                alerts.append(doc)
                if _rank(doc) >= sense:
                    for key in _names(doc):
                        learner.noticed(key)
        pending.clear()

    for e in day.events:
        name = day.owner.get(e["client_id"])
        if name is not None:
            flush()
            e = rewrite_key(e, learner.key_for(name, e["client_id"]))  # noqa: PLW2901
        events.append(e)
        decoded = decode_event(orjson.dumps(e))
        if isinstance(decoded, QueryEvent):
            pending.append(decoded)
        else:
            reason = decoded.reason.split(":")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
        if len(pending) >= 256:
            flush()
    flush()
    owner = {key: day.owner[orig] for key, orig in learner.owner.items()}
    return day.replace(events, owner), alerts, sum(reasons.values()), reasons


def load_day(
    seed: int, scale: float, workdir: Path, day: tuple[Path, Path] | None = None
) -> tuple[Day, Answer]:
    """Simulate the day into ``workdir`` (or read ``day``: a log and truth the simulator
    wrote for this seed); the day and the victims' answer function."""
    from clonewatch.sim import simulate  # noqa: PLC0415 - heavy (scikit-learn)
    from clonewatch.sim.evasions import Day  # noqa: PLC0415
    from clonewatch.sim.victims import build_victims  # noqa: PLC0415

    if day is None:
        log_path, truth_path = workdir / "queries.jsonl", workdir / "truth.json"
        simulate(log_path, truth_path, seed=seed, scale=scale)
    else:
        log_path, truth_path = day
    events: list[dict[str, Any]] = []
    opener = gzip.open if log_path.suffix == ".gz" else open
    with opener(log_path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    events.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{log_path}:{lineno}: not JSON ({exc})") from exc
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{truth_path}: not JSON ({exc})") from exc
    victims = build_victims(seed)

    def answer(
        model_id: str, x: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return victims[model_id].query(x)

    return Day.from_truth(events, truth), answer


def evasion_names() -> list[str]:
    """Every evasion the harness knows, in table order."""
    from clonewatch.sim.evasions import catalogue  # noqa: PLC0415

    return [*catalogue(lambda m, x: (x, x)), ADAPTIVE]


def run_evasion(
    name: str,
    day: Day,
    answer: Answer,
    *,
    seed: int = DEFAULT_SEED,
    flag_level: str = "high",
    config: EngineConfig | None = None,
) -> RedteamRow:
    """Apply one evasion to the day, replay it through a fresh engine and score it.

    Python warnings the engine raises while replaying (overflow on huge inputs) are
    counted in the row, not raised.
    """
    from clonewatch.sim.common import rng_for  # noqa: PLC0415
    from clonewatch.sim.evasions import catalogue  # noqa: PLC0415

    config = config or EngineConfig()
    t0 = time.perf_counter()
    rng = rng_for(seed, "redteam", name)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always")
        if name == ADAPTIVE:
            played, alerts, dead, reasons = _adaptive(day, rng, config)
        else:
            played = catalogue(answer)[name](day, rng)
            alerts, dead, reasons = _replay(played, config)
    row = score(played, alerts, evasion=name, flag_level=flag_level)
    row.dead_letters, row.dead_letter_reasons = dead, reasons
    row.engine_warnings = dict(Counter(f"{w.category.__name__}: {w.message}" for w in caught))
    row.seconds = time.perf_counter() - t0
    return row


_LOADED: dict[tuple[int, Path, Path], tuple[Day, Answer]] = {}  # a worker's day, read once


def _run_in_worker(
    name: str, seed: int, paths: tuple[Path, Path], flag_level: str, config: EngineConfig
) -> RedteamRow:
    """One evasion in a worker process, which reads the simulated day once."""
    key = (seed, *paths)
    if key not in _LOADED:
        _LOADED[key] = load_day(seed, 1.0, paths[0].parent, paths)
    day, answer = _LOADED[key]
    return run_evasion(name, day, answer, seed=seed, flag_level=flag_level, config=config)


def run_redteam(
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    *,
    only: Sequence[str] | None = None,
    flag_level: str = "high",
    config: EngineConfig | None = None,
    day: tuple[Path, Path] | None = None,
    jobs: int = 1,
) -> list[RedteamRow]:
    """Simulate the day once, apply each evasion (``only``: these), replay and score each.

    ``day``: the log and truth of an earlier ``clonewatch simulate`` of this seed and scale,
    read instead of simulating again. ``jobs`` > 1 replays that many evasions at a time in
    worker processes (each engine is single-core). Rows come back in the order asked.
    """
    config = config or EngineConfig()
    level_name(flag_level)
    known = evasion_names()
    chosen = known if not only else list(only)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ValueError(f"unknown evasion(s): {', '.join(unknown)}; known: {', '.join(known)}")
    rows: dict[str, RedteamRow] = {}

    def done(row: RedteamRow) -> None:
        rows[row.evasion] = row
        log.info(
            "redteam_evasion",
            evasion=row.evasion,
            caught=row.caught,
            attackers=len(row.attackers),
            benign_flagged=row.benign_flagged,
            dead_letters=row.dead_letters,
            warnings=sum(row.engine_warnings.values()),
            seconds=round(row.seconds, 1),
        )

    with tempfile.TemporaryDirectory(prefix="clonewatch-redteam-") as tmp:
        started = time.perf_counter()
        if day is None and jobs > 1:  # the workers read the day from files
            from clonewatch.sim import simulate  # noqa: PLC0415 - heavy (scikit-learn)

            day = (Path(tmp) / "queries.jsonl", Path(tmp) / "truth.json")
            simulate(day[0], day[1], seed=seed, scale=scale)
        the_day, answer = load_day(seed, scale, Path(tmp), day)
        log.info("redteam_day", seed=seed, scale=scale, events=len(the_day.events),
                 seconds=round(time.perf_counter() - started, 1))  # fmt: skip
        with progress("redteam", total=len(chosen), unit="evasion") as advance:
            if jobs <= 1 or day is None:
                for name in chosen:
                    done(run_evasion(name, the_day, answer, seed=seed,
                                     flag_level=flag_level, config=config))  # fmt: skip
                    advance(1)
            else:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                    futures = [
                        pool.submit(_run_in_worker, name, seed, day, flag_level, config)
                        for name in chosen
                    ]
                    for future in as_completed(futures):
                        done(future.result())
                        advance(1)
    return [rows[name] for name in chosen]


def format_table(rows: Sequence[RedteamRow], *, detail: bool = False) -> str:
    """The rows as a fixed-width table (``detail``: each attacker's line under its evasion)."""
    out = [
        f"{'evasion':33s} {'caught':>6s} {'q@alert':>8s} {'benign flagged':>14s} "
        f"{'rate':>7s} {'keys':>6s} {'events':>7s} {'dead':>5s}"
    ]
    for r in rows:
        median = r.median_queries_to_alert
        q = "never" if math.isinf(median) else f"{median:g}"
        keys = sum(a.keys for a in r.attackers)
        out.append(
            f"{r.evasion:33s} {f'{r.caught}/{len(r.attackers)}':>6s} {q:>8s} "
            f"{f'{r.benign_flagged}/{r.benign_clients}':>14s} {r.benign_flag_rate:7.2%} "
            f"{keys:6d} {r.events:7d} {r.dead_letters:5d}"
        )
        if detail:
            for a in r.attackers:
                qa = "-" if a.queries_to_alert is None else str(a.queries_to_alert)
                out.append(
                    f"    {a.name:26s} {'yes' if a.caught else 'no':>6s} {qa:>8s} "
                    f"keys named {a.keys_named}/{a.keys}, {a.queries} queries"
                )
            if r.benign_flagged_keys:
                out.append(f"    benign flagged: {', '.join(r.benign_flagged_keys)}")
    return "\n".join(out)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the redteam sub-command."""
    p = sub.add_parser(
        "redteam",
        help="replay a simulated day under each evasion of issue 17 and score detection",
        description="Simulate one day, apply each evasion (warm-up poisoning, dimension "
        "hijack, model hop, dilution, key rotation, ...), replay each through the engine "
        "in-process and print attackers caught, median queries to first alert and benign "
        "clients flagged per evasion.",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="simulation seed (default 3)")
    p.add_argument("--scale", type=float, default=1.0, help="benign traffic scale (default 1.0)")
    p.add_argument(
        "--only", action="append", metavar="EVASION", help="run only this evasion (repeatable)"
    )
    p.add_argument(
        "--flag-level",
        choices=("low", "moderate", "high", "critical"),
        default="high",
        help="lowest alert level that flags a key (default high)",
    )
    p.add_argument(
        "--day",
        nargs=2,
        type=Path,
        metavar=("LOG", "TRUTH"),
        help="use this simulated day (clonewatch simulate --seed SEED output) instead of "
        "simulating it again",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="evasions replayed at a time (worker processes)"
    )
    p.add_argument("--detail", action="store_true", help="also print each attacker's line")
    p.add_argument("--list", action="store_true", help="list the evasions and exit")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write the rows as JSON")
    p.set_defaults(func=run_redteam_command)


def run_redteam_command(args: argparse.Namespace) -> int:
    """Run the harness and print the table."""
    require("sim", *SIM_MODULES)
    if args.list:
        print("\n".join(evasion_names()))
        return 0
    if not args.scale > 0:
        raise CommandError("--scale must be a positive number", 2)
    try:
        rows = run_redteam(
            args.seed,
            args.scale,
            only=args.only,
            flag_level=args.flag_level,
            day=None if args.day is None else (args.day[0], args.day[1]),
            jobs=max(1, args.jobs),
        )
    except (OSError, EOFError) as exc:
        raise CommandError(f"cannot read the day: {exc}", 1) from exc
    except ValueError as exc:
        raise CommandError(str(exc), 1) from exc
    print(format_table(rows, detail=args.detail))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            doc = {"seed": args.seed, "scale": args.scale, "rows": [r.to_dict() for r in rows]}
            args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {args.json}: {exc.strerror or exc}", 1) from exc
    return 0
