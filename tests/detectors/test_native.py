"""The compiled engine and the pure Python write the same bytes; a stale build is not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detectors import native
from tests.synthetic import synthetic_events

REPLAY = """
import sys, detectors
from clonewatch.cli import main
print(detectors.BUILD, flush=True)
sys.exit(main(["replay", sys.argv[1], "--alerts", sys.argv[2], "--scores", sys.argv[3]]))
"""


def _replay(log: Path, out: Path, pure: bool) -> tuple[str, bytes, bytes]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    alerts, scores = out / "alerts.jsonl", out / "scores.jsonl"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", REPLAY, str(log), str(alerts), str(scores)],
        env=env, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return proc.stdout.decode().split()[0], alerts.read_bytes(), scores.read_bytes()


def test_compiled_and_pure_write_identical_outputs(tmp_path: Path) -> None:
    """A replay with alerts gives byte-identical alerts and risk scores in both builds."""
    old = {k: v for k, v in os.environ.items() if k == native.PURE_ENV}
    os.environ.pop(native.PURE_ENV, None)
    try:
        mode = native.build_mode()
    finally:
        os.environ.update(old)
    if mode != "compiled":
        pytest.skip(f"the compiled build is {mode}: run `make compile`")
    log = tmp_path / "log.jsonl"
    events = synthetic_events(seed=4, benign_clients=50, attacker_queries=600)
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    c_mode, c_alerts, c_scores = _replay(log, tmp_path / "compiled", pure=False)
    p_mode, p_alerts, p_scores = _replay(log, tmp_path / "pure", pure=True)
    assert (c_mode, p_mode) == ("compiled", "pure")
    assert c_alerts.count(b"\n") >= 1  # the attacker is caught, so alerts are compared
    assert c_scores.count(b"\n") > 50
    assert (c_alerts, c_scores) == (p_alerts, p_scores)


def test_pure_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLONEWATCH_PURE=1 selects the Python sources whatever is built."""
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.build_mode() == "pure"


def test_a_changed_source_makes_the_build_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled modules are used only while every source matches the manifest."""
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    monkeypatch.setattr(native, "_has_extensions", lambda: True)
    digests = native.source_digests()
    monkeypatch.setattr(native, "source_digests", lambda: {**digests, "engine": "0" * 64})
    manifest = json.dumps({"sources": digests})
    monkeypatch.setattr(native, "MANIFEST", _Text(manifest))
    assert native.build_mode() == "stale"
    monkeypatch.setattr(native, "source_digests", lambda: digests)
    assert native.build_mode() == "compiled"
    monkeypatch.setattr(native, "MANIFEST", _Text("not json"))
    assert native.build_mode() == "stale"


def test_the_package_reports_its_build() -> None:
    """``detectors.BUILD`` names the build the modules were imported from."""
    import detectors.engine  # noqa: PLC0415 - the module whose origin is checked

    engine_file = detectors.engine.__file__ or ""
    assert detectors.BUILD in ("compiled", "pure", "stale")
    assert engine_file.endswith(".py") == (detectors.BUILD != "compiled")


class _Text:
    """A stand-in for the manifest path: only ``read_text`` is used."""

    def __init__(self, text: str) -> None:
        self.text = text

    def read_text(self) -> str:
        return self.text
