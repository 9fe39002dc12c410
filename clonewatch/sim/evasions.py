"""Evasions of issue 17: what an attacker who has read ``detectors/`` does to a simulated day.

Each evasion is a pure, seeded function ``(day, rng) -> day`` over the day's events (the
simulator's QueryEvent v1 dicts, in log order): it never changes the events it is given, only
returns new lists, and it keeps track of which API keys each attacker ends up using, so that
the red-team harness (``clonewatch redteam``) can score "caught" as alerts naming at least half
of them. Events an evasion injects under keys that are neither benign nor an attacker's (a
poisoner's) are *accomplices*: scored apart, never counted as benign.

>>> day = Day.of([
...     _event("e1", 0.0, "alice", "m", [1.0, 2.0]),
...     _event("e2", 1.0, "eve", "m", [3.0, 4.0]),
... ], {"eve": "eve"}, {"alice"})
>>> hopped = poison(day, np.random.default_rng(0), value=1e20)
>>> [e["client_id"] for e in hopped.events], hopped.events[0]["features"]
(['warmup-poisoner', 'alice', 'eve'], [1e+20, 1e+20])
>>> len(day.events)  # the input day is untouched
2

The ``threshold learner`` needs the engine's answers while it runs, so it is a small state
machine (:class:`ThresholdLearner`) that the harness drives, not a function of the day alone.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clonewatch.sim.benign import random_ip
from clonewatch.sim.common import DAY_SECONDS, HOUR, INPUT_DECIMALS

Event = dict[str, Any]
Floats = NDArray[np.float64]
#: Answers a batch of inputs to a model as the API does: (canonical inputs, probabilities).
Answer = Callable[[str, Floats], tuple[Floats, Floats]]

POISONER = "warmup-poisoner"
HIJACKER = "shape-hijacker"
#: User agents a many-network attacker draws from (attack tools and ordinary browsers alike).
AGENTS = (
    "python-requests/2.31.0",
    "curl/8.5.0",
    "python-httpx/0.27.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
    "PixelPal/3.2.1 (iPhone; iOS 17.4)",
    "okhttp/4.12.0",
)


# ---------------------------------------------------------------------- the day


@dataclass(frozen=True)
class Day:
    """A simulated day as the red team sees it: events in log order and who is who.

    ``owner`` maps every attacker key to its attacker's name (one attacker may use many
    keys); ``benign`` holds the honest keys; ``accomplices`` the keys an evasion added that
    belong to no attacker of the truth (their alerts are reported apart).
    """

    events: tuple[Event, ...]
    owner: Mapping[str, str]
    benign: frozenset[str]
    accomplices: frozenset[str] = frozenset()
    attackers: tuple[str, ...] = field(default=())

    @classmethod
    def of(
        cls,
        events: Iterable[Event],
        owner: Mapping[str, str],
        benign: Iterable[str],
        accomplices: Iterable[str] = (),
    ) -> Day:
        """A day from its events, attacker keys (key -> attacker name) and benign keys."""
        names = tuple(dict.fromkeys(owner.values()))
        return cls(tuple(events), dict(owner), frozenset(benign), frozenset(accomplices), names)

    @classmethod
    def from_truth(cls, events: Iterable[Event], truth: Mapping[str, Any]) -> Day:
        """A day from the simulator's events and its ``truth.json`` document."""
        owner: dict[str, str] = {}
        for name, attacker in (truth.get("attackers") or {}).items():
            for member in attacker.get("members") or [name]:
                owner[str(member)] = str(name)
        clients = truth.get("clients") or {}
        for cid, c in clients.items():
            if c.get("role") == "attacker" and cid not in owner:
                owner[str(cid)] = str(c.get("campaign") or cid)
        benign = {str(cid) for cid, c in clients.items() if c.get("role") == "benign"}
        return cls.of(events, owner, benign)

    def replace(
        self,
        events: Iterable[Event],
        owner: Mapping[str, str] | None = None,
        accomplices: Iterable[str] = (),
        benign: Iterable[str] = (),
    ) -> Day:
        """The same cast with other events (new attacker keys, accomplices and honest keys
        added)."""
        merged = dict(self.owner) if owner is None else dict(self.owner) | dict(owner)
        return Day(
            tuple(events),
            merged,
            self.benign | frozenset(benign),
            self.accomplices | frozenset(accomplices),
            self.attackers,
        )

    def attacker_of(self, event: Event) -> str | None:
        """The attacker an event belongs to (None: a benign or accomplice event)."""
        return self.owner.get(event["client_id"])

    def keys_used(self) -> dict[str, list[str]]:
        """Each attacker's keys that sent at least one event, in order of first use."""
        out: dict[str, dict[str, None]] = {name: {} for name in self.attackers}
        for e in self.events:
            name = self.owner.get(e["client_id"])
            if name is not None:
                out.setdefault(name, {})[e["client_id"]] = None
        return {name: list(keys) for name, keys in out.items()}


