"""Identity pools: the keys one source sends from, scored together as one client.

An attacker who rotates API keys (a fresh key every few queries, or for every query) keeps
each key below the alert floor: no key sends enough for its own evidence to add up. What
it cannot change as cheaply as a key is where it sends from. This module pools the *young*
keys of one source, that is the first ``pool_young_queries`` queries each key sends to a
model, by the source's network: the IPv4 /24 or the IPv6 /64 of ``source_ip``, or a TLS
client fingerprint label (``ja3``, ``ja4``, ``tls_fingerprint``) when the gateway sets one.
A pool becomes *active* once ``pool_min_keys`` distinct young keys were seen from it within
``pool_window_s`` seconds. From then on the engine scores each young key's query a second
time, as a query of the pool: the pool is a client of its own, with the same signals and
the same calibration against the model's population, so the queries of many small keys add
up exactly as those of one key would. When the pool's risk reaches ``high``, every key of
the pool is alerted (a campaign alert naming all pooled keys), and so is each young key
that joins it later.

Honest clients behind one address (a corporate NAT, a mobile carrier's CGNAT) pool too,
and that is safe for the reason the engine is: their pooled queries are natural traffic,
which the signals are calibrated not to flag, whoever sends it. Volume is not scored for a
pool (a NAT is loud by nature), and a pool never teaches the baseline: its keys teach as
themselves, and not once one of their pools looks like extraction. Keys that send more
than ``pool_young_queries`` queries to a model stop feeding its pools: a long-lived key
builds evidence on its own, and a busy honest office does not pile up in one pool.

Bounded: at most ``max_pools`` pools (the least recently used of the 16 oldest with the
lowest risk goes, so a flood of one-off sources cannot evict a pool that holds evidence),
and at most ``pool_max_members`` keys per pool (the longest quiet go first).

>>> cfg = EngineConfig(pool_min_keys=3)
>>> pools = IdentityPools(cfg)
>>> network("203.0.113.77"), network("2001:db8:1:2:3::9"), network("not an address")
('203.0.113.0/24', '2001:db8:1:2::/64', None)
>>> [len(pools.observe(f"k{i}", "203.0.113.9", None, "app/1", n=1, ts=float(i))) for i in range(4)]
[0, 0, 2, 2]
>>> [(p.basis, p.agent, p.keys(10.0)) for p in pools.observe("k9", "203.0.113.200", None,
...                                                             "curl/8", n=1, ts=10.0)]
[('203.0.113.0/24', None, ['k0', 'k1', 'k2', 'k3', 'k9'])]
>>> pools.observe("k9", "203.0.113.200", None, "curl/8", n=40, ts=11.0)  # no longer young
[]
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from detectors.config import EngineConfig
from detectors.state import ClientState

#: Labels a gateway may set with the client's TLS fingerprint: pooled like a network.
FINGERPRINT_LABELS = ("ja4", "ja3", "tls_fingerprint")
#: Labels naming the account a key belongs to: its keys are pooled too, wherever they send from.
ACCOUNT_LABELS = ("tenant", "org", "organization", "account")
#: The pool of every source's young keys that already sent a suspicious query.
EVERYONE = "everyone"
_EVICT_SCAN = 16  # oldest pools considered when one must go
_NETWORKS_CACHE = 65_536  # addresses whose network is remembered


def network(address: str) -> str | None:
    """The IPv4 /24 or IPv6 /64 an address belongs to (``None``: not an address)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if ip.version == 4:
        return str(ipaddress.ip_network(f"{ip}/24", strict=False))
    mapped = ip.ipv4_mapped
    if mapped is not None:
        return str(ipaddress.ip_network(f"{mapped}/24", strict=False))
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def binomial_surprise(hits: int, n: int, p: float) -> float:
    """-log P(X >= hits) for X ~ Binomial(n, p): how unlikely a key's suspicious queries are.

    >>> round(binomial_surprise(1, 1, 0.05), 2), round(binomial_surprise(1, 30, 0.05), 2)
    (3.0, 0.24)
    >>> binomial_surprise(0, 10, 0.05)
    0.0
    """
    if hits <= 0:
        return 0.0
    hits = min(hits, n)
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p
        + (n - j) * log_q
        for j in range(hits, n + 1)
    ]  # fmt: skip
    top = max(terms)
    return max(0.0, -(top + math.log(sum(math.exp(t - top) for t in terms))))


