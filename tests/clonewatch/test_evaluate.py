"""The evaluation: caught, queries to first alert, fidelity by then, benign flagged shares."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from clonewatch.commands import evaluate as evaluate_cmd
from clonewatch.evaluate import evaluate

CURVE = [[10, 0.3], [50, 0.6], [100, 0.8], [200, 0.95]]
MEMBERS = [f"camp-{i}" for i in range(4)]


def _event(i: int, client: str) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "timestamp": 1_793_491_200 + i,
        "client_id": client,
        "model_id": "m",
        "features": [float(i % 7), float(i % 5)],
        "output": {"label": i % 2, "confidence": 0.9, "probabilities": [0.9, 0.1]},
    }


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A log: attacker 'thief' (200 queries), a 4-account campaign, two benign clients."""
    clients = ["thief"] * 200 + [MEMBERS[i % 4] for i in range(200)] + ["heavy"] * 50
    clients += ["light"] * 5
    lines = [json.dumps(_event(i, c)) for i, c in enumerate(clients)]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth: dict[str, Any] = {
        "seed": 1,
        "scale": 1.0,
        "models": {"m": {"kind": "tabular", "n_features": 2, "n_classes": 2}},
        "clients": {
            "thief": {
                "role": "attacker",
                "kind": "jbda",
                "model_id": "m",
                "queries": 200,
                "campaign": None,
            },
            **{
                m: {
                    "role": "attacker",
                    "kind": "campaign",
                    "model_id": "m",
                    "queries": 50,
                    "campaign": "camp",
                }
                for m in MEMBERS
            },
            "heavy": {
                "role": "benign",
                "kind": "heavy",
                "model_id": "m",
                "queries": 50,
                "campaign": None,
            },
            "light": {
                "role": "benign",
                "kind": "light",
                "model_id": "m",
                "queries": 5,
                "campaign": None,
            },
        },
        "attackers": {
            "thief": {
                "family": "jbda",
                "model_id": "m",
                "members": ["thief"],
                "queries": 200,
                "fidelity_curve": CURVE,
                "final_fidelity": 0.95,
            },
            "camp": {
                "family": "campaign",
                "model_id": "m",
                "members": MEMBERS,
                "queries": 200,
                "fidelity_curve": CURVE,
                "final_fidelity": 0.95,
            },
        },
    }
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth), encoding="utf-8")
    return log, path


def _alert(
    user: str, level: str, queries: int, trigger: str = "", members: list[str] | None = None
) -> dict[str, Any]:
    cw: dict[str, Any] = {
        "model_id": "m",
        "risk_level": level,
        "queries_observed": queries,
        "trigger_event_id": trigger,
        "signals": [],
    }
    if members:
        cw["campaign_members"] = members
    return {"@timestamp": "2026-11-01T00:00:00Z", "user": {"id": user}, "clonewatch": cw}