Evasion = Callable[[Day, np.random.Generator], Day]


# ---------------------------------------------------------------------- small helpers


def seconds(event: Event) -> float:
    """An event's timestamp as epoch seconds (RFC 3339 string or a number)."""
    ts = event["timestamp"]
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()


def stamp(epoch: float) -> str:
    """Epoch seconds as the simulator writes them: RFC 3339, milliseconds, ``Z``.

    >>> stamp(1761955200.25)
    '2025-11-01T00:00:00.250Z'
    """
    ms = round(epoch * 1000.0)
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _event_id(rng: np.random.Generator) -> str:
    hi, lo = (int(v) for v in rng.integers(0, 2**63, size=2, dtype=np.int64))
    return str(uuid.UUID(int=(hi << 64) | lo, version=4))


def _key(rng: np.random.Generator) -> str:
    return "key-" + "".join(f"{int(b):02x}" for b in rng.integers(0, 256, size=6))


def _event(event_id: str, epoch: float, client: str, model: str, features: list[float]) -> Event:
    """A minimal event (doctests and tests)."""
    return {
        "event_id": event_id,
        "timestamp": stamp(epoch),
        "client_id": client,
        "model_id": model,
        "features": features,
    }


def _first_per_model(events: Sequence[Event]) -> dict[str, Event]:
    first: dict[str, Event] = {}
    for e in events:
        first.setdefault(e["model_id"], e)
    return first


def _merge_by_time(kept: Sequence[Event], moved: Sequence[Event]) -> list[Event]:
    """``moved`` (sorted here by time) merged into ``kept`` without reordering ``kept``."""
    moved_sorted = sorted(moved, key=seconds)
    return list(heapq.merge(kept, moved_sorted, key=seconds))


def _retimed(event: Event, epoch: float) -> Event:
    return event | {"timestamp": stamp(epoch)}


# ---------------------------------------------------------------------- evasions


def identity(day: Day, rng: np.random.Generator) -> Day:
    """No evasion: the day as simulated."""
    return day


def poison(day: Day, rng: np.random.Generator, *, value: float = 1e20) -> Day:
    """Warm-up poisoning: one event per model at the log's start, every feature ``value``.

    The events come from one key (:data:`POISONER`) a second before the first event of the
    day, with the model's dimension and the first event's answer.
    """
    start = min(seconds(e) for e in day.events) - 1.0
    injected = [
        first | {
            "event_id": _event_id(rng),
            "timestamp": stamp(start + 0.001 * i),
            "client_id": POISONER,
            "features": [value] * len(first.get("features") or [0.0]),
            "source_ip": random_ip(rng),
            "user_agent": "python-requests/2.31.0",
            "labels": {"tenant": f"tenant-{POISONER}"},
        }
        for i, first in enumerate(_first_per_model(day.events).values())
    ]  # fmt: skip
    return day.replace([*injected, *day.events], accomplices=[POISONER])


def dimension_hijack(day: Day, rng: np.random.Generator) -> Day:
    """The first event per model has one feature too many (sent by :data:`HIJACKER`)."""
    start = min(seconds(e) for e in day.events) - 1.0
    injected = [
        first | {
            "event_id": _event_id(rng),
            "timestamp": stamp(start + 0.001 * i),
            "client_id": HIJACKER,
            "features": [*(first.get("features") or []), 0.0],
            "source_ip": random_ip(rng),
            "user_agent": "curl/8.5.0",
            "labels": {"tenant": f"tenant-{HIJACKER}"},
        }
        for i, first in enumerate(_first_per_model(day.events).values())
    ]  # fmt: skip
    return day.replace([*injected, *day.events], accomplices=[HIJACKER])


