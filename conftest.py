"""Doctests of compiled modules run against the pure build (CLONEWATCH_PURE=1, scripts/test.sh)."""

import detectors
from detectors.native import COMPILED, source_path

# A compiled module has no Python source to collect doctests from.
collect_ignore = [str(source_path(m)) for m in COMPILED] if detectors.BUILD == "compiled" else []
