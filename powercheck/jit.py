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

prange = numba.prange
