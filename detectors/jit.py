"""Compiling numeric kernels with numba, on first use and cached per installation.

numba is imported only when a kernel is first called (it adds about half a second
to a process's start), and each kernel is compiled once per installation (the
machine code is cached beside its module, or in numba's user cache directory
where that is read-only). A kernel's helpers are compiled too and bound under
their own names in its module (and in theirs), which is how numba's compiled code finds them.

>>> import numpy as np
>>> from detectors import geometry  # numpy's pairwise sum, and the block sum it calls
>>> total = compiled(geometry._pairwise, geometry._block)
>>> total(np.arange(200.0), 200)
19900.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_compiled: dict[Callable[..., Any], Any] = {}


def compiled(kernel: Callable[..., Any], *helpers: Callable[..., Any]) -> Any:
    """``kernel`` in machine code, its ``helpers`` bound compiled in its module first."""
    kernel = getattr(kernel, "py_func", kernel)  # a kernel bound compiled already
    fn = _compiled.get(kernel)
    if fn is None:
        from numba import njit  # noqa: PLC0415 - half a second of start-up, only when needed

        jit = njit(cache=True, nogil=True)
        for helper in helpers:
            source = getattr(helper, "py_func", helper)
            bound = jit(source)
            # Bound in the kernel's module and in the helper's own, where other helpers of
            # that module look it up (a kernel may borrow helpers from another module).
            kernel.__globals__[source.__name__] = source.__globals__[source.__name__] = bound
        fn = _compiled[kernel] = jit(kernel)
    return fn


def warm_up() -> None:
    """Load every kernel now (numba's import and the cached machine code, or a first
    compile), with the argument types the engine passes: a worker calls this before it
    joins its group, so that its first batch is not held up by it."""
    from detectors.client_sums import coverage_terms, spread_terms  # noqa: PLC0415
    from detectors.geometry import geometry  # noqa: PLC0415 - they import this module
    from detectors.nearest import nearest_rows, other_same_counts  # noqa: PLC0415
    from detectors.slots import ring_slots  # noqa: PLC0415

    f64, i64 = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    geometry(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.int64), f64,
             np.zeros(1, np.uint8), i64, 1, 1)  # fmt: skip
    nearest_rows(f64, f64[0], f64[0], i64, i64, i64, i64)
    other_same_counts(i64, i64, i64, i64)
    ring_slots(np.zeros((1, 4), np.int64), np.zeros(1, np.bool_), np.zeros(1, np.uint32), 1, 1)
    log_miss = np.zeros(1)
    log_miss.setflags(write=False)  # the population hands it out read-only
    coverage_terms(1, log_miss)
    spread_terms(np.ones(1, np.float32))
