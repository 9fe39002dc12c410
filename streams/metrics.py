"""Prometheus metrics of a worker and its ``/metrics`` and ``/health`` HTTP endpoint.

Each :class:`Metrics` owns its own registry (no global state), so tests and
several apps in one process do not collide.

>>> m = Metrics()
>>> m.events_in.inc()
>>> b"clonewatch_events_in_total 1.0" in m.render()
True
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The worker's counters, gauges and histogram, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_in = Counter(
            "clonewatch_events_in", "Messages read from the input topic", registry=r
        )
        self.events_processed = Counter(
            "clonewatch_events_processed", "Valid events scored by the engine", registry=r
        )
        self.events_skipped = Counter(
            "clonewatch_events_skipped_replayed",
            "Events re-delivered after a crash whose effect was already in the state",
            registry=r,
        )
        self.dead_letters = Counter(
            "clonewatch_dead_letters", "Rejected input messages", ["reason"], registry=r
        )
        self.alerts = Counter("clonewatch_alerts", "Alerts emitted", ["level"], registry=r)
        self.risk_scores = Counter("clonewatch_risk_scores", "Risk scores emitted", registry=r)
        self.sink_writes = Counter(
            "clonewatch_sink_writes", "Records delivered to a sink", ["sink"], registry=r
        )
        self.sink_failures = Counter(
            "clonewatch_sink_failures", "Failed sink flushes", ["sink"], registry=r
        )
        self.sink_rejected = Counter(
            "clonewatch_sink_rejected",
            "Records a sink rejected for good, sent to the dead-letter topic",
            ["sink"],
            registry=r,
        )
        self.errors = Counter("clonewatch_errors", "Processing errors", ["stage"], registry=r)
        self.retries = Counter(
            "clonewatch_retries", "Retried operations", ["operation"], registry=r
        )
        self.consumer_lag = Gauge(
            "clonewatch_consumer_lag",
            "Messages behind the end of each assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.state_clients = Gauge(
            "clonewatch_state_clients", "Clients held in this worker's table", registry=r
        )
        self.latency = Histogram(
            "clonewatch_processing_latency_seconds",
            "From an event's arrival on the input topic to its outputs being sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "clonewatch_batch_seconds",
            "Time to score and deliver one batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.population_checkpoints = Counter(
            "clonewatch_population_checkpoints", "Population baselines checkpointed", registry=r
        )
        self.up = Gauge("clonewatch_worker_up", "1 while the worker is running", registry=r)
        self.models_tracked = Gauge(
            "clonewatch_models_tracked",
            "Model baselines this worker's engine holds (at most EngineConfig.max_models)",
            registry=r,
        )
        self.models_evicted = Counter(
            "clonewatch_models_evicted",
            "Lone model baselines evicted to make room for a new model id",
            registry=r,
        )
        self.model_overflow_events = Counter(
            "clonewatch_model_overflow_events",
            "Events of model ids beyond max_models, scored in the shared __overflow__ model",
            registry=r,
        )
        self._model_seen = {"models_evicted": 0, "model_overflow_events": 0}

    def observe_models(self, stats: dict[str, int]) -> None:
        """Set the model gauges from :meth:`detectors.engine.Engine.model_stats`."""
        self.models_tracked.set(stats["models_tracked"])
        for name, counter in (
            ("models_evicted", self.models_evicted),
            ("model_overflow_events", self.model_overflow_events),
        ):
            grown = stats[name] - self._model_seen[name]
            if grown > 0:
                counter.inc(grown)
            self._model_seen[name] = stats[name]

    def dead_letter_reason(self, reason: str) -> str:
        """A low-cardinality label for a dead-letter reason (its kind, not its details)."""
        head = reason.split(":", 1)[0].strip()
        if head.startswith("event larger than"):
            return "too large"
        if head.startswith("not a JSON object"):
            return "not a JSON object"
        return head[:40] or "unknown"

    def render(self) -> bytes:
        """The exposition text of the registry."""
        return bytes(generate_latest(self.registry))


class Health:
    """What ``/health`` reports: running, partitions assigned, last progress, sink failures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = False
        self.stopping = False
        self.assigned: int = 0
        self.last_event_at: float | None = None
        self.sink_failing: dict[str, str] = {}

    def set(self, **fields: Any) -> None:
        """Update fields atomically."""
        with self._lock:
            for k, v in fields.items():
                setattr(self, k, v)

    def snapshot(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: healthy while started, not stopping and no sink failing."""
        with self._lock:
            healthy = self.started and not self.stopping and not self.sink_failing
            body = {
                "status": "ok" if healthy else "unhealthy",
                "started": self.started,
                "stopping": self.stopping,
                "assigned_partitions": self.assigned,
                "last_event_age_seconds": (
                    None
                    if self.last_event_at is None
                    else round(time.time() - self.last_event_at, 3)
                ),
                "sinks_failing": dict(self.sink_failing),
            }
        return healthy, body


class MetricsServer:
    """A small threaded HTTP server for ``/metrics`` and ``/health``."""

    def __init__(self, metrics: Metrics, health: Health, host: str, port: int) -> None:
        self.metrics = metrics
        self.health = health
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, outer.metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/health":
                    ok, body = outer.health.snapshot()
                    self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="clonewatch-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
