"""Identity pools: rotating keys of one source add up; honest neighbours behind a NAT do not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.identity import EVERYONE, IdentityPools, binomial_surprise, network
from schemas import CAMPAIGN_RULE_ID, LEVEL_ORDER, Alert
from schemas.query import QueryEvent

T0 = 1_793_491_200.0
NAT = "198.51.100.7"
ATTACKER = "203.0.113.50"


def _event(
    i: int, client: str, ts: float, x: np.ndarray, w: np.ndarray, ip: str, agent: str
) -> QueryEvent:
    logits = w @ x
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return QueryEvent.model_validate(
        {
            "event_id": f"e{i}",
            "timestamp": ts,
            "client_id": client,
            "model_id": "m",
            "features": [round(float(v), 6) for v in x],
            "output": {"label": int(p.argmax()), "probabilities": [float(v) for v in p]},
            "source_ip": ip,
            "user_agent": agent,
        }
    )


def _day(
    *, rotate_every: int = 0, attacker_ip: str = ATTACKER, nat_keys: int = 40, seed: int = 5
) -> tuple[list[QueryEvent], set[str], set[str]]:
    """Benign clients each at its own address over four hours, ``nat_keys`` honest keys behind
    one NAT (one app, one user agent), and from 02:00, if ``rotate_every``, a line-search
    attacker (tiny steps along a line) under a fresh key every ``rotate_every`` queries.
    Returns the events, the attacker's keys and the NAT's keys."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 8))
    rows: list[tuple[float, str, np.ndarray, str, str]] = []
    for c in range(80):
        ip = f"10.{c}.{c % 7}.{c % 11 + 1}"
        times = np.sort(rng.uniform(0, 4 * 3600, int(rng.integers(20, 60))))
        rows.extend((T0 + t, f"user-{c}", rng.normal(size=8), ip, "PixelPal/3.2.1") for t in times)
    nat = {f"office-{c}" for c in range(nat_keys)}
    for key in sorted(nat):
        times = np.sort(rng.uniform(3600, 4 * 3600, int(rng.integers(5, 30))))
        rows.extend((T0 + t, key, rng.normal(size=8), NAT, "PixelPal/3.2.1") for t in times)
    keys: set[str] = set()
    if rotate_every:
        start, step = rng.normal(size=8), rng.normal(size=8)
        step /= np.linalg.norm(step)
        for q in range(400):
            key = f"rot-{q // rotate_every:04d}"
            keys.add(key)
            x = start + step * (q * 0.01)
            rows.append((T0 + 7200 + q * 5.0, key, x, attacker_ip, "python-requests/2.31.0"))
    rows.sort(key=lambda r: r[0])
    events = [_event(i, c, ts, x, w, ip, ua) for i, (ts, c, x, ip, ua) in enumerate(rows)]
    return events, keys, nat


def _alerts(events: list[QueryEvent], **overrides: object) -> list[Alert]:
    engine = Engine(EngineConfig(**overrides))  # type: ignore[arg-type]
    return [o for o in engine.process_batch(events) if isinstance(o, Alert)]


def _named(alerts: list[Alert], level: str = "high") -> set[str]:
    """Keys named at ``level`` or above: the alerted client and any campaign members."""
    out: set[str] = set()
    for a in alerts:
        if LEVEL_ORDER[a.clonewatch.risk_level] >= LEVEL_ORDER[level]:  # type: ignore[index]
            out.add(a.user.id)
            out.update(a.clonewatch.campaign_members or [])
    return out


class TestNetwork:
    def test_prefixes(self) -> None:
        assert network("192.0.2.200") == "192.0.2.0/24"
        assert network("::ffff:192.0.2.9") == "192.0.2.0/24"  # an IPv4 client over IPv6
        assert network("2001:db8:aa:bb:1::2") == "2001:db8:aa:bb::/64"
        assert network("") is None and network("999.1.1.1") is None


