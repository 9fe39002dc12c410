"""``clonewatch replay`` output paths: never an input or each other, clear errors, a default.

Before these checks, ``replay LOG --alerts LOG`` truncated the log and exited 0, an output in a
missing folder ended in a traceback inside a JSON log line (exit 1 from the last-resort
handler), and without ``--alerts`` the alerts were computed and dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clonewatch.cli import main
from streams.replay import UnwritableOutputError, replay_path
from tests.synthetic import as_lines, synthetic_events


@pytest.fixture(scope="module")
def log_bytes() -> bytes:
    """A small log in which one attacker raises alerts."""
    lines = as_lines(synthetic_events(seed=2, benign_clients=20, attacker_queries=120))
    return b"\n".join(lines) + b"\n"


@pytest.fixture
def log(tmp_path: Path, log_bytes: bytes) -> Path:
    """The log, in a folder of its own."""
    path = tmp_path / "in" / "queries.jsonl"
    path.parent.mkdir()
    path.write_bytes(log_bytes)
    return path


def _run(
    args: list[str], stdin: object = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", *args],
        stdin=stdin,  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )


class TestSameFile:
    """An output that is an input or another output is a usage error before any write."""

    @pytest.mark.parametrize("flag", ["--alerts", "--scores", "--dead-letter", "--save-baseline"])
    def test_output_is_the_log(
        self, log: Path, log_bytes: bytes, flag: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Any output named like the log: exit 2, the log intact."""
        assert main(["replay", str(log), flag, str(log)]) == 2
        assert log.read_bytes() == log_bytes
        assert f"{flag} is the same file as LOG" in capsys.readouterr().err

    def test_a_symbolic_link_to_the_log(self, log: Path, log_bytes: bytes, tmp_path: Path) -> None:
        """A link resolves to the log: refused, the log intact."""
        link = tmp_path / "link.jsonl"
        link.symlink_to(log)
        assert main(["replay", str(log), "--alerts", str(link)]) == 2
        assert log.read_bytes() == log_bytes

    def test_a_hard_link_to_the_log(self, log: Path, log_bytes: bytes, tmp_path: Path) -> None:
        """A hard link is the same inode under another name: refused, the log intact."""
        hard = tmp_path / "hard.jsonl"
        os.link(log, hard)
        assert main(["replay", str(hard), "--scores", str(log)]) == 2
        assert log.read_bytes() == log_bytes

    def test_two_outputs_alike(self, log: Path, tmp_path: Path) -> None:
        """--alerts and --scores spelled differently but one new file: refused, nothing made."""
        out = tmp_path / "out.jsonl"
        args = ["replay", str(log), "--alerts", str(out), "--scores", f"{tmp_path}/./out.jsonl"]
        assert main(args) == 2
        assert not out.exists()
        assert not (log.parent / "alerts.jsonl").exists()

    def test_standard_input_redirected_from_the_output(self, log: Path, log_bytes: bytes) -> None:
        """``replay - --alerts LOG < LOG`` is the same file through standard input: refused."""
        with log.open("rb") as fh:
            proc = _run(["replay", "-", "--alerts", str(log)], stdin=fh)
        assert proc.returncode == 2, proc.stderr
        assert log.read_bytes() == log_bytes

    def test_a_baseline_may_be_updated_in_place(self, log: Path, tmp_path: Path) -> None:
        """--save-baseline may be --load-baseline (read whole before it is written)."""
        base = tmp_path / "base.json"
        assert main(["replay", str(log), "--save-baseline", str(base)]) == 0
        assert (
            main(["replay", str(log), "--load-baseline", str(base), "--save-baseline", str(base)])
            == 0
        )


class TestUnwritable:
    """An output that cannot be created: one clear line, exit 1, no traceback."""

    @pytest.mark.parametrize("where", ["missing/dir/a.jsonl", "file/a.jsonl"])
    def test_one_line_and_exit_1(self, log: Path, tmp_path: Path, where: str) -> None:
        """A missing folder, or a path under a regular file (not writable even as root)."""
        (tmp_path / "file").write_text("x")
        proc = _run(["--log-format", "json", "replay", str(log), "--alerts", str(tmp_path / where)])
        assert proc.returncode == 1
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("clonewatch replay: error: cannot write --alerts ")
        assert "Traceback" not in proc.stderr

    def test_the_writer_says_which_file(self, log: Path, tmp_path: Path) -> None:
        """Called as a library, the replay raises UnwritableOutputError naming the file."""
        (tmp_path / "file").write_text("x")
        with pytest.raises(UnwritableOutputError, match=r"cannot write .*file/a\.jsonl"):
            replay_path(log, scores_path=tmp_path / "file" / "a.jsonl")


class TestDefaultAlerts:
    """Without --alerts the alerts go to a new file, named in the summary."""

    def test_next_to_the_log_and_named(self, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """alerts.jsonl next to the log holds the alerts; the summary gives its path."""
        assert main(["replay", str(log)]) == 0
        out = capsys.readouterr().out
        alerts = log.parent / "alerts.jsonl"
        assert f"alerts file  {alerts}" in out
        docs = [json.loads(x) for x in alerts.read_text().splitlines()]
        assert docs and all(d["event"]["kind"] == "alert" for d in docs)

    def test_an_existing_file_is_never_overwritten(self, log: Path) -> None:
        """A second run picks alerts-2.jsonl and leaves the first file as it was."""
        first = log.parent / "alerts.jsonl"
        first.write_text("mine\n")
        assert main(["replay", str(log), "--json"]) == 0
        assert first.read_text() == "mine\n"
        assert (log.parent / "alerts-2.jsonl").read_text() != ""

    def test_standard_input_writes_to_the_current_folder(
        self, log_bytes: bytes, tmp_path: Path
    ) -> None:
        """For ``-`` the default file is in the current folder; the JSON summary names it."""
        proc = subprocess.run(
            [sys.executable, "-m", "clonewatch.cli", "replay", "-", "--json"],
            input=log_bytes,
            capture_output=True,
            cwd=tmp_path,
            env={**os.environ, "CLONEWATCH_PURE": "1", "PYTHONPATH": str(Path.cwd())},
            check=True,
        )
        summary = json.loads(proc.stdout)
        assert summary["alerts_file"] == str(tmp_path / "alerts.jsonl")
        assert (tmp_path / "alerts.jsonl").read_text() != ""

    def test_a_missing_log_creates_no_default_file(self, tmp_path: Path) -> None:
        """The default file is created only once the log is open."""
        assert main(["replay", str(tmp_path / "nope.jsonl")]) == 1
        assert list(tmp_path.iterdir()) == []
