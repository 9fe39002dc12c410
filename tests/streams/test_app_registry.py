"""The worker's model registry (``CLONEWATCH_MODEL_REGISTRY``): read into the engine, and a bad
file refused before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from clonewatch.cli import main
from streams.app import build_pipeline
from streams.settings import Settings


def test_the_engine_gets_the_registry(tmp_path: Path) -> None:
    """The pipeline's engine knows the registered model and keeps a place for it."""
    reg = tmp_path / "models.json"
    reg.write_text('{"version": 1, "models": {"fraud-v3": {"n_features": 4}}}')
    settings = Settings.load(env={"CLONEWATCH_MODEL_REGISTRY": str(reg)})
    pipeline = build_pipeline(settings)
    assert pipeline.engine.registry["fraud-v3"].n_features == 4
    assert "fraud-v3" in pipeline.engine.support.pinned


def test_a_bad_registry_stops_the_worker_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry with an error: exit 2 with the file and the problem, no Kafka needed (the
    bootstrap address is a closed port)."""
    reg = tmp_path / "models.json"
    reg.write_text('{"version": 1, "models": {"m": {"n_features": 2, "feature_ranges": [[0, 1]]}}}')
    monkeypatch.setenv("CLONEWATCH_MODEL_REGISTRY", str(reg))
    monkeypatch.setenv("CLONEWATCH_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("CLONEWATCH_METRICS_PORT", "-1")
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert str(reg) in err and "feature_ranges has 1 ranges for 2 features" in err
