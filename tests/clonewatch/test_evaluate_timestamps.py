"""``clonewatch evaluate`` on a log with timestamps out of the contract's range: no crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clonewatch.cli import main


def _event(i: int, client: str, timestamp: object) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "timestamp": timestamp,
        "client_id": client,
        "model_id": "m",
        "features": [float(i % 7), float(i % 5)],
        "output": {"label": i % 2, "confidence": 0.9, "probabilities": [0.9, 0.1]},
    }


class TestEvaluateHostileTimestamps:
    """Before the range was in the contract, evaluate raised "year 10000 is out of range"."""

    @pytest.mark.parametrize(
        "timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
    )
    def test_evaluate_exits_0(
        self, tmp_path: Path, timestamp: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The hostile client's lines are dead letters; evaluation of the others completes."""
        pytest.importorskip("sklearn")
        events = [_event(i, "benign", 1_793_491_200 + i) for i in range(300)]
        events += [_event(300 + i, "hostile", timestamp) for i in range(300)]
        log = tmp_path / "log.jsonl"
        log.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
        truth = {
            "seed": 1,
            "scale": 1.0,
            "models": {"m": {"kind": "tabular", "n_features": 2, "n_classes": 2}},
            "clients": {
                "benign": {"role": "benign", "kind": "steady", "model_id": "m"},
                "hostile": {"role": "benign", "kind": "steady", "model_id": "m"},
            },
        }
        truth_path = tmp_path / "truth.json"
        truth_path.write_text(json.dumps(truth), encoding="utf-8")
        assert main(["evaluate", str(log), "--truth", str(truth_path)]) == 0
        assert "benign" in capsys.readouterr().out
