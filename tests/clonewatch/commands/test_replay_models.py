"""``clonewatch replay`` over 20,000 distinct model ids: memory bounded, the bound reported.

Before the bound, 20,000 ids (60,000 events) took 2.6 GB resident: a baseline for every id
anyone sent. Now at most ``--max-models`` (2,048) baselines are held; lone ids evict each
other, and popular ids past the bound share the ``__overflow__`` model. The summary says so.
The peak resident size is measured in a child process (``ru_maxrss`` of that process only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

T0 = 1_767_225_600
# The child replays, then reports its own peak resident size (KiB on Linux) on stdout.
CHILD = """
import resource, sys
from clonewatch.cli import main
code = main(sys.argv[1:])
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def _write_log(path: Path, models: int, clients_per_model: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        i = 0
        for m in range(models):
            for c in range(clients_per_model):
                event = {
                    "event_id": f"e{i}",
                    "timestamp": T0 + i * 0.01,
                    "client_id": f"c{(m * clients_per_model + c) % 50}",
                    "model_id": f"id-{m}",
                    "features": [float(i % 7), float(i % 3)],
                }
                fh.write(json.dumps(event) + "\n")
                i += 1


def _replay(log: Path, *extra: str) -> tuple[dict[str, object], int]:
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    args = ["replay", str(log), "--alerts", str(log.with_suffix(".alerts")), "--json", *extra]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body, _, rss = done.stdout.rpartition("MAXRSS")
    return json.loads(body), int(rss)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small log (10 ids), 20,000 lone ids (3 events each) and 20,000 popular ones (5)."""
    folder = tmp_path_factory.mktemp("models")
    shapes = {"small": (10, 3), "lone": (20_000, 3), "popular": (20_000, 5)}
    paths = {}
    for name, (models, per) in shapes.items():
        paths[name] = folder / f"{name}.jsonl"
        _write_log(paths[name], models, per)
    return paths


def test_twenty_thousand_lone_ids_evict_each_other(logs: dict[str, Path]) -> None:
    """60,000 events to 20,000 lone ids: 2,048 baselines at most, memory near a small log's."""
    small, small_rss = _replay(logs["small"])
    summary, rss = _replay(logs["lone"])
    assert summary["valid"] == 60_000 and summary["dead_letters"] == 0
    assert summary["models"] == 2048
    assert summary["models_evicted"] == 20_000 - 2048
    assert small["models"] == 10
    # 2,048 baselines of about 130 KB, plus per-client state: well under 0.6 GB more than a
    # 10-model run (2.6 GB in all before the bound).
    assert rss - small_rss < 600 * 1024, (rss, small_rss)


def test_popular_ids_past_the_bound_share_the_overflow_model(logs: dict[str, Path]) -> None:
    """20,000 ids each used by 5 clients: none is lone, so ids past the bound are scored in
    the shared overflow model, counted in the summary; a smaller --max-models is obeyed."""
    summary, _ = _replay(logs["popular"], "--max-models", "256")
    assert summary["valid"] == 100_000
    assert summary["models"] == 256
    assert summary["models_evicted"] == 0
    overflow = summary["model_overflow_events"]
    assert isinstance(overflow, int) and overflow >= 100_000 - 256 * 5


def test_the_text_summary_names_the_bound(logs: dict[str, Path]) -> None:
    """The readable summary says how many models are held and how many were evicted."""
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", "replay", str(logs["lone"]), "--max-models",
         "100", "--alerts", str(logs["lone"].with_suffix(".txt.alerts"))],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "models       100 (19900 lone ones evicted to make room)" in done.stdout


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_max_models_must_be_positive(logs: dict[str, Path], bad: str) -> None:
    """--max-models 0, negative or not a number: a usage error."""
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", "replay", str(logs["small"]), "--max-models", bad],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-models" in done.stderr
