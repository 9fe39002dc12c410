"""Reading a model registry file (:mod:`schemas.registry`) with its size cap applied while
reading: a huge or endless file (``/dev/zero``) is refused after the cap, never read whole."""

from __future__ import annotations

from pathlib import Path

from schemas.registry import MAX_REGISTRY_BYTES, ModelRegistry


def read_registry(path: Path) -> ModelRegistry:
    """The registry in ``path``; ``ValueError`` names the file and the first problem."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read model registry {path}: {exc.strerror or exc}") from None
    try:
        return ModelRegistry.parse(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
