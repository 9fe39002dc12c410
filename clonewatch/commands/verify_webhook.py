"""``clonewatch verify-webhook``: check a received webhook's Standard Webhooks signature.

Exit 0 and ``valid`` when it verifies; exit 1 with the reason when it does not; exit 2
when the inputs cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from clonewatch.cli import CommandError
from streams.sinks.webhook_verify import (
    DEFAULT_TOLERANCE,
    WebhookVerificationError,
    verify,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify-webhook`` sub-command."""
    parser = subparsers.add_parser(
        "verify-webhook",
        help="verify a received webhook's signature",
        description="Verify the Standard Webhooks signature of a received request body. "
        "The secret comes from --secret-file or CLONEWATCH_WEBHOOK_SECRET (several "
        "space-separated secrets are accepted during a key rotation).",
    )
    parser.add_argument("body", metavar="BODY_FILE", help="the raw request body, byte for byte")
    parser.add_argument(
        "--headers-file",
        required=True,
        help="the request headers: a JSON object, or 'Name: value' lines",
    )
    parser.add_argument("--secret-file", help="file holding the whsec_... secret(s)")
    parser.add_argument(
        "--tolerance",
        type=int,
        default=DEFAULT_TOLERANCE,
        help=f"accepted clock skew in seconds (default {DEFAULT_TOLERANCE})",
    )
    parser.add_argument(
        "--now", type=unix_time, default=None, help="verify as of this unix time (default: now)"
    )
    parser.set_defaults(func=run)


def unix_time(text: str) -> float:
    """A finite number of seconds (``--now``); NaN would skip the tolerance check.

    >>> unix_time("1700000000.5")
    1700000000.5
    >>> unix_time("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: not a finite unix time: 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite unix time: {text!r}")
    return value


def parse_headers(text: str) -> dict[str, str]:
    """Headers from a JSON object or from ``Name: value`` lines (a request line is skipped)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        data = json.loads(stripped)
        if not isinstance(data, dict):
            raise ValueError("the headers JSON must be an object")
        return {str(k): str(v) for k, v in data.items()}
    headers: dict[str, str] = {}
    for line in stripped.splitlines():
        name, sep, value = line.partition(":")
        if not sep or " " in name.strip():
            continue  # e.g. "POST /hook HTTP/1.1"
        headers[name.strip()] = value.strip()
    return headers


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read the {what} {path}: {exc.strerror}", 2) from exc


def run(args: argparse.Namespace) -> int:
    """Verify and report."""
    body = _read(args.body, "body file")
    try:
        headers = parse_headers(_read(args.headers_file, "headers file").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"unreadable headers file: {exc}", 2) from exc
    if args.secret_file:
        secret_text = _read(args.secret_file, "secret file").decode("utf-8", errors="replace")
    else:
        secret_text = os.environ.get("CLONEWATCH_WEBHOOK_SECRET", "")
    secrets = secret_text.split()
    if not secrets:
        raise CommandError("no secret: use --secret-file or CLONEWATCH_WEBHOOK_SECRET", 2)
    try:
        verify(body, headers, secrets, tolerance=args.tolerance, now=args.now)
    except WebhookVerificationError as exc:
        raise CommandError(f"invalid: {exc}", 1) from exc
    except ValueError as exc:  # a malformed secret
        raise CommandError(str(exc), 2) from exc
    print(f"valid: webhook-id {headers.get('webhook-id') or headers.get('Webhook-Id', '?')}")
    return 0