def model_hop(day: Day, rng: np.random.Generator, *, every: int = 4, decoys: int = 8) -> Day:
    """After every ``every``-th query of each attacker key, the same input to ``decoys``
    other model ids (ids no one else uses, the same for all of one attacker's keys), a
    millisecond apart."""
    decoy_ids = {
        name: [f"model-{int(v):08x}" for v in rng.integers(0, 2**32, size=decoys)]
        for name in day.attackers
    }
    count: Counter[str] = Counter()
    out: list[Event] = []
    for e in day.events:
        out.append(e)
        name = day.attacker_of(e)
        if name is None:
            continue
        count[e["client_id"]] += 1
        if count[e["client_id"]] % every:
            continue
        t = seconds(e)
        out.extend(
            e | {"event_id": _event_id(rng), "timestamp": stamp(t + 0.001 * (j + 1)), "model_id": m}
            for j, m in enumerate(decoy_ids[name])
        )
    return day.replace(out)


def dilution(day: Day, rng: np.random.Generator, *, k: int = 4) -> Day:
    """Each attack query hidden among ``k`` natural queries of the same model, same key.

    The natural queries are benign clients' inputs to that model (with the answers they
    got), drawn at random, sent at random times between the key's previous query and this
    one (at most a minute before it), so the key's pace is k + 1 times its own.
    """
    pool: dict[str, list[Event]] = {}
    for e in day.events:
        if e["client_id"] in day.benign:
            pool.setdefault(e["model_id"], []).append(e)
    last: dict[str, float] = {}
    added: list[Event] = []
    for e in day.events:
        if day.attacker_of(e) is None:
            continue
        natural = pool.get(e["model_id"])
        t = seconds(e)
        prev = last.get(e["client_id"], t - 60.0)
        last[e["client_id"]] = t
        if not natural:
            continue
        lo = min(max(prev, t - 60.0), t)  # an out-of-order query: its padding just before
        times = np.sort(rng.uniform(lo, t, size=k))
        for when, j in zip(
            times.tolist(), rng.integers(0, len(natural), size=k).tolist(), strict=True
        ):
            src = natural[j]
            added.append(
                e | {
                    "event_id": _event_id(rng),
                    "timestamp": stamp(when),
                    "features": src.get("features"),
                    "output": src.get("output"),
                }
            )  # fmt: skip
    return day.replace(_merge_by_time(day.events, added))


def key_rotation(
    day: Day,
    rng: np.random.Generator,
    *,
    every: int = 12,
    new_networks: bool = False,
    one_account: bool = False,
) -> Day:
    """A new API key (and tenant) every ``every`` queries of each attacker key.

    The source address and user agent stay those of the original key unless
    ``new_networks``: then each new key comes from an address in a fresh /24 with a user
    agent drawn from :data:`AGENTS`. ``one_account``: the new keys are created under the
    attacker's one account (the gateway labels them with its tenant), not a new sign-up each.
    """
    current: dict[str, tuple[str, int, str | None, str | None]] = {}
    owner: dict[str, str] = {}
    out: list[Event] = []
    for e in day.events:
        name = day.attacker_of(e)
        if name is None:
            out.append(e)
            continue
        orig = e["client_id"]
        key, used, ip, agent = current.get(orig, (orig, 0, e.get("source_ip"), e.get("user_agent")))
        if used >= every:
            key, used = _key(rng), 0
            if new_networks:
                ip, agent = random_ip(rng), str(rng.choice(AGENTS))
            owner[key] = name
        current[orig] = (key, used + 1, ip, agent)
        tenant = orig if one_account else key
        if key == orig:
            out.append(e)
            continue
        out.append(
            e | {
                "client_id": key,
                "source_ip": ip,
                "user_agent": agent,
                "labels": {**(e.get("labels") or {}), "tenant": f"tenant-{tenant}"},
            }
        )  # fmt: skip
    return day.replace(out, owner)


