"""Streaming worker on the real broker: throughput and alert latency (run by ``make bench``).

Needs the Kafka broker of ``scripts/services.sh up kafka`` (``127.0.0.1:$CLONEWATCH_KAFKA_PORT``,
default 19092, or ``$CLONEWATCH_BENCH_BOOTSTRAP``); every run uses fresh topic names and deletes
them at the end. One ``clonewatch worker`` subprocess, one partition, memory store, no sink.

(a) Throughput: N events are produced first; then a bare aiokafka consumer reads the input
    topic (raw rate), then the worker is started and timed from its first processed event to
    its last (``clonewatch_events_processed_total`` on /metrics, polled every 50 ms).
(b) Latency: the worker is started on empty topics; events are produced at a steady offered
    rate (5,000/s) for a fixed time; each alert's and risk score's latency is the Kafka
    timestamp of the output record (set by the worker's producer when it sends it) minus the
    time the bench sent the triggering input event (``trigger_event_id``). If the worker does
    not keep up, the run says so and is repeated at 80 % of the throughput measured in (a).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient

from streams.kafka_io import ensure_topics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv/bin/clonewatch")
BOOTSTRAP = os.environ.get(
    "CLONEWATCH_BENCH_BOOTSTRAP", f"127.0.0.1:{os.environ.get('CLONEWATCH_KAFKA_PORT', '19092')}"
)
THROUGHPUT_EVENTS = 30_000
OFFERED_RATE = 5_000
LATENCY_SECONDS = 10.0  # of offered load per run
DRAIN_LIMIT = 120.0  # seconds after the last send before a run gives up waiting
DIM, CLASSES = 32, 10
BENIGN_CLIENTS, ATTACKERS, ATTACK_QUERIES = 1_500, 40, 300
TICK = 0.01  # pacing granularity of the offered load


# ---------------------------------------------------------------------------------- the log


def build_events(n: int, seed: int) -> list[tuple[bytes, bytes, str]]:
    """``n`` (key, value, event_id): natural clients plus attackers spread over the whole log."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 16, (CLASSES, DIM))
    w = (centres - centres.mean(0)) / 8.0
    n_attack = min(ATTACKERS * ATTACK_QUERIES, n // 4)
    n_benign = n - n_attack
    clients = [f"client-{c:05d}" for c in rng.integers(0, BENIGN_CLIENTS, n_benign)]
    labels = rng.integers(0, CLASSES, n_benign)
    x = np.clip(centres[labels] + rng.normal(0, 2.0, (n_benign, DIM)), 0, 16)
    xa = rng.uniform(0, 16, (n_attack, DIM))
    names = clients + [f"attacker-{i % ATTACKERS:02d}" for i in range(n_attack)]
    xs = np.vstack([x, xa]).round(2)
    logits = xs @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    order = rng.permutation(n)  # attackers interleaved with everyone, from start to end
    t0 = 1_793_491_200.0
    out: list[tuple[bytes, bytes, str]] = []
    for i, k in enumerate(order):
        eid = f"e{seed}-{i}"
        doc = {
            "event_id": eid,
            "timestamp": t0 + i * 0.2,
            "client_id": names[k],
            "model_id": "bench-model",
            "features": xs[k].tolist(),
            "output": {
                "label": int(p[k].argmax()),
                "confidence": round(float(p[k].max()), 5),
                "probabilities": p[k].round(5).tolist(),
            },
        }
        out.append((names[k].encode(), json.dumps(doc).encode(), eid))
    return out


# ------------------------------------------------------------------------------ the worker


def free_port() -> int:
    """A currently free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    """Topic names and the environment of one worker run."""

    prefix: str
    tmp: Path

    @property
    def queries(self) -> str:
        """The input topic."""
        return f"{self.prefix}.queries"

    def env(self) -> dict[str, str]:
        """The worker's CLONEWATCH_* environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEWATCH_")}
        p = self.prefix
        env.update(
            {
                "CLONEWATCH_BOOTSTRAP_SERVERS": BOOTSTRAP,
                "CLONEWATCH_APP_ID": f"{p}-app",
                "CLONEWATCH_TOPIC_QUERIES": self.queries,
                "CLONEWATCH_TOPIC_ALERTS": f"{p}.alerts",
                "CLONEWATCH_TOPIC_RISK": f"{p}.risk",
                "CLONEWATCH_TOPIC_DEAD_LETTER": f"{p}.dead-letter",
                "CLONEWATCH_TOPIC_POPULATION": f"{p}.population",
                "CLONEWATCH_PARTITIONS": "1",
                "CLONEWATCH_STANDBY_REPLICAS": "0",
                "CLONEWATCH_LOG_FORMAT": "json",
                "CLONEWATCH_LOG_LEVEL": "WARNING",
            }
        )
        return env

    def settings(self) -> Settings:
        """Settings for the bench's own clients."""
        return Settings.load(env=self.env(), config_file=None)

    def topics(self) -> list[str]:
        """Every topic this run may have created (for deletion)."""
        p = self.prefix
        return [
            f"{p}.queries",
            f"{p}.alerts",
            f"{p}.risk",
            f"{p}.dead-letter",
            f"{p}.population",
            f"{p}-app-by-client",
            f"{p}-app-client-state-changelog",
            f"{p}-app-__assignor-__leader",
        ]


class Worker:
    """A ``clonewatch worker`` subprocess and its /metrics."""

    def __init__(self, run: Run) -> None:
        self.port = free_port()
        self.log = (run.tmp / f"{run.prefix}.log").open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [CLI, "worker", "--worker-id", "bench", "--metrics-port", str(self.port)],
            env=run.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def _get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return bytes(r.read())

    def processed(self) -> float:
        """clonewatch_events_processed_total (0 before the endpoint is up)."""
        try:
            text = self._get("/metrics").decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("clonewatch_events_processed_total "):
                return float(line.split()[1])
        return 0.0

    def wait_assigned(self, timeout: float = 90.0) -> None:
        """Until /health reports an assigned partition."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                body = json.loads(self._get("/health"))
            except OSError as exc:  # 503 while starting raises HTTPError (an OSError)
                body = json.loads(exc.read()) if hasattr(exc, "read") else {}
            if body.get("assigned_partitions", 0) > 0:
                return
            time.sleep(0.2)
        raise RuntimeError("the worker never got its partition")

    def check(self) -> None:
        """Fail if the worker died."""
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the worker exited with {self.proc.returncode}; see {self.log.name}"
            )

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------- Kafka clients


async def produce_all(topic: str, events: list[tuple[bytes, bytes, str]]) -> float:
    """Produce every event as fast as possible (acks=all); returns events/s."""
    prod = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await prod.start()
    try:
        t0 = time.perf_counter()
        futs = []
        for key, value, _ in events:
            futs.append(await prod.send(topic, value=value, key=key))
            if len(futs) >= 5_000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        return len(events) / (time.perf_counter() - t0)
    finally:
        await prod.stop()


async def produce_paced(
    topic: str, events: list[tuple[bytes, bytes, str]], rate: float
) -> tuple[dict[str, float], float]:
    """Send at ``rate`` events/s in 10 ms ticks; returns send times by event id, achieved rate."""
    prod = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=1)
    await prod.start()
    sent_at: dict[str, float] = {}
    try:
        per_tick = rate * TICK
        start = time.time()
        done = 0
        futs = []
        tick = 0
        while done < len(events):
            tick += 1
            due = min(len(events), round(per_tick * tick))
            while done < due:
                key, value, eid = events[done]
                sent_at[eid] = time.time()
                futs.append(await prod.send(topic, value=value, key=key))
                done += 1
            delay = start + tick * TICK - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(futs) >= 2_000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        return sent_at, len(events) / (time.time() - start)
    finally:
        await prod.stop()


async def raw_consume(topic: str, n: int) -> tuple[float, float]:
    """A bare aiokafka consumer reading ``n`` records: (events/s first-to-last, incl. start)."""
    t_start = time.perf_counter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = 0
        t_first = None
        while got < n:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for recs in batch.values():
                if recs and t_first is None:
                    t_first = time.perf_counter()
                got += len(recs)
        t_end = time.perf_counter()
        assert t_first is not None
        return n / (t_end - t_first), n / (t_end - t_start)
    finally:
        await consumer.stop()


async def read_all(topic: str) -> list[Any]:
    """Every record of a one-partition topic, up to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        out: list[Any] = []
        while len(out) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for recs in batch.values():
                out.extend(recs)
        return out
    finally:
        await consumer.stop()


def delete_topics(runs: list[Run]) -> None:
    """Delete what the runs created (best effort)."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="cw-bench")
    try:
        existing = set(admin.list_topics())
        names = [t for r in runs for t in r.topics() if t in existing]
        names += [t for t in existing if any(t.startswith(r.prefix) for r in runs)]
        if names:
            admin.delete_topics(sorted(set(names)))
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the figures
        print(f"(could not delete the bench topics: {exc})")
    finally:
        admin.close()


# ----------------------------------------------------------------------------- measurements


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation)."""
    return float(np.percentile(np.asarray(values), q))


def measure_throughput(tmp: Path, runs: list[Run]) -> float:
    """(a): produce N, raw consumer rate, worker rate; returns the worker's events/s."""
    run = Run(f"bench{uuid.uuid4().hex[:8]}", tmp)
    runs.append(run)
    events = build_events(THROUGHPUT_EVENTS, seed=1)
    ensure_topics(run.settings(), [run.queries], partitions=1)
    prate = asyncio.run(produce_all(run.queries, events))
    raw, raw_total = asyncio.run(raw_consume(run.queries, len(events)))
    worker = Worker(run)
    try:
        t_start = time.perf_counter()
        t_first = None
        first_count = 0.0
        while True:
            worker.check()
            done = worker.processed()
            now = time.perf_counter()
            if done > 0 and t_first is None:
                t_first, first_count = now, done
            if done >= len(events):
                break
            if now - t_start > 300:
                raise RuntimeError(f"the worker processed only {done:.0f} events in 300 s")
            time.sleep(0.05)
        t_end = time.perf_counter()
    finally:
        worker.stop()
    assert t_first is not None
    rate = (len(events) - first_count) / max(t_end - t_first, 1e-9)
    print(
        f"(a) {len(events):,} events produced first ({prate:,.0f} events/s, acks=all, 1 partition)"
    )
    print(
        f"    bare aiokafka consumer: {raw:,.0f} events/s first record to last "
        f"({raw_total:,.0f} events/s including its start)"
    )
    print(
        f"    one worker, input topic to risk computed: {rate:,.0f} events/s first processed "
        f"to last ({len(events) / (t_end - t_start):,.0f} events/s including its "
        f"{t_first - t_start:.1f} s start-up)"
    )
    print(f"    worker / bare consumer: {rate / raw:.3f} ({raw / rate:.1f}x slower)")
    return rate


@dataclass
class LatencyResult:
    """What one paced run measured."""

    offered: float
    achieved: float
    events: int
    processed: int
    caught_up_after: float  # seconds from the last send to the last event processed
    alert_ms: list[float]
    risk_ms: list[float]

    @property
    def kept_up(self) -> bool:
        """Sustained: the offered rate was reached and processing ended within 1 s of it."""
        return (
            self.processed >= self.events
            and self.achieved >= 0.97 * self.offered
            and self.caught_up_after < 1.0
        )


def measure_latency(tmp: Path, runs: list[Run], rate: float, seed: int) -> LatencyResult:
    """(b) at one offered rate."""
    run = Run(f"bench{uuid.uuid4().hex[:8]}", tmp)
    runs.append(run)
    n = int(rate * LATENCY_SECONDS)
    events = build_events(n, seed=seed)
    worker = Worker(run)
    try:
        worker.wait_assigned()
        sent_at, achieved = asyncio.run(produce_paced(run.queries, events, rate))
        t_sent = time.perf_counter()
        while worker.processed() < n:
            worker.check()
            if time.perf_counter() - t_sent > DRAIN_LIMIT:
                break  # reported: the outputs so far are measured
            time.sleep(0.02)
        caught_up = time.perf_counter() - t_sent
        processed = int(worker.processed())
    finally:
        worker.stop()

    def latencies(topic: str) -> list[float]:
        out = []
        for rec in asyncio.run(read_all(topic)):
            trigger = json.loads(rec.value)["clonewatch"]["trigger_event_id"]
            if trigger in sent_at:
                out.append(rec.timestamp - sent_at[trigger] * 1000.0)
        return out

    return LatencyResult(
        rate,
        achieved,
        n,
        processed,
        caught_up,
        latencies(f"{run.prefix}.alerts"),
        latencies(f"{run.prefix}.risk"),
    )


def report(res: LatencyResult) -> None:
    """Print one latency run."""
    print(
        f"    offered {res.offered:,.0f} events/s for {LATENCY_SECONDS:.0f} s "
        f"({res.events:,} events), achieved by the producer {res.achieved:,.0f} events/s; "
        f"worker processed {res.processed:,} events {res.caught_up_after:.2f} s after the "
        "last send"
    )
    for name, values in (("alerts", res.alert_ms), ("risk scores", res.risk_ms)):
        if values:
            print(
                f"    {name}: n={len(values):,}  p50 {percentile(values, 50):,.0f} ms  "
                f"p99 {percentile(values, 99):,.0f} ms  max {max(values):,.0f} ms"
            )
        else:
            print(f"    {name}: none emitted")


def main() -> int:
    """Run (a) and (b), print the figures."""
    try:
        host, port = BOOTSTRAP.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        print(f"bench_stream: Kafka is not reachable at {BOOTSTRAP} ({exc});")
        print("start it with `bash scripts/services.sh up kafka`")
        return 1
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at start; broker {BOOTSTRAP}"
    )
    runs: list[Run] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            rate = measure_throughput(tmp, runs)
            print("(b) latency, event sent to its output on the topic (Kafka timestamp)")
            res = measure_latency(tmp, runs, OFFERED_RATE, seed=2)
            report(res)
            if res.kept_up:
                print(f"    the worker sustains {OFFERED_RATE:,} events/s")
            else:
                sustain = 0.8 * min(rate, OFFERED_RATE)
                print(
                    f"    the worker does NOT keep up with {OFFERED_RATE:,} events/s (latency "
                    f"grows with the backlog); again at {sustain:,.0f} events/s (80 % of (a)):"
                )
                res2 = measure_latency(tmp, runs, sustain, seed=3)
                report(res2)
                verdict = "sustains" if res2.kept_up else "does not sustain either"
                print(f"    the worker {verdict} {sustain:,.0f} events/s")
        finally:
            delete_topics(runs)
    load = os.getloadavg()
    print(
        f"total {time.perf_counter() - t0:.0f} s; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
