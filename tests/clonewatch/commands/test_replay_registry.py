"""``clonewatch replay --model-registry FILE``: the registry used, a bad one refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from clonewatch.cli import main
from tests.synthetic import DIM, as_lines, synthetic_events


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy log whose very first event has one feature too many (a dimension hijack)."""
    events = synthetic_events(seed=4, benign_clients=20, attacker_queries=120)
    hijack = {**events[0], "event_id": "hijack", "client_id": "hijacker"}
    hijack["features"] = [*events[0]["features"], 0.0]
    path = tmp_path_factory.mktemp("log") / "queries.jsonl"
    path.write_bytes(b"\n".join(as_lines([hijack, *events])) + b"\n")
    return path


def _registry(path: Path, doc: object) -> Path:
    path.write_bytes(orjson.dumps(doc))
    return path


def _replay(log: Path, out: Path, *extra: str) -> int:
    return main(["replay", str(log), "--alerts", str(out / "alerts.jsonl"), "--json", *extra])


class TestRegistryUsed:
    def test_summary_counts_it_and_the_hijack_is_refused(
        self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The summary counts the registered model; the wrong-shaped first event does not
        decide anything: the attacker is alerted on, the hijacker is not."""
        model = json.loads(log.read_text().splitlines()[1])["model_id"]
        reg = _registry(
            tmp_path / "models.json", {"version": 1, "models": {model: {"n_features": DIM}}}
        )
        assert _replay(log, tmp_path, "--model-registry", str(reg)) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["models_registered"] == 1 and summary["models"] == 1
        alerts = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        assert any(a["user"]["id"] == "attacker-0" for a in alerts)
        assert all(a["user"]["id"] != "hijacker" for a in alerts)


class TestRegistryRefused:
    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"{not json", "not JSON"),
            (b'{"version": 1, "models": {"m": {"n_features": -1}}}', "models.m.n_features"),
            (b'{"version": 9, "models": {}}', "version"),
        ],
    )
    def test_bad_file_exit_1_naming_it(
        self,
        log: Path,
        tmp_path: Path,
        content: bytes,
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """One clear error line with the path and the first problem; nothing written."""
        reg = tmp_path / "models.json"
        reg.write_bytes(content)
        assert _replay(log, tmp_path, "--model-registry", str(reg)) == 1
        err = capsys.readouterr().err
        assert str(reg) in err and message in err and "Traceback" not in err
        assert not (tmp_path / "alerts.jsonl").exists()

    def test_missing_file_exit_1(
        self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert _replay(log, tmp_path, "--model-registry", str(tmp_path / "nope.json")) == 1
        assert "cannot read model registry" in capsys.readouterr().err

    def test_endless_file_is_refused_at_the_cap(
        self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """/dev/zero is read up to the cap, never whole."""
        assert _replay(log, tmp_path, "--model-registry", "/dev/zero") == 1
        assert "larger than" in capsys.readouterr().err

    def test_registry_as_an_output_is_a_usage_error(
        self, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--alerts on the registry file: exit 2, the registry left as it was."""
        reg = _registry(tmp_path / "models.json", {"version": 1, "models": {}})
        before = reg.read_bytes()
        code = main(["replay", str(log), "--alerts", str(reg), "--model-registry", str(reg)])
        assert code == 2 and reg.read_bytes() == before
        assert "--model-registry" in capsys.readouterr().err