class TestAttackers:
    """Per-attacker rows."""

    def test_queries_and_fidelity_at_first_flag_level_alert(self, world: tuple[Path, Path]) -> None:
        """A moderate alert does not flag; the first high alert at 60 queries reads fidelity 0.6."""
        alerts = [
            _alert("thief", "moderate", 20),
            _alert("thief", "high", 60),
            _alert("thief", "critical", 120),
        ]
        row = evaluate(*world, alerts).clonewatch.attackers[0]
        assert row.caught and row.queries_to_alert == 60
        assert row.fidelity_at_alert == 0.6
        assert row.caught_before_90

    def test_late_catch_is_not_before_90_percent(self, world: tuple[Path, Path]) -> None:
        """Caught at 200 queries, when fidelity is already at its final value."""
        row = evaluate(*world, [_alert("thief", "high", 200)]).clonewatch.attackers[0]
        assert row.caught and not row.caught_before_90

    def test_lower_flag_level_counts_moderate(self, world: tuple[Path, Path]) -> None:
        """With --flag-level moderate the moderate alert at 20 queries flags."""
        report = evaluate(*world, [_alert("thief", "moderate", 20)], flag_level="moderate")
        assert report.clonewatch.attackers[0].queries_to_alert == 20

    def test_campaign_needs_half_its_accounts(self, world: tuple[Path, Path]) -> None:
        """One flagged account of four does not catch the campaign; two do, counted in log order."""
        one = evaluate(*world, [_alert("camp-1", "high", 5)]).clonewatch
        assert not one.campaign_caught
        two = evaluate(*world, [_alert("camp-1", "high", 5), _alert("camp-3", "high", 3)])
        row = two.clonewatch.attackers[1]
        assert row.caught and row.accounts_flagged == 2
        # camp-3's 3rd query is the campaign's 12th, camp-1's 5th is its 18th
        assert row.queries_to_alert == 12

    def test_campaign_alert_naming_members(self, world: tuple[Path, Path]) -> None:
        """A campaign alert naming the accounts catches the campaign at its trigger event."""
        alert = _alert("camp-0", "high", 10, trigger="e239", members=MEMBERS)
        row = evaluate(*world, [alert]).clonewatch.attackers[1]
        assert row.caught and row.accounts_flagged == 4
        assert row.queries_to_alert == 37

    def test_a_campaign_alert_counts_from_its_trigger(self, world: tuple[Path, Path]) -> None:
        """A campaign-rule alert on an account counts at its trigger event, not the account's
        own (earlier) query count it carries."""
        alert = _alert("camp-0", "high", 2, trigger="e239", members=MEMBERS)
        alert["clonewatch"]["campaign_id"] = "c1"
        row = evaluate(*world, [alert]).clonewatch.attackers[1]
        assert row.caught and row.queries_to_alert == 40  # e239 is the campaign's 40th query


class TestSummary:
    """Benign shares, medians and the PRADA table."""

    def test_benign_shares_and_heavy_count(self, world: tuple[Path, Path]) -> None:
        """A flagged heavy client counts in the benign share and the heavy/batch count."""
        report = evaluate(*world, [_alert("heavy", "high", 40), _alert("light", "low", 2)])
        cw = report.clonewatch
        assert cw.benign_flagged_share == 0.5
        assert cw.benign_any_alert_share == 1.0
        assert cw.heavy_batch_flagged == 1
        assert not cw.every_family_caught
        assert cw.families_missed == ["campaign", "jbda"]

    def test_median_counts_missed_attackers_as_never(self, world: tuple[Path, Path]) -> None:
        """With one of two attackers missed the median is infinite; to_dict says None."""
        report = evaluate(*world, [_alert("thief", "high", 60)])
        assert report.clonewatch.median_queries_to_alert == float("inf")
        assert report.to_dict()["clonewatch"]["summary"]["median_queries_to_alert"] is None

    def test_prada_runs_on_the_same_stream(self, world: tuple[Path, Path]) -> None:
        """PRADA's rows cover the same attackers and benign kinds."""
        report = evaluate(*world, [])
        assert [a.name for a in report.prada.attackers] == ["thief", "camp"]
        assert {b.kind for b in report.prada.benign} == {"heavy", "light"}
        assert "PRADA" in report.format_table()


class TestCommand:
    """clonewatch evaluate."""

    def _parse(self, argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        evaluate_cmd.register(parser.add_subparsers())
        return parser.parse_args(argv)

    def test_prints_tables_and_writes_json(
        self, world: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With --alerts and --json the command prints both tables and writes the JSON."""
        log, truth = world
        alerts = tmp_path / "alerts.jsonl"
        alerts.write_text(json.dumps(_alert("thief", "high", 60)) + "\n", encoding="utf-8")
        out = tmp_path / "eval.json"
        args = self._parse(
            [
                "evaluate",
                str(log),
                "--truth",
                str(truth),
                "--alerts",
                str(alerts),
                "--json",
                str(out),
            ]
        )
        assert args.func(args) == 0
        printed = capsys.readouterr().out
        assert "Clonewatch" in printed and "PRADA" in printed
        data = json.loads(out.read_text(encoding="utf-8"))
        assert data["clonewatch"]["attackers"][0]["queries_to_alert"] == 60