def _account(labels: Mapping[str, str] | None) -> str | None:
    """The account label of an event (the first of :data:`ACCOUNT_LABELS` it carries)."""
    if labels:
        for name in ACCOUNT_LABELS:
            value = labels.get(name)
            if value:
                return f"{name}={value[:128]}"
    return None


def pool_key(kind: str, basis: str, agent: str | None) -> str:
    """The key a pool is held under: its source, and its user agent if it has one."""
    return f"{kind}|{basis}" if agent is None else f"{kind}|{basis}|{agent}"


class Member:
    """A key of a pool: when it was last seen, its pooled queries and how many of them were
    suspicious, and the highest level it was alerted at per model."""

    __slots__ = ("alerted", "hits", "implicated", "last_ts", "seen")

    def __init__(self, last_ts: float) -> None:
        self.last_ts = last_ts
        self.seen = 0  # queries scored in the pool
        self.hits = 0  # ...that landed in the tail of the model's benign traffic
        self.implicated = False  # its own share of suspicious queries is unlikely for a benign key
        self.alerted: dict[str, int] = {}  # model -> level rank its pool alert reached


class Pool:
    """One source's young keys, and their pooled state (a client of its own)."""

    __slots__ = ("agent", "basis", "kind", "members", "pool_id", "risk", "state")

    def __init__(self, kind: str, basis: str, agent: str | None = None) -> None:
        self.kind = kind  # "network" or "fingerprint": what the source is
        self.basis = basis  # the /24, /64 or fingerprint the keys share
        self.agent = agent  # and the user agent they share (None: a pool of the source alone)
        text = f"{kind}|{basis}|{agent}"
        self.pool_id = "pool:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        self.members: OrderedDict[str, Member] = OrderedDict()  # least recently seen first
        self.state = ClientState()
        self.risk = 0.0  # the highest pooled risk on any model, for eviction

    def keys(self, ts: float, window: float | None = None) -> list[str]:
        """The pool's keys, in the order they were last seen (``window``: seen within it)."""
        if window is None:
            return list(self.members)
        return [k for k, m in self.members.items() if m.last_ts >= ts - window]

    def credit(self, client_id: str, hit: bool, rate: float, need: float) -> Member | None:
        """Count a pooled query of ``client_id`` (``hit``: it was suspicious in the pool's
        context, the benign ``rate`` of that); the key is *implicated* once its share of
        suspicious queries is ``need`` nats unlikely for a benign key. Only implicated keys
        are named by a pool alert: an honest neighbour of an attacker behind one NAT sends
        natural queries, and is not named for sharing its address."""
        member = self.members.get(client_id)
        if member is None:
            return None
        member.seen += 1
        if hit:
            member.hits += 1
            if not member.implicated:
                member.implicated = binomial_surprise(member.hits, member.seen, rate) >= need
        return member

    def describe(self) -> str:
        """The shared identity, in an analyst's words."""
        if self.kind == "network":
            words = f"from {self.basis}"
        elif self.kind == "account":
            words = f"of account {self.basis}"
        elif self.kind == EVERYONE:
            words = "from any source, each with a suspicious query,"
        else:
            words = f"with TLS fingerprint {self.basis}"
        return words if self.agent is None else f"{words} with user agent {self.agent!r}"

    @property
    def names_all(self) -> bool:
        """Whether an alert names every key of the pool (same source or account, and same user
        agent), or only the implicated ones (same source or account alone: the honest
        neighbours behind a NAT, or the honest users of a shared account, differ)."""
        return self.agent is not None


