"""Populations of other shapes: a 4-feature classifier and a 10-feature regressor with no output.

Not part of the tests (the README quotes what it prints). Victims: logistic regression on iris
(4 features, 3 classes) or ridge regression on diabetes (10 features; events carry no
``output``, as a regression API's log may not). Benign clients: light users, heavy integrations
(3,000 queries), nightly batch jobs, clients keeping to one class or one band of the target,
and clients retrying 20 inputs. Attackers: uniform random, JbDA from 3 natural seeds, line
searches between natural pairs, and a campaign of N accounts with Q queries each. The truth
file gives roles only (docs/simulation.md), and ``clonewatch evaluate`` scores the replay.

    .venv/bin/python scripts/populations/small_models.py iris|diabetes [OUT_DIR] [--seed N]
        [--campaign ACCOUNTS QUERIES] [--campaign-kind random|jbda]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge

from clonewatch.evaluate import evaluate

T0 = 1_793_491_200.0
DAY = 86_400.0


class Log:
    """Events and roles of one generated day."""

    def __init__(self, model_id: str, answer: Callable[[np.ndarray], dict[str, Any] | None]):
        self.model_id, self.answer = model_id, answer
        self.events: list[dict[str, Any]] = []
        self.clients: dict[str, dict[str, str]] = {}

    def emit(self, cid: str, role: dict[str, str], rows: np.ndarray, times: np.ndarray) -> None:
        """One client's queries at the given epoch seconds."""
        self.clients[cid] = role
        for x, t in zip(rows, times, strict=True):
            event: dict[str, Any] = {
                "event_id": f"{cid}-{len(self.events)}",
                "timestamp": float(t),
                "client_id": cid,
                "model_id": self.model_id,
                "features": [float(v) for v in x],
            }
            output = self.answer(x)
            if output is not None:
                event["output"] = output
            self.events.append(event)

    def write(self, out: Path) -> None:
        """``out/log.jsonl`` in time order and ``out/truth.json`` (roles only)."""
        out.mkdir(parents=True, exist_ok=True)
        self.events.sort(key=lambda e: e["timestamp"])
        with (out / "log.jsonl").open("w") as fh:
            fh.writelines(json.dumps(e) + "\n" for e in self.events)
        (out / "truth.json").write_text(json.dumps({"clients": self.clients}))


def build(args: argparse.Namespace) -> None:
    """Write the day's log and truth into ``args.out``."""
    rng = np.random.default_rng(args.seed)
    if args.victim == "iris":
        x_all, y_all = load_iris(return_X_y=True)
        clf = LogisticRegression(max_iter=1000).fit(x_all, y_all)

        def answer(x: np.ndarray) -> dict[str, Any] | None:
            p = clf.predict_proba(x[None])[0]
            return {
                "label": int(p.argmax()),
                "confidence": float(p.max()),
                "probabilities": [float(v) for v in p],
            }

        groups = [x_all[y_all == c] for c in range(3)]
    else:
        x_all, y_all = load_diabetes(return_X_y=True)
        Ridge().fit(x_all, y_all)  # the victim; its answers are not in the log

        def answer(x: np.ndarray) -> dict[str, Any] | None:
            return None

        bands = np.quantile(y_all, [0.0, 0.33, 0.67, 1.0])
        groups = [x_all[(y_all >= a) & (y_all <= b)] for a, b in itertools.pairwise(bands)]
    lo, hi, sd = x_all.min(0), x_all.max(0), x_all.std(0)
    log = Log(args.victim, answer)

    def natural(n: int, pool: np.ndarray = x_all) -> np.ndarray:
        rows = pool[rng.integers(0, len(pool), n)]
        return rows + rng.normal(0.0, 0.05, rows.shape) * sd

    def spread(n: int) -> np.ndarray:
        return T0 + np.sort(rng.uniform(0, DAY, n))

    benign = {"role": "benign"}
    for i in range(300):
        n = int(rng.integers(3, 60))
        log.emit(f"light-{i}", benign | {"kind": "light"}, natural(n), spread(n))
    for i in range(10):
        log.emit(f"heavy-{i}", benign | {"kind": "heavy"}, natural(3000), spread(3000))
    for i in range(3):
        times = T0 + 7200 + i * 600 + np.arange(1500) * 0.2
        log.emit(f"batch-{i}", benign | {"kind": "batch"}, natural(1500), times)
    for i in range(20):
        pool = groups[int(rng.integers(0, len(groups)))]
        log.emit(f"one-class-{i}", benign | {"kind": "one-class"}, natural(300, pool), spread(300))
    for i in range(10):
        base = natural(20)
        log.emit(
            f"retry-{i}", benign | {"kind": "retry"}, base[rng.integers(0, 20, 400)], spread(400)
        )

    def burst(n: int, start: float) -> np.ndarray:
        return T0 + start + np.arange(n) * 1.0

    def jbda(seeds: int, rounds: int) -> np.ndarray:
        rows = natural(seeds)
        for _ in range(rounds):
            step = 0.1 * (hi - lo) * rng.choice([-1.0, 1.0], rows.shape)
            rows = np.vstack([rows, np.clip(rows + step, lo, hi)])
        return rows

    attacker = {"role": "attacker"}
    log.emit(
        "att-random",
        attacker | {"kind": "uniform-random"},
        rng.uniform(lo, hi, (800, len(lo))),
        burst(800, 30_000),
    )
    rows = jbda(3, 6)
    log.emit("att-jbda", attacker | {"kind": "jbda"}, rows, burst(len(rows), 40_000))
    pairs = [natural(2) for _ in range(40)]
    rows = np.array([a + t * (b - a) for a, b in pairs for t in np.linspace(0.0, 1.0, 20)])
    log.emit("att-line", attacker | {"kind": "line-search"}, rows, burst(len(rows), 50_000))
    accounts, per = args.campaign
    for a in range(accounts):
        if args.campaign_kind == "random":
            rows = rng.uniform(lo, hi, (per, len(lo)))
        else:
            rows = jbda(max(1, per // 4), 2)[:per]
        times = T0 + 60_000 + a * 7 + np.arange(len(rows)) * accounts
        log.emit(f"camp-{a}", attacker | {"kind": "campaign", "campaign": "camp"}, rows, times)
    log.write(args.out)


def main() -> None:
    """Build, replay, evaluate, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("victim", choices=("iris", "diabetes"))
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--campaign", nargs=2, type=int, default=(30, 20), metavar=("ACCOUNTS", "QUERIES")
    )
    ap.add_argument("--campaign-kind", choices=("random", "jbda"), default="random")
    args = ap.parse_args()
    args.out = args.out or Path("clonewatch-out") / f"population-{args.victim}"
    build(args)
    print(evaluate(args.out / "log.jsonl", args.out / "truth.json").format_table())


if __name__ == "__main__":
    main()
