"""The throttle webhook against a real HTTP server: signatures, retries, dead letter, redeliver."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from siem_support import HttpReceiver, alert_record

from clonewatch.commands import redeliver
from streams.sinks.http_delivery import DeadLetterFile, RetryPolicy
from streams.sinks.webhook import WebhookConfig, WebhookPolicy, WebhookSink
from streams.sinks.webhook_verify import WebhookVerificationError, generate_secret, verify

pytestmark = pytest.mark.integration


@pytest.fixture
def secret() -> str:
    """A fresh whsec_ secret."""
    return generate_secret()


def _sink(
    url: str,
    secret: str,
    dead_letter: Path,
    sleeps: list[float],
    *,
    attempts: int = 3,
    timeout: float = 2.0,
) -> WebhookSink:
    config = WebhookConfig(
        url=url + "/throttle",
        secrets=(secret,),
        policy=WebhookPolicy(cooldown_seconds=600),
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.001, max_delay=0.002),
        timeout=timeout,
        dead_letter_path=str(dead_letter),
    )
    return WebhookSink(config, sleep=sleeps.append)


def _redeliver(dead_letter: Path, secret_file: Path) -> int:
    parser = argparse.ArgumentParser()
    redeliver.register(parser.add_subparsers())
    args = parser.parse_args(
        ["redeliver", str(dead_letter), "--secret-file", str(secret_file), "--backoff-base", "0"]
    )
    code: int = args.func(args)
    return code


class TestSignedDelivery:
    """What the gateway receives."""

    def test_body_and_signature_verify(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """The gateway gets one signed request whose body names the client, action and reasons."""
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", [])
        sink.write([alert_record(1)])
        sink.flush()
        assert len(http_receiver.requests) == 1
        request = http_receiver.requests[0]
        assert request.path == "/throttle"
        verify(request.body, request.headers, secret)
        assert request.headers["webhook-id"] == "msg_alert-1"
        data = json.loads(request.body)["data"]
        assert data["client"] == "client-1"
        assert data["model"] == "resnet|v1=prod"
        assert (data["risk_score"], data["risk_level"]) == (76.0, "high")
        assert data["action"] == {
            "type": "throttle",
            "ttl_seconds": 3600,
            "rate": {"requests": 10, "per_seconds": 60},
        }
        assert data["alert_id"] == "alert-1"
        assert data["reasons"] == [{"signal": "coverage", "value": 0.9, "score": 41.0}]
        assert not (tmp_path / "dl.jsonl").exists()

    def test_stale_timestamp_is_rejected_by_the_verifier(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """A captured request replayed six minutes later fails verification as stale."""
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", [])
        sink.write([alert_record(1)])
        sink.flush()
        request = http_receiver.requests[0]
        sent_at = int(request.headers["webhook-timestamp"])
        with pytest.raises(WebhookVerificationError, match="stale"):
            verify(request.body, request.headers, secret, now=sent_at + 360)

    def test_cooling_down_client_gets_no_second_request(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """A second alert of the same client within the cooldown sends nothing more."""
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", [])
        first = alert_record(1)
        again = alert_record(1, event={"id": "alert-1b", "severity": 73, "risk_score": 80.0,
                                       "risk_score_norm": 80.0})  # fmt: skip
        sink.write([first, again])
        sink.flush()
        assert [r.headers["webhook-id"] for r in http_receiver.requests] == ["msg_alert-1"]


class TestRetries:
    """Transient failures are retried."""

    def test_503_is_retried_until_200(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """Two 503 answers then a 200: three attempts with one webhook-id, nothing dead-lettered."""
        http_receiver.script = [(503, {}, b"busy"), (503, {}, b"busy")]
        sleeps: list[float] = []
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", sleeps)
        sink.write([alert_record(1)])
        sink.flush()
        assert len(http_receiver.requests) == 3
        assert {r.headers["webhook-id"] for r in http_receiver.requests} == {"msg_alert-1"}
        for request in http_receiver.requests:
            verify(request.body, request.headers, secret)
        assert len(sleeps) == 2 and all(0 <= s <= 0.002 for s in sleeps)
        assert sink.delivered == 1 and not (tmp_path / "dl.jsonl").exists()

    def test_retry_after_is_honoured(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """A 429 with Retry-After: 7 makes the sink wait seven seconds (recorded, not slept)."""
        http_receiver.script = [(429, {"Retry-After": "7"}, b"slow down")]
        sleeps: list[float] = []
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", sleeps)
        sink.write([alert_record(1)])
        sink.flush()
        assert sleeps == [7.0]
        assert len(http_receiver.requests) == 2

    def test_timeout_is_retried(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """A gateway that never answers the first request is retried after the client timeout."""
        http_receiver.hold_next = 1
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", [], timeout=0.3)
        sink.write([alert_record(1)])
        sink.flush()
        assert sink.delivered == 1
        assert len(http_receiver.requests) == 1  # the held request is never recorded


class TestDeadLetterAndRedeliver:
    """What fails N times is kept, and redeliver empties it once the gateway is back."""

    def test_dead_letter_then_redeliver(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """After 3 failed attempts the entry holds body, headers and error; redeliver sends it."""
        dead_letter = tmp_path / "dl.jsonl"
        http_receiver.default = (500, {}, b"gateway exploded")
        sink = _sink(http_receiver.url, secret, dead_letter, [], attempts=3)
        sink.write([alert_record(1), alert_record(2)])
        sink.flush()
        assert len(http_receiver.requests) == 6
        entries = DeadLetterFile(dead_letter).read()
        assert [e["headers"]["webhook-id"] for e in entries] == ["msg_alert-1", "msg_alert-2"]
        assert entries[0]["attempts"] == 3
        assert entries[0]["error"] == "HTTP 500: gateway exploded"
        assert json.loads(entries[0]["body"])["data"]["client"] == "client-1"
        assert secret not in dead_letter.read_text()

        secret_file = tmp_path / "secret"
        secret_file.write_text(secret + "\n")
        assert _redeliver(dead_letter, secret_file) == 1  # still failing: kept
        assert len(DeadLetterFile(dead_letter).read()) == 2

        http_receiver.requests.clear()
        http_receiver.default = (204, {}, b"")
        assert _redeliver(dead_letter, secret_file) == 0
        assert DeadLetterFile(dead_letter).read() == []
        assert [r.headers["webhook-id"] for r in http_receiver.requests] == [
            "msg_alert-1",
            "msg_alert-2",
        ]
        for request, entry in zip(http_receiver.requests, entries, strict=True):
            verify(request.body, request.headers, secret)
            assert request.body == entry["body"].encode()

    def test_client_errors_are_not_retried(
        self, http_receiver: HttpReceiver, secret: str, tmp_path: Path
    ) -> None:
        """A 400 goes to the dead letter after a single attempt."""
        http_receiver.default = (400, {}, b"unknown consumer")
        sink = _sink(http_receiver.url, secret, tmp_path / "dl.jsonl", [], attempts=5)
        sink.write([alert_record(1)])
        sink.flush()
        assert len(http_receiver.requests) == 1
        [entry] = DeadLetterFile(tmp_path / "dl.jsonl").read()
        assert (entry["status"], entry["attempts"]) == (400, 1)
