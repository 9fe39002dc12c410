"""An engine whose vectorised path raises, for the scorer's event-by-event fallback."""

from __future__ import annotations

from detectors.engine import Engine


class BrokenBatches:
    """An engine whose vectorised path always raises; everything else is the real engine's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def process_batch(self, *args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("boom")
