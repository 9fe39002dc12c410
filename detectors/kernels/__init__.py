"""The numeric kernels: loops numba compiles to machine code on first use, cached per install.

- :mod:`~detectors.kernels.jit`: ``compiled()``, which compiles a kernel and its helpers
  (imports no kernel; every kernel imports it).
- :mod:`~detectors.kernels.pairwise`: numpy's pairwise summation, shared by the kernels.
- :mod:`~detectors.kernels.geometry`: the batch's step and same-class geometry.
- :mod:`~detectors.kernels.nearest`: the nearest reference input of another client.
- :mod:`~detectors.kernels.slots`: where each event finds its client's recent inputs.
- :mod:`~detectors.kernels.client_sums`: the client-level tests' sums.
- :mod:`~detectors.kernels.warmup`: ``warm_up()``, loading them all (above the kernels).

This package imports nothing, so importing one kernel loads only that kernel and ``jit``.
"""