def mimic_timing(day: Day, rng: np.random.Generator) -> Day:
    """Each attacker key re-timed with the gaps of the busiest benign clients of its model.

    The gaps are resampled from those of the three benign keys with the most queries to
    the model (integrations and batch jobs), starting at the key's first query.
    """
    times: dict[str, list[float]] = {}
    models: dict[str, str] = {}
    for e in day.events:
        if e["client_id"] in day.benign:
            times.setdefault(e["client_id"], []).append(seconds(e))
            models[e["client_id"]] = e["model_id"]
    gaps: dict[str, Floats] = {}
    for model in set(models.values()):
        busiest = sorted((c for c in times if models[c] == model), key=lambda c: -len(times[c]))
        chosen = [np.diff(np.sort(times[c])) for c in busiest[:3]]
        g = np.concatenate(chosen) if chosen else np.ones(1)
        gaps[model] = g[g > 0] if (g > 0).any() else np.ones(1)
    kept: list[Event] = []
    moved: list[Event] = []
    clock: dict[str, float] = {}
    for e in day.events:
        if day.attacker_of(e) is None:
            kept.append(e)
            continue
        key = e["client_id"]
        g = gaps.get(e["model_id"], np.ones(1))
        t = clock[key] + float(g[int(rng.integers(len(g)))]) if key in clock else seconds(e)
        clock[key] = t
        moved.append(_retimed(e, t))
    return day.replace(_merge_by_time(kept, moved))


@dataclass(frozen=True)
class _Ranges:
    """What benign traffic to one model shows of each feature: range, spread, integrality."""

    lo: Floats
    hi: Floats
    sd: Floats
    integer: bool

    def natural(self, x: Floats) -> Floats:
        """Inputs moved back into the benign range (integers where benign ones are)."""
        out = np.clip(x, self.lo, self.hi)
        return np.round(out) if self.integer else np.round(out, INPUT_DECIMALS)


def _benign_ranges(day: Day) -> dict[str, _Ranges]:
    rows: dict[str, list[list[float]]] = {}
    for e in day.events:
        if e["client_id"] in day.benign and e.get("features"):
            rows.setdefault(e["model_id"], []).append(e["features"])
    out = {}
    for model, xs in rows.items():
        if len({len(r) for r in xs}) != 1:
            continue  # benign traffic of several shapes: no one range
        x = np.asarray(xs, dtype=np.float64)
        integer = bool(np.all(x == np.round(x)))
        out[model] = _Ranges(x.min(axis=0), x.max(axis=0), x.std(axis=0), integer)
    return out


def _answer_into(
    events: list[Event], at: Sequence[int], x: Floats, model: str, answer: Answer
) -> None:
    """Replace the inputs of ``events[at]`` by ``x`` and their outputs by the model's answers."""
    xc, probs = answer(model, x)
    for i, xi, p in zip(at, xc.tolist(), probs, strict=True):
        events[i] = events[i] | {"features": xi, "output": _output(p)}


def jitter(day: Day, rng: np.random.Generator, *, answer: Answer, scale: float = 0.25) -> Day:
    """Gaussian noise of ``scale`` x each feature's benign spread on every attack input, so
    that successive queries no longer differ by small systematic steps; the inputs are
    clipped to the range benign traffic shows and answered by the model again."""
    ranges = _benign_ranges(day)
    idx: dict[str, list[int]] = {}
    for i, e in enumerate(day.events):
        if day.attacker_of(e) is not None and e["model_id"] in ranges and e.get("features"):
            idx.setdefault(e["model_id"], []).append(i)
    events = list(day.events)
    for model, at in idx.items():
        r = ranges[model]
        x = np.asarray([events[i]["features"] for i in at], dtype=np.float64)
        if x.shape[1] != r.lo.shape[0]:
            continue
        noisy = np.clip(x + rng.normal(size=x.shape) * (scale * r.sd), r.lo, r.hi)
        _answer_into(events, at, np.round(noisy, INPUT_DECIMALS), model, answer)
    return day.replace(events)


def _output(probs: Floats) -> dict[str, Any]:
    label = int(np.argmax(probs))
    return {"label": label, "confidence": float(probs[label]), "probabilities": probs.tolist()}


def label_only(day: Day, rng: np.random.Generator) -> Day:
    """The attackers ask for labels only: their events carry no confidence or probabilities."""
    out = []
    for e in day.events:
        output = e.get("output")
        if day.attacker_of(e) is None or not output:
            out.append(e)
        else:
            out.append(e | {"output": {"label": output.get("label")}})
    return day.replace(out)


def outputs_removed(day: Day, rng: np.random.Generator) -> Day:
    """A gateway that logs no answers: no event of the day (benign ones too) has an output."""
    return day.replace([{k: v for k, v in e.items() if k != "output"} for e in day.events])


