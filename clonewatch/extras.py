"""Optional dependencies: which pip extra brings a module, and a clear error when it is missing.

>>> require("sim", "json")  # present: nothing happens
>>> try:
...     require("sim", "no_such_mod")
... except MissingExtraError as exc:
...     print(exc)
this command needs the 'sim' extra (no_such_mod is not installed): pip install 'clonewatch[sim]'
"""

from __future__ import annotations

import importlib.util


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


def require(extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every one of ``modules`` can be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(
                f"this command needs the {extra!r} extra ({module} is not installed): "
                f"pip install 'clonewatch[{extra}]'"
            )


SIM_MODULES = ("sklearn", "scipy")
"""What the simulator and the evaluation (its PRADA reference) import: the ``sim`` extra."""
