"""Simulator of a day of prediction-API traffic: benign clients and real extraction attacks."""

from clonewatch.sim.simulate import simulate

__all__ = ["simulate"]
