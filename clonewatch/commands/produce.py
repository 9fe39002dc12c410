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
import socket
import sys
import time
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


DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds to wait for a broker to accept a connection


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by produce, tail and worker (they override settings and env)."""
    parser.add_argument("--config", help="TOML or JSON settings file (else $CLONEWATCH_CONFIG)")
    parser.add_argument("--bootstrap-servers", help="host:port[,host:port...]")


def add_connect_timeout(parser: argparse.ArgumentParser) -> None:
    """``--connect-timeout``: how long produce and tail wait for a broker to answer."""
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up when no broker accepts a connection by then (default "
        f"{DEFAULT_CONNECT_TIMEOUT:.0f})",
    )


def _address(server: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``, or a host alone for port 9092) as a socket address.

    >>> _address("kafka:29092"), _address("[::1]:9092"), _address("broker")
    (('kafka', 29092), ('::1', 9092), ('broker', 9092))
    """
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        host, port = server, "9092"
    return host.strip("[]"), int(port)


def unreachable(settings: Settings, waited: float | None = None) -> str:
    """The one line saying no broker answered, which servers were tried and what to change."""
    servers = ",".join(settings.servers)
    after = f" within {waited:g} s" if waited is not None else ""
    return (
        f"no Kafka broker reachable at {servers}{after}: set CLONEWATCH_BOOTSTRAP_SERVERS "
        "or --bootstrap-servers (or bootstrap_servers in --config)"
    )


def require_broker(settings: Settings, timeout: float) -> None:
    """Return once a bootstrap server accepts a TCP connection; else raise CommandError.

    Tries every server in turn until ``timeout`` seconds have passed, so an
    unreachable cluster costs a bounded wait and one line, not the Kafka client's
    30 s bootstrap and its traceback.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        for server in settings.servers:
            left = deadline - time.monotonic()
            try:
                with socket.create_connection(_address(server), timeout=max(min(left, 2.0), 0.1)):
                    return
            except OSError:
                continue
        if time.monotonic() >= deadline:
            raise CommandError(unreachable(settings, timeout), 1)
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))


def kafka_failure(settings: Settings, exc: Exception) -> CommandError | None:
    """A Kafka client's exception as one line naming the servers, or None if it is not one."""
    if not type(exc).__module__.startswith("kafka"):
        return None
    name = type(exc).__name__
    text = str(exc).removeprefix(f"{name}: ").strip() or name
    if name in ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError"):
        return CommandError(f"{unreachable(settings)} ({text})", 1)
    return CommandError(f"Kafka at {','.join(settings.servers)}: {name}: {text}", 1)


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
    add_connect_timeout(p)
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
    require_broker(settings, args.connect_timeout)
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
        failure = kafka_failure(settings, exc)
        if failure is None:
            raise
        raise failure from exc
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
