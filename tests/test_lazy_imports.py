"""A screening run of a JSON Lines file on a warm grid cache imports neither pandapower, matplotlib nor pandas
(issue 13).

Importing pandapower (and matplotlib through it) took 6 of the 7 s of a 207-record ``powercheck screen``.
They are imported only where a grid cache is built or a what-if study or plot needs them
(:mod:`powercheck.lazy`). The test runs ``powercheck screen`` twice in a fresh interpreter: the first run
builds the cache (and imports pandapower), the second reads it and must not import them. pandas is not
imported either: the customer index is cached as Arrow and the decisions are built without ``pyarrow.array``
(which imports pandas on its first call; :mod:`powercheck.arrow`). A Parquet input still imports it (pyarrow's
Parquet reader does). ``pyarrow.compute`` and ``pyarrow.csv`` (about 30 ms) are needed only to read AMS files,
``sqlite3`` only with ``--ledger`` (without it the run's ledger is the in-memory state alone), and the service
only by ``powercheck serve`` (the parser no longer reads its default limits).
"""

from __future__ import annotations

import json
import subprocess
import sys

from powercheck.demo import demo_notifications_path

HEAVY = (
    "pandapower",
    "matplotlib",
    "pandas",
    "scipy.linalg",
    "pyarrow.compute",
    "pyarrow.csv",
    "sqlite3",
    "powercheck.service",
)

PROBE = """
import json, sys
from powercheck.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "heavy": sorted(m for m in %r if m in sys.modules)}))
"""


def _screen(cache, out) -> dict:
    argv = ["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache), "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *argv], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_warm_screen_does_not_import_pandapower_matplotlib_pandas_or_scipy_linalg(tmp_path):
    cache = tmp_path / "cache"
    cold = _screen(cache, tmp_path / "cold.parquet")
    assert cold["rc"] == 0
    assert "pandapower" in cold["heavy"]  # building the cache needs pandapower: the probe sees imports
    warm = _screen(cache, tmp_path / "warm.parquet")
    assert warm == {"rc": 0, "heavy": []}


def test_lazy_module_imports_on_first_attribute():
    from powercheck.lazy import lazy_module

    code = (
        "import sys; from powercheck.lazy import lazy_module; m = lazy_module('colorsys'); "
        "before = 'colorsys' in sys.modules; value = m.rgb_to_hsv(1, 0, 0); "
        "print(before, 'colorsys' in sys.modules, value)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split()[:2] == ["False", "True"]
    assert lazy_module("json").dumps([1]) == json.dumps([1])


def test_blas_kernels_still_work_after_the_deferred_blas_check():
    """powercheck.jit lets numba's start-up BLAS check pass without importing scipy.linalg; a kernel that uses
    BLAS, compiled afterwards, must still get it (and import it then): np.dot of float vectors and a matrix
    product, against the sums written out."""
    code = (
        "import sys, numpy as np, numba, powercheck.jit\n"
        "before = 'scipy.linalg' in sys.modules\n"
        "dot = numba.njit(lambda a, b: np.dot(a, b))\n"
        "a = np.array([1.0, 2.0, 3.0]); b = np.array([4.0, -5.0, 6.0])\n"
        "m = np.array([[1.0, 2.0], [3.0, 4.0]])\n"
        "import json; print(json.dumps([before, dot(a, b), dot(m, m).tolist(), 'scipy.linalg' in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    before, value, product, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before is False
    assert value == 1 * 4 + 2 * -5 + 3 * 6  # 12
    assert product == [[1 * 1 + 2 * 3, 1 * 2 + 2 * 4], [3 * 1 + 4 * 3, 3 * 2 + 4 * 4]]  # [[7, 10], [15, 22]]
    assert after is True
