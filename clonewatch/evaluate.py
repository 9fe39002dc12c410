"""Evaluate alerts against a simulated log's truth, next to the PRADA baseline.

A client is *flagged* when it has an alert at ``flag_level`` or above (default
``high``). An attacker is *caught* when flagged; a campaign when at least half of
its accounts are flagged (own alerts, or named by a flagged campaign alert).
*Queries to first alert* counts the attacker's queries up to and including the
one that triggered its first flag-level alert; for a campaign, the campaign's
queries in log order over all its accounts. The surrogate fidelity reached by
then is read off the attacker's fidelity curve (a step function; below its first
point, the first point's value, which favours the attacker). Medians count an
attacker that was never caught as infinitely late.

PRADA runs on the same stream (features and ``output.label``); its first alarm
on a client is that client's flag.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clonewatch.progress import progress
from clonewatch.truth import Truth
from detectors.reference.prada import Prada
from schemas.alert import LEVEL_ORDER, RiskLevel
from schemas.query import QueryEvent, decode_event
from streams.logread import OversizeLine, read_log, read_objects

HEAVY_KINDS = ("heavy", "batch")


@dataclass
class AttackerResult:
    """How one detector did against one attacker (or campaign)."""

    name: str
    family: str
    model_id: str
    queries: int
    accounts: int
    accounts_flagged: int
    caught: bool
    queries_to_alert: int | None
    fidelity_at_alert: float | None
    final_fidelity: float | None  # None: the truth has no fidelity curve
    caught_before_90: bool | None


@dataclass
class BenignResult:
    """How one detector did on one kind of benign client."""

    kind: str
    clients: int
    flagged: int
    any_alert: int

    @property
    def flagged_share(self) -> float:
        """Share of these clients flagged."""
        return self.flagged / self.clients if self.clients else 0.0


@dataclass
class DetectorResult:
    """One detector's rows: per attacker and per benign kind."""

    detector: str
    attackers: list[AttackerResult]
    benign: list[BenignResult]

    @property
    def families_missed(self) -> list[str]:
        """Attack families with at least one attacker not caught."""
        return sorted({a.family for a in self.attackers if not a.caught})

    @property
    def every_family_caught(self) -> bool:
        """Whether every attacker of every family was caught."""
        return not self.families_missed

    @property
    def attackers_caught(self) -> int:
        """Number of attackers caught."""
        return sum(a.caught for a in self.attackers)

    @property
    def campaign_caught(self) -> bool | None:
        """Whether every multi-account campaign was caught as a campaign (None: there is none)."""
        campaigns = [a for a in self.attackers if a.accounts > 1]
        return all(a.caught for a in campaigns) if campaigns else None

    @property
    def median_queries_to_alert(self) -> float:
        """Median queries to first flag-level alert over attackers (missed: infinity)."""
        if not self.attackers:
            return math.inf
        return float(
            statistics.median(
                a.queries_to_alert if a.queries_to_alert is not None else math.inf
                for a in self.attackers
            )
        )

    @property
    def all_caught_before_90(self) -> bool | None:
        """Whether every attacker was caught before 90 % of its final fidelity (None: unknown).

        False as soon as one attacker was not; None when that is unknown for one (no curve).
        """
        flags = [a.caught_before_90 for a in self.attackers]
        if False in flags:
            return False
        return None if None in flags else True

    @property
    def benign_clients(self) -> int:
        """Number of benign clients."""
        return sum(b.clients for b in self.benign)

    @property
    def benign_flagged(self) -> int:
        """Number of benign clients flagged."""
        return sum(b.flagged for b in self.benign)

    @property
    def benign_flagged_share(self) -> float:
        """Share of benign clients flagged."""
        return self.benign_flagged / self.benign_clients if self.benign_clients else 0.0

    @property
    def benign_any_alert_share(self) -> float:
        """Share of benign clients with an alert at any level."""
        n = self.benign_clients
        return sum(b.any_alert for b in self.benign) / n if n else 0.0

    @property
    def heavy_batch_flagged(self) -> int:
        """Heavy-integration and batch clients flagged."""
        return sum(b.flagged for b in self.benign if b.kind in HEAVY_KINDS)

    def summary(self) -> dict[str, Any]:
        """The headline figures."""
        median = self.median_queries_to_alert
        return {
            "attackers_caught": self.attackers_caught,
            "attackers": len(self.attackers),
            "every_family_caught": self.every_family_caught,
            "families_missed": self.families_missed,
            "campaign_caught": self.campaign_caught,
            "median_queries_to_alert": None if math.isinf(median) else median,
            "all_caught_before_90": self.all_caught_before_90,
            "benign_clients": self.benign_clients,
            "benign_flagged": self.benign_flagged,
            "benign_flagged_share": round(self.benign_flagged_share, 6),
            "benign_any_alert_share": round(self.benign_any_alert_share, 6),
            "heavy_batch_flagged": self.heavy_batch_flagged,
        }

    def to_dict(self) -> dict[str, Any]:
        """Rows and summary as plain data."""
        return {
            "summary": self.summary(),
            "attackers": [asdict(a) for a in self.attackers],
            "benign": [
                asdict(b) | {"flagged_share": round(b.flagged_share, 6)} for b in self.benign
            ],
        }

    def format_table(self) -> str:
        """The rows as a fixed-width text table."""
        out = [
            f"{'attacker':24s} {'family':17s} {'model':13s} {'queries':>7s} {'caught':>6s} "
            f"{'q@alert':>7s} {'fid@alert':>9s} {'final':>6s} {'<90%':>4s}"
        ]
        for a in self.attackers:
            caught = "yes" if a.caught else "no"
            if a.accounts > 1:
                caught += f" {a.accounts_flagged}/{a.accounts}"
            q = "-" if a.queries_to_alert is None else str(a.queries_to_alert)
            fid = "-" if a.fidelity_at_alert is None else f"{a.fidelity_at_alert:.3f}"
            final = "-" if a.final_fidelity is None else f"{a.final_fidelity:6.3f}"
            out.append(
                f"{a.name:24s} {a.family:17s} {a.model_id:13s} {a.queries:7d} {caught:>6s} "
                f"{q:>7s} {fid:>9s} {final:>6s} {_yes(a.caught_before_90):>4s}"
            )
        out.append("")
        out.append(
            f"{'benign kind':12s} {'clients':>7s} {'flagged':>7s} {'share':>7s} {'any alert':>9s}"
        )
        out.extend(
            f"{b.kind:12s} {b.clients:7d} {b.flagged:7d} {b.flagged_share:7.2%} {b.any_alert:9d}"
            for b in self.benign
        )
        s = self.summary()
        median = (
            "never"
            if s["median_queries_to_alert"] is None
            else (f"{s['median_queries_to_alert']:g}")
        )
        out.append("")
        out.append(
            f"caught {s['attackers_caught']}/{s['attackers']} attackers"
            f" (families missed: {', '.join(s['families_missed']) or 'none'});"
            f" campaign caught: {_yes(s['campaign_caught'], 'no campaign')};"
            f" median queries to first alert: {median};"
            f" all caught before 90% of final fidelity:"
            f" {_yes(s['all_caught_before_90'], 'unknown (no fidelity curve)')}"
        )
        out.append(
            f"benign flagged {s['benign_flagged']}/{s['benign_clients']}"
            f" ({self.benign_flagged_share:.2%}), with any alert {self.benign_any_alert_share:.2%};"
            f" heavy/batch flagged: {s['heavy_batch_flagged']}"
        )
        return "\n".join(out)


