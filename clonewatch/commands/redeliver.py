"""``clonewatch redeliver``: send dead-lettered webhooks (and HEC events) again.

Each entry is re-sent once (with the configured retries); what succeeds is removed from
the file, what fails stays with its new error. Webhooks are re-signed with a fresh
timestamp under the same ``webhook-id`` (the receiver's idempotency key). Exit 0 when the
file is empty afterwards, 1 when something is still failing.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import structlog

from clonewatch.cli import CommandError
from streams.sinks.http_delivery import (
    DeadLetterFile,
    HttpResult,
    RetryPolicy,
    deliver_with_retries,
    post,
    read_secret,
    ssl_context,
    utc_now_iso,
)
from streams.sinks.webhook_verify import sign

log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``redeliver`` sub-command."""
    parser = subparsers.add_parser(
        "redeliver",
        help="send dead-lettered webhooks or HEC events again",
        description="Send every entry of a dead-letter JSONL file again and remove those "
        "that succeed. Webhook secrets come from --secret-file or CLONEWATCH_WEBHOOK_SECRET; "
        "the HEC token from --hec-token-file or CLONEWATCH_HEC_TOKEN.",
    )
    parser.add_argument(
        "dead_letter",
        nargs="?",
        default=None,
        metavar="DEAD_LETTER",
        help="the JSONL file (default CLONEWATCH_WEBHOOK_DEAD_LETTER or "
        "clonewatch-webhook-deadletter.jsonl)",
    )
    parser.add_argument("--secret-file", help="file holding the whsec_... secret(s)")
    parser.add_argument("--hec-token-file", help="file holding the Splunk HEC token")
    parser.add_argument("--url", help="send to this URL instead of the one recorded")
    parser.add_argument("--max-attempts", type=int, default=3, help="attempts per entry")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--ca-file", help="CA bundle for https endpoints")
    parser.add_argument(
        "--backoff-base", type=float, default=0.5, help="full-jitter base delay in seconds"
    )
    parser.set_defaults(func=run)


class _Redeliverer:
    def __init__(self, args: argparse.Namespace) -> None:
        try:
            secret = read_secret(
                os.environ.get("CLONEWATCH_WEBHOOK_SECRET"), args.secret_file, "webhook secret"
            )
            token = read_secret(
                os.environ.get("CLONEWATCH_HEC_TOKEN"), args.hec_token_file, "HEC token"
            )
        except ValueError as exc:
            raise CommandError(str(exc), 2) from exc
        self.secrets = tuple((secret or "").split())
        self.token = token
        self.url: str | None = args.url
        self.timeout: float = args.timeout
        self.context = ssl_context(args.ca_file, True)
        self.policy = RetryPolicy(
            max_attempts=args.max_attempts, base_delay=args.backoff_base, max_delay=30.0
        )
        self.delivered = 0

    def _attempt(self, entry: dict[str, Any], url: str, body: bytes) -> HttpResult:
        headers = {str(k): str(v) for k, v in dict(entry.get("headers") or {}).items()}
        kind = entry.get("sink", "webhook")
        if kind == "webhook":
            msg_id = headers.get("webhook-id")
            if not msg_id:
                return HttpResult(status=0, error="entry has no webhook-id")
            headers.update(sign(body, self.secrets, msg_id=msg_id, timestamp=int(time.time())))
        elif kind == "hec":
            headers["Authorization"] = f"Splunk {self.token}"
        context = self.context if url.startswith("https://") else None
        return post(url, body, headers, timeout=self.timeout, context=context)

    def __call__(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        kind = entry.get("sink", "webhook")
        if kind == "webhook" and not self.secrets:
            raise CommandError(
                "webhook entries need the secret: --secret-file or CLONEWATCH_WEBHOOK_SECRET", 2
            )
        if kind == "hec" and not self.token:
            raise CommandError(
                "HEC entries need the token: --hec-token-file or CLONEWATCH_HEC_TOKEN", 2
            )
        if kind not in ("webhook", "hec"):
            raise CommandError(f"unknown dead-letter entry kind {kind!r}", 2)
        url = self.url or str(entry.get("url", ""))
        body = str(entry.get("body", "")).encode("utf-8")
        result, attempts = deliver_with_retries(
            lambda: self._attempt(entry, url, body), self.policy, sleep=time.sleep
        )
        if result.ok:
            self.delivered += 1
            log.info(
                "redelivered", sink=kind, webhook_id=entry.get("headers", {}).get("webhook-id")
            )
            return None
        updated = dict(entry)
        updated["error"] = result.describe()
        updated["status"] = result.status
        updated["attempts"] = int(entry.get("attempts", 0)) + attempts
        updated["last_attempt_at"] = utc_now_iso()
        return updated


def run(args: argparse.Namespace) -> int:
    """Redeliver and report how many entries were sent and how many remain."""
    path = (
        args.dead_letter
        or os.environ.get("CLONEWATCH_WEBHOOK_DEAD_LETTER")
        or "clonewatch-webhook-deadletter.jsonl"
    )
    dead_letter = DeadLetterFile(path)
    if not dead_letter.path.exists():
        if args.dead_letter is not None:  # a file the user named: a mistake, not an empty spool
            raise CommandError(f"cannot read {path}: no such file", 1)
        print(f"{path}: nothing to redeliver")
        return 0
    if not dead_letter.path.is_file():
        raise CommandError(f"cannot read {path}: not a regular file", 1)
    redeliver = _Redeliverer(args)
    try:
        removed, kept = dead_letter.process(redeliver)
    except (OSError, ValueError) as exc:  # unreadable, or a line that is not a JSON object
        raise CommandError(str(exc), 1) from exc
    print(f"{path}: redelivered {removed}, still failing {kept}")
    return 0 if kept == 0 else 1
