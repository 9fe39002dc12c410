"""A campaign through the real broker: the worker pools the accounts as replay does, keys each
campaign alert by its account, and the gateway gets a signed throttle for every account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stream_support import WebhookReceiver, replay_alerts, webhook_env

from schemas import CAMPAIGN_RULE_ID
from streams.kafka_io import read_topic
from streams.sinks.webhook_verify import generate_secret, verify
from tests.detectors.campaign_support import campaign_stream

pytestmark = pytest.mark.integration


def test_campaign_alerts_match_replay_and_reach_the_gateway(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Same campaign alert ids as replay, each under its account's key, each account throttled."""
    log = tmp_path / "campaign.jsonl"
    events = campaign_stream()
    log.write_text("".join(e.model_dump_json() + "\n" for e in events), encoding="utf-8")
    expected = [a for a in replay_alerts(log) if a["rule"]["id"] == CAMPAIGN_RULE_ID]
    assert len(expected) >= 30, "the log must make replay pool a campaign"
    secret = generate_secret()
    with WebhookReceiver() as gateway:
        env = webhook_env(kafka_bootstrap, tmp_path, secret)
        produced = env.cli("produce", str(log))
        assert produced.returncode == 0, produced.stderr
        worker = env.worker("w1", sink=[f"webhook={gateway.url}"])
        try:
            worker.wait_for("clonewatch_events_processed_total", len(events))
            worker.wait_for('clonewatch_sink_writes_total{sink="webhook"}', len(expected))
        finally:
            code = worker.terminate()
        received = gateway.snapshot()
    assert code == 0, worker.tail()
    records = read_topic(env.settings, f"{env.prefix}.alerts")
    pooled = [(r.key, json.loads(r.value)) for r in records]
    pooled = [(k, a) for k, a in pooled if a["rule"]["id"] == CAMPAIGN_RULE_ID]
    assert {a["event"]["id"] for _, a in pooled} == {a["event"]["id"] for a in expected}
    assert all(k == a["user"]["id"].encode() for k, a in pooled)
    throttled = set()
    for req in received:
        verify(req.body, req.headers, secret)
        data = json.loads(req.body)["data"]
        if data.get("campaign_id"):
            throttled.add(data["client"])
    assert throttled == {a["user"]["id"] for a in expected}
