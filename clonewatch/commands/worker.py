"""``clonewatch worker``: run one streaming worker (Faust) until SIGTERM or Ctrl-C.

On SIGTERM the worker stops its agents, commits the offsets of what it
processed and exits 0 (its population checkpoints are written by the score
stage, ahead of the table writes of each batch that changed the baseline). Sinks
(``--sink``) are written and flushed inside each batch, before its state is
written and before its offsets can be committed.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import structlog

from clonewatch.cli import CommandError
from clonewatch.commands.produce import add_connection_arguments, load_settings
from clonewatch.commands.sink_options import add_sink_arguments, build_sink
from clonewatch.logs import guard_library_loggers, restore_root_handler
from detectors.kernels.warmup import warm_up
from streams.kafka_io import ensure_topics, tail_records
from streams.metrics import MetricsServer
from streams.settings import Settings
from streams.sinks.base import SinkError

log = structlog.get_logger("clonewatch.worker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` sub-command."""
    p = subparsers.add_parser("worker", help="run a streaming worker on Kafka")
    add_connection_arguments(p)
    p.add_argument("--app-id", help="consumer group and internal-topic prefix")
    p.add_argument("--worker-id", help="stable id of this worker (population checkpoints)")
    p.add_argument("--store", help="memory:// or rocksdb://")
    p.add_argument("--data-dir", help="directory of the RocksDB state")
    p.add_argument("--partitions", type=int, help="partitions of the topics the app creates")
    p.add_argument("--metrics-port", type=int, help="port of /metrics and /health (-1: off)")
    add_sink_arguments(p)  # --sink KIND[=URL] and the flags of each sink
    p.set_defaults(func=run)


def _create_topics(settings: Settings, by_client: str) -> None:
    """Create the topics before Faust subscribes (it ignores topics missing at that moment)."""
    ensure_topics(
        settings,
        [
            settings.topic_queries,
            by_client,
            settings.topic_alerts,
            settings.topic_risk,
            settings.topic_dead_letter,
        ],
    )
    ensure_topics(
        settings,
        [settings.topic_population],
        partitions=1,
        configs={
            "cleanup.policy": "compact",
            "max.message.bytes": str(settings.max_message_bytes),
            # A checkpoint per changed batch: small segments so compaction keeps up.
            "segment.bytes": str(64 * 1024 * 1024),
            "min.cleanable.dirty.ratio": "0.2",
        },
    )


def _load_population(pipeline: Any, settings: Settings) -> str:
    """Import this worker's last checkpoint, else the freshest of its group; say which."""
    from streams.app import restore_population  # noqa: PLC0415 - imports Faust

    prefix = f"{settings.app_id}/".encode()
    latest: dict[bytes, tuple[int, bytes]] = {}
    try:
        for rec in tail_records(
            settings, settings.topic_population, from_beginning=True, idle_timeout=1.0
        ):
            if rec.key and rec.key.startswith(prefix) and rec.value:
                latest[rec.key] = (int(rec.timestamp), bytes(rec.value))
    except LookupError:
        return "none (no checkpoint topic yet)"
    return restore_population(pipeline, latest)


def run(args: argparse.Namespace) -> int:
    """Run the worker until it is stopped."""
    # Faust is slow to import and only the worker needs it.
    import faust  # noqa: PLC0415

    from streams.app import build_pipeline  # noqa: PLC0415

    guard_library_loggers()  # Faust, mode and aiokafka loggers exist now: rate-limit them

    class _Worker(faust.Worker):
        """Faust's worker, keeping Clonewatch's log handler (JSON lines in json mode)."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            # mode's setup_logging has just replaced the root handlers with plain-text ones
            restore_root_handler(logger)

    settings = load_settings(
        args,
        app_id=args.app_id,
        worker_id=args.worker_id,
        store=args.store,
        data_dir=args.data_dir,
        partitions=args.partitions,
        metrics_port=args.metrics_port,
    )
    sinks = [build_sink(spec, args) for spec in args.sink]
    for sink in sinks:
        try:
            sink.setup()
        except (SinkError, OSError, ValueError) as exc:
            raise CommandError(f"the {sink.name} sink is not ready: {exc}") from exc
    try:
        pipeline = build_pipeline(settings, sinks=sinks)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from exc
    log.info("worker_starting", settings=settings.redacted(), sinks=[s.name for s in sinks])
    try:
        _create_topics(settings, pipeline.by_client_topic)
    except Exception as exc:
        raise CommandError(f"cannot reach Kafka to create topics: {exc}") from exc
    try:
        source = _load_population(pipeline, settings)
    except Exception as exc:  # noqa: BLE001 - a cold start is safe, just slower to warm up
        source = f"none ({type(exc).__name__})"
    log.info("population_loaded", source=source)

    server = None
    if settings.metrics_port >= 0:
        server = MetricsServer(
            pipeline.metrics, pipeline.health, settings.metrics_host, settings.metrics_port
        )
        server.start()
        log.info("metrics_listening", port=server.port)
    warm_up()  # the compiled kernels, before the first batch waits for them
    pipeline.metrics.up.set(1)
    # Faust, aiokafka and kafka-python log through stdlib logging: keep them at WARNING
    # unless the operator asked for DEBUG.
    level = "DEBUG" if logging.getLogger().level == logging.DEBUG else "WARNING"
    worker = _Worker(
        pipeline.app,
        loglevel=level,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.spinner = None  # no terminal spinner: its cursor codes are not log lines
    guard_library_loggers()  # and those Faust's worker made while setting up
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        pipeline.health.set(stopping=True)
        pipeline.metrics.up.set(0)
        for sink in sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - closing is best effort at exit
                log.warning("sink_close_failed", sink=sink.name)
        if server is not None:
            server.stop()
    log.info("worker_stopped", code=code)
    return code
