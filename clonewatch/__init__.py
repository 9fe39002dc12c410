"""Clonewatch: streaming detection of model-extraction attacks on prediction APIs."""

from streams.version import VERSION

__version__ = VERSION  # one source: pyproject.toml's version, read from the package metadata

__all__ = ["__version__"]
