"""``clonewatch demo`` at a small scale: every step announced, every file written, the rate
explained; a bad ``--out`` or ``--scale`` is one line before minutes of simulation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streams.replay import RATE_NOTE


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_small_demo_announces_each_step_and_writes_everything(tmp_path: Path) -> None:
    """Four steps on stderr (JSON log events when stderr is not a terminal, as here; plain
    lines with --log-format console), the summary with what its events/s includes, the files."""
    out = tmp_path / "out"
    done = _demo("--out", str(out), "--scale", "0.03", "--seed", "5")
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in done.stderr.splitlines()]
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert [s[:5] for s in steps] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert RATE_NOTE in done.stdout
    assert "Clonewatch" in done.stdout and "PRADA" in done.stdout
    for name in ("queries.jsonl.gz", "truth.json", "alerts.jsonl", "scores.jsonl", "report.html"):
        assert (out / name).stat().st_size > 0, name
    evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert evaluation["events"] > 0


def test_text_mode_prints_plain_step_lines(tmp_path: Path) -> None:
    """With --log-format console the steps are plain lines (what a user at a terminal sees)."""
    done = _demo("--log-format", "console", "--out", str(tmp_path / "o"), "--scale", "0.02")
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [line[:5] for line in done.stderr.splitlines() if line.startswith("[")]
    assert steps == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]


def test_out_that_is_a_file_fails_at_once(tmp_path: Path) -> None:
    """--out naming a regular file: exit 1, one line, no traceback, nothing simulated."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = _demo("--out", str(blocker))
    assert done.returncode == 1
    assert "cannot write --out" in done.stderr and "Traceback" not in done.stderr
    assert "[1/4]" not in done.stderr


def test_non_positive_scale_is_a_usage_error(tmp_path: Path) -> None:
    """--scale 0: exit 2 before anything is written."""
    done = _demo("--out", str(tmp_path / "o"), "--scale", "0")
    assert done.returncode == 2
    assert not (tmp_path / "o").exists()
