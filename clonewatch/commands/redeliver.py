"""``clonewatch redeliver``: send dead-lettered webhooks, HEC events and search documents again.

Each entry is re-sent once (with the configured retries); what succeeds is removed from
the file, what fails stays with its new error. Webhooks are re-signed with a fresh
timestamp under the same ``webhook-id`` (the receiver's idempotency key). Search documents
(the sink spool of ``clonewatch replay``) are bulk-indexed again, per sink, URL and
namespace, under their deterministic ids: one already there is a 409, never a second copy.
Exit 0 when the file is empty afterwards, 1 when something is still failing.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import structlog

from clonewatch.cli import CommandError
from clonewatch.commands.sink_options import SEARCH_KINDS, search_sink
from streams.delivery import spool_record
from streams.sinks.base import OutputRecord, SinkError
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
from streams.sinks.search import Product
from streams.sinks.webhook_verify import sign

log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``redeliver`` sub-command."""
    parser = subparsers.add_parser(
        "redeliver",
        help="send dead-lettered webhooks, HEC events or spooled search documents again",
        description="Send every entry of a dead-letter JSONL file (or of replay's sink spool) "
        "again and remove those that succeed. Webhook secrets come from --secret-file or "
        "CLONEWATCH_WEBHOOK_SECRET; the HEC token from --hec-token-file or CLONEWATCH_HEC_TOKEN; "
        "search credentials from CLONEWATCH_ES_*.",
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
    parser.add_argument(
        "--url", help="send to this URL (endpoint or search cluster) instead of the one recorded"
    )
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


def _search_group(
    product: str, url: str, namespace: str, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Index one group's spooled documents again; return the entries still undelivered."""
    kind: Product = "elasticsearch" if product == "elasticsearch" else "opensearch"
    records: list[OutputRecord] = []
    for entry in entries:
        try:
            records.append(spool_record(entry))
        except ValueError as exc:
            raise CommandError(f"bad sink spool entry: {exc}", 1) from exc
    sink = search_sink(kind, url, namespace=namespace)
    undelivered: set[tuple[str, str]] = set()
    error = ""
    try:
        sink.setup()
        sink.write(records)
        sink.flush()
    except (SinkError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        undelivered = {(r.kind, r.id) for r in sink.take_undelivered()} or {
            (r.kind, r.id) for r in records
        }
    finally:
        sink.take_undelivered()  # what is kept stays in the file, not in a last flush
        sink.close()
    for dl in sink.drain_rejected():  # refused for good: kept, with the server's reason
        for r in records:
            if dl.reason.startswith(f"{kind} rejected {r.kind} {r.id} for "):
                undelivered.add((r.kind, r.id))
                error = dl.reason[:500]
    kept = []
    for entry, record in zip(entries, records, strict=True):
        if (record.kind, record.id) in undelivered:
            kept.append(
                {
                    **entry,
                    "error": error,
                    "attempts": int(entry.get("attempts", 0)) + 1,
                    "last_attempt_at": utc_now_iso(),
                }
            )
    log.info(
        "search_redelivered",
        sink=kind,
        namespace=namespace,
        delivered=len(entries) - len(kept),
        still_failing=len(kept),
    )
    return kept


def _all(redeliver: _Redeliverer, url: str | None) -> Any:
    """The handler of a whole file: search entries by group in bulk, the others one by one."""

    def handle(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        kept: list[dict[str, Any]] = []
        for entry in entries:
            sink = entry.get("sink", "webhook")
            if sink in SEARCH_KINDS:
                key = (str(sink), url or str(entry.get("url", "")), str(entry.get("namespace")))
                groups.setdefault(key, []).append(entry)
            elif (updated := redeliver(entry)) is not None:
                kept.append(updated)
        for (sink, target, namespace), group in groups.items():
            kept.extend(_search_group(sink, target, namespace, group))
        return kept

    return handle


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
        removed, kept = dead_letter.process_all(_all(redeliver, args.url))
    except (OSError, ValueError) as exc:  # unreadable, or a line that is not a JSON object
        raise CommandError(str(exc), 1) from exc
    print(f"{path}: redelivered {removed}, still failing {kept}")
    return 0 if kept == 0 else 1