@dataclass
class EvaluationReport:
    """Clonewatch's and PRADA's results on one labelled log."""

    flag_level: str
    events: int
    clonewatch: DetectorResult
    prada: DetectorResult
    extra: dict[str, Any] = field(default_factory=dict)

    def format_table(self) -> str:
        """Both tables, Clonewatch first."""
        return (
            f"== Clonewatch (flagged: alert at {self.flag_level} or above), {self.events} events\n"
            f"{self.clonewatch.format_table()}\n\n"
            f"== PRADA baseline (flagged: Shapiro-Wilk W < 0.9), same stream\n"
            f"{self.prada.format_table()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (the ``--json`` output)."""
        return {
            "flag_level": self.flag_level,
            "events": self.events,
            "clonewatch": self.clonewatch.to_dict(),
            "prada": self.prada.to_dict(),
        }


def _yes(flag: bool | None, unknown: str = "-") -> str:
    return unknown if flag is None else "yes" if flag else "no"


def read_alerts(path: Path) -> list[dict[str, Any]]:
    """Alerts from a JSONL file (gzip accepted, ``-`` for stdin); blank lines skipped.

    A line that is not a JSON object raises ``ValueError`` naming the file and line.
    """
    return list(read_objects(path))


@dataclass
class _Flag:
    """First flag-level alert and first alert of any level of one client."""

    first_any: int | None = None
    first_flag: int | None = None  # client's own query count
    first_flag_event: str | None = None
    by_campaign: bool = False  # the first flag-level alert was a campaign alert


def _step(curve: list[list[float]], q: int) -> float | None:
    if not curve:
        return None
    value = float(curve[0][1])
    for point, fid in curve:
        if point <= q:
            value = float(fid)
        else:
            break
    return value


class _Stream:
    """One pass over the log: per-client positions, campaign order, PRADA."""

    def __init__(
        self,
        log_path: Path,
        campaign_of: Mapping[str, str],
        advance: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.events = 0
        self.count: dict[str, int] = {}
        self.first_model: dict[str, str] = {}
        self.campaign_count: dict[str, int] = {}
        self.event_campaign_pos: dict[str, int] = {}
        self.member_campaign_pos: dict[str, list[int]] = {}
        self.prada = Prada()
        for _, raw in read_log(log_path):
            if isinstance(raw, OversizeLine):
                continue  # dead-lettered by the replay, as is any invalid line
            event = decode_event(raw)
            if not isinstance(event, QueryEvent):
                continue
            self.events += 1
            if self.events % 1000 == 0:
                advance(1000)
            cid = event.client_id
            self.count[cid] = self.count.get(cid, 0) + 1
            self.first_model.setdefault(cid, event.model_id)
            camp = campaign_of.get(cid)
            if camp is not None:
                pos = self.campaign_count.get(camp, 0) + 1
                self.campaign_count[camp] = pos
                self.event_campaign_pos[event.event_id] = pos
                self.member_campaign_pos.setdefault(cid, []).append(pos)
            self.prada.process(event)


def _alert_flags(
    alerts: Iterable[Mapping[str, Any]], flag_rank: int, model_of: Mapping[str, str]
) -> tuple[dict[str, _Flag], list[tuple[int, str, list[str]]]]:
    flags: dict[str, _Flag] = {}
    campaign_alerts: list[tuple[int, str, list[str]]] = []
    for alert in alerts:
        user = (alert.get("user") or {}).get("id")
        cw = alert.get("clonewatch") or {}
        level: RiskLevel = cw.get("risk_level", "none")
        rank = LEVEL_ORDER.get(level, 0)
        model = cw.get("model_id")
        queries = cw.get("queries_observed")
        trigger = cw.get("trigger_event_id")
        members = cw.get("campaign_members") or []
        if members and rank >= flag_rank:
            campaign_alerts.append((rank, str(trigger or ""), [str(m) for m in members]))
        if user is None or (model is not None and model_of.get(user, model) != model):
            continue
        f = flags.setdefault(str(user), _Flag())
        q = int(queries) if isinstance(queries, int | float) else None
        if q is not None and (f.first_any is None or q < f.first_any):
            f.first_any = q
        if rank >= flag_rank and q is not None and (f.first_flag is None or q < f.first_flag):
            f.first_flag = q
            f.first_flag_event = str(trigger) if trigger else None
            f.by_campaign = bool(cw.get("campaign_id"))
    return flags, campaign_alerts


def _result(
    detector: str,
    truth: Truth,
    stream: _Stream,
    model_of: Mapping[str, str],
    first_flag: Mapping[str, int],
    first_any: Mapping[str, int],
    campaign_alerts: list[tuple[int, str, list[str]]],
    by_campaign: frozenset[str] = frozenset(),
) -> DetectorResult:
    attackers = []
    for a in truth.attackers:
        members, curve, final = a.members, a.fidelity_curve, a.final_fidelity
        if len(members) == 1:
            q = first_flag.get(members[0])
            flagged = 1 if q is not None else 0
            caught = q is not None
        else:
            named = {m for _, _, ms in campaign_alerts for m in ms if m in members}
            flagged_set = {m for m in members if m in first_flag} | named
            flagged = len(flagged_set)
            caught = 2 * flagged >= len(members)
            positions = []
            for m in members:
                # A campaign alert is raised later than the member's own count says: its
                # trigger event's position (below) is when the campaign was caught.
                if m in first_flag and m not in by_campaign:
                    pos = stream.member_campaign_pos.get(m, [])
                    k = first_flag[m]
                    if pos:
                        positions.append(pos[min(k, len(pos)) - 1])
            for _, trigger, ms in campaign_alerts:
                if set(ms) & set(members) and trigger in stream.event_campaign_pos:
                    positions.append(stream.event_campaign_pos[trigger])
            q = min(positions) if positions and caught else None
        fid = _step(curve, q) if q is not None else None
        before_90 = None if fid is None or final is None else fid < 0.9 * final
        attackers.append(
            AttackerResult(
                name=a.name,
                family=a.family,
                model_id=a.model_id or model_of.get(members[0], "-"),
                queries=sum(stream.count.get(m, 0) for m in members)
                if a.queries is None
                else a.queries,
                accounts=len(members),
                accounts_flagged=flagged,
                caught=caught,
                queries_to_alert=q,
                fidelity_at_alert=fid,
                final_fidelity=final,
                caught_before_90=False if not caught else before_90,
            )
        )
    kinds: dict[str, BenignResult] = {}
    for cid, c in truth.clients.items():
        if c.role != "benign":
            continue
        b = kinds.setdefault(c.kind, BenignResult(c.kind, 0, 0, 0))
        b.clients += 1
        b.flagged += cid in first_flag
        b.any_alert += cid in first_any
    return DetectorResult(detector, attackers, list(kinds.values()))


def evaluate(
    log_path: Path | str,
    truth_path: Path | str,
    alerts: Iterable[Mapping[str, Any]] | None = None,
    *,
    flag_level: RiskLevel = "high",
) -> EvaluationReport:
    """Score ``alerts`` (or a replay of the log when ``None``) and PRADA against the truth."""
    log_path, truth_path = Path(log_path), Path(truth_path)
    if flag_level not in LEVEL_ORDER or flag_level == "none":
        raise ValueError(f"unknown flag level {flag_level!r}")
    try:
        truth = Truth.parse(json.loads(truth_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"truth: not JSON ({exc})") from exc
    if alerts is None:
        from streams.replay import replay_path  # noqa: PLC0415 - the engine only when needed

        with progress("evaluate: replaying") as advance:
            alerts = replay_path(log_path, on_progress=advance).alerts
    campaign_of = {m: a.name for a in truth.attackers if len(a.members) > 1 for m in a.members}
    with progress("evaluate: reading the truth's log") as advance:
        stream = _Stream(log_path, campaign_of, advance)
    model_of = {
        cid: c.model_id or stream.first_model[cid]
        for cid, c in truth.clients.items()
        if c.model_id or cid in stream.first_model
    }
    flags, campaign_alerts = _alert_flags(alerts, LEVEL_ORDER[flag_level], model_of)
    cw = _result(
        "clonewatch",
        truth,
        stream,
        model_of,
        {c: f.first_flag for c, f in flags.items() if f.first_flag is not None},
        {c: f.first_any for c, f in flags.items() if f.first_any is not None},
        campaign_alerts,
        frozenset(c for c, f in flags.items() if f.by_campaign),
    )
    prada_first = {
        c: q for (c, m), q in stream.prada.first_alarm.items() if model_of.get(c, m) == m
    }
    pr = _result("prada", truth, stream, model_of, prada_first, prada_first, [])
    return EvaluationReport(flag_level, stream.events, cw, pr)
