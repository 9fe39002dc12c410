"""``clonewatch replay``: outputs, dead letters, input forms and exit codes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clonewatch.cli import main
from tests.synthetic import as_lines, synthetic_events

BAD_LINES = [
    b"not json",
    b'{"event_id": "x"}',
    b"\xff\xfe",
    b'{"event_id":"e","timestamp":1,"client_id":"c","model_id":"m","features":[NaN]}',
]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy log with four bad lines mixed in."""
    lines = as_lines(synthetic_events(seed=2, benign_clients=20, attacker_queries=120))
    for i, bad in enumerate(BAD_LINES):
        lines.insert(100 * (i + 1), bad)
    path = tmp_path_factory.mktemp("log") / "queries.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


class TestReplay:
    """The embedded default end to end."""

    def test_writes_alerts_scores_and_dead_letters(self, log: Path, tmp_path: Path) -> None:
        """Every output file is written, bad lines are dead-lettered and the run succeeds."""
        a, s, d = tmp_path / "a.jsonl", tmp_path / "s.jsonl", tmp_path / "d.jsonl"
        code = main(
            ["replay", str(log), "--alerts", str(a), "--scores", str(s), "--dead-letter", str(d)]
        )
        assert code == 0
        assert {x["user"]["id"] for x in _jsonl(a)} == {"attacker-0"}  # type: ignore[index]
        assert len(_jsonl(s)) > 20
        dead = _jsonl(d)
        assert len(dead) == len(BAD_LINES)
        assert all(x["reason"] and x["raw_size"] > 0 for x in dead)  # type: ignore[operator]
        assert dead[0]["source"] == f"{log}:101"  # physical line number

    def test_gzip_and_stdin_give_the_same_alerts(self, log: Path, tmp_path: Path) -> None:
        """A .gz file and standard input replay to the same alerts as the plain file."""
        gz = tmp_path / "q.jsonl.gz"
        gz.write_bytes(gzip.compress(log.read_bytes()))
        outs = []
        for args, stdin in (([str(log)], None), ([str(gz)], None), (["-"], log.read_bytes())):
            out = tmp_path / f"a{len(outs)}.jsonl"
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "clonewatch.cli",
                    "replay",
                    *args,
                    "--alerts",
                    str(out),
                    "--json",
                ],
                input=stdin,
                capture_output=True,
                check=True,
            )
            summary = json.loads(proc.stdout)
            assert summary["dead_letters"] == len(BAD_LINES)
            outs.append(out.read_text())
        assert outs[0] == outs[1] == outs[2] != ""

    def test_summary_is_printed(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The summary counts events, clients, alerts by level, dead letters and speed."""
        assert main(["replay", str(log)]) == 0
        text = capsys.readouterr().out
        for word in ("events", "clients", "alerts", "dead letters", "events/s"):
            assert word in text

    def test_missing_file_exits_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Unreadable input is a runtime error with a clear message."""
        assert main(["replay", str(tmp_path / "nope.jsonl")]) == 1
        assert "cannot read" in capsys.readouterr().err

    def test_a_fifo_replays_like_the_file(self, log: Path, tmp_path: Path) -> None:
        """A named pipe holding the gzip log gives the plain file's alerts."""
        fifo, a, b = tmp_path / "q.fifo", tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        os.mkfifo(fifo)
        data = gzip.compress(log.read_bytes())
        writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
        writer.start()
        assert main(["replay", str(fifo), "--alerts", str(a)]) == 0
        writer.join(5)
        assert main(["replay", str(log), "--alerts", str(b)]) == 0
        assert a.read_text() == b.read_text() != ""

    def test_a_missing_input_writes_no_output(self, tmp_path: Path) -> None:
        """An input that cannot be opened fails before any output file is opened for writing."""
        alerts = tmp_path / "a.jsonl"
        alerts.write_text("kept\n")
        assert main(["replay", str(tmp_path / "nope.jsonl"), "--alerts", str(alerts)]) == 1
        assert alerts.read_text() == "kept\n"

    def test_corrupt_gzip_exits_1(self, tmp_path: Path) -> None:
        """A truncated .gz stream is reported, not a traceback."""
        bad = tmp_path / "bad.jsonl.gz"
        bad.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:60])
        assert main(["replay", str(bad)]) == 1

    def test_usage_error_exits_2(self) -> None:
        """A missing argument is a usage error."""
        with pytest.raises(SystemExit) as exc:
            main(["replay"])
        assert exc.value.code == 2


class TestBaseline:
    """A replay can start from the baselines an earlier replay learned."""

    def test_warm_baseline_catches_an_attacker_alone(self, tmp_path: Path) -> None:
        """Yesterday's benign traffic calibrates today's replay of an attacker alone."""
        yesterday, today = tmp_path / "yesterday.jsonl", tmp_path / "today.jsonl"
        benign = synthetic_events(seed=3, benign_clients=30, with_attacker=False)
        yesterday.write_bytes(b"\n".join(as_lines(benign)) + b"\n")
        attacker = [
            e for e in synthetic_events(seed=4, benign_clients=0) if e["client_id"] == "attacker-0"
        ]
        today.write_bytes(b"\n".join(as_lines(attacker)) + b"\n")
        saved, cold, warm = tmp_path / "base.json", tmp_path / "cold.jsonl", tmp_path / "warm.jsonl"
        assert main(["replay", str(yesterday), "--save-baseline", str(saved)]) == 0
        assert main(["replay", str(today), "--alerts", str(cold)]) == 0
        warm_args = ["--load-baseline", str(saved), "--alerts", str(warm)]
        assert main(["replay", str(today), *warm_args]) == 0
        assert _jsonl(cold) == []  # alone, it has no population to be compared with
        assert {a["user"]["id"] for a in _jsonl(warm)} == {"attacker-0"}  # type: ignore[index]

    def test_unreadable_baseline_exits_1(
        self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing or foreign baseline file is a clear error, exit 1."""
        foreign = tmp_path / "foreign.json"
        foreign.write_text('{"v": 99}')
        assert main(["replay", str(log), "--load-baseline", str(tmp_path / "nope.json")]) == 1
        assert main(["replay", str(log), "--load-baseline", str(foreign)]) == 1
        assert "not a Clonewatch baseline" in capsys.readouterr().err
