"""Under --log-format json every line on stderr is a JSON object, library output included."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.synthetic import as_lines, synthetic_events

ROOT = Path(__file__).resolve().parents[2]


def _json_lines(stderr: str) -> list[dict[str, object]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        doc = json.loads(line)  # raises on any plain-text line
        assert isinstance(doc, dict), line
        parsed.append(doc)
    return parsed


class TestJsonMode:
    """Warnings, library loggers, progress and step lines are all JSON in json mode."""

    def test_library_records_warnings_and_steps_are_json(self) -> None:
        """A Python warning, a kafka logger record, a progress bar and a step: JSON lines."""
        script = textwrap.dedent(
            """
            import logging, warnings, sys
            from clonewatch.logs import configure
            from clonewatch.progress import progress, step
            configure("INFO", "json")
            warnings.warn("a library warning", RuntimeWarning, stacklevel=1)
            logging.getLogger("kafka.conn").error("broker went away")
            step("[1/2] doing a thing")
            with progress("work", 10) as advance:
                advance(10)
            """
        )
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
        )
        docs = _json_lines(run.stderr)
        events = " ".join(str(d.get("event")) for d in docs)
        assert "a library warning" in events
        assert "broker went away" in events
        assert any(d.get("step") == "[1/2] doing a thing" for d in docs)

    def test_a_replay_writes_only_json_to_stderr(self, tmp_path: Path) -> None:
        """A whole `clonewatch replay` in json mode: every stderr line parses."""
        log = tmp_path / "q.jsonl"
        log.write_bytes(b"\n".join(as_lines(synthetic_events(seed=1))) + b"\nnot json\n")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "clonewatch.cli",
                "--log-format",
                "json",
                "replay",
                str(log),
                "--alerts",
                str(tmp_path / "a.jsonl"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert _json_lines(run.stderr)