class TestBinomialSurprise:
    def test_matches_the_closed_form_for_all_hits(self) -> None:
        assert binomial_surprise(3, 3, 0.1) == pytest.approx(-3 * np.log(0.1))

    def test_more_queries_make_one_hit_less_surprising(self) -> None:
        assert binomial_surprise(1, 40, 0.05) < binomial_surprise(1, 2, 0.05)


class TestPools:
    def test_rotating_keys_of_one_source_are_alerted_together(self) -> None:
        """A new key every 4 queries: no key alone reaches the alert floor of 5 queries, yet
        the pool of the /24 with one user agent names nearly all of them at high."""
        events, keys, nat = _day(rotate_every=4)
        alone = _named(_alerts(events, pools=False))
        assert not alone & keys, "without pools the rotating keys are never alerted"
        alerts = _alerts(events)
        named = _named(alerts)
        assert len(named & keys) >= 0.8 * len(keys)
        assert not named & nat
        pooled = [a for a in alerts if a.rule.id == CAMPAIGN_RULE_ID and a.user.id in keys]
        assert "203.0.113.0/24" in pooled[0].message
        assert "python-requests" in pooled[0].message

    def test_one_query_per_key_still_adds_up(self) -> None:
        events, keys, _ = _day(rotate_every=1)
        assert len(_named(_alerts(events)) & keys) >= 0.8 * len(keys)

    def test_honest_keys_behind_one_nat_are_not_flagged(self) -> None:
        """Forty honest keys of one app behind one address, each young: pooled, never named."""
        events, _, nat = _day(nat_keys=40)
        engine = Engine()
        alerts = [o for o in engine.process_batch(events) if isinstance(o, Alert)]
        assert engine.stats["pooled_queries"] > 200, "the NAT's keys were pooled"
        assert not _named(alerts, "moderate") & nat

    def test_an_attacker_inside_the_nat_does_not_get_its_neighbours_named(self) -> None:
        """The attacker rotates keys from the NAT's own address with another user agent:
        its keys are named, the honest keys sharing the address are not."""
        events, keys, nat = _day(rotate_every=4, attacker_ip=NAT)
        named = _named(_alerts(events))
        assert len(named & keys) >= 0.8 * len(keys)
        assert not named & nat

    def test_rotating_keys_stop_teaching_once_their_pool_is_suspicious(self) -> None:
        """Rotating keys cannot each teach the baseline as a new client: a lesson is gated by
        the risk of the key's pools too, so once the pool looks like extraction its fresh
        keys teach nothing (the keys up to the one that made the pool active may teach: which
        of their lessons stay in the reference reservoir is the reservoir's draw)."""
        events, keys, _ = _day(rotate_every=4)
        engine = Engine()
        engine.process_batch(events)
        pop = engine.populations["m"]
        assert pop.frozen
        from detectors.population import owner_hash  # noqa: PLC0415

        owners = {owner_hash(k) for k in keys}
        taught = owners & set(pop.reference_owner.tolist())
        assert len(taught) <= EngineConfig().pool_min_keys, "rotating keys taught the baseline"

    def test_one_address_for_everyone_neither_starves_nor_flags(self) -> None:
        """Logs that give every query the gateway's address: all keys share one network and
        one user agent. The baseline still learns from every key as its own client, and no
        honest key is named; a key sending a line search on its own is still alerted."""
        events, _, _ = _day(nat_keys=40)
        gateway = [e.model_copy(update={"source_ip": NAT}) for e in events]
        engine = Engine()
        alerts = [o for o in engine.process_batch(gateway) if isinstance(o, Alert)]
        pop = engine.populations["m"]
        assert pop.frozen and pop.reference.shape[0] >= 0.5 * EngineConfig().reference_size
        assert not _named(alerts, "moderate")
        events, keys, _ = _day(rotate_every=10_000)  # one key: the attacker does not rotate
        gateway = [e.model_copy(update={"source_ip": NAT}) for e in events]
        assert _named(_alerts(gateway)) & keys

    def test_keys_of_one_account_add_up_wherever_they_send_from(self) -> None:
        """Each rotating key from its own /24 with its own user agent, all of one account (the
        gateway's ``tenant`` label): the account's pool names them; without the label the
        keys share nothing and are lost."""
        events, keys, _ = _day(rotate_every=4)
        spread = [
            e.model_copy(update={"source_ip": f"198.18.{i % 250}.9", "user_agent": f"bot/{i}",
                                 "labels": {"tenant": "trial-7"}})
            if e.client_id in keys else e
            for i, e in enumerate(events)
        ]  # fmt: skip
        named = _named(_alerts(spread))
        assert len(named & keys) >= 0.8 * len(keys)
        unlabelled = [e.model_copy(update={"labels": None}) if e.client_id in keys else e
                      for e in spread]  # fmt: skip
        assert not _named(_alerts(unlabelled)) & keys

    def test_an_attacker_inside_an_honest_account_does_not_get_its_users_named(self) -> None:
        """The rotating keys are created under the office's own account (a compromised or a
        multi-user account): they are named, the account's honest users are not."""
        events, keys, nat = _day(rotate_every=4, nat_keys=40)
        shared = [
            e.model_copy(update={"labels": {"tenant": "office"}} | (
                {"source_ip": f"198.19.{int(e.client_id[7:])}.4"} if e.client_id in nat else {}))
            if e.client_id in nat | keys else e
            for e in events
        ]  # fmt: skip
        named = _named(_alerts(shared))
        assert len(named & keys) >= 0.8 * len(keys)
        assert not named & nat

    def test_honest_keys_of_one_account_are_not_flagged(self) -> None:
        """The forty office keys, each at its own address, all of one account: pooled by the
        account, never named."""
        events, _, nat = _day(nat_keys=40)
        tenant = [
            e.model_copy(update={"source_ip": f"198.19.{int(e.client_id[7:])}.4",
                                 "labels": {"tenant": "office"}})
            if e.client_id in nat else e
            for e in events
        ]  # fmt: skip
        engine = Engine()
        alerts = [o for o in engine.process_batch(tenant) if isinstance(o, Alert)]
        assert engine.stats["pooled_queries"] > 200, "the account's keys were pooled"
        assert not _named(alerts, "moderate") & nat

    def test_snapshot_resumes_pools_identically(self) -> None:
        """A restarted worker resumes its pools from the population snapshot: cutting the
        stream in the middle of a rotation changes no alert."""
        import pickle  # noqa: PLC0415

        events, _, _ = _day(rotate_every=4)
        full = [o.to_dict() for o in Engine().process_batch(events)]
        assert any(o["rule"]["id"] == CAMPAIGN_RULE_ID for o in full if "rule" in o)
        cut = next(i for i, e in enumerate(events) if e.client_id.startswith("rot-")) + 120
        a = Engine()
        first = [o.to_dict() for o in a.process_batch(events[:cut])]
        assert a.pools is not None and any(p.state.models for p in a.pools.pools.values())
        b = Engine()
        b.import_population(a.export_population())
        b.clients = pickle.loads(pickle.dumps(a.clients))  # noqa: S301 - our own objects
        rest = [o.to_dict() for o in b.process_batch(events[cut:])]
        assert first + rest == full


