"""``clonewatch evaluate`` reads its log from a file, standard input, a FIFO or ``/dev/fd/N``.

Before, the log had to be a regular file (``evaluate -`` said "log file not found: -"),
because evaluating without ``--alerts`` reads it twice; a stream is now copied to a
temporary file first, in chunks, and deleted after. ``--json`` is checked like every other
output: never an input, and writable before the run.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.synthetic import as_lines, synthetic_events


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small log with one attacker, and a hand-made truth giving each client's role."""
    folder = tmp_path_factory.mktemp("world")
    events = synthetic_events(seed=2, benign_clients=20, attacker_queries=150)
    log = folder / "log.jsonl"
    log.write_bytes(b"\n".join(as_lines(events)) + b"\n")
    roles = {e["client_id"]: "benign" for e in events}
    roles["attacker-0"] = "attacker"
    truth = folder / "truth.json"
    truth.write_text(json.dumps({"clients": roles}), encoding="utf-8")
    return log, truth


def _run(args: list[str], stdin: object = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CLONEWATCH_PURE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "clonewatch.cli", *args],
        stdin=stdin,
        capture_output=True,
        env=env,
        check=False,
    )


def _results(out: Path) -> dict[str, object]:
    data = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_a_file_a_pipe_and_gzip_on_stdin_give_one_result(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    """The log from a file, piped on stdin, and gzipped on stdin: one evaluation, no temp left."""
    log, truth = world
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("clonewatch-evaluate-*"))
    outs = []
    for name, source, data in (
        ("file", str(log), None),
        ("pipe", "-", log.read_bytes()),
        ("gzip", "-", gzip.compress(log.read_bytes())),
    ):
        out = tmp_path / f"{name}.json"
        if data is None:
            done = _run(["evaluate", source, "--truth", str(truth), "--json", str(out)])
        else:
            reader, writer = os.pipe()
            feeder = threading.Thread(target=lambda w=writer, d=data: _feed(w, d))
            feeder.start()
            with os.fdopen(reader, "rb") as stdin:
                done = _run(["evaluate", source, "--truth", str(truth), "--json", str(out)], stdin)
            feeder.join()
        assert done.returncode == 0, done.stderr.decode()
        outs.append(_results(out))
    assert outs[0] == outs[1] == outs[2]
    caught = outs[0]["clonewatch"]["attackers"][0]  # type: ignore[index]
    assert caught["queries_to_alert"] is not None  # the attacker is caught: a real replay ran
    after = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("clonewatch-evaluate-*"))
    assert after <= before  # the spooled copies are gone


def _feed(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def test_a_fifo_is_read(world: tuple[Path, Path], tmp_path: Path) -> None:
    """A named pipe (what ``<(zcat log.gz)`` gives as /dev/fd/N) is read once, then replayed."""
    log, truth = world
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as fh:
            fh.write(log.read_bytes())

    writer = threading.Thread(target=write)
    writer.start()
    out = tmp_path / "fifo.json"
    done = _run(["evaluate", str(fifo), "--truth", str(truth), "--json", str(out)])
    writer.join()
    assert done.returncode == 0, done.stderr.decode()
    assert _results(out)["events"] == len(log.read_bytes().splitlines())


def test_stdin_with_alerts_is_read_once(world: tuple[Path, Path], tmp_path: Path) -> None:
    """With --alerts the log is read once, straight from stdin (no copy needed)."""
    log, truth = world
    alerts = tmp_path / "alerts.jsonl"
    assert _run(["replay", str(log), "--alerts", str(alerts)]).returncode == 0
    out = tmp_path / "e.json"
    with log.open("rb") as stdin:
        done = _run(
            ["evaluate", "-", "--truth", str(truth), "--alerts", str(alerts), "--json", str(out)],
            stdin,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert _results(out)["events"] == len(log.read_bytes().splitlines())


class TestErrors:
    """A missing or wrong log, or an output that is an input, is one clear line."""

    def test_missing_log(self, world: tuple[Path, Path], tmp_path: Path) -> None:
        """A log that does not exist: exit 1, its name."""
        _, truth = world
        done = _run(["evaluate", str(tmp_path / "nope.jsonl"), "--truth", str(truth)])
        assert done.returncode == 1
        assert b"log file not found" in done.stderr and b"Traceback" not in done.stderr

    def test_log_is_a_directory(self, world: tuple[Path, Path], tmp_path: Path) -> None:
        """A folder given as the log: exit 1, said so."""
        _, truth = world
        done = _run(["evaluate", str(tmp_path), "--truth", str(truth)])
        assert done.returncode == 1
        assert b"it is a directory" in done.stderr

    def test_both_on_stdin(self, world: tuple[Path, Path]) -> None:
        """LOG and --alerts cannot both be standard input: a usage error."""
        _, truth = world
        done = _run(["evaluate", "-", "--truth", str(truth), "--alerts", "-"], subprocess.DEVNULL)
        assert done.returncode == 2
        assert b"both be standard input" in done.stderr

    @pytest.mark.parametrize("which", ["log", "truth"])
    def test_json_over_an_input(self, world: tuple[Path, Path], which: str) -> None:
        """--json naming the log or the truth: exit 2, and the input is untouched."""
        log, truth = world
        target = log if which == "log" else truth
        before = target.read_bytes()
        done = _run(["evaluate", str(log), "--truth", str(truth), "--json", str(target)])
        assert done.returncode == 2
        assert b"--json is the same file as" in done.stderr
        assert target.read_bytes() == before

    def test_json_unwritable(self, world: tuple[Path, Path], tmp_path: Path) -> None:
        """--json under a regular file: exit 1 before the replay."""
        log, truth = world
        blocker = tmp_path / "file"
        blocker.write_text("x")
        done = _run(
            ["evaluate", str(log), "--truth", str(truth), "--json", str(blocker / "e.json")]
        )
        assert done.returncode == 1
        assert b"cannot write --json" in done.stderr and b"is not a directory" in done.stderr
