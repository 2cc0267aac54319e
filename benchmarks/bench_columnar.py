"""Columnar screening (issue 13): throughput against one pandapower ``runpp`` per notification, the wall time of
``powercheck screen`` on a warm grid cache against interpreter start, and a long stream of decisions with its
peak RSS. Every figure is a ratio against a baseline measured in the same run; nothing absolute is asserted.

* ``test_columnar_screening_vs_runpp``: the demo mix (valid demo notifications repeated with new ids),
  decided by the engine and written as Arrow tables (:func:`powercheck.columnar.decision_tables`), against
  adding each notification's load to its pandapower network and running ``runpp`` once;
* ``test_screen_cli_warm_cache``: ``powercheck screen`` of the demo file in a fresh interpreter on a warm cache,
  against ``python -c "import powercheck"`` (interpreter start);
* ``test_stream_decisions_peak_rss``: ``POWERCHECK_BENCH_STREAM_N`` records (default 10,000; 1,000,000 for the
  issue's figure) screened by ``powercheck screen`` in a subprocess, with its peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

# the same baseline as bench_screening: one pandapower runpp per notification
from bench_screening import runpp_per_notification  # benchmarks/ is on sys.path under pytest

from powercheck.columnar import decision_tables
from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy

N_NOTIFICATIONS = 4000
N_BASELINE = 40
STREAM_N = int(os.environ.get("POWERCHECK_BENCH_STREAM_N", "10000"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return Path(os.environ.get("POWERCHECK_TEST_CACHE") or tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def region(cache) -> GridRegion:
    return GridRegion.load(demo_region_dir(), cache_dir=cache)


@pytest.fixture(scope="module")
def notifications() -> list[Notification]:
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    return [
        valid[i % len(valid)].model_copy(update={"notification_id": f"{valid[i % len(valid)].notification_id}-{i}"})
        for i in range(N_NOTIFICATIONS)
    ]


def test_columnar_screening_vs_runpp(benchmark, region, notifications):
    assessor = Assessor(region, load_policy())
    lines = list(range(1, len(notifications) + 1))

    def screen():
        assessed = assessor.assess_recorded(notifications)
        return decision_tables(assessed.entries, lines)

    assessor.assess_recorded(notifications[:50])  # compile / warm up
    nets = {nid: region.network_net(nid) for nid in region.network_order}
    sample = [n for n in notifications if region.locate([n.metering_point_id])[0] >= 0][:N_BASELINE]
    runpp_per_notification(region, sample[:3], nets)
    baseline_s = min(runpp_per_notification(region, sample, nets) for _ in range(3))
    baseline_rate = len(sample) / baseline_s
    # the object path in the same run: Decision objects, then dict rows
    start = time.perf_counter()
    objects = assessor.assess_many(notifications)
    object_rate = len(objects) / (time.perf_counter() - start)

    decisions, checks = benchmark.pedantic(screen, rounds=3, iterations=1)
    assert decisions.num_rows == len(notifications)
    rate = len(notifications) / benchmark.stats.stats.min
    benchmark.extra_info.update(
        notifications=len(notifications),
        check_rows=checks.num_rows,
        notifications_per_s=round(rate, 1),
        object_path_notifications_per_s=round(object_rate, 1),
        baseline="pandapower runpp per notification",
        baseline_notifications_per_s=round(baseline_rate, 1),
        speedup_vs_runpp=round(rate / baseline_rate, 1),
    )


def _run(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    return seconds, proc.stdout


def _cpu(argv: list[str]) -> float:
    """CPU seconds (user + system) of a child process: less sensitive than wall time to other load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _run(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_screen_cli_warm_cache(benchmark, region, cache, tmp_path):
    screen = [sys.executable, "-m", "powercheck", "screen", str(demo_notifications_path()), "--out",
              str(tmp_path / "d.parquet"), "--cache-dir", str(cache), "--quiet"]  # fmt: skip
    _run(screen)  # warm: grid cache, numba's on-disk cache
    start_s = min(_run([sys.executable, "-c", "import powercheck"])[0] for _ in range(3))
    times = [_run(screen)[0] for _ in range(3)]
    start_cpu = min(_cpu([sys.executable, "-c", "import powercheck"]) for _ in range(3))
    screen_cpu = min(_cpu(screen) for _ in range(3))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    best = min(times)
    benchmark.extra_info.update(
        records=sum(1 for _ in open(demo_notifications_path(), encoding="utf-8")),
        screen_wall_s=round(best, 3),
        interpreter_start_s=round(start_s, 3),
        beyond_interpreter_start_s=round(best - start_s, 3),
        screen_cpu_s=round(screen_cpu, 3),
        interpreter_start_cpu_s=round(start_cpu, 3),
        beyond_interpreter_start_cpu_s=round(screen_cpu - start_cpu, 3),
    )


PROBE = """
import json, resource, sys, time
import powercheck.screen as screen
from powercheck.cli import main
marks = []
def sample(self, done):
    with open("/proc/self/status") as fh:
        marks.append(int(fh.read().split("VmRSS:")[1].split()[0]) / 1024)
screen.ProgressBar.update = sample  # RSS after every chunk, in place of the progress bar
t = time.perf_counter()
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_after_chunks_mb": marks}))
"""


def test_stream_decisions_peak_rss(benchmark, region, cache, tmp_path):
    lines = [line.rstrip("\n") for line in open(demo_notifications_path(), encoding="utf-8") if line.strip()]
    path = tmp_path / "many.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(STREAM_N):
            line = lines[i % len(lines)]
            try:
                record = json.loads(line)
            except ValueError:  # the demo's unreadable lines stay as they are
                record = None
            if isinstance(record, dict) and isinstance(record.get("notification_id"), str):
                record["notification_id"] = f"{record['notification_id']}-{i}"
                line = json.dumps(record)
            fh.write(line + "\n")
    argv = ["screen", str(path), "--out", str(tmp_path / "many.parquet"), "--cache-dir", str(cache), "--quiet"]
    seconds, out = _run([sys.executable, "-c", PROBE, *argv])
    report = json.loads(out.strip().splitlines()[-1])
    small = tmp_path / "small.jsonl"
    small.write_text("".join(open(path, encoding="utf-8").readlines()[:500]), encoding="utf-8")
    _, out_small = _run([sys.executable, "-c", PROBE, "screen", str(small), "--out", str(tmp_path / "s.parquet"),
                         "--cache-dir", str(cache), "--quiet"])  # fmt: skip
    small_report = json.loads(out_small.strip().splitlines()[-1])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(
        records=STREAM_N,
        seconds=round(report["seconds"], 2),
        records_per_s=round(STREAM_N / report["seconds"], 1),
        peak_rss_mb=round(report["peak_rss_mb"], 1),
        rss_after_first_chunk_mb=round(report["rss_after_chunks_mb"][0], 1) if report["rss_after_chunks_mb"] else None,
        rss_after_middle_chunk_mb=round(report["rss_after_chunks_mb"][len(report["rss_after_chunks_mb"]) // 2], 1)
        if report["rss_after_chunks_mb"]
        else None,
        rss_after_last_chunk_mb=round(report["rss_after_chunks_mb"][-1], 1) if report["rss_after_chunks_mb"] else None,
        peak_rss_mb_500_records=round(small_report["peak_rss_mb"], 1),
        self_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
