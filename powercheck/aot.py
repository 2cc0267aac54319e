"""Kernels compiled ahead of time (issue 13): one extension module, built by ``powercheck kernels build`` with
``numba.pycc``, so that a screening run on a warm cache imports neither numba nor LLVM.

Importing numba and loading its cached kernels took about half of a short ``powercheck screen`` (~0.3 s to import
numba, ~0.4 s to set up its CPU target and load the 15 kernels the screening calls). The kernels listed in
:data:`SIGNATURES` are compiled, with the exact argument types the screening and the capacity map pass them
(dtype, number of dimensions, C-contiguous, read-only), into ``powercheck_kernels_<key>`` in powercheck's cache
directory (``--cache-dir``, ``$POWERCHECK_CACHE_DIR``, ``~/.cache/powercheck``). ``<key>`` is a hash of the
kernels' source (every module of :mod:`powercheck.quality`, :mod:`powercheck.jit` and this one) and of
:func:`environment` (the versions of numba, llvmlite, NumPy and Python, the extension ABI and the CPU), so a module
built from other code or for another machine is never loaded. A ``.json`` manifest next to it holds the key and the
module's SHA-256; a module is loaded only from inside the cache directory, under its key's name, with a matching
manifest and hash, both files this user's and writable by no one else. Anything else -- no module, a failed
import, a missing export, arguments of other types -- runs numba's JIT dispatcher instead
(:class:`powercheck.jit.Kernel`), silently, kernel by kernel: the results are the same (``tests/test_aot_kernels.py``
compares every exported kernel's results with its JIT dispatcher's, bit for bit).

Only plain ``@njit`` kernels are compiled ahead of time; the parallel power-flow sweeps and the NumPy-error-model
kernels stay with the JIT. ``POWERCHECK_AOT=0`` (or ``NUMBA_DISABLE_JIT=1``) turns the module off.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

# The kernels that `powercheck screen` and `powercheck capacity` of the demo call from Python (the service's
# decisions call the screening's), with the argument types they pass them (`tests/test_aot_kernels.py` checks that
# this is still the list). One string per signature, one word per
# argument: "i8", "f8", "b1" are scalars; "f8[::1]" a C-contiguous 1-d array, "f8[:,::1]" a C-contiguous 2-d one,
# "f8[:]" any layout; "ro:" marks a read-only array.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "powercheck.quality.superposition.add_injection": (
        "i8 i8 i8 i8[::1] f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8 i8[::1] i8[::1] "
        "i8[::1] f8 f8[::1] f8[::1] f8[::1] f8[::1]",
    ),
    "powercheck.quality.superposition.worst_buses": (
        "i8[::1] f8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] "
        "f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] f8 ro:f8[::1] f8[::1] f8[::1]",
    ),
    "powercheck.quality.superposition.scale_limits": (
        "i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] "
        "f8[::1] f8[::1] f8[::1] f8[::1] f8 f8 ro:f8[::1] f8[::1] f8",
        # powercheck capacity
        "i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] "
        "f8[::1] f8[::1] f8[::1] ro:f8[::1] f8 f8 ro:f8[::1] ro:f8[::1] f8",
    ),
    "powercheck.quality.superposition.paths_voltage_change": (
        "i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8",
    ),
    "powercheck.quality.impedance.min_fault_current_a": ("f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] f8",),
    "powercheck.quality.voltage.line_current_a": ("f8[::1] f8[::1] i8[::1] f8[::1]",),
    "powercheck.quality.voltage.voltage_change_percent": (
        "f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8[::1]",
    ),
    "powercheck.quality.voltage.voltage_after_constant_power": ("f8[::1] f8[::1]",),
    "powercheck.quality.flicker._pst_analytic_kernel": ("f8[::1] f8[::1] f8[::1] f8 f8 f8",),
    "powercheck.quality.harmonics.harmonic_voltages_percent": (
        "i8[::1] i8 i8[::1] f8[::1] f8[:,::1] f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] i8[::1] ro:i8[::1] ro:f8[::1] "
        "f8[:,::1] f8",
    ),
    "powercheck.quality.harmonics.thd_percent": ("f8[:,::1]",),
    "powercheck.quality.thermal.path_headroom": (
        "i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] f8[::1] f8",
        "i8[::1] i8[::1] i8[::1] f8[::1] f8[::1] ro:f8[::1] f8",  # powercheck capacity
    ),
    "powercheck.quality.unbalance.unbalance_percent": ("f8[::1] f8[::1] f8[::1] f8[::1]",),
    "powercheck.quality.hosting.unbalance_scale": ("f8[::1] f8[::1] f8[::1] f8[::1] f8[::1] f8 f8",),
    "powercheck.quality.hosting.thd_scale": ("f8[:,::1] f8[::1] ro:f8[::1] f8 f8",),
}

MODULE_PREFIX = "powercheck_kernels_"
_PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIRS = ("quality",)
"""Packages whose every module is part of the key (the kernels and everything they call live there)."""

_SCALAR_TYPES = {"i8": "int64", "f8": "float64", "b1": "boolean"}
_cache_dir: Path | None = None
_LOCK = threading.Lock()  # one load of the module at a time (the service's threads)


class KernelBuildError(RuntimeError):
    """The ahead-of-time module could not be built (the message says why)."""


def parse_arg(spec: str) -> tuple | str:
    """The :func:`powercheck.jit.arg_key` of one argument spelled as in :data:`SIGNATURES`.

    >>> parse_arg("ro:f8[:,::1]")
    ('f8', 2, 'C', True)
    """
    readonly = spec.startswith("ro:")
    body = spec[3:] if readonly else spec
    if "[" not in body:
        if readonly or body not in _SCALAR_TYPES:
            raise ValueError(f"kernel argument {spec!r}: not one of {sorted(_SCALAR_TYPES)} or an array")
        return body
    dtype, _, dims = body.partition("[")
    if dtype not in _SCALAR_TYPES or not dims.endswith("]"):
        raise ValueError(f"kernel argument {spec!r}: expected <i8|f8|b1>[dims]")
    axes = dims[:-1].split(",")
    if any(a not in (":", "::1") for a in axes) or axes.count("::1") > 1:
        raise ValueError(f"kernel argument {spec!r}: each axis is ':' or '::1'")
    if axes[-1] == "::1":
        layout = "C"
    elif axes[0] == "::1":
        layout = "F"
    else:
        layout = "A"
    return (dtype, len(axes), layout, readonly)


def parse_signature(signature: str) -> tuple:
    """The argument keys of one signature of :data:`SIGNATURES`."""
    return tuple(parse_arg(word) for word in signature.split())


def export_name(kernel: str, index: int) -> str:
    """The extension module's function for signature ``index`` of ``kernel`` (``module.qualname``)."""
    module, _, function = kernel.rpartition(".")
    return f"{module.rpartition('.')[2]}__{function.lstrip('_')}__{index}"


