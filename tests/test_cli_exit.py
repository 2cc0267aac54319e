"""The ``powercheck`` process ends without the interpreter's teardown, but as a normal exit would for everything
that can be observed: exit status, flushed output, exit handlers, other threads (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq

from powercheck.demo import demo_notifications_path


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


def test_end_process_flushes_output_and_runs_exit_handlers_with_the_status():
    code = (
        "import atexit, sys, tempfile\n"
        "from powercheck.cli import end_process\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "d = tempfile.TemporaryDirectory()\n"  # removed by its weakref.finalize at exit
        "print(d.name)\n"
        "sys.stdout.write('buffered, no newline')\n"
        "end_process(3)\n"
        "print('never')\n"
    )
    proc = _python(code)
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert lines[1:] == ["buffered, no newlinehandler ran"]
    assert not os.path.exists(lines[0])  # the temporary directory's finalizer ran


def test_end_process_with_another_thread_running_waits_for_it():
    code = (
        "import threading, time\n"
        "from powercheck.cli import end_process\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
        "end_process(0)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "thread done"


def test_powercheck_module_screens_and_exits_with_its_status(tmp_path, cache_dir):
    out = tmp_path / "d.parquet"
    argv = ["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache_dir), "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "powercheck", *argv], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("228 notifications in ")
    assert pq.read_table(out).num_rows == 228
    missing = subprocess.run(
        [sys.executable, "-m", "powercheck", "screen", str(tmp_path / "none.jsonl"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_the_process_starts_openblas_single_threaded_unless_the_environment_says_otherwise():
    """numpy and SciPy (which numba imports) load OpenBLAS; started by ``run`` the process has no OpenBLAS worker
    threads (one thread: the main one), unless ``OPENBLAS_NUM_THREADS`` is set."""
    code = (
        "import os, sys\n"
        "from powercheck import cli\n"
        "def probe(argv=None):\n"
        "    import numpy, scipy.linalg\n"
        "    print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))\n"
        "    return 0\n"
        "cli.main = probe\n"
        "cli.run()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "2"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    setting, threads = proc.stdout.split()
    assert setting == "2" and int(threads) > 1  # the user's setting: OpenBLAS workers beside the main thread