class IdentityPools:
    """Every source's pool of young keys, bounded in number and in members."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.pools: OrderedDict[str, Pool] = OrderedDict()
        self._networks: dict[str, str | None] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.pools)

    def observe(
        self,
        client_id: str,
        source_ip: str | None,
        labels: Mapping[str, str] | None,
        user_agent: str | None,
        n: int,
        ts: float,
        suspect: bool = False,
    ) -> list[Pool]:
        """A key's ``n``-th query to a model: the active pools it counts in (often none).

        Only young keys (``n <= pool_young_queries``) join and feed pools. Each key is in
        two: its source with its user agent (``agent``), and its source alone (``source``).
        The source is the TLS fingerprint label when the gateway sets one, else the network.
        A key whose events carry an account label (``tenant``, ``org``...) is also in its
        account's two pools (with and without its user agent), wherever it sends from: new
        keys of one account add up too.
        """
        cfg = self.config
        if n > cfg.pool_young_queries:
            return []
        active = []
        found = self._basis(source_ip, labels)
        if found is not None:
            kind, basis = found
            for agent in ((user_agent or "")[:256], None):
                pool = self._join(kind, basis, agent, client_id, ts)
                if pool is not None:
                    active.append(pool)
        account = _account(labels)
        if account is not None:
            for agent in ((user_agent or "")[:256], None):
                pool = self._join("account", account, agent, client_id, ts)
                if pool is not None:
                    active.append(pool)
        if suspect:  # a key that already sent a suspicious query: every source's pool too
            pool = self._join(EVERYONE, "*", None, client_id, ts)
            if pool is not None:
                active.append(pool)
        return active

    def _join(
        self, kind: str, basis: str, agent: str | None, client_id: str, ts: float
    ) -> Pool | None:
        cfg = self.config
        key = pool_key(kind, basis, agent)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(kind, basis, agent)
            self._bound()
        else:
            self.pools.move_to_end(key)
        members = pool.members
        member = members.get(client_id)
        if member is None:
            members[client_id] = Member(ts)
            while len(members) > cfg.pool_max_members:
                members.popitem(last=False)
        else:
            member.last_ts = ts if ts > member.last_ts else member.last_ts
            members.move_to_end(client_id)
        if len(members) < cfg.pool_min_keys:
            return None
        horizon = ts - cfg.pool_window_s
        for recent, m in enumerate(reversed(members.values()), start=1):  # newest first
            if m.last_ts < horizon:
                break
            if recent >= cfg.pool_min_keys:
                return pool
        return None

    def _basis(
        self, source_ip: str | None, labels: Mapping[str, str] | None
    ) -> tuple[str, str] | None:
        if labels:
            for name in FINGERPRINT_LABELS:
                value = labels.get(name)
                if value:
                    return "fingerprint", value[:128]
        if not source_ip:
            return None
        net = self._networks.get(source_ip)
        if net is None and source_ip not in self._networks:
            net = network(source_ip)
            if len(self._networks) >= _NETWORKS_CACHE:
                self._networks.clear()
            self._networks[source_ip] = net
        return None if net is None else ("network", net)

    def dump(self) -> list[dict[str, Any]]:
        """Every pool as plain data, least recently used first (for the engine's population
        snapshot: a restarted worker resumes its pools as replay would have them)."""
        out = []
        for p in self.pools.values():
            members = [[k, m.last_ts, m.seen, m.hits, m.implicated, m.alerted]
                       for k, m in p.members.items()]  # fmt: skip
            state = base64.b64encode(p.state.to_bytes()).decode() if p.state.models else None
            out.append({"kind": p.kind, "basis": p.basis, "agent": p.agent, "risk": p.risk,
                        "members": members, "state": state})  # fmt: skip
        return out

    def restore(self, items: list[dict[str, Any]]) -> None:
        """Replace every pool with those :meth:`dump` wrote (bounds applied as they load).

        >>> a = IdentityPools(EngineConfig(pool_min_keys=2))
        >>> for i in range(3):
        ...     _ = a.observe(f"k{i}", "192.0.2.1", None, "ua", n=1, ts=float(i))
        >>> b = IdentityPools(EngineConfig(pool_min_keys=2))
        >>> b.restore(a.dump())
        >>> [(p.basis, p.agent, p.keys(2.0)) for p in b.pools.values()][0]
        ('192.0.2.0/24', 'ua', ['k0', 'k1', 'k2'])
        """
        self.pools = OrderedDict()
        cap = self.config.pool_max_members
        for d in items:
            agent = None if d["agent"] is None else str(d["agent"])
            pool = Pool(str(d["kind"]), str(d["basis"]), agent)
            pool.risk = float(d["risk"])
            for key, last_ts, seen, hits, implicated, alerted in d["members"][-cap:]:
                m = pool.members[str(key)] = Member(float(last_ts))
                m.seen, m.hits, m.implicated = int(seen), int(hits), bool(implicated)
                m.alerted = {str(k): int(v) for k, v in alerted.items()}
            if d["state"] is not None:
                pool.state = ClientState.from_bytes(base64.b64decode(d["state"]))
            self.pools[pool_key(pool.kind, pool.basis, pool.agent)] = pool
            self._bound()

    def _bound(self) -> None:
        """Evict a pool beyond ``max_pools``: the least risky of the oldest few."""
        if len(self.pools) <= self.config.max_pools:
            return
        oldest = []
        for i, (k, p) in enumerate(self.pools.items()):
            if i >= _EVICT_SCAN:
                break
            oldest.append((p.risk, i, k))
        victim = min(oldest)[2]
        del self.pools[victim]
        self.evicted += 1
