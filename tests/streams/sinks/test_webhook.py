"""The throttle webhook's policy: level to action, cooldown, allowlist, bounded memory."""

from __future__ import annotations

import pytest

from streams.sinks.webhook import (
    Action,
    PolicyEngine,
    WebhookConfig,
    WebhookPolicy,
    build_payload,
    parse_actions,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(**kwargs: object) -> tuple[PolicyEngine, _Clock]:
    clock = _Clock()
    return PolicyEngine(WebhookPolicy(**kwargs), clock), clock  # type: ignore[arg-type]


class TestActions:
    """Parsing and mapping levels to actions."""

    def test_parse_actions(self) -> None:
        """The LEVEL=ACTION list becomes typed actions."""
        actions = parse_actions("moderate=throttle:60:600, critical=block:86400")
        assert actions == {
            "moderate": Action("throttle", ttl_seconds=600, rate_per_minute=60),
            "critical": Action("block", ttl_seconds=86400),
        }

    @pytest.mark.parametrize("text", ["high=slow:1", "urgent=block:10", "high", "high=block:x"])
    def test_bad_actions_are_rejected(self, text: str) -> None:
        """Unknown actions, unknown levels and malformed numbers are errors."""
        with pytest.raises(ValueError, match="bad"):
            parse_actions(text)

    def test_action_needs_positive_ttl(self) -> None:
        """An action that never expires is refused."""
        with pytest.raises(ValueError, match="ttl"):
            Action("block", ttl_seconds=0)

    @pytest.mark.parametrize(
        ("level", "kind"),
        [("none", None), ("low", None), ("moderate", None), ("high", "throttle"),
         ("critical", "block")],
    )  # fmt: skip
    def test_default_policy(self, level: str, kind: str | None) -> None:
        """By default high alerts throttle, critical alerts block, lower ones do nothing."""
        action = WebhookPolicy().action_for(level)
        assert (action.kind if action else None) == kind

    def test_level_above_the_highest_configured_uses_it(self) -> None:
        """With only 'moderate' configured, a critical alert gets the moderate action."""
        policy = WebhookPolicy(actions=parse_actions("moderate=throttle:5:60"))
        assert policy.action_for("critical") == Action("throttle", 60, 5)


class TestCooldownAndAllowlist:
    """Who gets throttled, and how often."""

    def test_allowlisted_client_is_never_throttled(self) -> None:
        """A client on the allowlist gets no action even at critical."""
        engine, _ = _engine(allowlist=frozenset({"partner"}))
        decision = engine.decide("partner", "critical", "a1")
        assert (decision.action, decision.reason) == (None, "allowlisted")

    def test_cooldown_suppresses_repeats_then_expires(self) -> None:
        """A repeat inside the cooldown is skipped; after it, the client is throttled again."""
        engine, clock = _engine(cooldown_seconds=600)
        assert engine.decide("c", "high", "a1").action is not None
        clock.now += 599
        assert engine.decide("c", "high", "a2").reason == "cooldown"
        clock.now += 2
        assert engine.decide("c", "high", "a3").action is not None

    def test_escalation_passes_the_cooldown(self) -> None:
        """A block after a throttle is sent at once; a throttle after a block is not."""
        engine, clock = _engine(cooldown_seconds=600)
        assert engine.decide("c", "high", "a1").action == Action("throttle", 3600, 10)
        clock.now += 1
        assert engine.decide("c", "critical", "a2").action == Action("block", 86400)
        clock.now += 1
        assert engine.decide("c", "high", "a3").reason == "cooldown"

    def test_same_alert_again_is_allowed(self) -> None:
        """A redelivered input (same alert id) is not swallowed by the cooldown."""
        engine, _ = _engine(cooldown_seconds=600)
        engine.decide("c", "high", "a1")
        assert engine.decide("c", "high", "a1").action is not None

    def test_cooldowns_are_per_client(self) -> None:
        """One client's cooldown does not affect another client."""
        engine, _ = _engine()
        engine.decide("c1", "high", "a1")
        assert engine.decide("c2", "high", "a2").action is not None

    def test_memory_is_bounded(self) -> None:
        """Tracking many clients never keeps more than max_tracked_clients entries."""
        engine, clock = _engine(max_tracked_clients=100, cooldown_seconds=10_000)
        for n in range(1000):
            clock.now += 0.001
            engine.decide(f"c{n}", "high", f"a{n}")
        assert engine.tracked_clients == 100

    def test_expired_entries_are_dropped(self) -> None:
        """Entries older than the cooldown are forgotten."""
        engine, clock = _engine(cooldown_seconds=10)
        for n in range(50):
            engine.decide(f"c{n}", "high", f"a{n}")
        clock.now += 11
        engine.decide("late", "high", "z")
        assert engine.tracked_clients == 1


class TestPayloadAndSettings:
    """The body and the configuration sources."""

    def test_block_payload(self) -> None:
        """A block action has a ttl and no rate; the body carries the documented fields."""
        doc = {
            "@timestamp": "2025-01-01T00:00:00Z",
            "event": {"id": "a9", "risk_score_norm": 93.5},
            "user": {"id": "c9"},
            "source": {"ip": "192.0.2.1"},
            "clonewatch": {"model_id": "m", "risk_level": "critical", "campaign_id": "k1",
                           "signals": [{"name": "s", "value": 1.0, "score": 50.0}]},
        }  # fmt: skip
        body = build_payload(doc, Action("block", 600), "2025-01-01T00:00:01Z")
        assert body["type"] == "clonewatch.client.action_recommended"
        data = body["data"]
        assert data["action"] == {"type": "block", "ttl_seconds": 600}
        assert (data["client"], data["risk_score"], data["campaign_id"]) == ("c9", 93.5, "k1")
        assert data["source_ip"] == "192.0.2.1"
        assert data["reasons"] == [{"signal": "s", "value": 1.0, "score": 50.0}]

    def test_secret_is_required_and_checked(self) -> None:
        """A missing or malformed secret is refused."""
        with pytest.raises(ValueError, match="secret is required"):
            WebhookConfig.from_env({"CLONEWATCH_WEBHOOK_URL": "http://x"})
        with pytest.raises(ValueError, match="base64"):
            WebhookConfig.from_env(
                {"CLONEWATCH_WEBHOOK_URL": "http://x", "CLONEWATCH_WEBHOOK_SECRET": "whsec_$$"}
            )
