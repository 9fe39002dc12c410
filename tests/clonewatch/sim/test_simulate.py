"""The simulated log: valid QueryEvents over one day, ordered, labelled and deterministic."""

from __future__ import annotations

import gzip
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clonewatch.cli import main
from clonewatch.sim import attacks, simulate
from clonewatch.sim.simulate import AttackPlan
from schemas.query import QueryEvent, decode_event

CHEAP = (
    AttackPlan(
        "attacker-eqsolve-0",
        "equation-solving",
        "digits-logreg",
        lambda v, r: attacks.equation_solving(v, r, 80),
        pace=3.0,
    ),
    AttackPlan(
        "campaign-a",
        "campaign",
        "cancer-gbt",
        lambda v, r: attacks.uniform_random(v, r, 120),
        pace=1.0,
        accounts=6,
    ),
)


def _run(tmp: Path, name: str, seed: int = 3) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    log, truth = tmp / f"{name}.jsonl.gz", tmp / f"{name}.json"
    summary = simulate(log, truth, seed=seed, scale=0.04, plans=CHEAP)
    return log, json.loads(truth.read_text(encoding="utf-8")), summary


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    return _run(tmp_path_factory.mktemp("sim"), "a")


def _events(log: Path) -> list[QueryEvent]:
    with gzip.open(log, "rb") as fh:
        out = [decode_event(line) for line in fh]
    assert all(isinstance(e, QueryEvent) for e in out)
    return [e for e in out if isinstance(e, QueryEvent)]


class TestLog:
    """The written log."""

    def test_every_line_is_a_complete_query_event(self, run: Any) -> None:
        """Each event carries features, label, confidence, probabilities, IP, agent and tenant."""
        log, truth, summary = run
        events = _events(log)
        assert len(events) == summary["events"]
        for e in events[:500]:
            assert e.output is not None and e.output.probabilities is not None
            assert e.output.confidence == max(e.output.probabilities)
            assert e.output.label == e.output.probabilities.index(max(e.output.probabilities))
            assert e.features and len(e.features) == truth["models"][e.model_id]["n_features"]
            assert e.source_ip and e.user_agent and e.labels and "tenant" in e.labels
            assert e.status_code == 200

    def test_one_day_in_order_with_few_swaps(self, run: Any) -> None:
        """Timestamps lie in 2026-11-01; about 1 % of neighbours are swapped, by seconds."""
        log, _, summary = run
        ts = [e.ts for e in _events(log)]
        day = 1_793_491_200.0
        assert day <= min(ts) and max(ts) < day + 86_400
        back = [a - b for a, b in itertools.pairwise(ts) if b < a]
        assert len(back) == summary["out_of_order"] > 0
        assert len(back) <= 0.02 * len(ts) and max(back) <= 5.0

    def test_truth_matches_the_log(self, run: Any) -> None:
        """Per-client query counts in the truth equal the log's; campaign accounts are listed."""
        log, truth, _ = run
        counts: dict[str, int] = {}
        for e in _events(log):
            counts[e.client_id] = counts.get(e.client_id, 0) + 1
        assert counts == {c: v["queries"] for c, v in truth["clients"].items()}
        camp = truth["attackers"]["campaign-a"]
        assert len(camp["members"]) == 6
        assert sum(truth["clients"][m]["queries"] for m in camp["members"]) == 120
        kinds = {c["kind"] for c in truth["clients"].values() if c["role"] == "benign"}
        assert kinds == {"light", "heavy", "batch", "retry", "skewed", "noisy"}

    def test_same_seed_same_bytes(self, run: Any, tmp_path: Path) -> None:
        """A second run with the same seed writes the same events; another seed does not."""
        log, _, _ = run
        again, _, _ = _run(tmp_path, "b")
        with gzip.open(log, "rb") as a, gzip.open(again, "rb") as b:
            assert a.read() == b.read()
        other, _, _ = _run(tmp_path, "c", seed=4)
        with gzip.open(log, "rb") as a, gzip.open(other, "rb") as b:
            assert a.read() != b.read()


class TestCommand:
    """clonewatch simulate."""

    def test_writes_log_and_prints_attackers(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The command writes both files and prints each attacker's final fidelity."""
        monkeypatch.setattr(sys.modules["clonewatch.sim.simulate"], "PLANS", CHEAP)
        log, truth = tmp_path / "q.jsonl", tmp_path / "t.json"
        argv = ["simulate", "--out", str(log), "--truth", str(truth), "--scale", "0.02"]
        assert main([*argv, "--seed", "5"]) == 0
        printed = capsys.readouterr().out
        assert "attacker-eqsolve-0" in printed and "campaign-a" in printed
        assert log.stat().st_size > 0 and json.loads(truth.read_text())["seed"] == 5

    def test_non_positive_scale_is_a_usage_error(self, tmp_path: Path) -> None:
        """--scale 0 exits with code 2 and writes nothing."""
        log = tmp_path / "q.jsonl"
        assert (
            main(["simulate", "--out", str(log), "--truth", str(tmp_path / "t"), "--scale", "0"])
            == 2
        )
        assert not log.exists()

    def test_out_and_truth_one_file_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--out and --truth naming one file: exit 2 before the (long) simulation."""
        same = tmp_path / "day.jsonl"
        assert main(["simulate", "--out", str(same), "--truth", str(same)]) == 2
        assert "--truth is the same file as --out" in capsys.readouterr().err
        assert not same.exists()

    @pytest.mark.parametrize("flag", ["--out", "--truth"])
    def test_unwritable_output_fails_before_the_run(
        self, tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An output under a regular file: exit 1 in one line, nothing simulated or written."""
        blocker = tmp_path / "file"
        blocker.write_text("x")
        paths = {"--out": tmp_path / "q.jsonl", "--truth": tmp_path / "t.json"}
        paths[flag] = blocker / "deeper" / "x.json"
        argv = ["simulate"] + [a for f, p in paths.items() for a in (f, str(p))]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"cannot write {flag}" in err and "is not a directory" in err
        assert not (tmp_path / "q.jsonl").exists() and not (tmp_path / "t.json").exists()

    def test_missing_folders_are_made(self, tmp_path: Path) -> None:
        """Missing parent folders of --out and --truth are created (they were before, too)."""
        log, truth = tmp_path / "a" / "b" / "q.jsonl", tmp_path / "c" / "t.json"
        argv = ["simulate", "--out", str(log), "--truth", str(truth), "--scale", "0.02"]
        assert main(argv) == 0
        assert log.is_file() and truth.is_file()