def slow_days(day: Day, rng: np.random.Generator, *, days: int = 3) -> Day:
    """Slow and low over ``days`` days: each attacker key spreads its queries evenly over all
    of them, while the benign clients come back every day.

    A returning client queries at the times of its first day, with the inputs (and answers)
    another benign client of the same model and user agent sent on the first day, the d-th
    next one on day d (any client of the model when it has no such peer): new natural inputs
    of the same kind. Its own first-day inputs again would look like a client revisiting its
    own queries, which honest clients do not do day after day.
    """
    start = min(seconds(e) for e in day.events)
    start = start - (start % DAY_SECONDS)
    kept: list[Event] = []
    attack: dict[str, list[Event]] = {}
    sent: dict[str, list[Event]] = {}
    for e in day.events:
        if day.attacker_of(e) is None:
            kept.append(e)
            if e["client_id"] in day.benign:
                sent.setdefault(e["client_id"], []).append(e)
        else:
            attack.setdefault(e["client_id"], []).append(e)
    peers: dict[tuple[str, str], list[str]] = {}
    models: dict[str, list[str]] = {}
    for key, evs in sorted(sent.items()):
        peers.setdefault((evs[0]["model_id"], str(evs[0].get("user_agent"))), []).append(key)
        models.setdefault(evs[0]["model_id"], []).append(key)
    repeated = list(kept)
    for d in range(1, days):
        shift = d * DAY_SECONDS
        donor: dict[str, list[Event]] = {}
        for key, evs in sent.items():
            group = peers[(evs[0]["model_id"], str(evs[0].get("user_agent")))]
            if len(group) == 1:
                group = models[evs[0]["model_id"]]
            donor[key] = sent[group[(group.index(key) + d) % len(group)]]
        used: Counter[str] = Counter()
        for e in kept:
            moved_e = e | {
                "event_id": f"{e['event_id']}-d{d}",
                "timestamp": stamp(seconds(e) + shift),
            }
            src = donor.get(e["client_id"])
            if src:
                k = used[e["client_id"]]
                used[e["client_id"]] += 1
                other = src[k % len(src)]
                moved_e |= {"features": other.get("features"), "output": other.get("output")}
            repeated.append(moved_e)
    span = days * DAY_SECONDS - 2 * HOUR
    moved: list[Event] = []
    for evs in attack.values():
        n = len(evs)
        slots = start + HOUR + (np.arange(n) + rng.uniform(0.0, 1.0, size=n)) * (span / n)
        moved.extend(_retimed(e, float(t)) for e, t in zip(evs, slots.tolist(), strict=True))
    return day.replace(_merge_by_time(sorted(repeated, key=seconds), moved))


# ---------------------------------------------------------------------- adaptive attacker


@dataclass
class ThresholdLearner:
    """An attacker that learns the alert line from its own throttling.

    The gateway answers a key's alert at ``sense`` level or above with a slow-down (a graded
    response) the attacker notices: it drops that key and resumes under a fresh one from the
    same address and user agent. It also remembers the fewest queries any of its keys sent
    before being noticed, and retires later keys at ``margin`` of that count before they get
    there. The harness calls :meth:`key_for` before each attack query and :meth:`noticed`
    when an alert on a key comes back.

    >>> tl = ThresholdLearner(np.random.default_rng(0))
    >>> {tl.key_for("a", "a-0") for _ in range(10)}, tl.budget  # no throttle seen yet
    ({'a-0'}, 0)
    >>> tl.noticed("a-0")  # the 10th query was noticed: later keys send 4 at most
    >>> fresh = [tl.key_for("a", "a-0") for _ in range(8)]
    >>> len(set(fresh)), "a-0" in fresh, tl.budget
    (2, False, 4)
    """

    rng: np.random.Generator
    margin: float = 0.5
    sense: str = "moderate"
    current: dict[str, str] = field(default_factory=dict)  # original key -> key in use
    used: Counter[str] = field(default_factory=Counter)  # queries sent per key in use
    owner: dict[str, str] = field(default_factory=dict)  # every key used -> original key
    least: float = math.inf  # fewest queries a key sent before it was noticed
    retired: set[str] = field(default_factory=set)

    @property
    def budget(self) -> int:
        """Queries a fresh key may send before the attacker retires it (0: none learned)."""
        return 0 if math.isinf(self.least) else max(1, int(self.least * self.margin))

    def key_for(self, attacker: str, original: str) -> str:
        """The key the attacker's next query from ``original`` goes out under."""
        key = self.current.get(original, original)
        if key in self.retired or (self.budget and self.used[key] >= self.budget):
            self.retired.add(key)
            key = _key(self.rng)
        self.current[original] = key
        self.owner[key] = original
        self.used[key] += 1
        return key

    def noticed(self, key: str) -> None:
        """An alert at ``sense`` or above came back on ``key``: learn from it, retire it."""
        if key in self.retired or key not in self.owner:
            return
        self.least = min(self.least, float(max(self.used[key] - 1, 1)))
        self.retired.add(key)