class TestBounds:
    def test_pools_and_members_are_bounded(self) -> None:
        cfg = EngineConfig(max_pools=8, pool_max_members=4, pool_min_keys=2)
        pools = IdentityPools(cfg)
        for i in range(100):
            pools.observe(f"k{i}", f"10.0.{i}.1", None, "ua", n=1, ts=float(i))
            pools.observe(f"j{i}", "10.9.9.9", None, "ua", n=1, ts=float(i))
        assert len(pools) <= 8
        assert all(len(p.members) <= 4 for p in pools.pools.values())

    def test_a_flood_of_new_sources_does_not_evict_a_pool_with_evidence(self) -> None:
        cfg = EngineConfig(max_pools=20, pool_min_keys=2)
        pools = IdentityPools(cfg)
        pools.observe("a1", "192.0.2.1", None, "ua", n=1, ts=0.0)
        held = pools.observe("a2", "192.0.2.2", None, "ua", n=1, ts=1.0)
        assert held
        for p in held:
            p.risk = 45.0
        for i in range(500):
            pools.observe(f"f{i}", f"10.{i // 250}.{i % 250}.1", None, "ua", n=1, ts=2.0 + i)
        assert all(p in pools.pools.values() for p in held)
        assert pools.evicted > 0

    def test_old_keys_stop_feeding_pools(self) -> None:
        pools = IdentityPools(EngineConfig(pool_min_keys=2))
        young = EngineConfig().pool_young_queries
        assert pools.observe("a", "192.0.2.1", None, "ua", n=young + 1, ts=0.0) == []
        assert len(pools) == 0


