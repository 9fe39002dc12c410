"""Which build of the engine runs: compiled by mypyc (``make compile``), or the pure Python.

``scripts/compile.py`` compiles the modules in :data:`COMPILED` (named below the package,
``signals.novelty`` for ``detectors/signals/novelty.py``) in place and writes
:data:`MANIFEST`, the SHA-256 of each source it compiled. The compiled modules are used
only when every source still matches; otherwise (a source edited since, or
``CLONEWATCH_PURE=1``) the package imports the pure Python sources, the same code
without the speed. Both give byte-identical outputs (``tests/unit/test_native.py``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Literal

COMPILED = (
    "base",
    "batch",
    "combiner",
    "config",
    "engine",
    "fanout",
    "isotime",
    "malformed",
    "outputs",
    "population",
    "rounding",
    "scratch",
    "signals.class_spread",
    "signals.coverage",
    "signals.low_margin",
    "signals.novelty",
    "signals.steps",
    "signals.volume",
    "sketch",
    "state",
    "support",
    "tail_count",
)
HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "native.json"
PURE_ENV = "CLONEWATCH_PURE"
Mode = Literal["compiled", "pure", "stale"]


def source_path(module: str) -> Path:
    """The source of a module of :data:`COMPILED`, named below the package.

    >>> source_path("signals.novelty").relative_to(HERE).as_posix()
    'signals/novelty.py'
    """
    return HERE.joinpath(*module.split(".")).with_suffix(".py")


def source_digests() -> dict[str, str]:
    """SHA-256 of each compiled module's source, as the manifest records them."""
    return {m: hashlib.sha256(source_path(m).read_bytes()).hexdigest() for m in COMPILED}


def _has_extensions() -> bool:
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return any(source_path(m).with_suffix(s).exists() for m in COMPILED for s in suffixes)


def build_mode() -> Mode:
    """``compiled`` when the extensions match their sources, ``pure`` when there are none
    (or ``CLONEWATCH_PURE`` is set), ``stale`` when a source changed after compiling."""
    if os.environ.get(PURE_ENV, "") not in ("", "0") or not _has_extensions():
        return "pure"
    try:
        recorded = json.loads(MANIFEST.read_text())["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return "stale"
    return "compiled" if recorded == source_digests() else "stale"


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` source of a compiled module, ahead of its extension."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != __package__ or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(name))


def activate() -> Mode:
    """Decide the build once, at package import; pure modules are imported from source."""
    mode = build_mode()
    if mode == "stale":
        warnings.warn(
            "the compiled detectors are older than their sources, so the pure Python runs "
            "(slower, same results); run `make compile` to rebuild",
            RuntimeWarning,
            stacklevel=2,
        )
    if mode != "compiled" and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())
    return mode
