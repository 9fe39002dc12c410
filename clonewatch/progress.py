"""Progress bars on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress(
    desc: str, total: int | None = None, unit: str = "ev"
) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callable that drives a tqdm bar when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()
