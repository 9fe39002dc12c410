"""The HTML report's content: ranking, charts, signals, evaluation, escaping and the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from clonewatch.cli import CommandError
from clonewatch.commands import report as command
from clonewatch.report import build_pairs, render_report, risk_chart_svg, write_report


def score(
    client: str, ts: str, value: float, model: str = "m1", queries: int = 10
) -> dict[str, Any]:
    """A RiskScore wire record."""
    return {
        "@timestamp": ts,
        "user": {"id": client, "risk": {"calculated_score_norm": value, "calculated_level": "low"}},
        "clonewatch": {"model_id": model, "queries_observed": queries},
    }


def alert(client: str, ts: str, value: float, level: str, model: str = "m1") -> dict[str, Any]:
    """An Alert wire record with two signals."""
    return {
        "@timestamp": ts,
        "event": {"risk_score_norm": value},
        "user": {"id": client},
        "message": f"{client} rose to {level}",
        "clonewatch": {
            "model_id": model,
            "risk_level": level,
            "queries_observed": 42,
            "signals": [
                {"name": "volume", "value": 3.0, "score": 5.0},
                {"name": "novelty", "value": 0.9, "score": 30.0},
            ],
        },
    }


class TestRanking:
    """Pairs are ranked by peak risk and carry what the table shows."""

    def test_rank_by_peak_then_latest(self) -> None:
        """The client with the highest peak comes first, whatever the input order."""
        scores = [
            score("calm", "2024-01-01T00:00:00Z", 10),
            score("thief", "2024-01-01T00:00:00Z", 20),
            score("thief", "2024-01-01T00:01:00Z", 80, queries=300),
            score("thief", "2024-01-01T00:02:00Z", 60),
        ]
        pairs = build_pairs([alert("thief", "2024-01-01T00:01:00Z", 80, "high")], scores)
        assert [(p.client, p.peak, p.latest_score) for p in pairs] == [
            ("thief", 80, 60),
            ("calm", 10, 10),
        ]
        assert pairs[0].queries == 300
        assert pairs[0].peak_level == "high"
        assert [s.name for s in pairs[0].alerts[0].signals] == ["novelty", "volume"]

    def test_alert_without_scores_still_ranks(self) -> None:
        """A pair known only from an alert appears with the alert's score and level."""
        (pair,) = build_pairs([alert("x", "2024-01-01T00:00:00Z", 92, "critical")], [])
        assert (pair.latest_score, pair.latest_level, pair.peak_level) == (
            92,
            "critical",
            "critical",
        )

    def test_flat_dotted_keys_are_read(self) -> None:
        """Records exported with flat dotted keys (user.id) are read like nested ones."""
        flat = {
            "@timestamp": 0,
            "user.id": "c",
            "clonewatch.model_id": "m",
            "user.risk.calculated_score_norm": 33,
        }
        (pair,) = build_pairs([], [flat])
        assert (pair.client, pair.model, pair.peak) == ("c", "m", 33)


class TestRendering:
    """The HTML holds the charts, the signals, the evaluation and nothing unsafe."""

    def test_chart_has_line_and_alert_points(self) -> None:
        """A flagged pair's SVG has the risk polyline and one point per alert."""
        scores = [score("t", f"2024-01-01T00:0{i}:00Z", 10 * i) for i in range(6)]
        alerts = [
            alert("t", "2024-01-01T00:02:00Z", 20, "low"),
            alert("t", "2024-01-01T00:05:00Z", 50, "moderate"),
        ]
        (pair,) = build_pairs(alerts, scores)
        svg = risk_chart_svg(pair)
        assert svg.count('class="alert-point"') == 2
        assert svg.count("<polyline") == 1
        assert len(svg.split('points="')[1].split('"')[0].split()) == 6

    def test_long_series_is_downsampled_keeping_the_peak(self) -> None:
        """Ten thousand scores draw at most a few hundred points, the maximum included."""
        scores = [score("t", i * 60, 50 + (40 if i == 7777 else 0)) for i in range(10_000)]
        (pair,) = build_pairs([], scores)
        points = risk_chart_svg(pair).split('points="')[1].split('"')[0].split()
        assert len(points) <= 601
        # y of score 90 on the default 240-px chart: top 10 + (1 - 0.9) * plot height 200
        assert any(p.endswith(",30.0") for p in points)
        assert pair.peak == 90

    def test_client_ids_are_escaped(self) -> None:
        """A hostile client id appears only escaped, never as markup."""
        evil = '<img src=x onerror="alert(1)">'
        html = render_report([alert(evil, "2024-01-01T00:00:00Z", 75, "high")], [])
        assert evil not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html

    def test_signals_and_evaluation_are_shown(self) -> None:
        """Each alert lists its signals; the evaluation rows become a table."""
        evaluation = {
            "attackers": [{"family": "jbda", "caught": True, "queries_to_first_alert": 120}],
            "benign_flagged_share": 0.004,
        }
        html = render_report([alert("t", "2024-01-01T00:00:00Z", 75, "high")], [], evaluation)
        assert "novelty" in html
        assert "30.0 (value 0.9)" in html
        assert "<th>queries_to_first_alert</th>" in html
        assert "<td>jbda</td><td>true</td><td>120</td>" in html
        assert "benign_flagged_share" in html

    def test_truth_labels_mark_clients(self) -> None:
        """Truth labels of any usual shape end up in a Truth column."""
        truth = {"clients": [{"client_id": "t", "kind": "knockoff"}]}
        html = render_report([alert("t", "2024-01-01T00:00:00Z", 75, "high")], [], truth=truth)
        assert '<th data-col="10">Truth</th>' in html
        assert "<td>knockoff</td>" in html

    def test_empty_inputs_still_make_a_page(self, tmp_path: Path) -> None:
        """No alerts and no scores give a valid page saying nobody was flagged."""
        path = write_report(tmp_path / "sub" / "r.html", [], [])
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>")
        assert "No client was flagged." in text