def rewrite_key(event: Event, key: str) -> Event:
    """The event sent under ``key`` (and its own tenant), same address and user agent."""
    if event["client_id"] == key:
        return event
    return event | {
        "client_id": key,
        "labels": {**(event.get("labels") or {}), "tenant": f"tenant-{key}"},
    }


def shared_nat(
    day: Day, rng: np.random.Generator, *, per_address: int = 30, attackers_inside: bool = False
) -> Day:
    """Honest clients behind shared addresses: each tenant's keys behind one office NAT, and
    a tenant with more than ``per_address`` keys (the public app's users) split over
    carrier-grade NATs of that many keys each. Not an evasion by itself: it tests that keys
    pooled by address (:mod:`detectors.identity`) do not flag honest neighbours.

    ``attackers_inside``: each attacker key also sends from one of those shared addresses
    (an attacker hiding in a mobile carrier's NAT), so its pool mixes honest keys with its own.
    """
    tenants: dict[str, dict[str, None]] = {}  # tenant -> its keys, in order of first query
    for e in day.events:
        key = e["client_id"]
        if key in day.benign:
            tenant = (e.get("labels") or {}).get("tenant") or key
            tenants.setdefault(tenant, {})[key] = None
    address: dict[str, str] = {}
    shared: list[str] = []
    for tenant in sorted(tenants):
        keys = list(tenants[tenant])
        for start in range(0, len(keys), per_address):
            ip = random_ip(rng)
            shared.append(ip)
            for key in keys[start : start + per_address]:
                address[key] = ip
    if attackers_inside:
        for key in sorted(day.owner):
            address[key] = str(rng.choice(shared))
    out = [e | {"source_ip": address[e["client_id"]]} if e["client_id"] in address else e
           for e in day.events]  # fmt: skip
    return day.replace(out)


def one_address(day: Day, rng: np.random.Generator) -> Day:
    """Every query from one address: logs that record the gateway's or load balancer's
    address instead of the client's, so every key of every model shares one network. Not an
    evasion: it tests that pooling by address neither starves the baseline nor flags honest
    keys when the address says nothing about who sent a query."""
    ip = random_ip(rng)
    return day.replace([e | {"source_ip": ip} for e in day.events])


DRIFT_SHAPES = ("shifted", "rescaled", "class subset", "other source")
DRIFT_PREFIX = "drift-"  # the keys of drifted customers start with this


def _drifted_inputs(
    shape: str, base: Floats, labels: list[int], r: _Ranges, rng: np.random.Generator
) -> Floats:
    """Natural inputs of one model as a new customer's own data would differ from them."""
    mean = base.mean(axis=0)
    sd = np.where(r.sd > 0, r.sd, 1.0)
    if shape == "shifted":  # another site or season: every feature moved by 0.5-1 spread
        x = base + rng.choice([-1.0, 1.0], size=base.shape[1]) * rng.uniform(0.5, 1.0) * sd
    elif shape == "rescaled":  # another unit or gain: spread 0.5x or 1.7x about the mean
        x = mean + (base - mean) * float(rng.choice([0.5, 1.7]))
    elif shape == "class subset":  # a customer who only ever sees one or two classes
        classes = set(rng.choice(sorted(set(labels)), size=min(2, len(set(labels))), replace=False))
        keep = [i for i, lab in enumerate(labels) if lab in classes]
        x = base[rng.choice(keep, size=base.shape[0])] if keep else base
    else:  # other source: another sensor's response curve (gamma), and more noise
        span = np.where(r.hi > r.lo, r.hi - r.lo, 1.0)
        unit = np.clip((base - r.lo) / span, 0.0, 1.0)
        x = r.lo + span * unit ** float(rng.uniform(0.5, 0.7))
        x = x + rng.normal(size=x.shape) * 0.2 * sd
    return r.natural(x)


