"""A benign population of another shape: a text-intent model on sentence embeddings.

Not part of the tests (the README quotes what it prints). Writes a QueryEvent log of
384-dimensional unit vectors around 40 topics, answered by a 12-class linear model, with
benign kinds the simulator does not have and four attackers, then replays it in-process and
prints, per kind, how many clients got a high alert and how many got any alert.

    .venv/bin/python scripts/populations/embedding.py [OUT_DIR] [--seed N] [--many-classes]
        [--rewordings LOW HIGH]

``--many-classes``: 1,000 classes over 200 topics in 512 dimensions, each class a direction
near its topic's centre (an image-embedding model with fine-grained classes, say).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from streams.replay import replay_path

DAY = 86_400.0
LEVELS = ("low", "moderate", "high", "critical")


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = a / np.linalg.norm(a, axis=-1, keepdims=True)
    return out


def _model(rng: np.random.Generator, many_classes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Topic centres and the linear model's class weights."""
    dim, classes, n_topics = (512, 1000, 200) if many_classes else (384, 12, 40)
    centres = _unit(rng.normal(size=(n_topics, dim)))
    if many_classes:
        near = centres[np.arange(classes) % n_topics] + rng.normal(0.0, 0.06, (classes, dim))
        return centres, 12.0 * _unit(near)
    weights = np.zeros((classes, dim))
    for t, c in enumerate(rng.integers(0, classes, n_topics)):
        weights[c] += 8.0 * centres[t]
    return centres, weights


def build(
    out: Path, seed: int, many_classes: bool = False, rewordings: tuple[int, int] = (6, 19)
) -> dict[str, str]:
    """Write ``out/log.jsonl`` and return client -> kind."""
    rng = np.random.default_rng(seed)
    centres, weights = _model(rng, many_classes)
    n_topics, dim = centres.shape

    def docs(n: int, topics: list[int] | None = None, sigma: float = 0.045) -> np.ndarray:
        t = rng.integers(0, n_topics, n) if topics is None else rng.choice(topics, n)
        return _unit(centres[t] + rng.normal(0.0, sigma, (n, dim)))

    rows: list[tuple[float, dict[str, Any]]] = []
    truth: dict[str, str] = {}

    def emit(client: str, xs: np.ndarray, t0: float, t1: float, kind: str) -> None:
        ts = np.sort(rng.uniform(t0, t1, len(xs)))
        logits = xs @ weights.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for i, (x, t, pp) in enumerate(zip(xs, ts, p, strict=True)):
            rows.append((float(t), {
                "event_id": f"{client}-{i}", "timestamp": float(t), "client_id": client,
                "model_id": "intent-emb", "features": [round(float(v), 5) for v in x],
                "output": {"label": f"intent-{int(pp.argmax())}",
                           "confidence": round(float(pp.max()), 5),
                           "probabilities": [round(float(v), 5) for v in pp]},
            }))  # fmt: skip
        truth[client] = kind

    for i in range(300):
        emit(f"light-{i}", docs(int(rng.integers(3, 40))), 0, DAY, "light")
    for i in range(5):
        emit(f"heavy-{i}", docs(3000), 7 * 3600, 19 * 3600, "heavy")
    for i in range(3):
        emit(f"batch-{i}", docs(2000), 2 * 3600, 3 * 3600, "batch")
    for i in range(20):  # five prompts, each reworded several times, interleaved
        reps = int(rng.integers(rewordings[0], rewordings[1] + 1))
        xs = _unit(np.repeat(docs(5), reps, axis=0) + rng.normal(0.0, 0.02, (5 * reps, dim)))
        emit(f"paraphrase-{i}", xs[rng.permutation(len(xs))], 0, DAY, "paraphrase")
    for i in range(20):  # natural questions about one topic only
        n = int(rng.integers(50, 300))
        emit(f"onetopic-{i}", docs(n, topics=[int(rng.integers(n_topics))]), 0, DAY, "onetopic")
    for i in range(10):  # conversations: each turn mixes the last with a new on-topic question
        fresh = docs(300, topics=[int(rng.integers(n_topics))])
        x, turns = fresh[0], []
        for k in range(300):
            x = _unit(0.6 * x + 0.4 * fresh[k])
            turns.append(x)
        emit(f"conversation-{i}", np.array(turns), 0, DAY, "conversation")
    for i in range(10):  # a random walk that drifts off the data (like a sensor going astray)
        x, walk = docs(1)[0], []
        for _ in range(300):
            x = _unit(x + rng.normal(0.0, 0.01, dim))
            walk.append(x)
        emit(f"drifting-walk-{i}", np.array(walk), 0, DAY, "drifting-walk")
    emit("att-random", _unit(rng.normal(size=(1000, dim))), 3 * 3600, 5 * 3600, "attack")
    other = _unit(rng.normal(size=(30, dim)))  # Knockoff: natural text of other domains
    knock = _unit(other[rng.integers(0, 30, 1500)] + rng.normal(0.0, 0.045, (1500, dim)))
    emit("att-knockoff", knock, 4 * 3600, 8 * 3600, "attack")
    pool = docs(6000, sigma=0.09)  # ActiveThief: the least confident of a natural pool
    lg = pool @ weights.T
    pp = np.sort(np.exp(lg - lg.max(axis=1, keepdims=True)), axis=1)
    emit(
        "att-activethief",
        pool[np.argsort(pp[:, -1] - pp[:, -2])[:800]],
        5 * 3600,
        9 * 3600,
        "attack",
    )
    family = [docs(20)]  # JbDA-like: random-sign children of 20 seeds, six rounds
    for _ in range(6):
        family.append(_unit(family[-1] + 0.02 * np.sign(rng.normal(size=family[-1].shape))))
    emit("att-perturb", np.vstack(family), 6 * 3600, 7 * 3600, "attack")
    rows.sort(key=lambda r: r[0])
    out.mkdir(parents=True, exist_ok=True)
    with (out / "log.jsonl").open("w") as fh:
        for _, ev in rows:
            fh.write(json.dumps(ev) + "\n")
    (out / "truth.json").write_text(json.dumps(truth))
    return truth


def main() -> None:
    """Build, replay, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="clonewatch-out/embedding", type=Path)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--many-classes", action="store_true")
    ap.add_argument("--rewordings", nargs=2, type=int, default=(6, 19), metavar=("LOW", "HIGH"))
    args = ap.parse_args()
    truth = build(args.out, args.seed, args.many_classes, tuple(args.rewordings))
    result = replay_path(args.out / "log.jsonl", alerts_path=args.out / "alerts.jsonl")
    top: dict[str, int] = {}
    for alert in result.alerts:
        rank = LEVELS.index(alert["clonewatch"]["risk_level"])
        top[alert["user"]["id"]] = max(rank, top.get(alert["user"]["id"], -1))
    by_kind: dict[str, list[str]] = defaultdict(list)
    for client, kind in truth.items():
        by_kind[kind].append(client)
    print(f"{'kind':14s} {'clients':>7s} {'high+':>6s} {'any alert':>9s}")
    for kind, clients in by_kind.items():
        high = sum(top.get(c, -1) >= 2 for c in clients)
        print(f"{kind:14s} {len(clients):7d} {high:6d} {sum(c in top for c in clients):9d}")


if __name__ == "__main__":
    main()
