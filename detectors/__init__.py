"""Pure detection: extraction signals, the per-model baseline and the engine. No I/O."""

from detectors.native import activate

BUILD = activate()  # "compiled" (mypyc) or "pure"/"stale" (the Python sources run)
