"""``create_app(settings)``: the Faust app of a Clonewatch worker, built on demand.

Nothing is wired at import time. :func:`build_pipeline` returns the app with
the objects around it (engine, metrics, health, topics) so that the worker
command and the tests can reach them; :func:`create_app` returns just the app.
Faust is untyped, so this module is the thin typed layer around it: Faust
objects are ``Any`` here and never leak into the pure code.

Topics: the input (``topic_queries``), the internal ``<app_id>-by-client``
repartition topic, the outputs (alerts, risk, dead letters), the table's
changelog ``<app_id>-client-state-changelog`` (compacted, made by Faust) and
the population checkpoints ``topic_population`` (compacted, one head key per worker;
written by the score stage ahead of its table writes, see :mod:`streams.checkpoint`,
and loaded at start by :func:`restore_population`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog

from detectors.config import EngineConfig
from detectors.engine import Engine
from streams.agents import Checkpoints, Stages
from streams.checkpoint import decode, is_head
from streams.delivery import SinkHub
from streams.faust_compat import collect_changelog_sends, gate_stream_fetches
from streams.metrics import Health, Metrics
from streams.registry import read_registry
from streams.scoring import Scorer
from streams.settings import Settings
from streams.sinks.base import Sink

log = structlog.get_logger("clonewatch.worker")

TABLE_NAME = "client-state"


@dataclass
class Pipeline:
    """A Faust app and what it is wired to."""

    app: Any
    settings: Settings
    engine: Engine
    metrics: Metrics
    health: Health
    stages: Stages
    topics: dict[str, Any] = field(default_factory=dict)

    @property
    def by_client_topic(self) -> str:
        """Name of the internal repartition topic."""
        return f"{self.settings.app_id}-by-client"

    @property
    def population_key(self) -> bytes:
        """This worker's key on the population checkpoint topic."""
        return f"{self.settings.app_id}/{self.settings.worker_id}".encode()


def engine_config(settings: Settings) -> EngineConfig:
    """The engine configuration from the settings' ``engine`` table."""
    try:
        return EngineConfig(**settings.engine)
    except TypeError as exc:
        raise ValueError(f"invalid engine setting: {exc}") from exc


def _credentials(settings: Settings) -> Any:
    ctx = settings.ssl_context()
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # noqa: S101 - checked by Settings
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


def build_pipeline(
    settings: Settings,
    *,
    engine: Engine | None = None,
    sinks: Sequence[Sink] = (),
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> Pipeline:
    """Build the Faust app, its topics, table, agents and timers."""
    if engine is None:
        path = settings.model_registry  # a bad file: ValueError, the worker's usage error
        engine = Engine(engine_config(settings), read_registry(path) if path else None)
    metrics = metrics if metrics is not None else Metrics()
    health = health if health is not None else Health()
    s = settings
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{srv}" for srv in s.servers],
        broker_credentials=_credentials(s),
        broker_client_id=s.client_id,
        store=s.store,
        datadir=str(s.data_dir),
        table_standby_replicas=s.standby_replicas,
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=s.commit_interval_seconds,
        broker_session_timeout=s.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, s.session_timeout_seconds / 3),
        broker_commit_every=max(s.batch_max * 2, 1000),
        producer_max_request_size=s.max_message_bytes,
        consumer_max_fetch_size=s.max_message_bytes,
        producer_acks=-1,
        stream_wait_empty=True,
        table_cleanup_interval=60.0,
    )
    topic_kw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "partitions": s.partitions}
    queries = app.topic(s.topic_queries, **topic_kw)
    by_client = app.topic(f"{s.app_id}-by-client", internal=True, **topic_kw)
    alerts = app.topic(s.topic_alerts, **topic_kw)
    risk = app.topic(s.topic_risk, **topic_kw)
    dead_letter = app.topic(s.topic_dead_letter, **topic_kw)
    population = app.topic(
        s.topic_population,
        key_type=bytes,
        value_type=bytes,
        partitions=1,
        compacting=True,
        internal=True,
    )
    table = app.Table(
        TABLE_NAME,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=s.partitions,
        use_partitioner=True,
    )
    checkpoints = Checkpoints(
        engine=engine,
        topic=population,
        head=f"{s.app_id}/{s.worker_id}".encode(),
        max_bytes=s.max_message_bytes,
        metrics=metrics,
    )
    collect_changelog_sends(table, checkpoints.changelog)
    stages = Stages(
        scorer=Scorer(engine),
        metrics=metrics,
        health=health,
        sinks=SinkHub(sinks, metrics, health),
        by_client=by_client,
        alerts=alerts,
        risk=risk,
        dead_letter=dead_letter,
        table=table,
        checkpoints=checkpoints,
        batch_max=s.batch_max,
        batch_within=s.batch_within_seconds,
    )
    pipeline = Pipeline(
        app=app,
        settings=s,
        engine=engine,
        metrics=metrics,
        health=health,
        stages=stages,
        topics={
            "queries": queries,
            "by_client": by_client,
            "alerts": alerts,
            "risk": risk,
            "dead_letter": dead_letter,
            "population": population,
        },
    )

    gate_stream_fetches(app)
    app.agent(queries, name="ingest")(stages.ingest)
    app.agent(by_client, name="score")(stages.score)

    _add_timers(pipeline, table)
    health.set(started=False)
    metrics.up.set(0)
    log.debug("pipeline_built", at=time.time())
    return pipeline