class TestEveryone:
    """Young keys that share nothing still meet in the pool of every source's suspects."""

    def test_only_keys_that_sent_a_suspicious_query_join(self) -> None:
        pools = IdentityPools(EngineConfig(pool_min_keys=3))
        for i in range(5):
            pools.observe(f"calm-{i}", f"10.{i}.0.1", None, "app/1", n=1, ts=float(i))
        assert not any(p.kind == EVERYONE for p in pools.pools.values())
        joined = [
            pools.observe(
                f"sus-{i}", f"10.{i}.9.1", None, f"bot/{i}", n=2, ts=float(i), suspect=True
            )
            for i in range(4)
        ]
        assert [len(j) for j in joined] == [0, 0, 1, 1]
        everyone = joined[-1][0]
        assert everyone.kind == EVERYONE and not everyone.names_all
        assert everyone.describe() == "from any source, each with a suspicious query,"

    def test_rotating_keys_over_many_networks_add_up_and_stop_teaching(self) -> None:
        """A key every 6 queries, each from its own /24 with its own user agent, sending
        queries far from the benign inputs: with every source's pool, 30 % of its keys are
        named at high (19 % without) and at most a third teach the baseline (56 % without);
        no honest key is named, even at moderate."""
        rng = np.random.default_rng(5)
        w = rng.normal(size=(4, 8))
        rows: list[tuple[float, str, np.ndarray, str, str]] = []
        for c in range(80):
            ip = f"10.{c}.{c % 7}.{c % 11 + 1}"
            times = np.sort(rng.uniform(0, 4 * 3600, int(rng.integers(20, 60))))
            rows.extend(
                (T0 + t, f"user-{c}", rng.normal(size=8), ip, "PixelPal/3.2.1") for t in times
            )
        keys: set[str] = set()
        for q in range(600):
            k = q // 6
            keys.add(f"rot-{k:04d}")
            rows.append((T0 + 7200 + q * 5.0, f"rot-{k:04d}", rng.uniform(-4, 4, 8),
                         f"198.18.{k % 250}.{k // 250 + 1}", f"bot/{k}"))  # fmt: skip
        rows.sort(key=lambda r: r[0])
        events = [_event(i, c, ts, x, w, ip, ua) for i, (ts, c, x, ip, ua) in enumerate(rows)]
        engine = Engine()
        alerts = [o for o in engine.process_batch(events) if isinstance(o, Alert)]
        from detectors.population import owner_hash  # noqa: PLC0415

        taught = {owner_hash(k) for k in keys} & set(
            engine.populations["m"].reference_owner.tolist()
        )
        assert len(_named(alerts) & keys) >= 0.3 * len(keys)
        assert len(taught) <= len(keys) / 3
        assert not _named(alerts, "moderate") - keys
