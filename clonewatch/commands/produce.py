"""``clonewatch produce LOG [--topic T]``: send a QueryEvent log to Kafka.

Accepts the same inputs as ``replay`` (read by :mod:`streams.logread`: a file,
gzip by its magic bytes, ``-`` for stdin, a FIFO). Each line is sent as is,
keyed by its ``client_id``; a line that is not a JSON object with a string
``client_id`` is still sent, without a key, so that the worker dead-letters it
with a reason instead of the producer hiding it. A line over the size cap is
never read whole: its dead letter (first bytes and length) goes to the
dead-letter topic. Every send is confirmed by the broker (acks=all); the exit
code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from typing import Any

import structlog
from tqdm import tqdm

from clonewatch.cli import CommandError
from schemas.dead_letter import DeadLetter
from streams.kafka_io import ensure_topics, produce_lines
from streams.logread import OversizeLine, UnreadableInputError, read_log
from streams.settings import Settings, SettingsError

log = structlog.get_logger("clonewatch.produce")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by produce, tail and worker (they override settings and env)."""
    parser.add_argument("--config", help="TOML or JSON settings file (else $CLONEWATCH_CONFIG)")
    parser.add_argument("--bootstrap-servers", help="host:port[,host:port...]")


def quiet_client_logs() -> None:
    """Keep the Kafka clients' stdlib logs at WARNING unless DEBUG was asked for."""
    if logging.getLogger().level != logging.DEBUG:
        for name in ("kafka", "aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(logging.WARNING)


def load_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from --config, the environment and the given flags."""
    quiet_client_logs()
    try:
        return Settings.load(
            args.config, bootstrap_servers=getattr(args, "bootstrap_servers", None), **overrides
        )
    except SettingsError as exc:
        raise CommandError(str(exc), 2) from exc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``produce`` sub-command."""
    p = subparsers.add_parser("produce", help="send a QueryEvent log to the input topic")
    p.add_argument("log", help="JSONL log, .gz, or - for standard input")
    p.add_argument("--topic", help="destination topic (default: the input topic setting)")
    p.add_argument(
        "--no-create", action="store_true", help="do not create the topic when it is missing"
    )
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto")
    add_connection_arguments(p)
    p.set_defaults(func=run)


def messages(path: str) -> Iterator[bytes | DeadLetter]:
    """The log's lines to send, with a dead letter standing for each oversize one."""
    for number, line in read_log(path):
        if isinstance(line, OversizeLine):
            yield line.dead_letter(source=f"{path}:{number}")
        else:
            yield line


def run(args: argparse.Namespace) -> int:
    """Send the log; 0 when every message was confirmed."""
    settings = load_settings(args)
    topic = args.topic or settings.topic_queries
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        if not args.no_create:
            ensure_topics(settings, [topic])
        with tqdm(desc=f"produce {topic}", unit="msg", disable=not show, file=sys.stderr) as bar:
            result = produce_lines(
                settings,
                topic,
                messages(args.log),
                dead_letter_topic=settings.topic_dead_letter,
                on_delivered=bar.update,
            )
    except UnreadableInputError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot read {args.log}: {exc.strerror or exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("kafka"):
            raise CommandError(f"Kafka: {type(exc).__name__}: {exc}") from exc
        raise
    print(
        f"sent {result.sent} messages to {topic}: {result.delivered} confirmed, "
        f"{result.failed} failed ({result.unkeyed} without a client key)",
        file=sys.stderr,
    )
    if result.dead_lettered:
        print(
            f"  of these, {result.dead_lettered} oversize lines went as dead letters "
            f"to {settings.topic_dead_letter}",
            file=sys.stderr,
        )
    for err in result.errors:
        print(f"  {err}", file=sys.stderr)
    log.info("produced", topic=topic, sent=result.sent, failed=result.failed)
    return 1 if result.failed or result.delivered != result.sent else 0
