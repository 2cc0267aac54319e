"""Kernels compiled ahead of time (issue 13, :mod:`powercheck.aot`): the same results as the JIT, bit for bit, on
the demo screening's own inputs; a warm-cache ``powercheck screen`` that never imports numba and decides as the
golden file says; a stale, corrupt or mismatched module ignored (the JIT runs, the decisions are the same); clear
errors from ``powercheck kernels build``.

The module is built once for this file (``powercheck kernels build`` into a temporary cache directory, ~10-60 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from powercheck import aot
from powercheck.demo import demo_notifications_path
from powercheck.io import read_decisions
from powercheck.jit import Kernel, arg_key
from powercheck.ledger import CapacityState
from powercheck.rules.capacity import capacity_map
from powercheck.rules.context import GridView
from powercheck.rules.engine import Assessor
from powercheck.screen import screen_file
from tests.helpers.compare import differences
from tests.helpers.mini import FIXED_TIME
from tests.test_golden import GOLDEN, golden_rows

CALLS_KEPT = 6
"""Calls kept per kernel and signature (the first ones of the demo screening, and the last)."""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POWERCHECK_AOT", "NUMBA_DISABLE_JIT", "CC")}
    env.update(extra)
    return env


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "powercheck", *args], capture_output=True, text=True, timeout=900, env=_env(**env)
    )


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory, cache_dir, demo_region) -> Path:
    """A cache directory with the demo's grid cache (copied from the session's) and the module built in it by
    ``powercheck kernels build``."""
    target = tmp_path_factory.mktemp("aot-cache")
    for item in Path(cache_dir).iterdir():
        if item.is_file() and not item.name.startswith(aot.MODULE_PREFIX):
            shutil.copy2(item, target / item.name)
    proc = _cli("kernels", "build", "--cache-dir", str(target))
    assert proc.returncode == 0, proc.stderr
    path, manifest = aot.module_paths(target)
    assert path.is_file() and manifest.is_file(), proc.stderr
    assert json.loads(manifest.read_text(encoding="utf-8"))["key"] == aot.module_key()
    return target


@pytest.fixture
def use_kernel_dir(kernel_dir):
    """This process's kernels look the module up in ``kernel_dir`` (put back afterwards)."""
    aot.set_cache_dir(kernel_dir)
    aot.reset()
    yield kernel_dir
    aot.set_cache_dir(None)
    aot.reset()


