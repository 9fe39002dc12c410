"""The worker's Prometheus registry and its /metrics and /health endpoint."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.metrics import Health, Metrics, MetricsServer


@pytest.fixture
def served() -> Iterator[tuple[Metrics, Health, str]]:
    m, h = Metrics(), Health()
    server = MetricsServer(m, h, "127.0.0.1", 0)
    server.start()
    yield m, h, f"http://127.0.0.1:{server.port}"
    server.stop()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback test
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class TestEndpoint:
    """What the HTTP endpoint serves."""

    def test_metrics_serves_counters_that_move(self, served: tuple[Metrics, Health, str]) -> None:
        """/metrics shows the counters and their new values after they move."""
        m, _, base = served
        _, before = _get(base + "/metrics")
        assert b"clonewatch_events_in_total 0.0" in before
        m.events_in.inc(3)
        m.dead_letters.labels("not JSON").inc()
        m.alerts.labels("high").inc()
        m.latency.observe(0.02)
        code, after = _get(base + "/metrics")
        assert code == 200
        assert b"clonewatch_events_in_total 3.0" in after
        assert b'clonewatch_dead_letters_total{reason="not JSON"} 1.0' in after
        assert b'clonewatch_alerts_total{level="high"} 1.0' in after
        assert b"clonewatch_processing_latency_seconds_count 1.0" in after

    def test_health_reflects_state(self, served: tuple[Metrics, Health, str]) -> None:
        """/health is 503 before start and on a failing sink, 200 while running."""
        _, h, base = served
        assert _get(base + "/health")[0] == 503
        h.set(started=True, assigned=4)
        code, body = _get(base + "/health")
        assert code == 200
        assert json.loads(body)["assigned_partitions"] == 4
        h.set(sink_failing={"elasticsearch": "ConnectionError"})
        code, body = _get(base + "/health")
        assert code == 503
        assert json.loads(body)["sinks_failing"] == {"elasticsearch": "ConnectionError"}

    def test_unknown_path_is_404(self, served: tuple[Metrics, Health, str]) -> None:
        """Paths other than /metrics and /health are not found."""
        assert _get(served[2] + "/other")[0] == 404


class TestReasonLabels:
    """Dead-letter reasons become low-cardinality labels."""

    @pytest.mark.parametrize(
        ("reason", "label"),
        [
            ("not JSON: Expecting value: line 1 column 1 (char 0)", "not JSON"),
            ("invalid event: client_id: Field required", "invalid event"),
            ("event larger than 65536 bytes", "too large"),
            ("not a JSON object but list", "not a JSON object"),
            ("empty message", "empty message"),
        ],
    )
    def test_reason_label(self, reason: str, label: str) -> None:
        """Details after the colon are dropped from the label."""
        assert Metrics().dead_letter_reason(reason) == label


class TestAlertRules:
    """The example Prometheus rules refer to metrics the worker exports."""

    def test_rules_use_exported_metric_names(self) -> None:
        """Every clonewatch_* series named in deploy/prometheus exists in the registry."""
        rules = (Path(__file__).parents[2] / "deploy/prometheus/clonewatch-rules.yml").read_text()
        used = set(re.findall(r"clonewatch_[a-z_]+", rules))
        exported = Metrics().render().decode()
        assert used
        for name in used:
            assert re.search(rf"^# TYPE ({name}|{name.removesuffix('_total')}) ", exported, re.M), (
                name
            )


class TestModelStats:
    """The engine's model counts become a gauge and two counters that only grow."""

    def test_observe_models_sets_gauge_and_adds_growth(self) -> None:
        """The counters add what the engine's totals grew by since the last look."""
        m = Metrics()
        m.observe_models({"models_tracked": 5, "models_evicted": 2, "model_overflow_events": 0})
        m.observe_models({"models_tracked": 7, "models_evicted": 9, "model_overflow_events": 4})
        text = m.render()
        assert b"clonewatch_models_tracked 7.0" in text
        assert b"clonewatch_models_evicted_total 9.0" in text
        assert b"clonewatch_model_overflow_events_total 4.0" in text
