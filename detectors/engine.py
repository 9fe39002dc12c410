"""The detection engine: QueryEvents in, Alerts and RiskScores out. Pure and deterministic.

The engine scores each query and decides when a client's risk is reported;
:mod:`detectors.outputs` builds the documents it reports.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Mapping, MutableMapping, Sequence

import numpy as np

from detectors.base import Observation, Reading, Signal
from detectors.batch import Pre, precompute
from detectors.campaign import CampaignWatch
from detectors.combiner import RiskCombiner
from detectors.config import EngineConfig
from detectors.extras import Extras
from detectors.fanout import ModelFanout
from detectors.identity import EVERYONE, IdentityPools, Pool
from detectors.malformed import MalformedInput
from detectors.outputs import (
    Output,
    Verdict,
    alert,
    by_points,
    campaign_alert,
    pool_alert,
    risk_record,
)
from detectors.population import Lesson, ModelPopulation, learn_eligible, output_bucket
from detectors.population_codec import (
    dump_populations,
    load_pools,
    load_populations,
    load_support,
)
from detectors.signals.class_spread import ClassSpreadSignal
from detectors.signals.coverage import CoverageSignal
from detectors.signals.low_margin import LowMarginSignal, output_margin
from detectors.signals.novelty import NoveltySignal
from detectors.signals.steps import StepSignal
from detectors.signals.volume import VolumeSignal
from detectors.state import ClientState, ModelClientState
from detectors.support import OVERFLOW_MODEL, ModelSupport
from detectors.tail_count import TailCount
from schemas import LEVEL_ORDER, QueryEvent, RiskLevel, level_for_score
from schemas.registry import ModelRegistry, RegisteredModel

_CAMPAIGN_LEVEL = LEVEL_ORDER["low"]  # an account reaching it counts towards a campaign
_POOL_LEVEL = LEVEL_ORDER["high"]  # a pool reaching it alerts on every pooled key
_LEVELS: dict[int, RiskLevel] = {rank: level for level, rank in LEVEL_ORDER.items()}


SUSPECT = "pool_suspect"  # the state key: the young key already sent a suspicious query


def _label(p: Pre) -> int:
    return -1 if p.label is None else p.label


class Engine:
    """Scores every query of every (client, model) and raises alerts on rising risk.

    ``process`` keeps client state in its own bounded LRU store (the embedded
    replay); ``step`` takes and returns one client's state (Faust tables).
    Both give the same outputs for the same event sequence and seed.

    >>> from schemas import QueryEvent
    >>> eng = Engine(EngineConfig(seed=1))
    >>> out = []
    >>> for i in range(100):  # one client, one query a second
    ...     out += eng.process(QueryEvent.model_validate({"event_id": f"e{i}",
    ...         "timestamp": 1767225600 + i, "client_id": "c", "model_id": "m",
    ...         "features": [1.0, float(i % 7)]}))
    >>> [type(o).__name__ for o in out]  # a risk score every 100 queries, no alert
    ['RiskRecord']
    """

    def __init__(
        self, config: EngineConfig | None = None, registry: ModelRegistry | None = None
    ) -> None:
        self.config = config or EngineConfig()
        # What the operator states about its models (schemas/registry.py): their dimension
        # and domain, and a place outside the max_models bound.
        self.registry: Mapping[str, RegisteredModel] = registry.models if registry else {}
        self.populations: dict[str, ModelPopulation] = {}
        self.clients: OrderedDict[str, ClientState] = OrderedDict()
        # Each signal by its own type, so compiled code calls it directly; in this order.
        self._novelty = NoveltySignal(self.config)
        self._steps = StepSignal(self.config)
        self._coverage = CoverageSignal(self.config)
        self._low_margin = LowMarginSignal(self.config)
        self._class_spread = ClassSpreadSignal(self.config)
        self._volume = VolumeSignal(self.config)
        # All six, to read: scoring calls each through its attribute above.
        self.signals: tuple[Signal, ...] = (
            self._novelty, self._steps, self._coverage,
            self._low_margin, self._class_spread, self._volume,
        )  # fmt: skip
        self.combiner = RiskCombiner(self.config)
        self.stats: Counter[str] = Counter()
        # Bounded models, ranked by distinct clients (decoys evict decoys); fan-out to lone
        # models and the count of suspicious queries, which padding cannot average away.
        self.support = ModelSupport(self.config, frozenset(self.registry))
        self._fanout = ModelFanout(self.config)
        self._tail = TailCount(self.config)
        self._malformed = MalformedInput(self.config)
        # The last batch's events its model cannot take (wrong dimension), each with its
        # reason: the caller writes them as dead letters (they are scored all the same).
        self.rejected: list[tuple[QueryEvent, str]] = []
        # Per (model, strongest signal of the qualifying account): one attack tool's accounts
        # show the same profile. Each model's first event time, for the rate outside campaigns.
        self.campaigns: dict[tuple[str, str], CampaignWatch] = {}
        self.model_first_ts: dict[str, float] = {}
        # River anomaly detectors the configuration adds as signals (none: nothing runs).
        self._extras: Extras | None = Extras(self.config) if self.config.extra_detectors else None
        # The young keys of one network or TLS fingerprint, scored together (identity.py).
        self.pools: IdentityPools | None = IdentityPools(self.config) if self.config.pools else None

    # ------------------------------------------------------------------ public API
    def process(self, event: QueryEvent) -> list[Output]:
        """Score one event with the engine's own client store."""
        return self.process_batch([event])

    def process_batch(
        self,
        events: Sequence[QueryEvent],
        states: MutableMapping[str, ClientState] | None = None,
    ) -> list[Output]:
        """Score events in order, vectorising the population lookups of the batch.

        Client state comes from ``states`` (client id -> state, filled in as new
        clients appear: a Faust table's values for this batch) or, by default,
        from the engine's own bounded store.
        """
        out: list[Output] = []
        self.rejected = []
        pre = self._precompute(events, states)
        for j, event in enumerate(events):
            if states is None:
                state = self._client(event.client_id)
            else:
                state = states.setdefault(event.client_id, ClientState())
            change = self._score(event, state, pre[j], out)
            if change is not None and j + 1 < len(events):
                self._refresh(events, pre, j + 1, self._scored_as(event.model_id), change, states)
        return out

    def _refresh(
        self,
        events: Sequence[QueryEvent],
        pre: list[Pre],
        start: int,
        model_id: str,
        change: str,
        states: MutableMapping[str, ClientState] | None,
    ) -> None:
        """Recompute what a baseline change invalidated for the rest of the batch.

        An epoch only moves the reference inputs (nearest-benign distances); a freeze
        creates the feature space, so everything feature-based is computed afresh.
        Other models' pre-computations stay valid.
        """
        rest = [
            k for k in range(start, len(events)) if self._scored_as(events[k].model_id) == model_id
        ]
        if not rest:
            return
        if change == "freeze":
            fresh = self._precompute([events[k] for k in rest], states)
            for k, p in zip(rest, fresh, strict=True):
                pre[k] = p
            return
        pop = self.populations[model_id]
        rows = [k for k in rest if pre[k].z is not None]
        changed = sorted(set(pop.changed_rows))
        if not rows or not changed:
            return
        owners_all = np.asarray([pre[k].owner for k in rows], dtype=np.int64)
        labels_all = np.asarray([_label(pre[k]) for k in rows], dtype=np.int64)
        for k, c in zip(rows, pop.same_class_counts(owners_all, labels_all).tolist(), strict=True):
            pre[k].other_same_count = c
        # A distance to a row that stayed is still the minimum over the rows that stayed,
        # so only the changed rows need searching; a row that was replaced needs a full search.
        gone = set(changed)
        full: list[int] = []
        part: list[int] = []
        for k in rows:
            p = pre[k]
            stale = p.nearest_row < 0 or p.nearest_row in gone or p.other_same_row in gone
            (full if stale else part).append(k)
        for group, columns in ((full, None), (part, changed)):
            if not group:
                continue
            z = np.asarray([pre[k].z for k in group], dtype=np.float64)
            owners = np.asarray([pre[k].owner for k in group], dtype=np.int64)
            labels = np.asarray([_label(pre[k]) for k in group], dtype=np.int64)
            nb = pop.neighbours(z, owners, labels, columns)
            found = zip(
                group, nb.dist.tolist(), nb.row.tolist(), nb.same.tolist(), nb.same_row.tolist(),
                strict=True,
            )  # fmt: skip
            for k, d, r, sd, sr in found:
                p = pre[k]
                old = p.nearest
                if columns is None or old is None or d < old:
                    p.nearest, p.nearest_row = d, r
                old = p.other_same
                closer = not math.isnan(sd) and (old is None or math.isnan(old) or sd < old)
                if columns is None or closer:  # a part search that found none keeps the old
                    p.other_same, p.other_same_row = sd, sr

    def step(
        self, event: QueryEvent, state: ClientState | None
    ) -> tuple[ClientState, list[Output]]:
        """Score one event against an explicit client state (for Faust tables)."""
        state = state or ClientState()
        out: list[Output] = []
        self.rejected = []
        self._score(event, state, self._precompute([event], {event.client_id: state})[0], out)
        return state, out

    def client_state(self, client_id: str) -> ClientState | None:
        """The in-process state of a client, if tracked."""
        return self.clients.get(client_id)

    def export_population(self) -> bytes:
        """Serialise every model's baseline, the models' distinct-client counts and the
        identity pools (no pickle)."""
        pools = None if self.pools is None else self.pools.dump()
        return dump_populations(self.populations, self.support.owners(), pools)

    def import_population(self, blob: bytes) -> None:
        """Restore baselines written by ``export_population``."""
        self.support.restore(load_support(blob))
        if self.pools is not None:
            self.pools.restore(load_pools(blob))
        for model_id, pop in load_populations(blob, self.config).items():
            pid, victim = self.support.admit(model_id, self._frozen)
            self._forget_model(victim)
            known = self.registry.get(model_id)
            if known is not None and not pop.register(known):
                self.stats["registry_conflicts"] += 1  # froze with another dimension: kept
            if pid == model_id:
                self.populations[model_id] = pop

    # ------------------------------------------------------------------ internals
    def _population(self, model_id: str) -> ModelPopulation:
        """The model's baseline, created if there is room (or a lone model makes room),
        else the overflow model's (``max_models``, :mod:`detectors.support`)."""
        pop = self.populations.get(model_id)
        if pop is None:
            pid, victim = self.support.admit(model_id, self._frozen)
            self._forget_model(victim)
            pop = self.populations.get(pid)
            if pop is None:
                known = self.registry.get(pid)
                pop = self.populations[pid] = ModelPopulation(pid, self.config, known)
        return pop

    def _scored_as(self, model_id: str) -> str:
        """The baseline a model's events are scored against: its own, else the overflow's."""
        return model_id if model_id in self.populations else OVERFLOW_MODEL

    def _frozen(self, model_id: str) -> bool:
        pop = self.populations.get(model_id)
        return pop is not None and pop.frozen

    def _forget_model(self, model_id: str | None) -> None:
        """Drop an evicted lone model's baseline and what the engine keeps per model."""
        if model_id is None:
            return
        self.stats["models_evicted"] += 1
        self.populations.pop(model_id, None)
        self.model_first_ts.pop(model_id, None)
        for key in [k for k in self.campaigns if k[0] == model_id]:
            del self.campaigns[key]
        if self._extras is not None:
            self._extras.forget(model_id)

    def model_stats(self) -> dict[str, int]:
        """Models tracked, evicted (lone ones, to make room) and events pooled in overflow."""
        return {
            "models_tracked": len(self.support),
            "models_registered": len(self.registry),
            "models_evicted": self.stats["models_evicted"],
            "model_overflow_events": self.stats["model_overflow_events"],
        }

    def _client(self, client_id: str) -> ClientState:
        st = self.clients.get(client_id)
        if st is None:
            st = ClientState()
            self.clients[client_id] = st
            if len(self.clients) > self.config.max_clients:
                self.clients.popitem(last=False)
                self.stats["clients_evicted"] += 1
        else:
            self.clients.move_to_end(client_id)
        return st

    def _precompute(
        self, events: Sequence[QueryEvent], states: Mapping[str, ClientState] | None = None
    ) -> list[Pre]:
        store: Mapping[str, ClientState] = self.clients if states is None else states
        return precompute(events, self._population, store, self.config)

    def _score(
        self, ev: QueryEvent, client: ClientState, pre: Pre, out: list[Output]
    ) -> str | None:
        """Score one event; say whether the model's baseline changed ("epoch", "freeze")."""
        cfg = self.config
        pop = self._scoring_population(ev.model_id)
        st = client.model(ev.model_id, cfg, self.support.support)
        ts = pre.ts  # the event's, converted once by the batch pass
        owner = pre.owner
        st.n += 1
        if st.n == 1:
            self._first_sight(pop.model_id, st, ts, owner, client)
        if ev.source_ip:
            st.source_ip = ev.source_ip
        has_features = pop.accepts(ev.features)
        # Outside the domain fence: the batch pass knows it from clipping once the space is
        # frozen; before that only a registry's stated ranges make a fence.
        outside = pre.outside or (
            not pop.frozen and ev.features is not None and pop.outside(ev.features)
        )
        bad = self._malformed_input(ev, pop, has_features, outside)
        if pop.known is not None and ev.output is not None:
            self._check_classes(pop.known, ev.output.probabilities)
        obs: Observation = pre
        self._observe_output(ev, obs, st, pre.z is not None)
        readings = self._readings(obs, st, pop, volume=True)
        malformed = self._malformed.update(bad, st, pop)
        if malformed is not None:
            readings[MalformedInput.name] = malformed
        if self._extras is not None:
            self._extras.score(ev.model_id, pre.z, obs, st, readings)
        self._accumulate(client, st, obs, pop, ts, readings)
        if pre.z is not None and not pre.retry:
            st.push(pre.z, pre.crc, cfg.ring_size, obs.label)
        st.last_ts = ts if ts > st.last_ts else st.last_ts  # max(st.last_ts, ts)
        risk, shares = self.combiner.risk(st.evidence, st.n)
        st.risk = risk
        self._emit(ev, ts, st, Verdict(risk, level_for_score(risk), shares, readings), out)
        self._tail.learn(obs, pop, st.n, risk)
        self._malformed.learn(bad, pop, st.n, risk)
        hit = obs.tail is not None and obs.tail >= cfg.tail_threshold
        risk = self._pooled(ev, st, pop, ts, out, risk, hit)
        if not self._may_teach(risk, st.n, obs.retry, outside):
            return None
        froze = False
        if has_features and not pop.frozen and ev.features is not None:
            froze = pop.learn_warmup(owner, np.asarray(ev.features, dtype=np.float64))
        lesson = Lesson(
            owner=owner,
            z=None if pre.z is None else pre.z.astype(np.float64),
            novelty=readings["novelty"].lesson,
            step=readings["steps"].lesson,
            step_count=pre.step_count,
            self_surprise=obs.self_surprise(cfg.self_min_reference, cfg.self_contrast),
            collinear=pre.collinearity,
            margin=readings["low_margin"].lesson,
            label=obs.label,
            cell=obs.cell,
            volume=float(readings["volume"].lesson or 0.0),
        )
        epoch = pop.teach(lesson)
        if epoch and self._extras is not None:
            self._extras.learn(ev.model_id, pop.admitted)
        return "freeze" if froze else "epoch" if epoch else None

    def _malformed_input(
        self, ev: QueryEvent, pop: ModelPopulation, has_features: bool, outside: bool
    ) -> bool:
        """Whether the event's input is one its own model cannot take: of another dimension
        (counted, and kept in :attr:`rejected` for a dead letter) or outside the model's
        domain. Inputs pooled in the overflow model, which mixes models, are not judged."""
        features = ev.features
        if not features or pop.model_id != ev.model_id:
            return False
        if not has_features:
            self.stats["feature_dim_mismatch"] += 1
            reason = (
                f"feature dimension mismatch: model {ev.model_id} takes {pop.dim} features, "
                f"got {len(features)}"
            )
            self.rejected.append((ev, reason))
            return True
        return outside

    def _check_classes(self, known: RegisteredModel, probabilities: list[float] | None) -> None:
        """Count answers whose class count is not the registry's (a logging fault to fix)."""
        if known.n_classes is not None and probabilities and len(probabilities) != known.n_classes:
            self.stats["output_class_mismatch"] += 1

    def _observe_output(
        self, ev: QueryEvent, obs: Observation, st: ModelClientState, has_input: bool
    ) -> None:
        """Count the query's input and output, and read the output's margin and class bucket
        (with an input, the batch pass already bucketed the output)."""
        if has_input:
            st.feature_n += 1
        if ev.output is not None:
            obs.margin = output_margin(ev.output.probabilities, ev.output.confidence)
            if not has_input:
                obs.label = output_bucket(ev.output, self.config.class_buckets)
            if obs.label is not None:
                st.output_n += 1

    def _readings(
        self, obs: Observation, st: ModelClientState, pop: ModelPopulation, *, volume: bool
    ) -> dict[str, Reading]:
        """Every per-query signal's reading (``volume``: scored, else a zero reading)."""
        return {
            NoveltySignal.name: self._novelty.update(obs, st, pop),
            StepSignal.name: self._steps.update(obs, st, pop),
            CoverageSignal.name: self._coverage.update(obs, st, pop),
            LowMarginSignal.name: self._low_margin.update(obs, st, pop),
            ClassSpreadSignal.name: self._class_spread.update(obs, st, pop),
            VolumeSignal.name: self._volume.update(obs, st, pop) if volume else Reading(0.0, 0.0),
        }

    def _pooled(
        self,
        ev: QueryEvent,
        st: ModelClientState,
        pop: ModelPopulation,
        ts: float,
        out: list[Output],
        own: float,
        hit: bool,
    ) -> float:
        """Score a young key's query again in each active pool of its source (none, most of
        the time). Returns the risk the query's lesson is gated by: the highest of the
        key's own and its pools', so that a source whose pooled keys look like extraction
        stops teaching the baseline however often it rotates keys. The lesson itself stays
        the key's own (its query count, its owner id), so that honest keys behind one
        address, or logs that give every query the gateway's address, teach the baseline
        as the many clients they are.

        A key whose own risk already reached `low` is explained by its own evidence and
        feeds no pool: the pool scores what no key's alert explains, so an honest neighbour
        behind one NAT is not pooled with an attacker's loud key.

        A young key that has sent one suspicious query (beyond ``tail_threshold`` in a look)
        feeds, from its next query on, the pool of every source's such keys as well
        (:data:`~detectors.identity.EVERYONE`): keys that share no network, account or user
        agent still add up. Selected on a past query, the queries it scores are a fair
        sample of the key's traffic; that pool names only keys that are implicated beyond
        the pool's size of looks, and its risk gates its members' lessons as any pool's does
        (rotating keys would otherwise teach the baseline their own inputs).
        """
        pools = self.pools
        if pools is None or st.risk >= self.config.learn_below_risk:
            return own
        if not (ev.source_ip or ev.labels):
            return own
        risk = own
        values = st.values
        suspect = values.get(SUSPECT, 0.0) > 0.0
        joined = pools.observe(
            ev.client_id, ev.source_ip, ev.labels, ev.user_agent, st.n, ts, suspect
        )
        for pool in joined:
            pst = self._score_pool(ev, st, pop, ts, pool, out)
            risk = pst.risk if pst.risk > risk else risk
        if hit and not suspect:  # from its next query on, in every source's pool too
            values[SUSPECT] = 1.0
        return risk

    def _score_pool(
        self,
        ev: QueryEvent,
        st: ModelClientState,
        pop: ModelPopulation,
        ts: float,
        pool: Pool,
        out: list[Output],
    ) -> ModelClientState:
        """One pooled query: the pool is a client of its own (not scored on volume); at
        `high` its keys are alerted (all of them, or the implicated ones)."""
        cfg = self.config
        pid = pool.pool_id
        pst = pool.state.model(ev.model_id, cfg)
        pev = ev.model_copy(update={"client_id": pid})
        obs = self._precompute([pev], {pid: pool.state})[0]
        self.stats["pooled_queries"] += 1
        pst.n += 1
        if pst.n == 1:
            pst.first_ts = pst.last_emit_ts = ts
        self._observe_output(ev, obs, pst, obs.z is not None)
        readings = self._readings(obs, pst, pop, volume=False)
        tail = self._tail.update(obs, pst, pop)
        if tail is not None:
            readings[TailCount.name] = tail
        hit = obs.tail is not None and obs.tail >= cfg.tail_threshold
        need = cfg.pool_name_surprise
        if pool.kind == EVERYONE:  # a key named out of every young key: that many looks
            need += math.log(cfg.pool_max_members)
        pool.credit(ev.client_id, hit, self._tail.rate(pop), need)
        if obs.z is not None and not obs.retry:
            pst.push(obs.z, obs.crc, cfg.ring_size, obs.label)
        pst.last_ts = ts if ts > pst.last_ts else pst.last_ts
        risk, shares = self.combiner.risk(pst.evidence, pst.n)
        pst.risk = risk
        pool.risk = risk if risk > pool.risk else pool.risk
        self._name_pool(ev, st, pst, pool, ts, Verdict(risk, "none", shares, readings), out)
        return pst

    def _name_pool(
        self,
        ev: QueryEvent,
        st: ModelClientState,
        pst: ModelClientState,
        pool: Pool,
        ts: float,
        v: Verdict,
        out: list[Output],
    ) -> None:
        """The pool's episode: once at `high`, every young key of the pool is alerted (all,
        or the implicated ones), and each that joins later, until the pool's risk stays
        quiet as a client's episode does (the level never drops within one)."""
        cfg = self.config
        risk = v.risk
        rank = LEVEL_ORDER[level_for_score(risk)]
        if rank > pst.alerted_level and rank >= _POOL_LEVEL and pst.n >= cfg.min_queries_to_alert:
            pst.alerted_level = rank
            pst.values["pool_peak"] = risk
        elif pst.alerted_level:
            pst.quiet = pst.quiet + 1 if risk < 20.0 - cfg.hysteresis else 0
            if pst.quiet >= cfg.quiet_queries:
                pst.alerted_level = pst.quiet = 0
                pst.episode += 1
                return
        rank = pst.alerted_level
        if rank < _POOL_LEVEL:
            return
        keys = pool.keys(ts, cfg.pool_window_s)
        if len(keys) < cfg.pool_min_keys:
            return
        if not pool.names_all:
            keys = [k for k in keys if pool.members[k].implicated]
        peak = max(risk, pst.values.get("pool_peak", risk))
        pst.values["pool_peak"] = peak
        v = Verdict(peak, _LEVELS[rank], v.shares, v.readings)
        model_id = ev.model_id
        for key in keys:
            member = pool.members[key]
            if member.alerted.get(model_id, 0) >= rank:
                continue
            member.alerted[model_id] = rank
            out.append(pool_alert(ev, pst, v, pool, key, keys))
            self.stats[f"pool_alerts_{v.level}"] += 1
            if key == ev.client_id:
                st.alerted_level = max(st.alerted_level, rank)

    def _accumulate(
        self,
        client: ClientState,
        st: ModelClientState,
        obs: Observation,
        pop: ModelPopulation,
        ts: float,
        readings: dict[str, Reading],
    ) -> None:
        """Evidence beyond the per-query signals: the count of suspicious queries (padding
        cannot average it away) and, for a client on several models, its fan-out."""
        tail = self._tail.update(obs, st, pop)
        if tail is not None:
            readings[TailCount.name] = tail
        if len(client.models) >= self.config.fanout_min_lone:
            fan = self._fanout.update(client, self.support.support, self.model_first_ts, ts)
            self._fanout.apply(st, fan)
            if fan is not None:
                readings[ModelFanout.name] = fan

    def _scoring_population(self, model_id: str) -> ModelPopulation:
        """The baseline an event of the model is scored against (overflow counted)."""
        pop = self.populations.get(model_id)
        if pop is None:
            pop = self._population(model_id)
            if pop.model_id != model_id:
                self.stats["model_overflow_events"] += 1
        else:
            self.support.touch(model_id)
        return pop

    def _first_sight(
        self, model_id: str, st: ModelClientState, ts: float, owner: int, client: ClientState
    ) -> None:
        """A client's first query to a model: its clocks start, and the model's first time;
        one more distinct client of the model (and a new client, if it is its first model)."""
        self.support.see(model_id, owner)
        if len(client.models) == 1:
            self._fanout.clients += 1
        # The first risk score comes after risk_every_n queries or risk_every_seconds,
        # not on first sight: a one-off client has nothing to report.
        st.first_ts = st.last_emit_ts = ts
        first = self.model_first_ts.get(model_id)
        if first is None or ts < first:
            self.model_first_ts[model_id] = ts

    def _may_teach(self, risk: float, n: int, retry: bool, outside: bool) -> bool:
        """Whether this query may teach its model's baseline: a client below the learning
        risk, at one of its thinned lesson counts, no exact retry, and an input in domain
        (one outside it is counted in ``out_of_domain``: it never teaches)."""
        if risk >= self.config.learn_below_risk or not learn_eligible(n) or retry:
            return False
        if outside:
            self.stats["out_of_domain"] += 1
            return False
        return True

    def _emit(
        self, ev: QueryEvent, ts: float, st: ModelClientState, v: Verdict, out: list[Output]
    ) -> None:
        cfg = self.config
        rank = LEVEL_ORDER[v.level]
        alerted = False
        if rank > st.alerted_level and st.n >= cfg.min_queries_to_alert:
            before = st.alerted_level
            st.alerted_level = rank
            out.append(alert(ev, st, v))
            alerted = True
            self.stats[f"alerts_{v.level}"] += 1
            if (
                before < _CAMPAIGN_LEVEL <= rank
                and cfg.campaigns
                and st.n <= cfg.campaign_max_queries
            ):
                self._campaign(ev, ts, st, v, out)
        elif st.alerted_level:
            st.quiet = st.quiet + 1 if v.risk < 20.0 - cfg.hysteresis else 0
            if st.quiet >= cfg.quiet_queries:  # the episode is over; a new one alerts again
                st.alerted_level = 0
                st.quiet = 0
                st.episode += 1
        due = (
            st.n - st.last_emit_n >= cfg.risk_every_n
            or ts - st.last_emit_ts >= cfg.risk_every_seconds
        )
        if due or alerted:
            st.last_emit_n, st.last_emit_ts = st.n, ts
            out.append(risk_record(ev, st, v, ts))

    def _campaign(
        self, ev: QueryEvent, ts: float, st: ModelClientState, v: Verdict, out: list[Output]
    ) -> None:
        """This account reached `low`: alert on the accounts of a campaign it completes."""
        top = min(v.shares.items(), key=by_points)[0] if v.shares else "none"  # the strongest
        model_id = self._scored_as(ev.model_id)
        key = (model_id, top)
        watch = self.campaigns.get(key)
        if watch is None:
            first = self.model_first_ts.get(model_id, ts)  # ts: state restored without it
            watch = self.campaigns[key] = CampaignWatch(model_id, first, self.config, top)
        hit = watch.observe(ev.client_id, ts, st.n, ev.event_id, st.source_ip or "")
        if hit is None:
            return
        for member in hit.new_members:
            out.append(campaign_alert(ev, st, hit, watch, member, self.config))
            self.stats[f"campaign_alerts_{hit.level}"] += 1
        st.alerted_level = max(st.alerted_level, LEVEL_ORDER[hit.level])
