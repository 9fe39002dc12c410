"""Pure detection: extraction signals, the per-model baseline and the engine. No I/O.

- :mod:`detectors.signals`: one module per extraction signal (all exported here).
- :mod:`detectors.kernels`: the numba kernels the batch pass and the population call.
- :mod:`detectors.engine` scores events; :mod:`detectors.outputs` builds the wire documents.
- :mod:`detectors.reference`: published detectors the evaluation compares with (PRADA).
- :mod:`detectors.river_shape`: each signal as a River anomaly detector (``learn_one`` /
  ``score_one``), :mod:`detectors.extras` runs any River anomaly detector as an extra signal.
"""

from detectors.native import activate

BUILD = activate()  # "compiled" (mypyc) or "pure"/"stale" (the Python sources run)

# After ``activate``: it decides whether these come from the compiled build or the sources.
from detectors.river_shape import (  # noqa: E402 - not compiled: River's Python base classes
    ClassSpreadDetector,
    CoverageDetector,
    LowMarginDetector,
    NoveltyDetector,
    SignalDetector,
    StepsDetector,
    VolumeDetector,
)
from detectors.signals import (  # noqa: E402
    ClassSpreadSignal,
    CoverageSignal,
    LowMarginSignal,
    NoveltySignal,
    StepSignal,
    VolumeSignal,
)

__all__ = [
    "BUILD",
    "ClassSpreadDetector",
    "ClassSpreadSignal",
    "CoverageDetector",
    "CoverageSignal",
    "LowMarginDetector",
    "LowMarginSignal",
    "NoveltyDetector",
    "NoveltySignal",
    "SignalDetector",
    "StepSignal",
    "StepsDetector",
    "VolumeDetector",
    "VolumeSignal",
]
