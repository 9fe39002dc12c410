"""structlog set-up: JSON lines in production, readable on a terminal."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    """A logger writing to whatever ``sys.stderr`` is now (it may be replaced after set-up)."""
    return structlog.PrintLogger(file=sys.stderr)


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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