# ---------------------------------------------------------------------------------------------------- the key


def _cpu_id() -> str:
    """The CPU as far as code generation goes, read without LLVM: on Linux the first processor's model and flags
    from ``/proc/cpuinfo``, elsewhere the platform's processor name; the machine type and numba's CPU overrides
    too. (``platform.processor()`` runs ``uname -p`` on Linux, ~10 ms: it is asked only without ``/proc``.)"""
    parts = [platform.machine(), os.environ.get("NUMBA_CPU_NAME", ""), os.environ.get("NUMBA_CPU_FEATURES", "")]
    wanted = ("vendor_id", "cpu family", "model", "model name", "flags", "features", "cpu part", "cpu implementer")
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor is enough
                name, _, value = line.partition(":")
                if name.strip().lower() in wanted:
                    parts.append(f"{name.strip()}={value.strip()}")
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _source_files() -> list[Path]:
    files = [_PACKAGE_DIR / "jit.py", _PACKAGE_DIR / "aot.py"]
    for sub in SOURCE_DIRS:
        files += sorted((_PACKAGE_DIR / sub).glob("*.py"))
    return files


@functools.cache
def environment() -> dict[str, str]:
    """What besides the source the compiled code depends on: numba's, llvmlite's, NumPy's and Python's versions,
    the extension ABI and the CPU."""
    from powercheck.lazy import installed_version

    return {
        "numba": installed_version("numba"),
        "llvmlite": installed_version("llvmlite"),
        "numpy": np.__version__,
        "python": sys.version,
        "abi": sysconfig.get_config_var("EXT_SUFFIX") or "",
        "cpu": _cpu_id(),
    }


