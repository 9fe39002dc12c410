"""The HTML report in headless Chromium: loads offline without console errors, charts render."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from clonewatch.report import LEVEL_COLORS, LINE_COLOR, write_report

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium() -> str:
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if path is None:
        pytest.fail("chromium is missing: run scripts/deps.d/chromium.sh")
    return path


def run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once on a file:// page with a fresh profile."""
    argv = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=180)


def console_lines(stderr: str) -> list[str]:
    """Every message the page wrote to the console (errors, uncaught exceptions, logs)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for client, slope in (("thief-1", 0.5), ("thief-2", 0.35), ("app-1", 0.0)):
        level_seen = 0
        for i in range(200):
            score = min(99.0, 5.0 + slope * i)
            ts = f"2024-05-01T{i // 60:02d}:{i % 60:02d}:00Z"
            level = next(
                (
                    lv
                    for lv, lo in (("critical", 90), ("high", 70), ("moderate", 40), ("low", 20))
                    if score >= lo
                ),
                "none",
            )
            scores.append(
                {
                    "@timestamp": ts,
                    "user": {
                        "id": client,
                        "risk": {"calculated_score_norm": score, "calculated_level": level},
                    },
                    "clonewatch": {"model_id": "digits", "queries_observed": i + 1},
                }
            )
            rank = ["none", "low", "moderate", "high", "critical"].index(level)
            if rank > level_seen:
                level_seen = rank
                alerts.append(
                    {
                        "@timestamp": ts,
                        "event": {"risk_score_norm": score},
                        "user": {"id": client},
                        "message": f"{client} is {level}",
                        "clonewatch": {
                            "model_id": "digits",
                            "risk_level": level,
                            "queries_observed": i + 1,
                            "signals": [
                                {"name": "novelty", "value": 0.9, "score": score * 0.6},
                                {"name": "coverage", "value": 40, "score": score * 0.4},
                            ],
                        },
                    }
                )
    return alerts, scores


def _near(pixel: tuple[int, ...], hex_color: str, tolerance: int = 40) -> bool:
    target = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], target, strict=True))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of two attackers and one benign client, with an evaluation table."""
    alerts, scores = _records()
    evaluation = {
        "attackers": [{"client": "thief-1", "caught": True, "queries_to_first_alert": 31}]
    }
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(out, alerts, scores, evaluation)


class TestReportInChromium:
    """Headless Debian Chromium opens the report from disk, runs its script and draws its charts."""

    def test_page_runs_its_script_without_console_messages(
        self, report: Path, tmp_path: Path
    ) -> None:
        """The DOM after load carries the script's ready mark and the console stayed silent."""
        result = run_chromium(report, tmp_path / "profile", "--dump-dom")
        assert 'data-report="ready"' in result.stdout
        assert "thief-1" in result.stdout
        assert console_lines(result.stderr) == []

    def test_charts_are_drawn(self, report: Path, tmp_path: Path) -> None:
        """The screenshot shows the risk lines and the alert points where the charts are."""
        shot = tmp_path / "shot.png"
        run_chromium(
            report, tmp_path / "profile", "--window-size=1280,1600", f"--screenshot={shot}"
        )
        with Image.open(shot) as image:
            rgb = image.convert("RGB")
            width, height = rgb.size
            pixels = [rgb.getpixel((x, y)) for y in range(0, height, 2) for x in range(0, width, 2)]
        line = [p for p in pixels if isinstance(p, tuple) and _near(p, LINE_COLOR)]
        critical = [
            p for p in pixels if isinstance(p, tuple) and _near(p, LEVEL_COLORS["critical"], 25)
        ]
        assert len(line) > 200
        assert len(critical) > 10
        distinct = {p for p in pixels if isinstance(p, tuple)}
        assert len(distinct) > 50

    def test_report_does_not_reach_the_network(self, report: Path) -> None:
        """No script, style, image or font is loaded from anywhere but the file itself."""
        text = report.read_text(encoding="utf-8")
        assert re.findall(r'(?:src|href)="(?!#)[^"]*"', text) == []
        assert "@import" not in text
        assert "url(" not in text


class TestTheConsoleCheckWorks:
    """The console check really sees script errors, so a silent report means something."""

    def test_an_uncaught_error_is_seen(self, tmp_path: Path) -> None:
        """A page that throws shows an 'Uncaught' console line on stderr."""
        page = tmp_path / "bad.html"
        page.write_text('<html><body><script>throw new Error("boom");</script></body></html>')
        result = run_chromium(page, tmp_path / "profile", "--dump-dom")
        assert any("Uncaught Error: boom" in line for line in console_lines(result.stderr))