def restore_population(pipeline: Pipeline, latest: Mapping[bytes, tuple[int, bytes]]) -> str:
    """Load the population checkpoint a worker starts from; say which.

    ``latest`` is the last ``(timestamp, value)`` of each key of the population topic.
    The worker's own checkpoint comes with the table values of its batch (the stage
    reads them where the table's write was lost); without one, the freshest baseline of
    another worker of the same ``app_id`` is imported alone (an equally valid sample).
    """
    own = pipeline.population_key
    prefix = f"{pipeline.settings.app_id}/".encode()
    heads = {k: ts for k, (ts, _) in latest.items() if k.startswith(prefix) and is_head(k)}
    if own in heads:
        key = own
    elif heads:
        key = max(heads, key=lambda k: heads[k])
    else:
        return "none"
    cp = decode({k: v for k, (_, v) in latest.items()}, key)
    pipeline.engine.import_population(cp.population)
    if key != own:
        return f"{key.decode()} (baseline only)"
    pipeline.stages.checkpoints.resume(cp)
    return f"{key.decode()} (checkpoint {cp.seq}, {len(cp.states)} client states)"


def _add_timers(pipeline: Pipeline, table: Any) -> None:
    """Consumer lag and the started flag (population checkpoints are the score stage's)."""
    app, s, health, metrics, stages = (
        pipeline.app,
        pipeline.settings,
        pipeline.health,
        pipeline.metrics,
        pipeline.stages,
    )

    stream_topics = {s.topic_queries, pipeline.by_client_topic}
    log_starts: dict[Any, int] = {}  # TP -> first offset, for stream partitions never committed

    async def measure_lag() -> None:
        consumer = app.consumer
        assignment = consumer.assignment()
        health.set(assigned=len(assignment), started=True)
        lags: dict[Any, int] = {}
        for tp in assignment:
            try:
                high = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - lag is best effort
                log.debug("highwater_unavailable", partition=tp.partition)
                continue
            if high is None:
                continue
            # Behind the next offset the stage has to process: the one after the last it saw,
            # else the committed offset, else (a stream partition never committed, read from
            # its start) the first offset of the log. A worker that has received nothing of a
            # partition therefore reports its whole backlog, not zero.
            pos = stages.positions.get(tp)
            if pos is None:
                pos = getattr(consumer, "_committed_offset", {}).get(tp)
            if pos is None and tp.topic in stream_topics:
                if tp not in log_starts:
                    try:
                        log_starts.update((await consumer.earliest_offsets(tp)).items())
                    except Exception:  # noqa: BLE001 - lag is best effort
                        log.debug("log_start_unavailable", partition=tp.partition)
                pos = log_starts.get(tp)
            lags[tp] = max(0, high - (high if pos is None else pos))
        metrics.consumer_lag.clear()  # partitions revoked by a rebalance disappear
        for tp, lag in lags.items():
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        try:
            metrics.state_clients.set(len(table))
        except Exception:  # noqa: BLE001 - table size is best effort
            log.debug("table_size_unavailable")

    app.timer(s.lag_interval_seconds, name="consumer-lag")(measure_lag)

    async def mark_started() -> None:
        health.set(started=True)
        log.info("worker_started", app_id=s.app_id, worker_id=s.worker_id)

    app.task(mark_started)


def create_app(settings: Settings, *, sinks: Sequence[Sink] = ()) -> Any:
    """The Faust app of a worker (see :func:`build_pipeline` for its companions)."""
    return build_pipeline(settings, sinks=sinks).app
