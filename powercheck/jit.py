"""The one place where kernels get compiled (used by :mod:`powercheck.quality` and :mod:`powercheck.powerflow`).

``@njit`` makes a :class:`Kernel`: called with arguments that match a signature of the ahead-of-time compiled
kernel module (:mod:`powercheck.aot`, built by ``powercheck kernels build``), it runs that module's function;
otherwise it runs ``numba.njit(cache=True)`` of the function, and numba is imported only then. A screening run on
a warm cache whose kernels are all in the module never imports numba (``tests/test_aot_kernels.py``).

Set ``NUMBA_DISABLE_JIT=1`` to run the kernels as plain Python (for debugging or coverage: the ahead-of-time module
is not used then either), ``POWERCHECK_AOT=0`` to use the JIT alone.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np


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


@functools.cache
def numba_module() -> Any:
    """``numba``, imported on first use (with the deferred BLAS check)."""
    import numba

    _defer_blas_check()
    return numba


def jit_disabled() -> bool:
    """``NUMBA_DISABLE_JIT`` is set to a true value: kernels run as plain Python."""
    return os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")


_SCALARS = {
    int: "i8",
    float: "f8",
    bool: "b1",
    np.int64: "i8",
    np.float64: "f8",
    np.bool_: "b1",
}


_DTYPES = {np.dtype(t): np.dtype(t).str[1:] for t in ("f8", "i8", "b1", "f4", "i4", "u8", "u4", "u1", "i1", "c16")}
"""Native dtypes by the name their arrays have in a signature (one look-up: faster than ``dtype.str`` per call)."""


def arg_key(value: Any) -> tuple | str | None:
    """The numba type of a kernel argument as the ahead-of-time signatures spell it (:mod:`powercheck.aot`):
    ``"f8"``, ``"i8"``, ``"b1"`` for scalars, ``(dtype, ndim, layout, readonly)`` for arrays, None for anything
    else (an unaligned array, another type; a dtype not in :data:`_DTYPES` gives None in the tuple) -- as
    ``numba.typeof`` would type it."""
    if type(value) is np.ndarray:
        flags = value.flags
        if not flags.aligned:
            return None
        layout = "C" if flags.c_contiguous else ("F" if flags.f_contiguous else "A")
        return (_DTYPES.get(value.dtype), value.ndim, layout, not flags.writeable)
    return _SCALARS.get(type(value))


_KERNELS: list[Kernel] = []
_LOCK = threading.Lock()  # one dispatcher per kernel, whichever thread asks first


def kernels() -> list[Kernel]:
    """Every kernel made so far (of the modules imported)."""
    return list(_KERNELS)


class Kernel:
    """A numeric kernel: the ahead-of-time compiled function for arguments that match one of its exported
    signatures, else numba's JIT dispatcher (created, and numba imported, on first need).

    Inside other kernels numba types it as its JIT dispatcher (``_numba_type_``), so kernels call each other as
    before. ``py_func`` is the Python function.
    """

    def __init__(self, py_func: Callable, options: dict[str, Any], aot: bool):
        functools.update_wrapper(self, py_func)
        self.py_func = py_func
        self.options = options
        self.aot_eligible = aot
        self._dispatcher: Any = None
        self._aot: dict | None = None  # arg keys -> compiled function; {} when there is none
        _KERNELS.append(self)

    @property
    def name(self) -> str:
        """``module.qualname`` of the Python function (the ahead-of-time module's key for it)."""
        return f"{self.py_func.__module__}.{self.py_func.__qualname__}"

    @property
    def dispatcher(self) -> Any:
        """numba's dispatcher of the function (the function itself under ``NUMBA_DISABLE_JIT=1``)."""
        if self._dispatcher is None:
            with _LOCK:
                if self._dispatcher is None:
                    self._dispatcher = numba_module().njit(**self.options)(self.py_func)
        return self._dispatcher

    @property
    def _numba_type_(self) -> Any:
        return self.dispatcher._numba_type_

    def aot_functions(self) -> dict:
        """The ahead-of-time compiled functions of this kernel by argument keys ({} when there are none)."""
        if self._aot is None:
            found: dict = {}
            if self.aot_eligible and not jit_disabled():
                from powercheck import aot

                found = aot.functions_for(self.name)
            self._aot = found
        return self._aot

    def loaded_signatures(self) -> int:
        """Signatures ready to run: those numba compiled or loaded from its cache, and the ahead-of-time module's
        (once this kernel has looked it up)."""
        return len(getattr(self._dispatcher, "overloads", ())) + len(self._aot or ())

    def forget_aot(self) -> None:
        """Look the ahead-of-time functions up again at the next call."""
        self._aot = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        table = self._aot
        if table is None:
            table = self.aot_functions()
        if table and not kwargs:
            compiled = table.get(tuple(map(arg_key, args)))
            if compiled is not None:
                return compiled(*args)
        return self.dispatcher(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<kernel {self.name}>"


def _decorator(options: dict[str, Any], aot: bool) -> Callable[[Callable], Kernel]:
    def make(py_func: Callable) -> Kernel:
        return Kernel(py_func, options, aot)

    return make


njit = _decorator({"cache": True}, aot=True)
"""Decorator for scalar/loop kernels: nopython mode, cached on disk; compiled ahead of time too when its
signatures are listed in :data:`powercheck.aot.SIGNATURES`."""

njit_parallel = _decorator({"cache": True, "parallel": True}, aot=False)
"""Decorator for kernels that use ``numba.prange`` over independent items (JIT only)."""

njit_numpy_errors = _decorator({"cache": True, "error_model": "numpy"}, aot=False)
"""``njit`` with NumPy's floating-point error model: a division by zero gives inf or NaN instead of raising, so
the compiler need not check every division and can vectorize loops with divisions (the power-flow sweeps, which
detect non-finite results themselves). JIT only."""


def __getattr__(name: str) -> Any:
    if name == "prange":  # numba.prange, imported only by the modules that need it (the power-flow sweeps)
        return numba_module().prange
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
