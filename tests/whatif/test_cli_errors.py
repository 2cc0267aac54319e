"""`powercheck whatif` usability: one-line errors for bad arguments before any heavy import, an unreachable
scheduler in one line after a short timeout, the progress bar and the advice on `--scheduler local`."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time

import pytest

from powercheck.whatif.args import StudyProgress, local_scheduler_advice

BASE = ["--feeders", "demo:it-landnetz-luft", "--ev-share", "0", "--samples", "1", "--days", "1"]


def _run(args, tmp_path, timeout=120):
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "powercheck", "whatif", *args, "--out", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.perf_counter() - started


@pytest.mark.parametrize(
    "change, message",
    [
        (["--days", "foo"], "--days: expected a number of days from 1 to 366 or 'all', got 'foo'"),
        (["--days", "0"], "--days: expected a number of days from 1 to 366 or 'all', got '0'"),
        (["--samples", "many"], "--samples: expected a whole number from 1 to 1000000, got 'many'"),
        (["--samples", "0"], "--samples: expected a whole number from 1 to 1000000, got 0"),
        (["--seed", "-1"], "--seed: expected a whole number"),
        (["--chunk", "1.5"], "--chunk: expected a whole number"),
        (["--ev-share", "0:1:0.3"], "--ev-share: expected start:stop:step"),
        (["--pv-share", "2"], "--pv-share: shares must be between 0 and 1"),
        (["--max-probability", "0"], "--max-probability: expected a number in (0, 1), got '0'"),
        (["--criterion", "p50"], "--criterion: expected 'any' or 'p95', got 'p50'"),
        (["--scheduler", "my-cluster"], "--scheduler: expected 'local' or an address like tcp://host:8786"),
        (["--scheduler-timeout", "-3"], "--scheduler-timeout: expected a number in (0, 600]"),
        (["--feeders", "demo:nope"], "--feeders: 'demo:nope': no network 'nope'"),
        (["--feeders", "1-LV-rural1--0-sw@XX"], "--feeders: '1-LV-rural1--0-sw@XX': suffix must be @IT or @TN"),
        (["--feeders", "region:/no/such/dir"], "--feeders: 'region:/no/such/dir': region directory"),
        (["--assumptions", "/no/such.toml"], "--assumptions: /no/such.toml not found"),
        (["--policy", "/no/such.toml"], "--policy: /no/such.toml not found"),
    ],
)
def test_bad_argument_is_one_line_before_any_work(tmp_path, change, message):
    proc, elapsed = _run(BASE + change, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("powercheck whatif: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_assumptions_file_is_one_line(tmp_path):
    bad = tmp_path / "a.toml"
    bad.write_text("[pv]\nsingle_phase_share = 7\n", encoding="utf-8")
    proc, _ = _run(BASE + ["--assumptions", str(bad)], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1
    assert f"{bad}: pv.single_phase_share: 7 outside the allowed range [0, 1]" in lines[0]


def test_arguments_are_checked_without_heavy_imports():
    code = (
        "import sys\nfrom powercheck.cli import main\n"
        "rc = main(['whatif', '--feeders', 'demo', '--days', 'foo'])\n"
        "print(rc, sorted(m for m in ('pandapower', 'dask', 'distributed', 'matplotlib', 'numba') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr


def test_unreachable_scheduler_is_one_line_after_the_timeout(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc, elapsed = _run(BASE + ["--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "1"], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"powercheck whatif: --scheduler tcp://127.0.0.1:{port}: no Dask scheduler answered")
    assert "within 1 s" in lines[0] and "Traceback" not in proc.stderr
    assert elapsed < 45  # imports plus the 1 s timeout, not distributed's 30 s default


def test_local_scheduler_advice():
    assert "2 cores" in local_scheduler_advice(2) and "tcp://" in local_scheduler_advice(1)
    assert local_scheduler_advice(4) is None and local_scheduler_advice(16) is None


def test_progress_bar_covers_feeder_loading_with_eta():
    out = io.StringIO()
    bar = StudyProgress(stream=out, width=10)
    bar("feeders", 0, 2, "demo:a")
    bar("feeders", 1, 2, "demo:b")
    bar("feeders", 2, 2)
    bar("tasks", 0, 4)
    bar("tasks", 2, 4)
    bar("tasks", 4, 4)
    bar.close()
    text = out.getvalue()
    first, second = text.strip("\n").split("\n")
    assert "loading feeders [.....#####" not in first and "loading feeders [#####.....] 1/2" in first
    assert "ETA" in first and "demo:b" in first and first.rstrip().endswith("done")
    assert "solving [#####.....] 2/4" in second and "ETA" in second and second.rstrip().endswith("done")
