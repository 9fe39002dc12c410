"""Output paths a command checks before it opens anything for writing.

:func:`check_distinct` refuses (a usage error, exit 2) an output that is one of
the inputs or another output: the same file after resolving symbolic links, or
the same inode (hard links, ``/dev/fd/N``, standard input redirected from the
file). :func:`check_writable` says in one line why an output cannot be created
(its directory missing, a regular file, not writable) before a long run starts.
:func:`claim_default` picks and creates a file name that does not exist yet,
so a default output never overwrites anything.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "log.jsonl").write_text("{}\\n")
>>> check_distinct({"LOG": str(d / "log.jsonl")}, {"--alerts": d / "log.jsonl"})
Traceback (most recent call last):
...
clonewatch.cli.CommandError: --alerts is the same file as LOG (...log.jsonl)
>>> claim_default(d, "alerts", ".jsonl").name, claim_default(d, "alerts", ".jsonl").name
('alerts.jsonl', 'alerts-2.jsonl')
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from clonewatch.cli import CommandError

Identity = tuple[str, int, int] | tuple[str, str]


def identity(path: str | Path) -> Identity | None:
    """What names a file: its (device, inode) when it exists, else its resolved path.

    ``-`` is standard input: its inode when it is a file redirected in, else None.
    """
    if str(path) == "-":
        try:
            st = os.fstat(sys.stdin.fileno())
        except (OSError, ValueError, AttributeError):  # closed, or replaced by a test
            return None
        return ("inode", st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    real = os.path.realpath(path)
    try:
        st = Path(real).stat()
    except OSError:
        return ("path", real)
    return ("inode", st.st_dev, st.st_ino)


def check_distinct(
    inputs: Mapping[str, str | Path | None],
    outputs: Mapping[str, str | Path | None],
    *,
    may_replace: Mapping[str, str] | None = None,
) -> None:
    """Raise a usage error (exit 2) when an output is an input or another output.

    The mappings go from the option's name (``--alerts``, ``LOG``) to its path, None
    when not given. ``may_replace`` names output-input pairs that may be one file
    (``{"--save-baseline": "--load-baseline"}``: the input is read whole first).
    """
    seen: dict[Identity, str] = {}
    for name, path in inputs.items():
        if path is not None and (ident := identity(path)) is not None:
            seen.setdefault(ident, name)
    allowed = dict(may_replace or {})
    outs: dict[Identity, str] = {}
    for name, path in outputs.items():
        if path is None:
            continue
        ident = identity(path)
        if ident is None:
            continue
        other = outs.get(ident) or seen.get(ident)
        if other is not None and allowed.get(name) != other:
            raise CommandError(f"{name} is the same file as {other} ({path})", 2)
        outs[ident] = name


def check_writable(name: str, path: Path, *, make_parents: bool = False) -> None:
    """Raise a runtime error (exit 1) in one line when ``path`` cannot be written.

    With ``make_parents`` the command creates missing folders itself (``simulate``,
    ``report``): the nearest folder that exists must then be writable.
    """
    target = Path(path).absolute()
    if target.is_dir():
        raise CommandError(f"cannot write {name} {path}: it is a directory", 1)
    parent = target.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CommandError(f"cannot write {name} {path}: {existing} is not a directory", 1)
    if existing != parent:
        if not make_parents:
            raise CommandError(f"cannot write {name} {path}: no directory {parent}", 1)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise CommandError(f"cannot write {name} {path}: {existing} is not writable", 1)
        return
    if target.exists():
        if not os.access(target, os.W_OK):
            raise CommandError(f"cannot write {name} {path}: permission denied", 1)
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write {name} {path}: {parent} is not writable", 1)


def claim_default(folder: Path, stem: str, suffix: str) -> Path:
    """Create and return ``folder/stem suffix``, or ``stem-2``, ``stem-3``... when taken."""
    n = 1
    while True:
        path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            n += 1
            continue
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}", 1) from exc
        os.close(fd)
        return path
