"""Splunk HEC against a real HTTP server that answers like Splunk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from siem_support import HttpReceiver, Received, alert_record, json_lines

from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.hec import HecConfig, HecSink
from streams.sinks.http_delivery import DeadLetterFile, RetryPolicy

pytestmark = pytest.mark.integration

TOKEN = "00000000-1111-2222-3333-444444444444"  # noqa: S105 (a test token)
_SUCCESS = (200, {}, b'{"text":"Success","code":0}')


def _splunk(request: Received) -> tuple[int, dict[str, str], bytes]:
    """Splunk's answers: 401 without the token, 400 for an event it cannot index."""
    if request.headers.get("authorization") != f"Splunk {TOKEN}":
        return 401, {}, b'{"text":"Invalid token","code":4}'
    for event in json_lines(request.body):
        if event["event"].get("message", "").startswith("reject"):
            return 400, {}, b'{"text":"Invalid data format","code":6,"invalid-event-number":0}'
    return _SUCCESS


def _sink(receiver: HttpReceiver, tmp_path: Path, *, token: str = TOKEN) -> HecSink:
    receiver.respond = _splunk
    config = HecConfig(
        url=receiver.url,
        token=token,
        index="security",
        host="cw-test",
        batch_size=10,
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002),
        dead_letter_path=str(tmp_path / "hec-dl.jsonl"),
    )
    return HecSink(config, sleep=lambda _s: None)


class TestBatches:
    """Events are batched into one request and checked against Splunk's answer."""

    def test_batch_is_one_request_of_concatenated_events(
        self, http_receiver: HttpReceiver, tmp_path: Path
    ) -> None:
        """Three alerts make one POST to /services/collector/event with three event objects."""
        sink = _sink(http_receiver, tmp_path)
        sink.write([alert_record(n) for n in range(1, 4)])
        sink.flush()
        [request] = http_receiver.requests
        assert request.path == "/services/collector/event"
        events = json_lines(request.body)
        assert [e["event"]["event"]["id"] for e in events] == ["alert-1", "alert-2", "alert-3"]
        first = events[0]
        assert first["time"] == 1740830400.25
        assert (first["host"], first["source"], first["sourcetype"], first["index"]) == (
            "cw-test",
            "clonewatch",
            "clonewatch:alert",
            "security",
        )
        assert first["fields"] == {
            "clonewatch_kind": "alert",
            "client": "client-1",
            "model": "resnet|v1=prod",
            "risk_level": "high",
        }
        assert sink.sent == 3

    def test_503_is_retried(self, http_receiver: HttpReceiver, tmp_path: Path) -> None:
        """Splunk busy (503) twice, then success: the same batch is sent three times."""
        sink = _sink(http_receiver, tmp_path)
        http_receiver.script = [(503, {}, b'{"text":"Server is busy","code":9}')] * 2
        sink.write([alert_record(1)])
        sink.flush()
        assert len(http_receiver.requests) == 3
        assert len({r.body for r in http_receiver.requests}) == 1
        assert sink.sent == 1

    def test_200_without_success_body_is_not_success(
        self, http_receiver: HttpReceiver, tmp_path: Path
    ) -> None:
        """A 200 whose body is not Splunk's success (a proxy page) is retried."""
        sink = _sink(http_receiver, tmp_path)
        http_receiver.script = [(200, {}, b"<html>captive portal</html>")]
        sink.write([alert_record(1)])
        sink.flush()
        assert len(http_receiver.requests) == 2

    def test_unavailable_splunk_raises_and_keeps_the_batch(
        self, http_receiver: HttpReceiver, tmp_path: Path
    ) -> None:
        """When every attempt fails, flush raises and the events stay buffered for the next one."""
        sink = _sink(http_receiver, tmp_path)
        http_receiver.script = [(503, {}, b"{}")] * 3
        sink.write([alert_record(1)])
        with pytest.raises(SinkError, match="unavailable after 3 attempts"):
            sink.flush()
        sink.flush()  # Splunk is back
        assert sink.sent == 1 and len(http_receiver.requests) == 4

    def test_bad_token_raises(self, http_receiver: HttpReceiver, tmp_path: Path) -> None:
        """A refused token fails the flush at once without retries and without logging it."""
        sink = _sink(http_receiver, tmp_path, token="wrong-token")  # noqa: S106
        sink.write([alert_record(1)])
        with pytest.raises(SinkError, match="refused the token") as info:
            sink.flush()
        assert "wrong-token" not in str(info.value)
        assert len(http_receiver.requests) == 1


class TestRejectedEvents:
    """A 400 isolates the bad events into the dead letter and delivers the rest."""

    def test_rejected_event_is_dead_lettered(
        self, http_receiver: HttpReceiver, tmp_path: Path
    ) -> None:
        """Of three events one is rejected: two are indexed, one is in the dead letter."""
        sink = _sink(http_receiver, tmp_path)
        bad = alert_record(2)
        bad = OutputRecord(bad.kind, bad.id, bad.key, {**bad.doc, "message": "reject me"})
        sink.write([alert_record(1), bad, alert_record(3)])
        sink.flush()
        assert sink.sent == 2
        [entry] = DeadLetterFile(tmp_path / "hec-dl.jsonl").read()
        assert entry["sink"] == "hec" and entry["status"] == 400
        assert json.loads(entry["body"])["event"]["event"]["id"] == "alert-2"
        assert "Authorization" not in entry["headers"]
        assert TOKEN not in (tmp_path / "hec-dl.jsonl").read_text()
