"""Compile the engine's per-event Python with mypyc, in place (``make compile``).

The modules listed in ``detectors.native.COMPILED`` (those of ``detectors/signals/`` too)
become C extensions beside their sources (one shared library, ``detectors/native__mypyc*.so``),
and ``detectors/native.json`` records the SHA-256 of each source compiled, so an edited source
falls back to the pure Python until the next compile. ``CLONEWATCH_COMPILE=0`` skips it (the
pure Python runs).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "build" / "compile.log"


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's and its children's stdout and stderr to ``path`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _remove_builds(package: Path) -> None:
    """Delete every extension module under ``package``, its sub-packages too.

    A module that moved or left :data:`detectors.native.COMPILED` leaves none behind, and
    the build writes new files rather than over ones a running process may have loaded.
    """
    for ext in importlib.machinery.EXTENSION_SUFFIXES:
        for built in package.rglob(f"*{ext}"):
            built.unlink()


def main() -> int:
    """Compile, then write the manifest; exit 1 if the compiler fails."""
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ["CLONEWATCH_PURE"] = "1"  # read the module list without loading old builds
    from detectors import native  # noqa: PLC0415 - after the environment is set

    if os.environ.get("CLONEWATCH_COMPILE", "1") == "0":
        native.MANIFEST.unlink(missing_ok=True)
        _remove_builds(native.HERE)  # an earlier build would be stale
        print("compile: skipped (CLONEWATCH_COMPILE=0); the pure Python runs")
        return 0
    from mypyc.build import mypycify  # noqa: PLC0415 - only when compiling
    from setuptools import setup  # noqa: PLC0415

    started = time.perf_counter()
    native.MANIFEST.unlink(missing_ok=True)  # no manifest while half built: pure until done
    _remove_builds(native.HERE)
    digests = native.source_digests()
    paths = [native.source_path(m).relative_to(ROOT).as_posix() for m in native.COMPILED]
    LOG.parent.mkdir(exist_ok=True)
    print(f"compile: {len(paths)} detector modules with mypyc (log: {LOG.relative_to(ROOT)})")
    try:
        with _output_to(LOG):  # the compiler's command lines, printed only if it fails
            setup(
                name="clonewatch-native",
                ext_modules=mypycify(paths, opt_level="3", group_name="detectors.native"),
                script_args=["build_ext", "--inplace"],
            )
    except SystemExit as exc:  # setuptools reports a failed compiler by exiting
        if exc.code not in (0, None):
            sys.stderr.write(LOG.read_text(errors="replace")[-20_000:])
            print(
                f"compile: failed ({exc.code}); the pure Python runs. CLONEWATCH_COMPILE=0 "
                "skips compiling (no C compiler)",
                file=sys.stderr,
            )
            return 1
    if native.source_digests() != digests:
        print("compile: a source changed while compiling; run it again", file=sys.stderr)
        return 1
    native.MANIFEST.write_text(json.dumps({"sources": digests}, indent=1, sort_keys=True) + "\n")
    took = time.perf_counter() - started
    print(f"compile: done in {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
