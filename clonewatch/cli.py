"""The ``clonewatch`` command: one sub-command per module under clonewatch.commands.

Exit codes: 0 success, 1 a runtime failure (unreadable input, unreachable
server), 2 a usage error, 3 completed with documents a remote sink did not take (spooled for
``clonewatch redeliver``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from clonewatch import __version__
from clonewatch.extras import MissingExtraError
from clonewatch.logs import configure
from streams.redact import redact

# Each module defines ``register(subparsers)``; a sub-command sets ``func(args) -> int``.
COMMAND_MODULES: tuple[str, ...] = (
    "clonewatch.commands.replay",
    "clonewatch.commands.demo",
    "clonewatch.commands.simulate",
    "clonewatch.commands.evaluate",
    "clonewatch.commands.redeliver",
    "clonewatch.commands.verify_webhook",
    "clonewatch.commands.worker",
    "clonewatch.commands.produce",
    "clonewatch.commands.tail",
    "clonewatch.commands.dashboards",
    "clonewatch.commands.setup",
    "clonewatch.commands.report",
    "clonewatch.commands.redteam",
)


class CommandError(Exception):
    """A failure the user can act on; printed without a traceback, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Registrar(Protocol):
    def __call__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="clonewatch",
        description="Detect model-extraction attacks in inference query logs.",
    )
    parser.add_argument("--version", action="version", version=f"clonewatch {__version__}")
    _add_global_options(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        register: _Registrar = importlib.import_module(name).register
        register(sub)
    for command in sub.choices.values():  # also after the sub-command: replay --log-level DEBUG
        _add_global_options(command, argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--log-level`` and ``--log-format``; a sub-command's copy sets them only when given."""
    parser.add_argument("--log-level", default=default, help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=default,
        help="json: every stderr line is a JSON object (default: console on a terminal)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    with warnings.catch_warnings(record=True) as early:  # imports warn before logs are set
        parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level, args.log_format)
    for w in early:  # now through the configured logs (JSON lines in json mode)
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except CommandError as exc:
        print(f"clonewatch {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.code
    except MissingExtraError as exc:
        print(f"clonewatch {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"clonewatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: report, never a bare traceback
        structlog.get_logger().exception("command_failed", command=args.command)
        print(f"clonewatch {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # ``python -m clonewatch.cli``: run the imported module's main, whose CommandError is the
    # one the commands raise (this file's own copy, __main__.CommandError, is another class).
    from clonewatch.cli import main as _main

    sys.exit(_main())
