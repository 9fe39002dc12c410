"""A worker killed with ``kill -9`` in the middle of a webhook delivery loses no throttle.

The gateway is a real HTTP server on loopback that takes a second to answer each POST, so
the worker is inside a delivery when the test kills it (the kill follows the gateway's
receipt of a request, before its answer). The worker is started again with one attempt
per webhook and the gateway answers its first POST with 503, so one throttle goes to the
dead-letter file; ``clonewatch redeliver`` sends it. At-least-once: the throttle whose
answer the killed worker never saw arrives twice, under the same ``webhook-id``; after
deduplication by that id the gateway holds exactly the throttles a clean run sends.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stream_support import (
    CLI,
    WAIT_SECONDS,
    Received,
    WebhookReceiver,
    replay_alerts,
    webhook_env,
    write_log,
)

from streams.sinks.webhook import DEFAULT_ACTIONS, PolicyEngine, WebhookPolicy
from streams.sinks.webhook_verify import generate_secret, verify

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway() -> Iterator[WebhookReceiver]:
    """A running gateway that takes a second to answer each POST."""
    with WebhookReceiver(delay=1.0) as server:
        yield server


def _data(post: Received) -> dict[str, Any]:
    """A webhook's ``data`` object."""
    data: dict[str, Any] = json.loads(post.body)["data"]
    return data


def expected_ids(log: Path) -> set[str]:
    """The webhook-ids a clean run sends: replay's alerts through the sink's own policy."""
    policy = PolicyEngine(WebhookPolicy(actions=dict(DEFAULT_ACTIONS)))
    out = set()
    for alert in replay_alerts(log):
        client, level = alert["user"]["id"], alert["clonewatch"]["risk_level"]
        if policy.decide(client, level, alert["event"]["id"]).action is not None:
            out.add(f"msg_{alert['event']['id']}")
    return out


class TestKilledMidDelivery:
    """kill -9 during a POST, restart, redeliver: every throttle once after dedup."""

    def test_every_throttle_arrives_after_restart_and_redeliver(
        self, kafka_bootstrap: str, tmp_path: Path, gateway: WebhookReceiver
    ) -> None:
        """The gateway ends with each throttle of a clean run, repeats only under the same id."""
        log = tmp_path / "log.jsonl"
        write_log(log)
        expected = expected_ids(log)
        assert len(expected) >= 2
        secret = generate_secret()
        env = webhook_env(kafka_bootstrap, tmp_path, secret)
        env.extra["CLONEWATCH_BATCH_MAX"] = "50"  # offsets committed batch by batch
        dead_letter = tmp_path / "webhook-dl.jsonl"
        produced = env.cli("produce", str(log))
        assert produced.returncode == 0, produced.stderr

        first = env.worker("w1", sink=[f"webhook={gateway.url}"])
        try:
            assert gateway.arrived.wait(WAIT_SECONDS), first.tail()
        finally:
            first.kill()  # inside the delivery: the POST is read, its answer not yet sent
        before = {p.headers["webhook-id"] for p in gateway.snapshot()}
        assert before
        assert before <= expected

        # Restarted with one attempt per webhook; the gateway refuses the first POST with 503.
        gateway.fail = 1
        env.extra["CLONEWATCH_WEBHOOK_MAX_ATTEMPTS"] = "1"
        second = env.worker("w1", sink=[f"webhook={gateway.url}"])
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                got = {p.headers["webhook-id"] for p in gateway.snapshot()}
                spooled = _dead_letter_ids(dead_letter)
                if got | spooled >= expected:
                    break
                assert time.monotonic() < deadline, second.tail()
                assert second.proc.poll() is None, second.tail()
                time.sleep(0.3)
        finally:
            assert second.terminate() == 0, second.tail()
        assert len(gateway.refused) == 1
        assert _dead_letter_ids(dead_letter) == {gateway.refused[0].headers["webhook-id"]}

        secret_file = tmp_path / "secret"
        secret_file.write_text(secret)
        done = subprocess.run(
            [*CLI, "redeliver", str(dead_letter), "--secret-file", str(secret_file)],
            env=env.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert dead_letter.read_text() == ""

        posts = gateway.snapshot()
        by_id: dict[str, list[Received]] = {}
        for post in posts:
            verify(post.body, post.headers, secret)  # each signed by us, redelivery included
            by_id.setdefault(post.headers["webhook-id"], []).append(post)
        assert set(by_id) == expected  # none lost, none invented
        for msg_id, copies in by_id.items():
            assert msg_id == f"msg_{_data(copies[0])['alert_id']}"
            # a repeat is the same throttle (only its timestamp is newer)
            assert len({json.dumps(_action(c), sort_keys=True) for c in copies}) == 1
        assert len(posts) > len(by_id)  # the POST in flight at the kill was sent again


def _action(post: Received) -> dict[str, Any]:
    """What a webhook asks the gateway to do, without its timestamps."""
    data = _data(post)
    return {k: data[k] for k in ("alert_id", "client", "model", "action", "risk_level")}


def _dead_letter_ids(path: Path) -> set[str]:
    """The webhook-ids in the worker's dead-letter file."""
    if not path.exists():
        return set()
    return {
        json.loads(line)["headers"]["webhook-id"]
        for line in path.read_text().splitlines()
        if line.strip()
    }
