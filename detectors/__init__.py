"""Pure detection: extraction signals, the per-model baseline and the engine. No I/O.

- :mod:`detectors.signals`: one module per extraction signal (all exported here).
- :mod:`detectors.kernels`: the numba kernels the batch pass and the population call.
- :mod:`detectors.engine` scores events; :mod:`detectors.outputs` builds the wire documents.
- :mod:`detectors.reference`: published detectors the evaluation compares with (PRADA).
"""

from detectors.native import activate

BUILD = activate()  # "compiled" (mypyc) or "pure"/"stale" (the Python sources run)

# After ``activate``: it decides whether these come from the compiled build or the sources.
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
    "ClassSpreadSignal",
    "CoverageSignal",
    "LowMarginSignal",
    "NoveltySignal",
    "StepSignal",
    "VolumeSignal",
]