def drifted_customers(
    day: Day, rng: np.random.Generator, *, shape: str, answer: Answer, keys: int = 12
) -> Day:
    """New honest customers whose natural inputs differ from the model's usual traffic
    (issue 17 item 6): per model, one new tenant of ``keys`` keys from mid-morning on, each
    sending 60 to 300 of its own natural queries, drawn from the model's benign inputs and
    then ``shape``d (:data:`DRIFT_SHAPES`): shifted, rescaled, limited to one or two classes,
    or from another source. Half of the tenants sit behind one office address. Not an
    evasion: every key is benign, and flagging one throttles a paying customer."""
    ranges = _benign_ranges(day)
    pool: dict[str, list[tuple[list[float], int]]] = {}
    for e in day.events:
        if e["client_id"] in day.benign and e["model_id"] in ranges and e.get("features"):
            label = int((e.get("output") or {}).get("label") or 0)
            pool.setdefault(e["model_id"], []).append((e["features"], label))
    new: list[Event] = []
    benign: list[str] = []
    day0 = min(seconds(e) for e in day.events) // DAY_SECONDS * DAY_SECONDS
    for m, model in enumerate(sorted(pool)):
        rows = pool[model]
        r = ranges[model]
        office = random_ip(rng) if m % 2 == 0 else None
        agent = str(rng.choice(AGENTS))
        start = rng.uniform(8.0, 12.0) * HOUR
        for k in range(keys):
            key = f"{DRIFT_PREFIX}{shape.replace(' ', '-')}-{model}-{k:02d}"
            n = int(rng.integers(60, 301))
            pick = rng.integers(len(rows), size=n)
            base = np.asarray([rows[i][0] for i in pick], dtype=np.float64)
            x = _drifted_inputs(shape, base, [rows[i][1] for i in pick], r, rng)
            xc, probs = answer(model, x)
            times = np.sort(rng.uniform(start, DAY_SECONDS - 1.0, size=n))
            ip = office or random_ip(rng)
            for t, xi, p in zip(times.tolist(), xc.tolist(), probs, strict=True):
                new.append(
                    {"event_id": _event_id(rng), "timestamp": stamp(day0 + t), "client_id": key,
                     "model_id": model, "features": xi, "output": _output(p), "source_ip": ip,
                     "user_agent": agent, "labels": {"tenant": f"drift-tenant-{model}"}}
                )  # fmt: skip
            benign.append(key)
    return day.replace(_merge_by_time(day.events, new), benign=benign)


# ---------------------------------------------------------------------- the catalogue


def catalogue(answer: Answer) -> dict[str, Evasion]:
    """Every offline evasion by name, in the order the red-team table shows them."""

    def bind(fn: Callable[..., Day], **kw: Any) -> Evasion:
        def run(day: Day, rng: np.random.Generator) -> Day:
            return fn(day, rng, **kw)

        run.__doc__ = fn.__doc__
        return run

    return {
        "none": identity,
        "warm-up poisoning 1e20": bind(poison, value=1e20),
        "warm-up poisoning 1e12": bind(poison, value=1e12),
        "warm-up poisoning 1e308": bind(poison, value=1e308),
        "dimension hijack": dimension_hijack,
        "model hop (8 ids every 4th)": model_hop,
        "dilution 2:1": bind(dilution, k=2),
        "dilution 3:1": bind(dilution, k=3),
        "dilution 4:1": bind(dilution, k=4),
        "key rotation every 12": bind(key_rotation, every=12),
        "key rotation every 4": bind(key_rotation, every=4),
        "one query per key": bind(key_rotation, every=1),
        "rotation over many /24s": bind(key_rotation, every=12, new_networks=True),
        "many /24s, one account": bind(key_rotation, every=12, new_networks=True, one_account=True),
        "mimicked benign timing": mimic_timing,
        "jitter against steps": bind(jitter, answer=answer),
        "label-only outputs": label_only,
        "outputs removed (whole log)": outputs_removed,
        "slow and low over 3 days": slow_days,
        "honest clients behind shared NATs": shared_nat,
        "attackers inside a carrier NAT": bind(shared_nat, attackers_inside=True),
        "one gateway address for all": one_address,
        **{
            f"drifted customers: {shape}": bind(drifted_customers, shape=shape, answer=answer)
            for shape in DRIFT_SHAPES
        },
    }
