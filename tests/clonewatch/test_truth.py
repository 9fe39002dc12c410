"""A minimal hand-made truth file (roles only) evaluates, and a wrong one fails clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clonewatch.evaluate import evaluate
from clonewatch.truth import Truth


def _write_log(path: Path, clients: list[str]) -> None:
    lines = [
        json.dumps(
            {
                "event_id": f"e{i}",
                "timestamp": 1_793_491_200 + i,
                "client_id": c,
                "model_id": "fraud-v2",
                "features": [float(i % 7), float(i % 5)],
            }
        )
        for i, c in enumerate(clients)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _alert(user: str, level: str, queries: int) -> dict[str, Any]:
    cw = {"model_id": "fraud-v2", "risk_level": level, "queries_observed": queries}
    return {"user": {"id": user}, "clonewatch": cw}


@pytest.fixture
def minimal(tmp_path: Path) -> tuple[Path, Path]:
    """A red-team log: one thief, a two-account campaign and a benign client, roles only."""
    log, truth = tmp_path / "q.jsonl", tmp_path / "truth.json"
    _write_log(log, ["thief"] * 30 + ["r1", "r2"] * 10 + ["app"] * 12)
    doc = {
        "clients": {
            "thief": "attacker",
            "r1": {"role": "attacker", "campaign": "red"},
            "r2": {"role": "attacker", "campaign": "red"},
            "app": "benign",
        }
    }
    truth.write_text(json.dumps(doc), encoding="utf-8")
    return log, truth


def test_roles_alone_are_enough(minimal: tuple[Path, Path]) -> None:
    """Models and query counts come from the log; campaigns from their shared name."""
    alerts = [_alert("thief", "high", 9), _alert("r2", "critical", 4), _alert("app", "low", 3)]
    cw = evaluate(*minimal, alerts).clonewatch
    rows = {a.name: a for a in cw.attackers}
    assert list(rows) == ["thief", "red"]
    assert rows["thief"].model_id == "fraud-v2" and rows["thief"].queries == 30
    assert rows["thief"].family == "unlabelled" and rows["thief"].queries_to_alert == 9
    assert rows["red"].family == "campaign" and rows["red"].queries == 20
    assert rows["red"].accounts_flagged == 1 and rows["red"].caught  # half of two
    assert rows["red"].queries_to_alert == 8  # r2's 4th query is the campaign's 8th
    assert rows["thief"].final_fidelity is None and rows["thief"].caught_before_90 is None
    assert cw.all_caught_before_90 is None and cw.campaign_caught is True
    assert cw.benign[0].kind == "benign" and cw.benign[0].any_alert == 1


def test_the_table_marks_unknown_fidelity(minimal: tuple[Path, Path]) -> None:
    """Without fidelity curves the table prints '-' and says the 90 % check is unknown."""
    alerts = [_alert("thief", "high", 9), _alert("r1", "high", 5)]
    table = evaluate(*minimal, alerts).format_table()
    assert "unknown (no fidelity curve)" in table
    assert "thief" in table and "fraud-v2" in table


def test_a_missed_attacker_is_not_before_90(minimal: tuple[Path, Path]) -> None:
    """An attacker never caught makes the 90 % check False, not unknown."""
    cw = evaluate(*minimal, []).clonewatch
    assert cw.all_caught_before_90 is False and cw.campaign_caught is False


def test_no_campaign_reads_none() -> None:
    """A truth without multi-account attackers has no campaign to catch."""
    t = Truth.parse({"clients": {"a": "attacker"}, "attackers": {"x": {"members": ["a"]}}})
    assert [(a.name, a.members) for a in t.attackers] == [("x", ["a"])]


def test_final_fidelity_defaults_to_the_curves_last_point() -> None:
    """A curve without final_fidelity ends at its last point, in query order."""
    doc = {
        "clients": {"a": "attacker"},
        "attackers": {"a": {"fidelity_curve": [[100, 0.9], [10, 0.4]]}},
    }
    (a,) = Truth.parse(doc).attackers
    assert a.fidelity_curve == [[10.0, 0.4], [100.0, 0.9]] and a.final_fidelity == 0.9


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected an object with a 'clients' object"),
        ({"clients": {"a": "thief"}}, "clients.a.role must be 'benign' or 'attacker'"),
        ({"clients": {"a": 3}}, "clients.a must be an object or a role string"),
        ({"clients": {}, "attackers": {"x": {"members": []}}}, "attackers.x.members"),
        ({"clients": {}, "attackers": {"x": {"fidelity_curve": [1]}}}, "fidelity_curve"),
        ({"clients": {"a": {"role": "benign", "kind": ""}}}, "clients.a.kind"),
    ],
)
def test_wrong_documents_fail_with_their_place(doc: Any, message: str) -> None:
    """Each mistake is a ValueError naming where it is."""
    with pytest.raises(ValueError, match="truth: ") as err:
        Truth.parse(doc)
    assert message in str(err.value)


def test_not_json_is_a_value_error(tmp_path: Path) -> None:
    """A truth file that is not JSON fails as ValueError, which the CLI reports."""
    log, truth = tmp_path / "q.jsonl", tmp_path / "t.json"
    _write_log(log, ["a"])
    truth.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="truth: not JSON"):
        evaluate(log, truth, [])
