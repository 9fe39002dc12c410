"""``clonewatch replay --elasticsearch URL`` with the server away: outputs complete, exit 3.

A closed loopback port stands in for an Elasticsearch that is not there (connection
refused at once); the hung server, and redelivery into the real one, are in
tests/integration/test_replay_sink_spool.py.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from clonewatch.cli import main
from streams.delivery import SPOOL_NAME
from tests.synthetic import as_lines, synthetic_events


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy log with one attacker and a bad line."""
    lines = as_lines(synthetic_events(seed=2, benign_clients=20, attacker_queries=120))
    path = tmp_path_factory.mktemp("log") / "queries.jsonl"
    path.write_bytes(b"\n".join([*lines, b"not json"]) + b"\n")
    return path


@pytest.fixture
def closed_url() -> str:
    """The URL of a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x]


class TestUnreachableSink:
    """Local outputs never wait on the search sink; the summary says what was not delivered."""

    def test_outputs_complete_and_exit_3(
        self, log: Path, tmp_path: Path, closed_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Alerts equal a sink-less replay's; every document is spooled next to them; exit 3."""
        plain, guarded = tmp_path / "plain.jsonl", tmp_path / "out" / "alerts.jsonl"
        guarded.parent.mkdir()
        assert main(["replay", str(log), "--alerts", str(plain)]) == 0
        capsys.readouterr()
        code = main(["replay", str(log), "--alerts", str(guarded), "--elasticsearch", closed_url])
        text = capsys.readouterr().out
        assert code == 3
        assert guarded.read_bytes() == plain.read_bytes() != b""
        spool = guarded.parent / SPOOL_NAME
        entries = _jsonl(spool)
        kinds = {e["kind"] for e in entries}
        assert kinds == {"alert", "risk", "dead_letter"}
        assert f"undelivered  {len(entries)} elasticsearch documents spooled to {spool}" in text
        assert f"clonewatch redeliver {spool}" in text
        assert "events" in text  # the whole summary is printed first

    def test_json_summary_names_the_spool(
        self, log: Path, tmp_path: Path, closed_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json reports the undelivered count per sink and the spool file; --sink-spool wins."""
        spool_dir = tmp_path / "spool"
        args = ["replay", str(log), "--alerts", str(tmp_path / "a.jsonl"), "--json"]
        code = main([*args, "--opensearch", closed_url, "--sink-spool", str(spool_dir)])
        summary = json.loads(capsys.readouterr().out)
        assert code == 3
        spool = spool_dir / SPOOL_NAME
        assert summary["sink_spool"] == str(spool)
        assert summary["undelivered"] == {"opensearch": len(_jsonl(spool))}
        assert summary["lost"] == {}

    @pytest.mark.parametrize("shape", ["a file", "the spool is a folder"])
    def test_unwritable_spool_exits_1_before_the_run(
        self,
        log: Path,
        tmp_path: Path,
        closed_url: str,
        shape: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A spool that cannot be written is said in one line before anything is written.

        (Before, the replay ran and counted every document lost. A spool that fails in the
        middle of a run still is: tests/streams/test_delivery_spool.py.)
        """
        blocker = tmp_path / "not-a-folder"
        if shape == "a file":
            blocker.write_text("")
        else:
            (blocker / SPOOL_NAME).mkdir(parents=True)
        alerts = tmp_path / "a.jsonl"
        args = ["replay", str(log), "--alerts", str(alerts)]
        code = main([*args, "--elasticsearch", closed_url, "--sink-spool", str(blocker)])
        err = capsys.readouterr().err
        assert code == 1
        assert "cannot write --sink-spool" in err
        assert not alerts.exists()

    def test_spool_over_the_log_is_a_usage_error(
        self, log: Path, tmp_path: Path, closed_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A spool that would land on an input (a log named like the spool): exit 2."""
        named = tmp_path / SPOOL_NAME
        named.write_bytes(log.read_bytes())
        args = ["replay", str(named), "--alerts", str(tmp_path / "a.jsonl")]
        code = main([*args, "--opensearch", closed_url, "--sink-spool", str(tmp_path)])
        assert code == 2
        assert "--sink-spool is the same file as LOG" in capsys.readouterr().err
        assert named.read_bytes() == log.read_bytes()


class TestRedeliverSpool:
    """``clonewatch redeliver SPOOL`` with the server still away keeps every entry."""

    def test_still_unreachable_keeps_entries_with_the_error(
        self, log: Path, tmp_path: Path, closed_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1, the same entries kept, each with its new error and attempt count."""
        args = ["replay", str(log), "--alerts", str(tmp_path / "a.jsonl")]
        assert main([*args, "--elasticsearch", closed_url]) == 3
        spool = tmp_path / SPOOL_NAME
        before = _jsonl(spool)
        capsys.readouterr()
        assert main(["redeliver", str(spool)]) == 1
        assert f"redelivered 0, still failing {len(before)}" in capsys.readouterr().out
        after = _jsonl(spool)
        assert [e["id"] for e in after] == [e["id"] for e in before]
        assert all(e["attempts"] == 1 and "unreachable" in str(e["error"]) for e in after)

    def test_a_bad_entry_exits_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A search entry that is not a record is an error naming it; the file is kept."""
        spool = tmp_path / SPOOL_NAME
        spool.write_text(json.dumps({"sink": "elasticsearch", "url": "http://x", "id": 1}) + "\n")
        assert main(["redeliver", str(spool)]) == 1
        assert "bad sink spool entry" in capsys.readouterr().err
        assert len(_jsonl(spool)) == 1
