"""Logging set-up: structlog JSON lines in production, readable on a terminal, and two guards.

* **No secret in any log, at any level.** Every stdlib log record (Faust, aiokafka,
  kafka-python, the search clients, ...) is redacted when it is created (a log-record
  factory), and every structlog event before it is rendered, with
  :func:`streams.redact.redact`: registered secret values, ``password=`` style
  assignments (kafka-python's debug dump of its configuration has
  ``'sasl_plain_password': '...'``) and URL credentials become ``**********``.
* **Repeated library errors are rate-limited.** A broker that is down makes aiokafka and
  Faust log the same warning or error many times a second. :class:`RepeatFilter`, put on
  every library logger, lets the first record of a kind (logger, level, message with its
  numbers blanked) through, drops the repeats for ``repeat_seconds`` and then lets the next
  one through with the count of those it dropped.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from streams.redact import redact

REPEAT_SECONDS = 10.0  # at most one line per kind of repeated library warning/error this often
MAX_KINDS = 1024  # kinds tracked by a RepeatFilter before the oldest are forgotten
# Stdlib loggers that are not Clonewatch's: the rate limit applies to these.
LIBRARY_PREFIXES = (
    "aiokafka",
    "kafka",
    "faust",
    "mode",
    "asyncio",
    "elastic_transport",
    "elasticsearch",
    "opensearch",
    "urllib3",
    "rocksdict",
    "venusian",
)

_NUMBERS = re.compile(r"\d+")
_installed_factory = False
_factory_lock = threading.Lock()


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    """A logger writing to whatever ``sys.stderr`` is now (it may be replaced after set-up)."""
    return structlog.PrintLogger(file=sys.stderr)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every string in the event (exception text included) redacted.

    >>> from streams.redact import register_secret
    >>> register_secret("pa55word-xyz")
    >>> redact_event(None, "info", {"event": "x", "url": "https://u:pa55word-xyz@h"})["url"]
    'https://**********@h'
    """
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


class RepeatFilter(logging.Filter):
    """Let one record of each kind through per ``interval`` seconds, with the count dropped.

    A kind is (logger name, level, message template with numbers blanked), so that the
    same error about another node, port or attempt counts as a repeat. Records below
    ``min_level`` (DEBUG and INFO by default) are never dropped.

    >>> f = RepeatFilter(interval=60, clock=iter([0.0, 1.0, 2.0, 61.0]).__next__)
    >>> rec = lambda: logging.LogRecord("kafka", logging.ERROR, "", 0, "node %d down", (3,), None)
    >>> [f.filter(rec()) for _ in range(3)]
    [True, False, False]
    >>> r = rec(); f.filter(r), r.getMessage()
    (True, 'node 3 down (2 similar messages suppressed in the last 61s)')
    """

    def __init__(
        self,
        interval: float = REPEAT_SECONDS,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.min_level = min_level
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind -> [start, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within the interval; the first one after it carries the count."""
        if record.levelno < self.min_level:
            return True
        kind = (record.name, record.levelno, _NUMBERS.sub("#", str(record.msg)))
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            dropped = int(seen[1]) if seen is not None else 0
            elapsed = now - seen[0] if seen is not None else 0.0
            if seen is None and len(self._kinds) >= MAX_KINDS:
                self._kinds.pop(next(iter(self._kinds)))
            self._kinds[kind] = [now, 0.0]
        if dropped:
            record.msg = (
                f"{record.getMessage()} ({dropped} similar messages suppressed "
                f"in the last {elapsed:.0f}s)"
            )
            record.args = ()
        return True


_repeat_filter = RepeatFilter()


def _install_record_factory() -> None:
    """Redact every stdlib log record when it is created, whatever logger or handler."""
    global _installed_factory  # noqa: PLW0603 - installed once per process
    with _factory_lock:
        if _installed_factory:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string: keep it, redacted as text
                message = f"{record.msg!s} {record.args!r}"
            # An empty tuple, not None: mode's formatter wraps a non-tuple into (args,) and
            # would then format the message with one argument too many.
            record.msg, record.args = redact(message), ()
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = True


def guard_library_loggers(interval: float | None = None) -> int:
    """Put the repeat filter on every library logger that exists now; return how many.

    Called by :func:`configure` and again by commands that import more libraries later
    (the worker, after Faust). A filter on a logger only sees the records made on that
    logger (not those of its children), so each one gets it.
    """
    if interval is not None:
        _repeat_filter.interval = interval
    count = 0
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(LIBRARY_PREFIXES)]
    for name in [*LIBRARY_PREFIXES, *names]:
        logger = logging.getLogger(name)
        if _repeat_filter not in logger.filters:
            logger.addFilter(_repeat_filter)
            count += 1
    return count


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Configure structlog once for the process.

    ``fmt`` is ``json`` or ``console``; by default console on a terminal and JSON
    elsewhere (``CLONEWATCH_LOG_FORMAT`` and ``CLONEWATCH_LOG_LEVEL`` override).
    Logs go to stderr so that stdout stays free for data.
    """
    fmt = (
        fmt
        or os.environ.get("CLONEWATCH_LOG_FORMAT")
        or ("console" if sys.stderr.isatty() else "json")
    )
    name = (level or os.environ.get("CLONEWATCH_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    global FORMAT  # noqa: PLW0603 - one logging set-up per process
    FORMAT = fmt
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        # Library records (kafka, aiokafka, faust, elasticsearch, numba) and Python warnings
        # are rendered as the same JSON lines: in json mode every stderr line parses.
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact_event,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=[
                    structlog.stdlib.add_logger_name,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,
                ],
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    global HANDLER  # noqa: PLW0603 - one logging set-up per process
    HANDLER = handler
    logging.captureWarnings(True)
    _install_record_factory()
    guard_library_loggers()


FORMAT = "console"
"""The log format :func:`configure` chose (``json`` or ``console``)."""
HANDLER: logging.Handler | None = None
"""The stderr handler :func:`configure` put on the root logger."""


def restore_root_handler(logger: logging.Logger | None = None) -> None:
    """Put :func:`configure`'s handler back as the root logger's only one.

    Faust's worker (mode's ``setup_logging``) replaces the root handlers with its own
    plain-text ones; the worker calls this right after, so that library records keep
    the chosen format (JSON lines in json mode) and go through the redaction and the
    repeat filter as before.
    """
    root = logger or logging.getLogger()
    if HANDLER is not None:
        root.handlers[:] = [HANDLER]


def is_json() -> bool:
    """Whether stderr carries JSON lines only (no progress bars, no plain text)."""
    return FORMAT == "json"