@functools.cache
def module_key() -> str:
    """Hash of the kernels' source and :func:`environment`."""
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(environment(), sort_keys=True).encode())
    return digest.hexdigest()[:20]


def module_name() -> str:
    return MODULE_PREFIX + module_key()


def _suffix() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def cache_dir() -> Path:
    """Where the module is built and looked for: :func:`set_cache_dir`'s directory, else powercheck's default
    cache directory (``$POWERCHECK_CACHE_DIR``, ``~/.cache/powercheck``)."""
    if _cache_dir is not None:
        return _cache_dir
    from powercheck.grid.region import default_cache_dir

    return default_cache_dir()


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Look for (and build) the module in ``path`` (None: the default) -- ``--cache-dir`` of the commands. Kernels
    already called keep what they found."""
    global _cache_dir
    _cache_dir = None if path is None else Path(path)
    _load.cache_clear()


def module_paths(directory: Path | None = None) -> tuple[Path, Path]:
    """The module file and its manifest in ``directory`` (default: :func:`cache_dir`)."""
    directory = cache_dir() if directory is None else directory
    name = module_name()
    return directory / (name + _suffix()), directory / (name + ".json")


def enabled() -> bool:
    """False under ``POWERCHECK_AOT=0`` or ``NUMBA_DISABLE_JIT=1``."""
    from powercheck.jit import jit_disabled

    return os.environ.get("POWERCHECK_AOT", "1").strip() not in ("0", "") and not jit_disabled()


# -------------------------------------------------------------------------------------------------- loading


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _owned_and_private(path: Path) -> bool:
    """On POSIX: ``path`` belongs to this process's user and no one else may write it (native code from a file
    another user could have written is not loaded)."""
    if not hasattr(os, "getuid"):
        return True
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _checked_module_file(directory: Path) -> Path | None:
    """The module file if it is a regular file inside ``directory`` under the key's name, owned by this user and
    writable by no one else, with a manifest naming that key and the file's hash; else None."""
    path, manifest_path = module_paths(directory)
    if path.is_symlink() or manifest_path.is_symlink() or not path.is_file() or not manifest_path.is_file():
        return None
    root = directory.resolve()
    if path.resolve().parent != root or manifest_path.resolve().parent != root:
        return None
    if not (_owned_and_private(path) and _owned_and_private(manifest_path)):
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("key") != module_key():
        return None
    if manifest.get("sha256") != _sha256(path):
        return None
    return path


