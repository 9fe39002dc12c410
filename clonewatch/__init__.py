"""Clonewatch: streaming detection of model-extraction attacks on prediction APIs."""

__version__ = "0.1.0"
