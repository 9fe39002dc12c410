"""Replay throughput on one core and memory per tracked client (run by ``make bench``).

Builds a QueryEvent log of 250,000 events (64-feature inputs, 10-class outputs,
2,000 natural clients and a few attackers) in a temporary folder, then measures:

* end-to-end replay (read, decode, validate, score, write alerts/scores) in events/s;
* the engine alone on pre-decoded events in events/s;
* bytes per tracked (client, model): serialised state and live Python memory.

Throughputs are the median of ``RUNS`` runs, each with a fresh engine, with their range: on a
shared virtual machine one run can be 10 % off the next.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import detectors
from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import QueryEvent, decode_event
from streams.replay import replay_path

EVENTS = 250_000
RUNS = 3
CLIENTS = 2_000
DIM, CLASSES = 64, 10


def build_log(path: Path, seed: int = 0) -> None:
    """Write the benchmark log: natural clients around class centres, three attackers."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 16, (CLASSES, DIM))
    w = (centres - centres.mean(0)) / 8.0
    n_attack = 3 * 2_000
    clients = rng.integers(0, CLIENTS, EVENTS - n_attack)
    labels = rng.integers(0, CLASSES, EVENTS - n_attack)
    x = np.clip(centres[labels] + rng.normal(0, 2.0, (EVENTS - n_attack, DIM)), 0, 16)
    xa = rng.uniform(0, 16, (n_attack, DIM))
    names = [f"client-{c:05d}" for c in clients] + [
        f"attacker-{i // 2000}" for i in range(n_attack)
    ]
    xs = np.vstack([x, xa]).round(2)
    ts = np.sort(rng.uniform(1_793_491_200, 1_793_577_600, EVENTS))
    order = rng.permutation(EVENTS)
    logits = xs @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    with path.open("w") as fh:
        for i, k in enumerate(order):
            fh.write(
                json.dumps(
                    {
                        "event_id": f"e{i}",
                        "timestamp": float(ts[i]),
                        "client_id": names[k],
                        "model_id": "bench-model",
                        "features": xs[k].tolist(),
                        "output": {
                            "label": int(p[k].argmax()),
                            "confidence": round(float(p[k].max()), 5),
                            "probabilities": p[k].round(5).tolist(),
                        },
                    }
                )
                + "\n"
            )


def _spread(rates: list[float]) -> str:
    """``median events/s (min-max over N runs)``."""
    mid = float(np.median(rates))
    return f"{mid:,.0f} events/s ({min(rates):,.0f}-{max(rates):,.0f} over {len(rates)} runs)"


def main() -> None:
    """Build the log, measure, print figures."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        log = Path(tmp) / "bench.jsonl"
        t0 = time.perf_counter()
        build_log(log)
        print(
            f"log: {EVENTS:,} events, {log.stat().st_size / 1e6:.0f} MB, "
            f"built in {time.perf_counter() - t0:.1f} s"
        )

        rates = []
        for _ in range(RUNS):
            out = Path(tmp)
            res = replay_path(log, alerts_path=out / "a.jsonl", scores_path=out / "s.jsonl")
            rates.append(res.summary.events_per_second)
        s = res.summary
        print(
            f"replay end to end (decode + score + write): {_spread(rates)} "
            f"({s.events:,} events in {s.seconds:.1f} s, {len(res.alerts)} alerts)"
        )

        events = []
        with log.open("rb") as fh:
            for line in fh:
                ev = decode_event(line)
                if isinstance(ev, QueryEvent):
                    events.append(ev)
        rates = []
        for _ in range(RUNS):
            engine = Engine(EngineConfig())
            t0 = time.perf_counter()
            for i in range(0, len(events), 256):
                engine.process_batch(events[i : i + 256])
            rates.append(len(events) / (time.perf_counter() - t0))
        print(f"engine only (pre-decoded, micro-batches of 256): {_spread(rates)}")

        t0 = time.perf_counter()
        for line in log.open("rb"):
            decode_event(line)
        dt = time.perf_counter() - t0
        print(f"decode + validate only: {EVENTS / dt:,.0f} events/s")

        sizes = [len(st.to_bytes()) for st in engine.clients.values()]
        print(
            f"serialised client state: mean {np.mean(sizes):,.0f} B, max {max(sizes):,} B "
            f"over {len(sizes):,} clients"
        )
        tracemalloc.start()
        fresh = Engine(EngineConfig())
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, len(events), 256):
            fresh.process_batch(events[i : i + 256])
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per = (after - before) / max(len(fresh.clients), 1)
        print(
            f"live memory per tracked client (engine total / clients, baseline included): "
            f"{per:,.0f} B"
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one core and one BLAS thread used; "
        f"detectors build: {detectors.BUILD}"
    )


if __name__ == "__main__":
    main()
