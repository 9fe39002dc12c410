"""The throttle webhook: a signed recommendation to the API gateway to slow or block a client.

For every alert the policy decides an action (by level), skips allowlisted clients and
clients still in their cooldown, and the sink POSTs a Standard Webhooks request::

    webhook-id: msg_<alert id>          (the idempotency key: retries and redeliveries reuse it)
    webhook-timestamp: <unix seconds>   (of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">

Failed deliveries are retried with full jitter, honouring ``Retry-After``; after
``max_attempts`` the body, headers and last error go to a dead-letter JSONL file from
which ``clonewatch redeliver`` sends them again (re-signed with a fresh timestamp).
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from schemas.alert import LEVEL_ORDER, RiskLevel
from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.http_delivery import (
    DeadLetterFile,
    HttpResult,
    RetryPolicy,
    deliver_with_retries,
    env_float,
    env_int,
    env_str,
    post,
    read_secret,
    ssl_context,
    utc_now_iso,
)
from streams.sinks.webhook_verify import decode_secret, sign

log = structlog.get_logger(__name__)

EVENT_TYPE = "clonewatch.client.action_recommended"
ActionKind = Literal["throttle", "block"]
_ACTION_RANK: dict[str, int] = {"throttle": 1, "block": 2}
_LEVELS: tuple[RiskLevel, ...] = ("none", "low", "moderate", "high", "critical")


@dataclass(frozen=True, slots=True)
class Action:
    """What the gateway should do: throttle to ``rate_per_minute`` or block, for ``ttl_seconds``."""

    kind: ActionKind
    ttl_seconds: int
    rate_per_minute: int | None = None

    def __post_init__(self) -> None:
        if self.ttl_seconds <= 0:
            raise ValueError("an action needs a positive ttl")
        if self.kind == "throttle" and (self.rate_per_minute is None or self.rate_per_minute < 0):
            raise ValueError("a throttle needs a rate (requests per minute, 0 or more)")

    @classmethod
    def parse(cls, text: str) -> Action:
        """``throttle:<requests per minute>:<ttl seconds>`` or ``block:<ttl seconds>``.

        >>> Action.parse("throttle:10:3600")
        Action(kind='throttle', ttl_seconds=3600, rate_per_minute=10)
        >>> Action.parse("block:86400")
        Action(kind='block', ttl_seconds=86400, rate_per_minute=None)
        """
        parts = text.strip().split(":")
        try:
            if parts[0] == "throttle" and len(parts) == 3:
                return cls("throttle", ttl_seconds=int(parts[2]), rate_per_minute=int(parts[1]))
            if parts[0] == "block" and len(parts) == 2:
                return cls("block", ttl_seconds=int(parts[1]))
        except ValueError as exc:
            raise ValueError(f"bad action {text!r}: {exc}") from exc
        raise ValueError(f"bad action {text!r}: use throttle:RATE_PER_MIN:TTL_S or block:TTL_S")

    def to_dict(self) -> dict[str, Any]:
        """The ``action`` object of the payload."""
        out: dict[str, Any] = {"type": self.kind, "ttl_seconds": self.ttl_seconds}
        if self.kind == "throttle":
            out["rate"] = {"requests": self.rate_per_minute, "per_seconds": 60}
        return out


def parse_actions(text: str) -> dict[RiskLevel, Action]:
    """``LEVEL=ACTION,...``, e.g. ``high=throttle:10:3600,critical=block:86400``."""
    actions: dict[RiskLevel, Action] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        level, sep, action = item.partition("=")
        level = level.strip()
        if not sep or level not in _LEVELS:
            raise ValueError(f"bad level action {item!r}: use LEVEL=ACTION with LEVEL in {_LEVELS}")
        actions[level] = Action.parse(action)
    return actions


DEFAULT_ACTIONS: dict[RiskLevel, Action] = {
    "high": Action("throttle", ttl_seconds=3600, rate_per_minute=10),
    "critical": Action("block", ttl_seconds=86400),
}


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Which level triggers which action, the per-client cooldown and the allowlist.

    A level without an action, and levels below it, trigger nothing; a level above the
    highest configured one uses the action of the nearest configured level below it.
    """

    actions: Mapping[RiskLevel, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    cooldown_seconds: float = 900.0
    allowlist: frozenset[str] = frozenset()
    max_tracked_clients: int = 100_000

    def action_for(self, level: str) -> Action | None:
        """The action for an alert level, if any."""
        rank = LEVEL_ORDER.get(level, 0)  # type: ignore[call-overload]
        best: Action | None = None
        best_rank = -1
        for lvl, action in self.actions.items():
            lrank = LEVEL_ORDER[lvl]
            if best_rank < lrank <= rank:
                best, best_rank = action, lrank
        return best


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one alert: an action, or the reason for none."""

    action: Action | None
    reason: str


class PolicyEngine:
    """Applies a :class:`WebhookPolicy` with a bounded per-client memory of recent actions."""

    def __init__(self, policy: WebhookPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        # client -> (time of the last action, its rank, the alert id that caused it)
        self._recent: OrderedDict[str, tuple[float, int, str]] = OrderedDict()

    @property
    def tracked_clients(self) -> int:
        """How many clients are remembered (bounded by ``max_tracked_clients``)."""
        return len(self._recent)

    def decide(self, client: str, level: str, alert_id: str) -> Decision:
        """Decide for one alert and remember the action for the cooldown.

        An escalation (block after throttle) passes the cooldown; the same alert seen again
        (a redelivered input) is allowed again, since its webhook-id makes it idempotent.
        """
        if client in self.policy.allowlist:
            return Decision(None, "allowlisted")
        action = self.policy.action_for(level)
        if action is None:
            return Decision(None, f"no action for level {level}")
        now = self._clock()
        rank = _ACTION_RANK[action.kind]
        last = self._recent.get(client)
        if (
            last is not None
            and now - last[0] < self.policy.cooldown_seconds
            and rank <= last[1]
            and alert_id != last[2]
        ):
            return Decision(None, "cooldown")
        self._recent[client] = (now, rank, alert_id)
        self._recent.move_to_end(client)
        self._evict(now)
        return Decision(action, "policy")

    def _evict(self, now: float) -> None:
        while self._recent:
            client, (then, _, _) = next(iter(self._recent.items()))
            expired = now - then >= self.policy.cooldown_seconds
            if not expired and len(self._recent) <= self.policy.max_tracked_clients:
                break
            del self._recent[client]


def build_payload(doc: Mapping[str, Any], action: Action, now_iso: str) -> dict[str, Any]:
    """The JSON body for an alert's wire document and the chosen action."""
    ctx = doc.get("clonewatch", {})
    event = doc.get("event", {})
    reasons = [
        {"signal": s.get("name"), "value": s.get("value"), "score": s.get("score")}
        for s in ctx.get("signals", [])
        if isinstance(s, Mapping)
    ]
    data: dict[str, Any] = {
        "client": doc.get("user", {}).get("id"),
        "model": ctx.get("model_id"),
        "risk_score": event.get("risk_score_norm", event.get("risk_score")),
        "risk_level": ctx.get("risk_level"),
        "action": action.to_dict(),
        "alert_id": event.get("id"),
        "alert_timestamp": doc.get("@timestamp"),
        "reasons": reasons,
        "message": doc.get("message"),
        "rule": {"id": doc.get("rule", {}).get("id"), "name": doc.get("rule", {}).get("name")},
    }
    source_ip = doc.get("source", {}).get("ip")
    if source_ip:
        data["source_ip"] = source_ip
    if ctx.get("campaign_id"):
        data["campaign_id"] = ctx["campaign_id"]
    return {"type": EVENT_TYPE, "timestamp": now_iso, "data": data}


@dataclass(frozen=True)
class WebhookConfig:
    """Settings of the throttle webhook (see docs/siem-webhook.md for each variable)."""

    url: str
    secrets: tuple[str, ...] = field(repr=False)
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 10.0
    dead_letter_path: str = "clonewatch-webhook-deadletter.jsonl"
    ca_file: str | None = None
    tls_verify: bool = True

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {self.url!r}")
        if not self.secrets:
            raise ValueError(
                "a webhook secret is required (CLONEWATCH_WEBHOOK_SECRET or --webhook-secret-file)"
            )
        for secret in self.secrets:
            decode_secret(secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WebhookConfig:
        """Build from ``CLONEWATCH_WEBHOOK_*`` variables; keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        url = overrides.pop("url", None) or env_str(env, "CLONEWATCH_WEBHOOK_URL")
        if not url:
            raise ValueError("the webhook needs a URL (CLONEWATCH_WEBHOOK_URL or --webhook-url)")
        values["url"] = url
        secret_text = read_secret(
            overrides.pop("secret", None) or env_str(env, "CLONEWATCH_WEBHOOK_SECRET"),
            overrides.pop("secret_file", None) or env_str(env, "CLONEWATCH_WEBHOOK_SECRET_FILE"),
            "webhook secret",
        )
        values["secrets"] = tuple((secret_text or "").split())
        actions_text = overrides.pop("actions", None) or env_str(env, "CLONEWATCH_WEBHOOK_ACTIONS")
        allow_text = overrides.pop("allowlist", None) or env_str(
            env, "CLONEWATCH_WEBHOOK_ALLOWLIST", ""
        )
        cooldown = overrides.pop("cooldown", None)
        values["policy"] = WebhookPolicy(
            actions=parse_actions(actions_text) if actions_text else dict(DEFAULT_ACTIONS),
            cooldown_seconds=(
                cooldown
                if cooldown is not None
                else env_float(env, "CLONEWATCH_WEBHOOK_COOLDOWN", 900.0)
            ),
            allowlist=frozenset(c.strip() for c in (allow_text or "").split(",") if c.strip()),
            max_tracked_clients=env_int(env, "CLONEWATCH_WEBHOOK_MAX_TRACKED_CLIENTS", 100_000),
        )
        values["retry"] = RetryPolicy(
            max_attempts=overrides.pop("max_attempts", None)
            or env_int(env, "CLONEWATCH_WEBHOOK_MAX_ATTEMPTS", 5),
            base_delay=env_float(env, "CLONEWATCH_WEBHOOK_BACKOFF_BASE", 0.5),
            max_delay=env_float(env, "CLONEWATCH_WEBHOOK_BACKOFF_CAP", 30.0),
            retry_after_cap=env_float(env, "CLONEWATCH_WEBHOOK_RETRY_AFTER_CAP", 300.0),
        )
        values["timeout"] = overrides.pop("timeout", None) or env_float(
            env, "CLONEWATCH_WEBHOOK_TIMEOUT", 10.0
        )
        values["dead_letter_path"] = (
            overrides.pop("dead_letter", None)
            or env_str(env, "CLONEWATCH_WEBHOOK_DEAD_LETTER")
            or "clonewatch-webhook-deadletter.jsonl"
        )
        values["ca_file"] = overrides.pop("ca_file", None) or env_str(
            env, "CLONEWATCH_WEBHOOK_CA_FILE"
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def build_webhook_sink(
    config: WebhookConfig | None = None, *, env: Mapping[str, str] | None = None
) -> WebhookSink:
    """The webhook sink from a config, or from the environment (``WebhookConfig.from_env``).

    The command-line flags that override the environment are added and read in
    ``clonewatch/commands/sink_options.py``.
    """
    return WebhookSink(config if config is not None else WebhookConfig.from_env(env))


@dataclass
class _Pending:
    msg_id: str
    body: bytes
    client: str
    first_attempt_at: str = field(default_factory=utc_now_iso)


class WebhookSink:
    """A :class:`~streams.sinks.base.Sink` sending throttle recommendations for alerts."""

    name = "webhook"

    def __init__(
        self,
        config: WebhookConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_buffer: int = 1000,
    ) -> None:
        self.config = config
        self.engine = PolicyEngine(config.policy, clock)
        self.dead_letter = DeadLetterFile(config.dead_letter_path)
        self._sleep = sleep
        self._wall = wall_clock
        self._max_buffer = max_buffer
        self._pending: list[_Pending] = []
        self._context = (
            ssl_context(config.ca_file, config.tls_verify)
            if config.url.startswith("https://")
            else None
        )
        self.delivered = 0
        self.dead_lettered = 0

    def setup(self) -> None:
        """Check the dead-letter location is writable (the gateway is not probed)."""
        parent = self.dead_letter.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK):
            raise SinkError(f"dead-letter directory {parent} is not writable")

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Apply the policy to each alert and queue a webhook where it says so."""
        for record in records:
            if record.kind != "alert":
                continue
            doc = record.doc
            client = str(doc.get("user", {}).get("id", ""))
            level = str(doc.get("clonewatch", {}).get("risk_level", "none"))
            alert_id = str(doc.get("event", {}).get("id") or record.id)
            decision = self.engine.decide(client, level, alert_id)
            if decision.action is None:
                log.debug("webhook_skipped", alert_id=alert_id, reason=decision.reason)
                continue
            payload = build_payload(doc, decision.action, utc_now_iso())
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            self._pending.append(_Pending(msg_id=f"msg_{alert_id}", body=body, client=client))
            if len(self._pending) >= self._max_buffer:
                self.flush()

    def _send(self, msg_id: str, body: bytes) -> HttpResult:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "clonewatch-webhook/1",
            **sign(body, self.config.secrets, msg_id=msg_id, timestamp=int(self._wall())),
        }
        return post(
            self.config.url, body, headers, timeout=self.config.timeout, context=self._context
        )

    def deliver(self, msg_id: str, body: bytes) -> tuple[HttpResult, int]:
        """Send one signed body with retries; returns the last result and the attempts made."""

        def on_retry(attempt: int, result: HttpResult, delay: float) -> None:
            log.warning(
                "webhook_retry",
                msg_id=msg_id,
                attempt=attempt,
                error=result.describe(),
                sleep_s=round(delay, 3),
            )

        return deliver_with_retries(
            lambda: self._send(msg_id, body),
            self.config.retry,
            sleep=self._sleep,
            on_retry=on_retry,
        )

    def flush(self) -> None:
        """Deliver every queued webhook; what fails for good goes to the dead letter.

        Raises SinkError only when the dead letter itself cannot be written.
        """
        pending, self._pending = self._pending, []
        failed: list[dict[str, Any]] = []
        for item in pending:
            result, attempts = self.deliver(item.msg_id, item.body)
            if result.ok:
                self.delivered += 1
                log.info("webhook_delivered", msg_id=item.msg_id, attempts=attempts)
                continue
            log.error(
                "webhook_failed", msg_id=item.msg_id, attempts=attempts, error=result.describe()
            )
            failed.append(
                dead_letter_entry(
                    self.config.url,
                    msg_id=item.msg_id,
                    body=item.body,
                    result=result,
                    attempts=attempts,
                    first_attempt_at=item.first_attempt_at,
                )
            )
        try:
            self.dead_letter.append(failed)
        except OSError as exc:
            self._pending = pending  # nothing lost: the caller does not commit
            raise SinkError(f"cannot write the webhook dead letter: {exc}") from exc
        self.dead_lettered += len(failed)

    def close(self) -> None:
        """Flush what is queued."""
        self.flush()


def dead_letter_entry(
    url: str,
    *,
    msg_id: str,
    body: bytes,
    result: HttpResult,
    attempts: int,
    first_attempt_at: str,
) -> dict[str, Any]:
    """A dead-letter line: enough to send the webhook again (signature headers are renewed)."""
    return {
        "sink": "webhook",
        "url": url,
        "headers": {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
        },
        "body": body.decode("utf-8"),
        "error": result.describe(),
        "status": result.status,
        "attempts": attempts,
        "first_attempt_at": first_attempt_at,
        "last_attempt_at": utc_now_iso(),
    }
