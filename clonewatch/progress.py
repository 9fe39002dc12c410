"""Progress bars on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from tqdm import tqdm

from clonewatch.logs import is_json


@contextmanager
def progress(
    desc: str, total: int | None = None, unit: str = "ev"
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callable that drives a tqdm bar when stderr is a terminal."""
    if not sys.stderr.isatty() or is_json():  # JSON lines only on stderr in json mode
        yield lambda n: None
        return
    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def step(message: str) -> None:
    """Announce one step of a long command on stderr: a line, or a JSON log event in json mode."""
    if is_json():
        structlog.get_logger().info("step", step=message)
    else:
        print(message, file=sys.stderr, flush=True)
