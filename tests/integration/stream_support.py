"""Helpers of the streaming tests: a small QueryEvent log, worker subprocesses, topic reads."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaConsumer, TopicPartition

from streams.kafka_io import read_topic
from streams.replay import replay_path
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The real CLI; CLONEWATCH_TEST_CLI may point elsewhere (e.g. a wrapper) when debugging.
CLI = shlex.split(os.environ.get("CLONEWATCH_TEST_CLI", str(ROOT / ".venv/bin/clonewatch")))
WAIT_SECONDS = 90.0


def write_log(
    path: Path, *, benign: int = 16, per_client: int = 30, seed: int = 5
) -> list[dict[str, Any]]:
    """A small, deterministic log: calm clients, one fast and one slow extraction-like client."""
    rng = np.random.default_rng(seed)
    dim = 12
    centers = rng.normal(0, 1, (3, dim))
    t0 = 1767225600.0
    events: list[dict[str, Any]] = []
    for c in range(benign):
        for k in range(per_client):
            x = centers[int(rng.integers(3))] + rng.normal(0, 0.25, dim)
            events.append(
                {
                    "event_id": f"b{c}-{k}",
                    "timestamp": t0 + float(rng.uniform(0, 3000)),
                    "client_id": f"benign-{c}",
                    "model_id": "m1",
                    "features": [round(float(v), 4) for v in x],
                    "output": {
                        "label": int(rng.integers(3)),
                        "confidence": round(float(rng.uniform(0.8, 1.0)), 4),
                    },
                }
            )
    for name, n, start, gap in (
        ("attacker-fast", 120, 1000.0, 2.0),
        ("attacker-slow", 120, 200.0, 20.0),
    ):
        for k in range(n):
            x = rng.uniform(-4, 4, dim)
            events.append(
                {
                    "event_id": f"{name}-{k}",
                    "timestamp": t0 + start + k * gap,
                    "client_id": name,
                    "model_id": "m1",
                    "features": [round(float(v), 4) for v in x],
                    "output": {
                        "label": int(rng.integers(10)),
                        "confidence": round(float(rng.uniform(0.3, 0.6)), 4),
                    },
                }
            )
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return events


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StreamEnv:
    """Unique topic names, app id and environment of one test."""

    bootstrap: str
    tmp: Path
    partitions: int = 1
    extra: dict[str, str] = field(default_factory=dict)
    queries: str | None = None  # an input topic made by the new_topic fixture
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    @property
    def env(self) -> dict[str, str]:
        """CLONEWATCH_* variables for the CLI subprocesses."""
        p = self.prefix
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEWATCH_")}
        env.update(
            {
                "CLONEWATCH_BOOTSTRAP_SERVERS": self.bootstrap,
                "CLONEWATCH_APP_ID": f"{p}-app",
                "CLONEWATCH_TOPIC_QUERIES": self.queries or f"{p}.queries",
                "CLONEWATCH_TOPIC_ALERTS": f"{p}.alerts",
                "CLONEWATCH_TOPIC_RISK": f"{p}.risk",
                "CLONEWATCH_TOPIC_DEAD_LETTER": f"{p}.dead-letter",
                "CLONEWATCH_TOPIC_POPULATION": f"{p}.population",
                "CLONEWATCH_PARTITIONS": str(self.partitions),
                "CLONEWATCH_STANDBY_REPLICAS": "0",
                "CLONEWATCH_LOG_FORMAT": "json",
                "CLONEWATCH_LAG_INTERVAL_SECONDS": "0.5",
                "CLONEWATCH_SESSION_TIMEOUT_SECONDS": "6",
            }
        )
        env.update(self.extra)
        return env

    @property
    def settings(self) -> Settings:
        """The same settings, for in-test clients."""
        return Settings.load(env=self.env)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a short CLI command to completion."""
        return subprocess.run(
            [*CLI, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def worker(
        self, name: str, *, store: str = "memory://", sink: list[str] | None = None
    ) -> Worker:
        """Start a worker subprocess (its own metrics port and data dir; ``--sink`` each)."""
        port = free_port()
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [
                *CLI,
                "worker",
                "--worker-id",
                name,
                "--metrics-port",
                str(port),
                "--store",
                store,
                "--data-dir",
                str(self.tmp / f"data-{name}"),
                *(arg for spec in sink or [] for arg in ("--sink", spec)),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return Worker(proc, port, self.tmp / f"{name}.log")

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert on the alerts topic."""
        return [json.loads(r.value) for r in read_topic(self.settings, f"{self.prefix}.alerts")]

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every record on the dead-letter topic."""
        return [
            json.loads(r.value) for r in read_topic(self.settings, f"{self.prefix}.dead-letter")
        ]


def webhook_env(bootstrap: str, tmp: Path, secret: str) -> StreamEnv:
    """A StreamEnv whose workers sign webhooks with ``secret`` and dead-letter them in ``tmp``."""
    extra = {
        "CLONEWATCH_WEBHOOK_SECRET": secret,
        "CLONEWATCH_WEBHOOK_DEAD_LETTER": str(tmp / "webhook-dl.jsonl"),
    }
    return StreamEnv(bootstrap, tmp, extra=extra)


@dataclass
class Worker:
    """A running ``clonewatch worker`` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics as {sample name with labels: value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def value(self, name: str) -> float:
        """One sample (0 when absent or the endpoint is not up yet)."""
        try:
            return self.metrics().get(name, 0.0)
        except OSError:
            return 0.0

    def wait_for(self, name: str, at_least: float, timeout: float = WAIT_SECONDS) -> float:
        """Poll until sample ``name`` reaches ``at_least``; fail with the log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
            v = self.value(name)
            if v >= at_least:
                return v
            time.sleep(0.2)
        raise AssertionError(f"{name} never reached {at_least}:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        """The end of the worker's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """kill -9."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def alert_keys(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """The (client, model, level) set of alerts."""
    return {
        (a["user"]["id"], a["clonewatch"]["model_id"], a["clonewatch"]["risk_level"])
        for a in alerts
    }


def replay_alerts(path: Path) -> list[dict[str, Any]]:
    """What the in-process replay alerts on the same file."""
    return list(replay_path(path).alerts)


def python() -> str:
    """The interpreter of the test run."""
    return sys.executable


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    """The offset ``group`` committed on one partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        value = consumer.committed(TopicPartition(topic, partition))
        return None if value is None else int(value)
    finally:
        consumer.close()


@dataclass(frozen=True)
class Received:
    """One request the webhook receiver got: its headers (lower-case names) and raw body."""

    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A real HTTP server thread on loopback that records every POST and answers 204.

    ``delay`` seconds pass between reading a POST and answering it (a slow gateway);
    while ``fail`` is above 0 a POST is answered 503 instead, kept in ``refused`` and
    ``fail`` counts down. ``arrived`` is set once a POST has been read.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self.refused: list[Received] = []
        self.delay = delay
        self.fail = 0
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                got = Received({k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    refuse = outer.fail > 0
                    outer.fail -= int(refuse)
                    (outer.refused if refuse else outer.received).append(got)
                outer.arrived.set()
                if not refuse:
                    time.sleep(outer.delay)
                self.send_response(503 if refuse else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/clonewatch"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Received]:
        """The requests received so far."""
        with self._lock:
            return list(self.received)
