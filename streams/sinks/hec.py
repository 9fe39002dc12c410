"""Splunk HTTP Event Collector: batched JSON events, success checked on every response.

``POST <url>/services/collector/event`` with ``Authorization: Splunk <token>`` and a body
of concatenated ``{"time", "host", "source", "sourcetype", "index", "event", "fields"}``
objects. Splunk answers ``{"text": "Success", "code": 0}``; anything else is a failure:
429, 503 (``Server is busy``) and other 5xx are retried with full jitter; 401/403 (token)
raise at once; a 400 (bad data) sends the batch again one event at a time so that only the
events Splunk rejects go to the dead-letter file.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from streams.sinks.base import OutputRecord, SinkError
from streams.sinks.cef import epoch_millis
from streams.sinks.http_delivery import (
    DeadLetterFile,
    HttpResult,
    RetryPolicy,
    deliver_with_retries,
    env_bool,
    env_float,
    env_int,
    env_str,
    post,
    read_secret,
    ssl_context,
    utc_now_iso,
)

log = structlog.get_logger(__name__)

EVENT_PATH = "/services/collector/event"


@dataclass(frozen=True)
class HecConfig:
    """Settings of the Splunk HEC sink (see docs/siem-webhook.md for each variable)."""

    url: str
    token: str = field(repr=False)
    index: str | None = None
    source: str = "clonewatch"
    sourcetype_alert: str = "clonewatch:alert"
    sourcetype_risk: str = "clonewatch:risk"
    host: str | None = None
    kinds: frozenset[str] = frozenset({"alert", "risk"})
    channel: str | None = None
    ca_file: str | None = None
    tls_verify: bool = True
    timeout: float = 10.0
    batch_size: int = 100
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dead_letter_path: str = "clonewatch-hec-deadletter.jsonl"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"HEC url must be http(s), got {self.url!r}")
        if not self.token:
            raise ValueError("a HEC token is required (CLONEWATCH_HEC_TOKEN or a token file)")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    @property
    def endpoint(self) -> str:
        """The event endpoint (the URL may be the server root or the endpoint itself)."""
        base = self.url.rstrip("/")
        return base if base.endswith(EVENT_PATH) else base + EVENT_PATH

    def auth_headers(self) -> dict[str, str]:
        """The headers that carry the token (never stored in dead letters or logs)."""
        return {"Authorization": f"Splunk {self.token}"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> HecConfig:
        """Build from ``CLONEWATCH_HEC_*`` variables; keyword overrides (not None) win."""
        env = os.environ if env is None else env
        url = overrides.pop("url", None) or env_str(env, "CLONEWATCH_HEC_URL")
        if not url:
            raise ValueError("the HEC sink needs a URL (CLONEWATCH_HEC_URL or --hec-url)")
        token = read_secret(
            env_str(env, "CLONEWATCH_HEC_TOKEN"),
            overrides.pop("token_file", None) or env_str(env, "CLONEWATCH_HEC_TOKEN_FILE"),
            "HEC token",
        )
        kinds_text = overrides.pop("kinds", None) or env_str(env, "CLONEWATCH_HEC_KINDS")
        values: dict[str, Any] = {
            "url": url,
            "token": token or "",
            "index": env_str(env, "CLONEWATCH_HEC_INDEX"),
            "source": env_str(env, "CLONEWATCH_HEC_SOURCE") or "clonewatch",
            "host": env_str(env, "CLONEWATCH_HEC_HOST"),
            "channel": env_str(env, "CLONEWATCH_HEC_CHANNEL"),
            "ca_file": env_str(env, "CLONEWATCH_HEC_CA_FILE"),
            "tls_verify": env_bool(env, "CLONEWATCH_HEC_TLS_VERIFY", True),
            "timeout": env_float(env, "CLONEWATCH_HEC_TIMEOUT", 10.0),
            "batch_size": env_int(env, "CLONEWATCH_HEC_BATCH_SIZE", 100),
            "retry": RetryPolicy(
                max_attempts=env_int(env, "CLONEWATCH_HEC_MAX_ATTEMPTS", 5),
                base_delay=env_float(env, "CLONEWATCH_HEC_BACKOFF_BASE", 0.5),
                max_delay=env_float(env, "CLONEWATCH_HEC_BACKOFF_CAP", 30.0),
                retry_after_cap=env_float(env, "CLONEWATCH_HEC_RETRY_AFTER_CAP", 300.0),
            ),
            "dead_letter_path": env_str(env, "CLONEWATCH_HEC_DEAD_LETTER")
            or "clonewatch-hec-deadletter.jsonl",
        }
        if kinds_text:
            values["kinds"] = frozenset(k.strip() for k in kinds_text.split(",") if k.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def build_hec_sink(
    config: HecConfig | None = None, *, env: Mapping[str, str] | None = None
) -> HecSink:
    """The HEC sink from a config, or from the environment (``HecConfig.from_env``).

    The command-line flags that override the environment are added and read in
    ``clonewatch/commands/sink_options.py``.
    """
    return HecSink(config if config is not None else HecConfig.from_env(env))


def hec_success(result: HttpResult) -> bool:
    """Splunk's own verdict: HTTP 200 with ``{"text": "Success", "code": 0}``."""
    if result.status != 200:
        return False
    try:
        answer = json.loads(result.body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(answer, dict) and answer.get("code") == 0


class HecSink:
    """A :class:`~streams.sinks.base.Sink` sending alerts and risk scores to Splunk HEC."""

    name = "hec"

    def __init__(self, config: HecConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._buffer: list[bytes] = []
        self._host = config.host or socket.gethostname()
        self._context = (
            ssl_context(config.ca_file, config.tls_verify)
            if config.url.startswith("https://")
            else None
        )
        self.dead_letter = DeadLetterFile(config.dead_letter_path)
        self.sent = 0
        self.dead_lettered = 0

    def event(self, record: OutputRecord) -> dict[str, Any]:
        """The HEC event object of a record."""
        doc = record.doc
        ctx = doc.get("clonewatch", {})
        user = doc.get("user", {})
        level = ctx.get("risk_level") or user.get("risk", {}).get("calculated_level")
        fields = {
            "clonewatch_kind": record.kind,
            "client": str(user.get("id", "")),
            "model": str(ctx.get("model_id", "")),
            "risk_level": str(level or "none"),
        }
        out: dict[str, Any] = {
            "host": self._host,
            "source": self.config.source,
            "sourcetype": (
                self.config.sourcetype_alert
                if record.kind == "alert"
                else self.config.sourcetype_risk
            ),
            "event": doc,
            "fields": fields,
        }
        if "@timestamp" in doc:
            out["time"] = epoch_millis(str(doc["@timestamp"])) / 1000
        if self.config.index:
            out["index"] = self.config.index
        return out

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "clonewatch-hec/1"}
        if self.config.channel:
            headers["X-Splunk-Request-Channel"] = self.config.channel
        return headers

    def _post(self, body: bytes) -> HttpResult:
        headers = {**self._headers(), **self.config.auth_headers()}
        result = post(
            self.config.endpoint, body, headers, timeout=self.config.timeout, context=self._context
        )
        if result.status == 200 and not hec_success(result):
            # A 200 whose body is not Splunk's success: treat as a server fault and retry.
            return HttpResult(status=502, body=result.body, headers=result.headers)
        return result

    def send(self, events: list[bytes]) -> tuple[HttpResult, int]:
        """POST events as one request with retries; the last result and the attempts made."""

        def on_retry(attempt: int, result: HttpResult, delay: float) -> None:
            log.warning("hec_retry", attempt=attempt, error=result.describe(), sleep_s=delay)

        return deliver_with_retries(
            lambda: self._post(b"\n".join(events)),
            self.config.retry,
            sleep=self._sleep,
            on_retry=on_retry,
        )

    def setup(self) -> None:
        """Check the dead-letter directory is writable (HEC has no cheap authenticated probe)."""
        parent = self.dead_letter.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK):
            raise SinkError(f"dead-letter directory {parent} is not writable")

    def write(self, records: Sequence[OutputRecord]) -> None:
        """Buffer the records of the configured kinds; flush a full batch."""
        for record in records:
            if record.kind not in self.config.kinds:
                continue
            self._buffer.append(
                json.dumps(self.event(record), separators=(",", ":"), ensure_ascii=False).encode()
            )
            if len(self._buffer) >= self.config.batch_size:
                self.flush()

    def flush(self) -> None:
        """Send every buffered event in batches; raise SinkError if Splunk stays unavailable."""
        while self._buffer:
            batch = self._buffer[: self.config.batch_size]
            result, attempts = self.send(batch)
            if hec_success(result):
                self.sent += len(batch)
                del self._buffer[: len(batch)]
                continue
            if result.status in (401, 403):
                raise SinkError(f"Splunk HEC refused the token: {result.describe()}")
            if result.retryable:
                raise SinkError(
                    f"Splunk HEC unavailable after {attempts} attempts: {result.describe()}"
                )
            # A data error (400 and similar): find the events Splunk rejects, one at a time.
            self._isolate(batch)
            del self._buffer[: len(batch)]

    def _isolate(self, batch: list[bytes]) -> None:
        rejected: list[dict[str, Any]] = []
        for event in batch:
            result, attempts = self.send([event])
            if hec_success(result):
                self.sent += 1
                continue
            if result.retryable or result.status in (401, 403):
                raise SinkError(
                    f"Splunk HEC failed while isolating a bad event: {result.describe()}"
                )
            rejected.append(
                {
                    "sink": "hec",
                    "url": self.config.endpoint,
                    "headers": self._headers(),
                    "body": event.decode("utf-8"),
                    "error": result.describe(),
                    "status": result.status,
                    "attempts": attempts,
                    "last_attempt_at": utc_now_iso(),
                }
            )
        try:
            self.dead_letter.append(rejected)
        except OSError as exc:
            raise SinkError(f"cannot write the HEC dead letter: {exc}") from exc
        self.dead_lettered += len(rejected)
        if rejected:
            log.error("hec_rejected", count=len(rejected), path=str(self.dead_letter.path))

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()
