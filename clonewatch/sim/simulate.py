"""Write a labelled mixed query log (QueryEvent v1 JSONL) and its ground truth."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import structlog

from clonewatch.progress import progress
from clonewatch.sim import attacks
from clonewatch.sim.attacks import AttackRun
from clonewatch.sim.benign import ClientStream, benign_clients, random_ip
from clonewatch.sim.common import DAY_SECONDS, DAY_START, HOUR, rng_for
from clonewatch.sim.victims import Victim, build_victims

log = structlog.get_logger(__name__)

#: Share of events swapped with a neighbour (a few seconds apart) to arrive out of order.
OUT_OF_ORDER_SHARE = 0.01
CAMPAIGN_ACCOUNTS = 24
LATENCY_MS = {"digits-mlp": 4.0, "cancer-gbt": 2.5, "digits-logreg": 1.2}
ATTACK_AGENTS = (
    "python-requests/2.31.0",
    "curl/8.5.0",
    "python-httpx/0.27.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
)


@dataclass(frozen=True)
class AttackPlan:
    """One attacker of the log: its name, family, victim and how to run it."""

    name: str
    family: str
    model_id: str
    run: Callable[[Victim, np.random.Generator], AttackRun]
    pace: float = 1.0  # mean seconds between queries
    accounts: int = 1


PLANS: tuple[AttackPlan, ...] = (
    AttackPlan(
        "attacker-random-0",
        "uniform-random",
        "cancer-gbt",
        lambda v, r: attacks.uniform_random(v, r, 2000),
        pace=1.2,
    ),
    AttackPlan(
        "attacker-jbda-0",
        "jbda",
        "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=10, rounds=7),
        pace=1.5,
    ),
    AttackPlan(
        "attacker-knockoff-0",
        "knockoff",
        "digits-mlp",
        lambda v, r: attacks.knockoff(v, r, 2500),
        pace=1.0,
    ),
    AttackPlan(
        "attacker-activethief-0",
        "activethief",
        "digits-mlp",
        lambda v, r: attacks.activethief(v, r, 1000, out_of_domain=True),
        pace=2.0,
    ),
    AttackPlan(
        "attacker-eqsolve-0",
        "equation-solving",
        "digits-logreg",
        lambda v, r: attacks.equation_solving(v, r, 130),
        pace=3.0,
    ),
    AttackPlan(
        "attacker-linesearch-0",
        "line-search",
        "cancer-gbt",
        lambda v, r: attacks.line_search(v, r, 1500),
        pace=0.8,
    ),
    AttackPlan(
        "attacker-slow-0",
        "slow",
        "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=10, rounds=7),
        pace=60.0,
    ),
    AttackPlan(
        "campaign-a",
        "campaign",
        "digits-mlp",
        lambda v, r: attacks.knockoff(v, r, CAMPAIGN_ACCOUNTS * 100),
        pace=1.2,
        accounts=CAMPAIGN_ACCOUNTS,
    ),
)


def _attack_streams(
    plan: AttackPlan, run: AttackRun, seed: int
) -> tuple[list[ClientStream], list[str]]:
    rng = rng_for(seed, "attack-timing", plan.name)
    n = run.queries
    if plan.family == "slow":
        start = rng.uniform(1.0, 1.5) * HOUR
        gap = (DAY_SECONDS - 600.0 - start) / n
        times = start + np.arange(n) * gap + rng.uniform(-0.1, 0.1, size=n) * gap
    else:
        gaps = rng.exponential(plan.pace, size=n)
        duration = float(gaps.sum())
        latest = min(16.0 * HOUR, DAY_SECONDS - duration - 600.0)
        start = rng.uniform(1.0 * HOUR, max(latest, 1.0 * HOUR + 1.0))
        times = start + np.cumsum(gaps)
    agent = str(rng.choice(ATTACK_AGENTS))
    if plan.accounts == 1:
        stream = ClientStream(
            plan.name,
            "attacker",
            plan.family,
            plan.model_id,
            times,
            run.x,
            random_ip(rng),
            agent,
            f"tenant-{plan.name}",
            p=run.p,
        )
        return [stream], [plan.name]
    blocks = [f"{int(a)}.{int(b)}.{int(c)}" for a, b, c in rng.integers(11, 250, size=(6, 3))]
    streams = []
    members = []
    for k in range(plan.accounts):
        sel = np.arange(k, n, plan.accounts)
        member = f"{plan.name}-{k:02d}"
        members.append(member)
        ip = f"{blocks[k % len(blocks)]}.{int(rng.integers(2, 254))}"
        streams.append(
            ClientStream(
                member,
                "attacker",
                plan.family,
                plan.model_id,
                times[sel],
                run.x[sel],
                ip,
                str(rng.choice(ATTACK_AGENTS)),
                f"tenant-{member}",
                campaign=plan.name,
                p=run.p[sel],
            )
        )
    return streams, members


def _rfc3339(seconds: float) -> str:
    ms = round(seconds * 1000.0)
    dt = datetime.fromtimestamp(DAY_START + ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


@contextmanager
def _open_out(path: Path) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=5) as fh:
            yield fh
    else:
        with path.open("w", encoding="utf-8") as fh:
            yield fh


def _simulate_attack(
    plan: AttackPlan,
    victims: dict[str, Victim],
    seed: int,
    streams: list[ClientStream],
    attackers: dict[str, dict[str, Any]],
) -> None:
    """Run one attacker against its victim: its query streams and its entry in the truth."""
    run = plan.run(victims[plan.model_id], rng_for(seed, "attack", plan.name))
    made, members = _attack_streams(plan, run, seed)
    streams.extend(made)
    attackers[plan.name] = {
        "family": plan.family,
        "method": run.method,
        "model_id": plan.model_id,
        "members": members,
        "queries": run.queries,
        "fidelity_curve": run.curve,
        "final_fidelity": run.final_fidelity,
    }
    log.debug(
        "attack_simulated",
        attacker=plan.name,
        queries=run.queries,
        final_fidelity=run.final_fidelity,
    )


def simulate(
    log_path: Path,
    truth_path: Path,
    *,
    seed: int = 7,
    scale: float = 1.0,
    plans: Sequence[AttackPlan] | None = None,
) -> dict[str, Any]:
    """Simulate one day of traffic on three victims; write the log and the truth.

    ``plans`` replaces the attackers (default :data:`PLANS`, tests use cheaper ones).
    Returns a summary (events, clients, attackers with their final fidelity, seconds).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    started = time.perf_counter()
    victims = build_victims(seed)
    streams = benign_clients(victims, seed, scale)
    for model_id, victim in victims.items():
        mine = [s for s in streams if s.model_id == model_id]
        if mine:
            _, probs = victim.query(np.vstack([s.x for s in mine]))
            offsets = np.cumsum([0] + [len(s.x) for s in mine])
            for s, a, b in zip(mine, offsets[:-1], offsets[1:], strict=True):
                s.p = probs[a:b]
    attackers: dict[str, dict[str, Any]] = {}
    chosen = PLANS if plans is None else plans
    with progress("attackers (query and train a copy)", len(chosen), unit="attacker") as done:
        for plan in chosen:
            _simulate_attack(plan, victims, seed, streams, attackers)
            done(1)

    times = np.concatenate([s.times for s in streams])
    owner = np.concatenate([np.full(len(s.times), i) for i, s in enumerate(streams)])
    row = np.concatenate([np.arange(len(s.times)) for s in streams])
    times = np.round(times, 3)
    order = np.lexsort((row, owner, times))
    swaps = _swap_neighbours(order, times, rng_for(seed, "out-of-order"))
    n_events = len(order)
    id_rng = rng_for(seed, "event-ids")
    ids = id_rng.integers(0, 2**63, size=(n_events, 2), dtype=np.int64)
    lat_rng = rng_for(seed, "latency")
    latency = lat_rng.lognormal(0.0, 0.35, size=n_events)

    with _open_out(log_path) as fh, progress("simulate: writing the log", n_events) as advance:
        for i, idx in enumerate(order.tolist()):
            s = streams[owner[idx]]
            r = int(row[idx])
            assert s.p is not None  # noqa: S101 - every stream is answered above
            probs = s.p[r]
            label = int(probs.argmax())
            event = {
                "event_id": str(uuid.UUID(int=(int(ids[i, 0]) << 64) | int(ids[i, 1]), version=4)),
                "timestamp": _rfc3339(float(times[idx])),
                "client_id": s.client_id,
                "model_id": s.model_id,
                "features": s.x[r].tolist(),
                "output": {
                    "label": label,
                    "confidence": float(probs[label]),
                    "probabilities": probs.tolist(),
                },
                "source_ip": s.source_ip,
                "user_agent": s.user_agent,
                "status_code": 200,
                "latency_ms": round(LATENCY_MS[s.model_id] * float(latency[i]), 2),
                "labels": {"tenant": s.tenant},
            }
            fh.write(json.dumps(event, separators=(",", ":")))
            fh.write("\n")
            if i % 2048 == 0:
                advance(min(2048, n_events - i))

    clients: dict[str, dict[str, Any]] = {}
    for s in streams:
        clients[s.client_id] = {
            "role": s.role,
            "kind": s.kind,
            "model_id": s.model_id,
            "queries": len(s.times),
            "campaign": s.campaign,
        }
    truth = {
        "seed": seed,
        "scale": scale,
        "start": _rfc3339(0.0),
        "models": {m: v.describe() for m, v in victims.items()},
        "clients": clients,
        "attackers": attackers,
    }
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    summary = {
        "events": n_events,
        "clients": len(clients),
        "benign_clients": sum(1 for c in clients.values() if c["role"] == "benign"),
        "attacker_clients": sum(1 for c in clients.values() if c["role"] == "attacker"),
        "out_of_order": swaps,
        "attackers": {
            k: {
                "family": a["family"],
                "model_id": a["model_id"],
                "queries": a["queries"],
                "final_fidelity": a["final_fidelity"],
            }
            for k, a in attackers.items()
        },
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info(
        "simulated",
        events=n_events,
        clients=len(clients),
        seconds=summary["seconds"],
        log=str(log_path),
        truth=str(truth_path),
    )
    return summary


def _swap_neighbours(
    order: np.ndarray[Any, Any],
    times: np.ndarray[Any, Any],
    rng: np.random.Generator,
    max_gap: float = 5.0,
) -> int:
    """Swap about 1 % of events with their successor when a few seconds apart (in place)."""
    n = len(order)
    if n < 2:
        return 0
    candidates = np.flatnonzero(rng.random(n - 1) < OUT_OF_ORDER_SHARE)
    swapped = 0
    last = -2
    for i in candidates.tolist():
        if i <= last + 1:
            continue
        gap = times[order[i + 1]] - times[order[i]]
        if 0.0 < gap <= max_gap:
            order[i], order[i + 1] = order[i + 1], order[i]
            swapped += 1
            last = i
    return swapped
