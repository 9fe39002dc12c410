"""The extraction signals: one module per signal, each scoring one client's queries.

A signal takes an :class:`~detectors.base.Observation` of one query, the client's state and
the model's benign population, and returns a :class:`~detectors.base.Reading` (the
:class:`~detectors.base.Signal` protocol). The combiner (:mod:`detectors.combiner`) turns
their evidence into one risk. Adding a signal is one module here, exported below; the
conformance suite (``tests/unit/test_detectors_conformance.py``) finds it by walking this
package, and the signal names any check it opts out of in ``_unit_test_skips()``.
"""

from detectors.signals.class_spread import ClassSpreadSignal
from detectors.signals.coverage import CoverageSignal
from detectors.signals.low_margin import LowMarginSignal
from detectors.signals.novelty import NoveltySignal
from detectors.signals.steps import StepSignal
from detectors.signals.volume import VolumeSignal

__all__ = [
    "ClassSpreadSignal",
    "CoverageSignal",
    "LowMarginSignal",
    "NoveltySignal",
    "StepSignal",
    "VolumeSignal",
]