@pytest.fixture(scope="module")
def demo_calls(demo_region, policy, tmp_path_factory) -> dict[str, dict[tuple, list[tuple]]]:
    """The arguments of the kernels' calls from Python during the demo screening and the demo's capacity map
    (kernel -> arg keys -> calls), copied as they were passed (read-only arrays stay read-only)."""
    calls: dict[str, dict[tuple, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    original = Kernel.__call__

    def recording(self, *args, **kwargs):
        assert not kwargs, f"{self.name} called with keywords: the module's functions take positional arguments"
        kept = calls[self.name][tuple(map(arg_key, args))]
        snapshot = tuple(_copy(a) for a in args)
        if len(kept) < CALLS_KEPT:
            kept.append(snapshot)
        else:
            kept[-1] = snapshot
        return original(self, *args)

    Kernel.__call__ = recording
    try:
        assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("POWERCHECK_AOT", "0")
            aot.reset()
            screen_file(demo_notifications_path(), assessor, tmp_path_factory.mktemp("aot-demo") / "d.parquet")
            capacity_map(GridView.of(demo_region), policy)
    finally:
        Kernel.__call__ = original
        aot.reset()
    return {name: dict(by_key) for name, by_key in calls.items()}


def _copy(value):
    if isinstance(value, np.ndarray):
        copy = value.copy()
        copy.flags.writeable = value.flags.writeable
        return copy
    return value


def _same_bits(a, b) -> bool:
    """Equal values, types, shapes and bits (NaNs with the same payload)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_bits(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_signature_spelling_matches_the_argument_keys():
    assert aot.parse_arg("f8") == "f8" == arg_key(1.5) == arg_key(np.float64(2.0))
    assert aot.parse_arg("i8") == "i8" == arg_key(3) == arg_key(np.int64(3))
    assert aot.parse_arg("f8[::1]") == ("f8", 1, "C", False) == arg_key(np.zeros(3))
    assert aot.parse_arg("f8[:,::1]") == ("f8", 2, "C", False) == arg_key(np.zeros((2, 3)))
    readonly = np.zeros(4, dtype=np.int64)
    readonly.flags.writeable = False
    assert aot.parse_arg("ro:i8[::1]") == ("i8", 1, "C", True) == arg_key(readonly)
    assert aot.parse_arg("f8[:]") == ("f8", 1, "A", False) == arg_key(np.zeros(6)[::2])
    assert arg_key(np.zeros((3, 2)).T) == ("f8", 2, "F", False)
    assert arg_key(np.zeros(3, dtype=np.float32)) == ("f4", 1, "C", False)  # in no signature: the JIT runs
    assert arg_key(np.zeros(3, dtype=">f8")) == (None, 1, "C", False)  # not native: in no signature either
    assert arg_key(True) == "b1" and arg_key("x") is None
    for bad in ("f4", "f8[::1,::1]", "ro:f8", "f8[2]", "f8[:"):
        with pytest.raises(ValueError, match="kernel argument"):
            aot.parse_arg(bad)
    for signatures in aot.SIGNATURES.values():  # every listed signature parses, export names are unique
        for signature in signatures:
            aot.parse_signature(signature)
    names = [aot.export_name(n, i) for n, sigs in aot.SIGNATURES.items() for i in range(len(sigs))]
    assert len(names) == len(set(names))


def test_signatures_are_those_the_demo_screening_and_capacity_map_call(demo_calls):
    """The table lists exactly the plain ``@njit`` kernels that the demo screening and capacity map call from
    Python, with the argument types they pass them: a kernel whose arguments change fails here (and would run on
    the JIT)."""
    eligible = {(name, key) for name, by_key in demo_calls.items() for key in by_key if _kernel(name).aot_eligible}
    listed = {(name, aot.parse_signature(sig)) for name, sigs in aot.SIGNATURES.items() for sig in sigs}
    assert eligible == listed
    assert len(aot.kernel_objects()) == 15


def _kernel(name: str) -> Kernel:
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_every_aot_kernel_gives_the_jit_results_bit_for_bit(kernel_dir, use_kernel_dir, demo_calls):
    """Each exported signature, on the demo screening's own arguments (first and last calls): the same returned
    arrays and scalars, and the same arrays written in place, as numba's JIT dispatcher of the same function."""
    compared = 0
    for name, signatures in aot.SIGNATURES.items():
        kernel = _kernel(name)
        compiled = aot.functions_for(name)
        assert len(compiled) == len(signatures), f"{name}: not every signature is in the module"
        # the extension module's own functions (C), not numba dispatchers
        assert all(type(f).__name__ == "builtin_function_or_method" for f in compiled.values())
        assert all(f.__module__ == aot.module_name() for f in compiled.values())
        for signature in signatures:
            key = aot.parse_signature(signature)
            calls = demo_calls[name][key]
            assert calls, f"{name} {signature}: not called by the demo screening or capacity map"
            for args in calls:
                jit_args = tuple(_copy(a) for a in args)
                aot_args = tuple(_copy(a) for a in args)
                want = kernel.dispatcher(*jit_args)
                got = compiled[key](*aot_args)
                assert _same_bits(got, want), f"{name}: results differ from the JIT's"
                assert _same_bits(aot_args, jit_args), f"{name}: arrays written in place differ from the JIT's"
                compared += 1
    assert compared >= 17


def test_kernels_dispatch_to_the_module_only_for_matching_arguments(use_kernel_dir):
    """Through the kernel's own name: matching arguments run the module's function; a float32 array, or a
    strided view, runs the JIT dispatcher -- with the same result. |Z1| = hypot(0.3, 0.4) = 0.5 ohm, so
    VUF = 100 * 1000 * 10 kVA * 0.5 / 400^2 = 3.125 %."""
    from powercheck.quality.unbalance import unbalance_percent

    s, r, x, u = (np.array([10.0, 0.0]), np.array([0.3, 0.3]), np.array([0.4, 0.4]), np.array([400.0, 400.0]))
    (compiled,) = aot.functions_for(unbalance_percent.name).values()
    calls = []

    def spy(*args):
        calls.append(args)
        return compiled(*args)

    unbalance_percent._aot = {aot.parse_signature(aot.SIGNATURES[unbalance_percent.name][0]): spy}
    assert unbalance_percent(s, r, x, u).tolist() == [3.125, 0.0]
    assert len(calls) == 1
    wide = np.array([10.0, 99.0, 0.0, 99.0])
    assert unbalance_percent(wide[::2], r, x, u).tolist() == [3.125, 0.0]  # a strided view: the JIT
    assert unbalance_percent(s.astype(np.float32), r, x, u).tolist() == [3.125, 0.0]  # float32: the JIT
    assert len(calls) == 1


PROBE = """
import json, sys
from powercheck.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "numba": "numba" in sys.modules, "llvmlite": "llvmlite" in sys.modules}))
"""


def _screen(cache: Path, out: Path, **env: str) -> dict:
    argv = ["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache), "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=600, env=_env(**env)
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["stderr"] = proc.stderr
    return report


def _assert_golden(out: Path) -> None:
    got = golden_rows(read_decisions(out))
    want = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(want) == 228
    for g, w in zip(got, want):
        diff = differences(g, w)
        assert not diff, f"{w['notification_id']} differs from the golden file: {diff[:5]}"


def test_warm_screen_with_the_module_does_not_import_numba(kernel_dir, tmp_path):
    report = _screen(kernel_dir, tmp_path / "aot.parquet")
    assert (report["rc"], report["numba"], report["llvmlite"], report["stderr"]) == (0, False, False, "")
    _assert_golden(tmp_path / "aot.parquet")
    # POWERCHECK_AOT=0: the JIT alone (numba imported), the same decisions
    jit = _screen(kernel_dir, tmp_path / "jit.parquet", POWERCHECK_AOT="0")
    assert (jit["rc"], jit["numba"]) == (0, True)
    _assert_golden(tmp_path / "jit.parquet")


def test_capacity_map_with_the_module_does_not_import_numba(kernel_dir, tmp_path):
    """`powercheck capacity` of the demo: numba not imported with the module, the same map as the JIT alone's."""
    maps = {}
    for mode in ("1", "0"):
        out = tmp_path / f"capacity-{mode}.parquet"
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, "capacity", "--out", str(out), "--cache-dir", str(kernel_dir), "-q"],
            capture_output=True,
            text=True,
            timeout=600,
            env=_env(POWERCHECK_AOT=mode),
        )
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert (report["rc"], report["numba"]) == (0, mode == "0")
        maps[mode] = pq.read_table(out)
    assert maps["1"].num_rows == 285
    assert maps["1"].equals(maps["0"])


def _copy_dir(kernel_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(kernel_dir, target)
    return target


def test_a_corrupt_module_is_ignored_and_the_jit_decides(kernel_dir, tmp_path):
    cache = _copy_dir(kernel_dir, tmp_path)
    path, manifest_path = aot.module_paths(cache)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated: its hash no longer matches the manifest
    assert not aot.is_built(cache)
    report = _screen(cache, tmp_path / "truncated.parquet")
    assert (report["rc"], report["numba"], report["stderr"]) == (0, True, "")
    _assert_golden(tmp_path / "truncated.parquet")
    # garbage whose hash the manifest does name: the import fails, the JIT decides
    path.write_bytes(b"\x7fELF not really a shared object" * 100)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["sha256"] = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert aot.is_built(cache)  # it passes the checks before the import...
    report = _screen(cache, tmp_path / "garbage.parquet")
    assert (report["rc"], report["numba"], report["stderr"]) == (0, True, "")  # ...which fails quietly
    _assert_golden(tmp_path / "garbage.parquet")


def test_a_stale_or_mismatched_module_is_never_loaded(kernel_dir, tmp_path, monkeypatch):
    cache = _copy_dir(kernel_dir, tmp_path)
    aot.set_cache_dir(cache)
    try:
        aot.reset()
        assert aot.loaded_module() is not None  # the copy itself loads
        old_path, old_manifest = aot.module_paths(cache)
        # the kernels' source changes (a new module in powercheck/quality, say): another key, the old file unused
        extra = tmp_path / "extra.py"
        extra.write_text("X = 1\n", encoding="utf-8")
        original_sources = aot._source_files
        monkeypatch.setattr(aot, "_source_files", lambda: [*original_sources(), extra])
        aot.module_key.cache_clear()
        aot.reset()
        new_path, new_manifest = aot.module_paths(cache)
        assert new_path != old_path and old_path.is_file()
        assert aot.loaded_module() is None
        assert aot.functions_for("powercheck.quality.unbalance.unbalance_percent") == {}
        # the old module copied under the new key's name: its manifest names the old key
        shutil.copy2(old_path, new_path)
        shutil.copy2(old_manifest, new_manifest)
        aot.reset()
        assert aot.loaded_module() is None
        # with the manifest rewritten to the new key, the import still fails (its init function has the old name)
        manifest = json.loads(new_manifest.read_text(encoding="utf-8"))
        manifest["key"] = aot.module_key()
        new_manifest.write_text(json.dumps(manifest), encoding="utf-8")
        aot.reset()
        assert aot.is_built(cache) and aot.loaded_module() is None
        # a symbolic link under the right name, to a module outside the cache directory, is not followed
        monkeypatch.setattr(aot, "_source_files", original_sources)
        aot.module_key.cache_clear()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        path, manifest_path = aot.module_paths(cache)
        shutil.move(path, elsewhere / path.name)
        path.symlink_to(elsewhere / path.name)
        aot.reset()
        assert aot.loaded_module() is None
    finally:
        aot.module_key.cache_clear()
        aot.set_cache_dir(None)
        aot.reset()


def test_a_build_removes_the_modules_it_supersedes_in_the_same_environment(kernel_dir, tmp_path):
    """An earlier powercheck's module (same environment, other key) goes; another environment's stays. The build
    itself is not repeated: only the clean-up after it runs."""
    cache = _copy_dir(kernel_dir, tmp_path)
    path, manifest_path = aot.module_paths(cache)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["environment"] == aot.environment()
    old = aot.MODULE_PREFIX + "0" * 20
    (cache / (old + aot._suffix())).write_bytes(b"an earlier build")
    (cache / (old + ".json")).write_text(json.dumps({**manifest, "key": "0" * 20}), encoding="utf-8")
    other = aot.MODULE_PREFIX + "1" * 20
    (cache / (other + aot._suffix())).write_bytes(b"another Python's build")
    elsewhere = {**manifest, "key": "1" * 20, "environment": {**manifest["environment"], "python": "3.99"}}
    (cache / (other + ".json")).write_text(json.dumps(elsewhere), encoding="utf-8")
    aot._remove_superseded(cache)
    assert sorted(p.name for p in cache.glob(aot.MODULE_PREFIX + "*")) == sorted(
        [path.name, manifest_path.name, other + aot._suffix(), other + ".json"]
    )


def test_a_module_others_may_write_is_not_loaded(kernel_dir, tmp_path):
    cache = _copy_dir(kernel_dir, tmp_path)
    path, manifest_path = aot.module_paths(cache)
    assert aot.is_built(cache)
    for target in (path, manifest_path):
        mode = target.stat().st_mode
        target.chmod(mode | 0o002)  # writable by others
        assert not aot.is_built(cache)
        target.chmod(mode | 0o020)  # writable by the group
        assert not aot.is_built(cache)
        target.chmod(mode)
        assert aot.is_built(cache)


def test_a_missing_export_runs_that_signature_on_the_jit(kernel_dir, use_kernel_dir, monkeypatch):
    name = "powercheck.quality.unbalance.unbalance_percent"
    extra = "ro:f8[::1] f8[::1] f8[::1] f8[::1]"  # listed now, but not in the module built before
    monkeypatch.setitem(aot.SIGNATURES, name, (*aot.SIGNATURES[name], extra))
    found = aot.functions_for(name)
    assert list(found) == [aot.parse_signature(aot.SIGNATURES[name][0])]


def test_numba_disable_jit_runs_plain_python(kernel_dir):
    code = (
        "import json, numpy as np\n"
        "from powercheck import aot\n"
        "from powercheck.quality.unbalance import unbalance_percent as f\n"
        "a = lambda *v: np.array(v)\n"
        "value = f(a(10.0), a(0.3), a(0.4), a(400.0)).tolist()\n"
        "print(json.dumps([value, f.dispatcher is f.py_func, aot.loaded_module() is None]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(NUMBA_DISABLE_JIT="1", POWERCHECK_CACHE_DIR=str(kernel_dir)),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [[3.125], True, True]


def test_kernels_status_and_an_up_to_date_build(kernel_dir, tmp_path):
    status = _cli("kernels", "status", "--cache-dir", str(kernel_dir))
    assert status.returncode == 0 and "built" in status.stdout and aot.module_name() in status.stdout
    again = _cli("kernels", "build", "--cache-dir", str(kernel_dir))
    assert again.returncode == 0 and "up to date" in again.stderr
    # `powercheck region` says how to build it where it is missing, and nothing where it is built
    hint = "`powercheck kernels build` makes `screen` start faster"
    built = _cli("region", "--cache-dir", str(kernel_dir))
    assert built.returncode == 0 and hint not in built.stderr
    missing = _copy_dir(kernel_dir, tmp_path)
    for path in aot.module_paths(missing):
        path.unlink()
    assert _cli("kernels", "status", "--cache-dir", str(missing)).stdout.startswith(
        "kernels compiled ahead of time: not built"
    )
    unbuilt = _cli("region", "--cache-dir", str(missing))
    assert unbuilt.returncode == 0 and unbuilt.stderr.strip().splitlines()[-1].endswith(hint)


def test_build_errors_are_one_clear_line(tmp_path, monkeypatch):
    no_compiler = _cli("kernels", "build", "--cache-dir", str(tmp_path / "a"), CC="/nonexistent/cc")
    assert no_compiler.returncode == 1
    assert no_compiler.stderr.strip().splitlines()[-1] == (
        "powercheck kernels build: no C compiler: /nonexistent/cc is not on PATH (install gcc or set CC); "
        "the kernels are compiled just in time instead"
    )
    disabled = _cli("kernels", "build", "--cache-dir", str(tmp_path / "b"), NUMBA_DISABLE_JIT="1")
    assert disabled.returncode == 1 and "NUMBA_DISABLE_JIT is set" in disabled.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    not_a_dir = _cli("kernels", "build", "--cache-dir", str(blocker / "sub"), "-q")
    assert not_a_dir.returncode == 1 and f"cache directory {blocker / 'sub'}" in not_a_dir.stderr
    if hasattr(os, "getuid") and os.getuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        read_only = _cli("kernels", "build", "--cache-dir", str(locked), "-q")
        assert read_only.returncode == 1 and f"cache directory {locked}" in read_only.stderr
    assert "Traceback" not in no_compiler.stderr + disabled.stderr + not_a_dir.stderr
    monkeypatch.setitem(sys.modules, "setuptools", None)  # `import setuptools` fails
    with pytest.raises(aot.KernelBuildError, match="setuptools is not installed"):
        aot.build(tmp_path / "c")
    assert not list((tmp_path / "c").iterdir())  # nothing half-built left behind