def run(argv: list[str]) -> int:
    """Run ``clonewatch report`` as clonewatch.cli.main would."""
    parser = argparse.ArgumentParser(prog="clonewatch")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


class TestCommand:
    """clonewatch report reads JSONL and JSON files and writes the page."""

    def test_writes_the_report(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """With alerts, scores, truth and evaluation files the report is written and named."""
        (tmp_path / "a.jsonl").write_text(
            json.dumps(alert("t", "2024-01-01T00:00:00Z", 75, "high")) + "\n\n"
        )
        (tmp_path / "s.jsonl").write_text(json.dumps(score("t", "2024-01-01T00:00:00Z", 75)) + "\n")
        (tmp_path / "e.json").write_text(json.dumps({"rows": [{"x": 1}]}))
        (tmp_path / "t.json").write_text(json.dumps({"t": "attacker"}))
        out = tmp_path / "r.html"
        argv = [
            "report",
            "--alerts",
            str(tmp_path / "a.jsonl"),
            "--scores",
            str(tmp_path / "s.jsonl"),
        ]
        argv += [
            "--evaluation",
            str(tmp_path / "e.json"),
            "--truth",
            str(tmp_path / "t.json"),
            "--out",
            str(out),
        ]
        assert run(argv) == 0
        assert capsys.readouterr().out.splitlines()[-1] == str(out)
        assert "<td>attacker</td>" in out.read_text(encoding="utf-8")

    def test_bad_input_is_a_command_error(self, tmp_path: Path) -> None:
        """A line that is not JSON names the file and line and fails with exit code 1."""
        (tmp_path / "a.jsonl").write_text("{}\nnot json\n")
        (tmp_path / "s.jsonl").write_text("")
        argv = [
            "report",
            "--alerts",
            str(tmp_path / "a.jsonl"),
            "--scores",
            str(tmp_path / "s.jsonl"),
        ]
        with pytest.raises(CommandError, match=r"a.jsonl:2: not JSON") as info:
            run([*argv, "--out", str(tmp_path / "r.html")])
        assert info.value.code == 1
        assert not (tmp_path / "r.html").exists()

    @pytest.mark.parametrize("flag", ["--alerts", "--scores", "--truth", "--evaluation"])
    def test_out_over_an_input_is_a_usage_error(self, tmp_path: Path, flag: str) -> None:
        """--out naming an input: exit 2, and the input is untouched."""
        files = {f: tmp_path / f"{f[2:]}.json" for f in ("--alerts", "--scores", "--truth")}
        files["--evaluation"] = tmp_path / "evaluation.json"
        for path in files.values():
            path.write_text("{}\n")
        argv = ["report"] + [a for f, p in files.items() for a in (f, str(p))]
        with pytest.raises(CommandError, match=f"--out is the same file as {flag}") as info:
            run([*argv, "--out", str(files[flag])])
        assert info.value.code == 2
        assert files[flag].read_text() == "{}\n"

    def test_unwritable_out_fails_in_one_line(self, tmp_path: Path) -> None:
        """--out under a regular file: exit 1, said before any input is read."""
        (tmp_path / "a.jsonl").write_text("")
        (tmp_path / "file").write_text("x")
        empty = str(tmp_path / "a.jsonl")
        argv = ["report", "--alerts", empty, "--scores", empty]
        with pytest.raises(CommandError, match=r"cannot write --out .* is not a directory") as info:
            run([*argv, "--out", str(tmp_path / "file" / "r.html")])
        assert info.value.code == 1
