"""The one place where kernels get compiled (used by :mod:`powercheck.quality` and :mod:`powercheck.powerflow`).

``njit`` is ``numba.njit(cache=True)``. Set ``NUMBA_DISABLE_JIT=1`` to run the
kernels as plain Python (for debugging or coverage).
"""

from __future__ import annotations

import importlib.util
import sys

import numba


def _defer_blas_check() -> None:
    """Let numba's start-up BLAS check see that SciPy is installed without importing ``scipy.linalg``.

    ``numba.np.arraymath`` calls ``numba.np.linalg.ensure_blas()`` once when numba's CPU target is first set up
    (on a warm cache: when the first cached kernel is loaded); that imports ``scipy.linalg`` (~0.3 s, the largest
    single cost of a short ``powercheck screen``) only to learn that BLAS is there. powercheck's kernels use no
    BLAS. For that one check ``ensure_blas`` is replaced by a look-up of SciPy's package (no import), and put back
    right after, so a kernel that uses BLAS (``np.dot``, ``np.linalg``) still imports and checks it when compiled,
    and cached code gets SciPy's BLAS through numba's helper library when it runs
    (``tests/test_lazy_imports.py``). Without SciPy, or when numba's internals differ, nothing is changed.
    """
    if "numba.np.arraymath" in sys.modules:
        return
    try:
        from numba.np import linalg
    except ImportError:  # pragma: no cover - numba internals moved
        return
    original = getattr(linalg, "ensure_blas", None)
    if original is None or importlib.util.find_spec("scipy") is None:
        return

    def installed() -> None:
        return None

    linalg.ensure_blas = installed
    try:
        import numba.np.arraymath as arraymath
    finally:
        linalg.ensure_blas = original
    if getattr(arraymath, "ensure_blas", None) is installed:
        arraymath.ensure_blas = original


_defer_blas_check()

njit = numba.njit(cache=True)
"""Decorator for scalar/loop kernels: nopython mode, cached on disk."""

njit_parallel = numba.njit(cache=True, parallel=True)
"""Decorator for kernels that use ``numba.prange`` over independent items."""

njit_numpy_errors = numba.njit(cache=True, error_model="numpy")
"""``njit`` with NumPy's floating-point error model: a division by zero gives inf or NaN instead of raising, so
the compiler need not check every division and can vectorize loops with divisions (the power-flow sweeps, which
detect non-finite results themselves)."""

prange = numba.prange
