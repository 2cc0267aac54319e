"""The one place where kernels get compiled (used by :mod:`powercheck.quality` and :mod:`powercheck.powerflow`).

``njit`` is ``numba.njit(cache=True)``. Set ``NUMBA_DISABLE_JIT=1`` to run the
kernels as plain Python (for debugging or coverage).
"""

from __future__ import annotations

import numba

njit = numba.njit(cache=True)
"""Decorator for scalar/loop kernels: nopython mode, cached on disk."""

njit_parallel = numba.njit(cache=True, parallel=True)
"""Decorator for kernels that use ``numba.prange`` over independent items."""

njit_numpy_errors = numba.njit(cache=True, error_model="numpy")
"""``njit`` with NumPy's floating-point error model: a division by zero gives inf or NaN instead of raising, so
the compiler need not check every division and can vectorize loops with divisions (the power-flow sweeps, which
detect non-finite results themselves)."""

prange = numba.prange
