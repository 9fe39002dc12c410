"""The installed Clonewatch version, read from the package metadata.

For the modules below ``clonewatch/`` (the CEF header names the product version):
they may not import ``clonewatch`` itself, the layer above them.

>>> VERSION == installed_version()
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "clonewatch"
# What a source tree that was never installed reports (pip install -e . fixes it).
UNKNOWN = "0+unknown"


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """The version of the installed ``distribution``, or ``0+unknown`` if it is not installed.

    >>> installed_version("no-such-distribution-clonewatch")
    '0+unknown'
    """
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN


VERSION = installed_version()
