"""Published detectors that Clonewatch is measured against, not part of the engine.

:mod:`~detectors.reference.prada` (PRADA) is used by ``clonewatch evaluate`` as a baseline.
Nothing in the engine imports this package, so its dependencies (scipy) are needed only by
the evaluation, not by a worker.
"""