@functools.cache
def _load() -> Any:
    """The extension module, or None (not built, not enabled, or anything wrong with it)."""
    if not enabled():
        return None
    try:
        path = _checked_module_file(cache_dir())
        if path is None:
            return None
        spec = importlib.util.spec_from_file_location(module_name(), path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:  # noqa: BLE001 - a module that cannot be loaded is not used: the JIT runs instead
        return None


def is_built(directory: Path | None = None) -> bool:
    """A valid module for this key is in ``directory`` (default :func:`cache_dir`)."""
    directory = cache_dir() if directory is None else directory
    try:
        return _checked_module_file(directory) is not None
    except (OSError, ValueError):
        return False


def loaded_module() -> Any:
    """The loaded extension module, or None."""
    with _LOCK:
        return _load()


def functions_for(kernel: str) -> dict[tuple, Any]:
    """The compiled functions of ``kernel`` (``module.qualname``) by argument keys; {} without a module."""
    module = loaded_module()
    if module is None:
        return {}
    found = {}
    for i, signature in enumerate(SIGNATURES.get(kernel, ())):
        function = getattr(module, export_name(kernel, i), None)
        if callable(function):
            found[parse_signature(signature)] = function
    return found


def reset() -> None:
    """Forget the loaded module and every kernel's look-up (tests; after a build in the same process)."""
    from powercheck.jit import kernels

    _load.cache_clear()
    for kernel in kernels():
        kernel.forget_aot()


# ------------------------------------------------------------------------------------------------- building


def kernel_objects() -> dict[str, Any]:
    """The :class:`~powercheck.jit.Kernel` of every name in :data:`SIGNATURES` (their modules imported)."""
    from powercheck.jit import Kernel

    found = {}
    for name in SIGNATURES:
        module_name_, _, attr = name.rpartition(".")
        kernel = getattr(importlib.import_module(module_name_), attr, None)
        if not isinstance(kernel, Kernel) or not kernel.aot_eligible:
            raise KernelBuildError(f"{name} is not a plain @njit kernel of powercheck.jit")
        found[name] = kernel
    return found


def _numba_type(spec: tuple | str) -> Any:
    from numba.core import types

    if isinstance(spec, str):
        return getattr(types, _SCALAR_TYPES[spec])
    dtype, ndim, layout, readonly = spec
    return types.Array(getattr(types, _SCALAR_TYPES[dtype]), ndim, layout, readonly=readonly)


def build(directory: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Compile the kernels of :data:`SIGNATURES` into the module in ``directory`` (default :func:`cache_dir`) and
    return its path; an existing, valid module is kept unless ``force``. Raises :class:`KernelBuildError` with the
    reason when it cannot be built (no setuptools, no C compiler, the JIT disabled)."""
    from powercheck.jit import jit_disabled

    if jit_disabled():
        raise KernelBuildError("NUMBA_DISABLE_JIT is set: kernels cannot be compiled")
    target = Path(directory) if directory is not None else cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KernelBuildError(f"cache directory {target}: {exc.strerror or exc}") from exc
    path, manifest_path = module_paths(target)
    if not force and is_built(target):
        return path
    try:
        import setuptools  # noqa: F401 - numba.pycc builds with setuptools' distutils
    except ImportError as exc:
        raise KernelBuildError("setuptools is not installed (pip install setuptools)") from exc
    cc_command = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not cc_command or shutil.which(cc_command[0]) is None:
        raise KernelBuildError(f"no C compiler: {' '.join(cc_command) or 'cc'} is not on PATH (install gcc or set CC)")
    kernels = kernel_objects()
    from numba.pycc import CC

    try:
        work = Path(tempfile.mkdtemp(prefix=".kernels-build-", dir=target))
    except OSError as exc:
        raise KernelBuildError(f"cache directory {target}: {exc.strerror or exc}") from exc
    try:
        cc = CC(module_name(), source_module=__name__)
        cc.output_dir = str(work)
        cc.target_cpu = "host"  # as the JIT compiles (the key names the CPU)
        for name, kernel in kernels.items():
            for i, signature in enumerate(SIGNATURES[name]):
                args = tuple(_numba_type(spec) for spec in parse_signature(signature))
                cc.export(export_name(name, i), args)(kernel.py_func)  # the return type is inferred
        try:
            cc.compile()
        except Exception as exc:  # noqa: BLE001 - typing, LLVM or the C toolchain: one message
            raise KernelBuildError(f"compiling the kernels failed: {type(exc).__name__}: {exc}") from exc
        built = work / (module_name() + _suffix())
        if not built.is_file():
            raise KernelBuildError(f"the compiler wrote no {built.name}")
        manifest = {
            "key": module_key(),
            "sha256": _sha256(built),
            "environment": environment(),
            "kernels": {name: list(SIGNATURES[name]) for name in kernels},
        }
        tmp_manifest = work / "manifest.json"
        tmp_manifest.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.chmod(built, 0o755)  # whatever the umask: a module others may write is not loaded
        os.chmod(tmp_manifest, 0o644)
        os.replace(built, path)
        os.replace(tmp_manifest, manifest_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _remove_superseded(target)
    _load.cache_clear()
    return path


def _remove_superseded(directory: Path) -> None:
    """Remove the modules of this directory built in this same environment from other source (an earlier
    powercheck): no process of this environment can load them any more. Modules of other environments (another
    Python or numba sharing the cache directory) are kept."""
    keep = module_name()
    for manifest_path in directory.glob(MODULE_PREFIX + "*.json"):
        name = manifest_path.name[: -len(".json")]
        if name == keep or manifest_path.is_symlink():
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(manifest, dict) or manifest.get("environment") != environment():
            continue
        for stale in (directory / (name + _suffix()), manifest_path):
            try:
                stale.unlink()
            except OSError:
                pass
