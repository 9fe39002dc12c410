"""Compiling numeric kernels with numba, on first use and cached per installation.

numba is imported only when a kernel is first called (it adds about half a second
to a process's start), and each kernel is compiled once per installation (the
machine code is cached beside its module, or in numba's user cache directory
where that is read-only). A kernel's helpers are compiled too and bound under
their own names in its module (and in theirs), which is how numba's compiled code finds them.

This module imports no kernel (each kernel imports it); :mod:`detectors.kernels.warmup`,
above both, loads them all.

>>> import numpy as np
>>> from detectors.kernels import pairwise  # numpy's pairwise sum, and the block sum it calls
>>> total = compiled(pairwise.pairwise_sum, pairwise.block_sum)
>>> total(np.arange(200.0), 200)
19900.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
