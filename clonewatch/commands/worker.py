"""``clonewatch worker``: run one streaming worker (Faust) until SIGTERM or Ctrl-C.

On SIGTERM the worker stops its agents, commits the offsets of what it
processed, writes a last population checkpoint and exits 0. Sinks
(``--sink``) are written and flushed inside each batch, before its state is
written and before its offsets can be committed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

import structlog

from clonewatch.cli import CommandError
from clonewatch.commands.produce import add_connection_arguments, load_settings
from detectors.kernels.warmup import warm_up
from streams.kafka_io import ensure_topics, make_producer, tail_records
from streams.metrics import MetricsServer
from streams.settings import Settings
from streams.sinks.base import Sink, SinkError

log = structlog.get_logger("clonewatch.worker")

# Sink name -> (module, factory). A factory is called as described in _build_sink: the search
# sinks as build_search_sink(kind, url); the others as build_X_sink(args=args), reading their
# --X-* flags over their CLONEWATCH_X_* variables.
SINK_FACTORIES: dict[str, tuple[str, str]] = {
    "elasticsearch": ("streams.sinks.search_common", "build_search_sink"),
    "opensearch": ("streams.sinks.search_common", "build_search_sink"),
    "webhook": ("streams.sinks.webhook", "build_webhook_sink"),
    "siem": ("streams.sinks.syslog", "build_siem_sink"),
    "hec": ("streams.sinks.hec", "build_hec_sink"),
}
# The flags of the optional sinks: (module, function adding them).
SINK_ARGUMENTS: tuple[tuple[str, str], ...] = (
    ("streams.sinks.webhook", "add_webhook_arguments"),
    ("streams.sinks.syslog", "add_siem_arguments"),
    ("streams.sinks.hec", "add_hec_arguments"),
)


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
    p.add_argument(
        "--sink",
        action="append",
        default=[],
        metavar="KIND[=URL]",
        help="also deliver to elasticsearch=URL, opensearch=URL, webhook[=URL], siem[=URL] or "
        "hec[=URL] (repeatable; a URL given here is the default of --webhook-url etc.)",
    )
    for module_name, func_name in SINK_ARGUMENTS:
        try:
            add_arguments = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError):  # an optional sink missing from this build
            continue
        add_arguments(p)
    p.set_defaults(func=run)


def _build_sink(spec: str, args: argparse.Namespace) -> Sink:
    kind, _, url = spec.partition("=")
    if kind not in SINK_FACTORIES:
        raise CommandError(f"unknown sink {kind!r}: one of {', '.join(SINK_FACTORIES)}", 2)
    module_name, func_name = SINK_FACTORIES[kind]
    try:
        factory: Any = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"the {kind} sink is not available in this build ({exc})", 2) from exc
    try:
        if kind in ("elasticsearch", "opensearch"):
            if not url:
                raise CommandError(f"--sink {kind}=URL needs the cluster URL", 2)
            sink: Sink = factory(kind, url)
        else:
            if url and not getattr(args, f"{kind}_url", None):
                args = argparse.Namespace(**{**vars(args), f"{kind}_url": url})
            sink = factory(args=args)
    except (ValueError, TypeError, OSError) as exc:  # bad or missing sink settings
        raise CommandError(f"the {kind} sink: {exc}", 2) from exc
    return sink


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
        },
    )


def _load_population(pipeline: Any, settings: Settings) -> str:
    """Import this worker's last checkpoint, else the freshest of its group; say which."""
    own = pipeline.population_key
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
    if own in latest:
        key = own
    elif latest:
        key = max(latest, key=lambda k: latest[k][0])
    else:
        return "none"
    pipeline.engine.import_population(latest[key][1])
    return str(key.decode())


def _final_checkpoint(pipeline: Any, settings: Settings) -> None:
    prod = make_producer(settings)
    try:
        prod.send(
            settings.topic_population,
            key=pipeline.population_key,
            value=pipeline.engine.export_population(),
        ).get(timeout=30)
    finally:
        prod.close()


def run(args: argparse.Namespace) -> int:
    """Run the worker until it is stopped."""
    # Faust is slow to import and only the worker needs it.
    import faust  # noqa: PLC0415

    from streams.app import build_pipeline  # noqa: PLC0415

    settings = load_settings(
        args,
        app_id=args.app_id,
        worker_id=args.worker_id,
        store=args.store,
        data_dir=args.data_dir,
        partitions=args.partitions,
        metrics_port=args.metrics_port,
    )
    sinks = [_build_sink(spec, args) for spec in args.sink]
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
    worker = faust.Worker(
        pipeline.app,
        loglevel=level,
        quiet=True,
        redirect_stdouts=False,
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        pipeline.health.set(stopping=True)
        pipeline.metrics.up.set(0)
        try:
            _final_checkpoint(pipeline, settings)
        except Exception:  # noqa: BLE001 - the periodic checkpoint remains
            log.warning("final_population_checkpoint_failed")
        for sink in sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - closing is best effort at exit
                log.warning("sink_close_failed", sink=sink.name)
        if server is not None:
            server.stop()
    log.info("worker_stopped", code=code)
    return code
