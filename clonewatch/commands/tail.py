"""``clonewatch tail alerts|risk|dead-letter``: print records from an output topic."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clonewatch.cli import CommandError
from clonewatch.commands.produce import (
    add_connect_timeout,
    add_connection_arguments,
    kafka_failure,
    load_settings,
    require_broker,
)
from streams.kafka_io import tail_records


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tail`` sub-command."""
    p = subparsers.add_parser("tail", help="print alerts, risk scores or dead letters")
    p.add_argument("what", choices=("alerts", "risk", "dead-letter"))
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    p.add_argument("--max", type=int, default=None, help="stop after N records")
    p.add_argument("--timeout", type=float, default=None, help="stop after N idle seconds")
    p.add_argument("--json", action="store_true", help="print the raw JSON records, one a line")
    add_connection_arguments(p)
    add_connect_timeout(p)
    p.set_defaults(func=run)


def _s(doc: dict[str, Any], *path: str) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def format_record(what: str, doc: dict[str, Any]) -> str:
    """One readable line for a record.

    >>> format_record("dead-letter", {"received_at": "T", "reason": "not JSON", "raw": "x"})
    "T  not JSON  raw='x'"
    """
    if what == "alerts":
        return (
            f"{doc.get('@timestamp')}  {str(_s(doc, 'clonewatch', 'risk_level')).upper():8}  "
            f"client={_s(doc, 'user', 'id')}  model={_s(doc, 'clonewatch', 'model_id')}  "
            f"risk={_s(doc, 'event', 'risk_score')}  {doc.get('message', '')}"
        )
    if what == "risk":
        return (
            f"{doc.get('@timestamp')}  client={_s(doc, 'user', 'id')}  "
            f"model={_s(doc, 'clonewatch', 'model_id')}  "
            f"risk={_s(doc, 'user', 'risk', 'calculated_score_norm')}  "
            f"level={_s(doc, 'user', 'risk', 'calculated_level')}  "
            f"queries={_s(doc, 'clonewatch', 'queries_observed')}"
        )
    raw = str(doc.get("raw", ""))
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    return f"{doc.get('received_at')}  {doc.get('reason')}  raw={shown!r}"


def run(args: argparse.Namespace) -> int:
    """Print records until --max, --timeout or Ctrl-C."""
    settings = load_settings(args)
    topic = {
        "alerts": settings.topic_alerts,
        "risk": settings.topic_risk,
        "dead-letter": settings.topic_dead_letter,
    }[args.what]
    require_broker(settings, args.connect_timeout)
    try:
        for rec in tail_records(
            settings,
            topic,
            from_beginning=args.from_beginning,
            max_records=args.max,
            idle_timeout=args.timeout,
        ):
            value: bytes = rec.value or b""
            if args.json:
                sys.stdout.write(value.decode("utf-8", "replace") + "\n")
            else:
                try:
                    doc = json.loads(value)
                except ValueError:
                    doc = {"raw": value.decode("utf-8", "replace")}
                sys.stdout.write(format_record(args.what, doc) + "\n")
            sys.stdout.flush()
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    except Exception as exc:
        failure = kafka_failure(settings, exc)
        if failure is None:
            raise
        raise failure from exc
    return 0
