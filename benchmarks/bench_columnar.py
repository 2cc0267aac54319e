"""Columnar screening (issue 13): throughput against one pandapower ``runpp`` per notification, the wall time of
``powercheck screen`` on a warm grid cache against interpreter start, and a long stream of decisions with its
peak RSS. Every figure is a ratio against a baseline measured in the same run; nothing absolute is asserted.

* ``test_columnar_screening_vs_runpp``: the demo mix (valid demo notifications repeated with new ids),
  decided by the engine and written as Arrow tables (:func:`powercheck.columnar.decision_tables`) in one
  collector pause that ends after the batch is freed, as ``powercheck screen`` decides a chunk, against
  adding each notification's load to its pandapower network and running ``runpp`` once;
* ``test_screen_cli_warm_cache``: ``powercheck screen`` of the demo file in a fresh interpreter on a warm cache
  with the kernels compiled ahead of time, against ``python -c "import powercheck"`` (interpreter start), and the
  same run on the JIT alone (``POWERCHECK_AOT=0``) as extra_info;
* ``test_stream_decisions_peak_rss``: ``POWERCHECK_BENCH_STREAM_N`` records (default 10,000; 1,000,000 for the
  issue's figure) screened by ``powercheck screen`` in a subprocess, with its peak RSS (``VmHWM`` of that
  process), its RSS after every chunk and the RSS slope per 1,000 records between the first and the last chunk
  (what a longer run adds), and the same slope fitted between 10 % and 90 % of the records
  (``rss_slope_steady_mb_per_1000_records``: without the warm-up and the undated records decided last). The
  records replay the demo file cycle after cycle, a week apart, on copies of the demo region (one copy per 20,000
  records, :func:`scaled_demo_region`), so that a metering point gets at most about 90 requests however long the
  stream: replayed in place, every point would collect N / 228 requests and the in-memory capacity ledger, not the
  decisions, would be measured. The demo's unknown metering points are not copied: their records (without a
  submitted time, so decided last) collect at one point per id, about N / 228 each.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

# the same baseline as bench_screening: one pandapower runpp per notification
from bench_screening import runpp_per_notification  # benchmarks/ is on sys.path under pytest

from powercheck.columnar import decision_tables
from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.gcpause import gc_paused
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy

N_NOTIFICATIONS = 4000
N_BASELINE = 40
STREAM_N = int(os.environ.get("POWERCHECK_BENCH_STREAM_N", "10000"))
STREAM_RECORDS_PER_COPY = 20_000
"""Stream records per copy of the demo networks (about 90 demo cycles, so up to ~90 requests a point)."""


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
        # as `powercheck screen` decides a chunk (screen_file): one collector pause that ends after the batch is freed
        with gc_paused():
            assessed = assessor.assess_recorded(notifications)
            tables = decision_tables(assessed.entries, lines)
            del assessed
        return tables

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


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    return seconds, proc.stdout


def _cpu(argv: list[str], env: dict[str, str] | None = None) -> float:
    """CPU seconds (user + system) of a child process: less sensitive than wall time to other load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _run(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_screen_cli_warm_cache(benchmark, region, cache, tmp_path):
    screen = [sys.executable, "-m", "powercheck", "screen", str(demo_notifications_path()), "--out",
              str(tmp_path / "d.parquet"), "--cache-dir", str(cache), "--quiet"]  # fmt: skip
    # warm as a user's second run: grid cache, the kernels compiled ahead of time (`powercheck kernels build`),
    # numba's on-disk cache and Python's bytecode cache (an environment with PYTHONDONTWRITEBYTECODE, as the
    # development machine has, would compile every module from source on every run: ~0.25 s that no installed copy
    # pays). The JIT-only figure (POWERCHECK_AOT=0: numba imported, its cached kernels loaded) is measured in the
    # same run, alternating with the measured one.
    build = _run([sys.executable, "-m", "powercheck", "kernels", "build", "--cache-dir", str(cache), "-q"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "POWERCHECK_AOT")}
    jit_env = {**env, "POWERCHECK_AOT": "0"}
    _run(screen, env)
    _run(screen, jit_env)
    start_s = min(_run([sys.executable, "-c", "import powercheck"], env)[0] for _ in range(3))
    times, jit_times = [], []
    for _ in range(3):
        times.append(_run(screen, env)[0])
        jit_times.append(_run(screen, jit_env)[0])
    start_cpu = min(_cpu([sys.executable, "-c", "import powercheck"], env) for _ in range(3))
    screen_cpu = min(_cpu(screen, env) for _ in range(3))
    jit_cpu = min(_cpu(screen, jit_env) for _ in range(3))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    best, jit_best = min(times), min(jit_times)
    benchmark.extra_info.update(
        records=sum(1 for _ in open(demo_notifications_path(), encoding="utf-8")),
        kernels_build_s=round(build[0], 1),
        screen_wall_s=round(best, 3),
        interpreter_start_s=round(start_s, 3),
        beyond_interpreter_start_s=round(best - start_s, 3),
        beyond_interpreter_start_runs_s=[round(t - start_s, 3) for t in times],
        screen_cpu_s=round(screen_cpu, 3),
        interpreter_start_cpu_s=round(start_cpu, 3),
        beyond_interpreter_start_cpu_s=round(screen_cpu - start_cpu, 3),
        jit_only_beyond_interpreter_start_s=round(jit_best - start_s, 3),
        jit_only_beyond_interpreter_start_runs_s=[round(t - start_s, 3) for t in jit_times],
        jit_only_beyond_interpreter_start_cpu_s=round(jit_cpu - start_cpu, 3),
        aot_vs_jit_only=round((best - start_s) / (jit_best - start_s), 3),
    )


PROBE = """
import json, sys, time
import powercheck.screen as screen
from powercheck.cli import main
marks, counts = [], []
def sample(self, done):
    with open("/proc/self/status") as fh:
        marks.append(int(fh.read().split("VmRSS:")[1].split()[0]) / 1024)
    counts.append(done)
screen.ProgressBar.update = sample  # RSS after every chunk, in place of the progress bar
t = time.perf_counter()
rc = main(sys.argv[1:])
with open("/proc/self/status") as fh:  # VmHWM: this process's own peak (ru_maxrss keeps the pre-exec parent's)
    peak = int(fh.read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t, "peak_rss_mb": peak, "rss_after_chunks_mb": marks,
                  "records_after_chunks": counts}))
"""


def scaled_demo_region(out: Path, copies: int) -> dict[str, str]:
    """The demo region with ``copies`` copies of each of its network files (ids ``<id>.c<j>``), their customer
    points and AMS series under new metering point ids; returns original -> copy-``j`` id as ``"<j>:<id>"`` keys.

    The built-in IEEE feeder (a ``pandapower:`` source) is copied by reference under the new ids.
    """
    import tomllib

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from powercheck.gs1 import make_gsrn

    src = demo_region_dir()
    manifest = tomllib.loads((src / "region.toml").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "networks").mkdir(exist_ok=True)
    points = pq.read_table(src / manifest["region"]["customer_points"])
    ams = pq.read_table(src / manifest["region"]["ams"])
    files = {n["id"]: n for n in manifest["network"] if not n["source"].startswith("pandapower:")}
    builtin = {n["id"] for n in manifest["network"]} - set(files)
    lines = [f'[region]\nname = "demo-x{copies}"\ncustomer_points = "customer_points.parquet"\nams = "ams.parquet"\n']
    for n in manifest["network"]:
        ids = [f"{n['id']}.c{j}" for j in range(copies)]
        for nid in ids:
            if n["id"] in files:
                shutil.copyfile(src / n["source"], out / "networks" / f"{nid}.json")
                source = f"networks/{nid}.json"
            else:
                source = n["source"]
            lines.append(f'[[network]]\nid = "{nid}"\nsystem = "{n["system"]}"\nsource = "{source}"\n')
    (out / "region.toml").write_text("\n".join(lines), encoding="utf-8")
    mapping: dict[str, str] = {}
    point_parts, ams_parts = [], []
    original_ids = points.column("metering_point_id").to_pylist()
    copied = [nid in files or nid in builtin for nid in points.column("network_id").to_pylist()]
    for j in range(copies):
        new_ids = [make_gsrn(f"7070576{j:04d}{row:06d}") if c else mp for row, (mp, c) in enumerate(zip(original_ids,
                   copied))]  # fmt: skip
        mapping.update({f"{j}:{mp}": new for mp, new in zip(original_ids, new_ids)})
        if j > 0:
            keep = pa.array([c for c in copied])
            part = points.filter(keep)
            new = [x for x, c in zip(new_ids, copied) if c]
            nets = [f"{x}.c{j}" for x in part.column("network_id").to_pylist()]
        else:
            part = points
            new = new_ids
            nets = [f"{x}.c0" if c else x for x, c in zip(part.column("network_id").to_pylist(), copied)]
        part = part.set_column(part.schema.get_field_index("metering_point_id"), "metering_point_id", pa.array(new))
        part = part.set_column(part.schema.get_field_index("network_id"), "network_id", pa.array(nets))
        point_parts.append(part)
        lookup = {mp: mapping[f"{j}:{mp}"] for mp, c in zip(original_ids, copied) if c or j == 0}
        mask = pc.is_in(ams.column("metering_point_id"), value_set=pa.array(list(lookup)))
        rows = ams.filter(mask)
        renamed = pa.array([lookup[x] for x in rows.column("metering_point_id").to_pylist()])
        ams_parts.append(
            rows.set_column(rows.schema.get_field_index("metering_point_id"), "metering_point_id", renamed)
        )
    pq.write_table(pa.concat_tables(point_parts), out / "customer_points.parquet")
    pq.write_table(pa.concat_tables(ams_parts), out / "ams.parquet")
    return mapping


def stream_records(n: int, copies: int, mapping: dict[str, str]) -> Iterator[str]:
    """``n`` JSON lines: the demo file replayed cycle after cycle, each cycle on ``copies`` copies of the region
    (copy ``j`` at its own metering points) and a week later than the one before, ids suffixed ``-<j>-<cycle>``.

    Within a copy and cycle the records relate as in the demo (revisions, completion notices, repeats); a
    metering point gets one cycle's notifications per week, as a real point would over a year or two, not
    hundreds at once (the demo file repeated in place would pile every copy of a record on one point at the
    same instant).
    """
    lines = [line.rstrip("\n") for line in open(demo_notifications_path(), encoding="utf-8") if line.strip()]
    for i in range(n):
        rec_no, rest = i % len(lines), i // len(lines)
        j, cycle = rest % copies, rest // copies
        line = lines[rec_no]
        try:
            record = json.loads(line)
        except ValueError:  # the demo's unreadable lines stay as they are
            record = None
        if isinstance(record, dict) and isinstance(record.get("notification_id"), str):
            record["notification_id"] = f"{record['notification_id']}-{j}-{cycle}"
            if isinstance(record.get("metering_point_id"), str):  # unknown points (the demo has some) stay as they are
                record["metering_point_id"] = mapping.get(
                    f"{j}:{record['metering_point_id']}", record["metering_point_id"]
                )
            if isinstance(record.get("merged_metering_point_ids"), list):
                record["merged_metering_point_ids"] = [mapping.get(f"{j}:{x}", x) if isinstance(x, str) else x
                                                       for x in record["merged_metering_point_ids"]]  # fmt: skip
            if isinstance(record.get("submitted_at"), str):
                try:
                    at = datetime.fromisoformat(record["submitted_at"])
                    record["submitted_at"] = (at + timedelta(weeks=cycle)).isoformat()
                except ValueError:
                    pass
            line = json.dumps(record)
        yield line


def _slope(report: dict) -> float | None:
    """RSS growth per 1,000 records decided between the first and the last chunk [MB] (None: a single chunk)."""
    marks, counts = report["rss_after_chunks_mb"], report["records_after_chunks"]
    if len(marks) < 2 or counts[-1] <= counts[0]:
        return None
    return round(1000 * (marks[-1] - marks[0]) / (counts[-1] - counts[0]), 3)


def _steady_slope(report: dict) -> float | None:
    """RSS growth per 1,000 records [MB], least squares over the chunks between 10 % and 90 % of the records: without
    the first chunks' warm-up and without the records that have no submitted time, which are decided last and pile up
    at the demo's unknown metering points (a chunk of them is decided in many waves)."""
    marks, counts = report["rss_after_chunks_mb"], report["records_after_chunks"]
    if not counts:
        return None
    pairs = [(c, m) for c, m in zip(counts, marks) if 0.1 * counts[-1] <= c <= 0.9 * counts[-1]]
    if len(pairs) < 3:
        return None
    mean_c = sum(c for c, _ in pairs) / len(pairs)
    mean_m = sum(m for _, m in pairs) / len(pairs)
    var = sum((c - mean_c) ** 2 for c, _ in pairs)
    return round(1000 * sum((c - mean_c) * (m - mean_m) for c, m in pairs) / var, 3)


def test_stream_decisions_peak_rss(benchmark, cache, tmp_path):
    copies = max(1, -(-STREAM_N // STREAM_RECORDS_PER_COPY))
    region_dir = tmp_path / "region"
    mapping = scaled_demo_region(region_dir, copies)
    path = tmp_path / "many.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for line in stream_records(STREAM_N, copies, mapping):
            fh.write(line + "\n")
    load_start = time.perf_counter()
    GridRegion.load(region_dir, cache_dir=cache)  # cold: the copies' arrays (not timed with the stream)
    load_s = time.perf_counter() - load_start
    argv = ["screen", str(path), "--grid", str(region_dir), "--out", str(tmp_path / "many.parquet"), "--cache-dir",
            str(cache), "--quiet"]  # fmt: skip
    seconds, out = _run([sys.executable, "-c", PROBE, *argv])
    report = json.loads(out.strip().splitlines()[-1])
    small = tmp_path / "small.jsonl"
    small.write_text("".join(open(path, encoding="utf-8").readlines()[:500]), encoding="utf-8")
    _, out_small = _run([sys.executable, "-c", PROBE, "screen", str(small), "--grid", str(region_dir), "--out",
                         str(tmp_path / "s.parquet"), "--cache-dir", str(cache), "--quiet"])  # fmt: skip
    small_report = json.loads(out_small.strip().splitlines()[-1])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(
        records=STREAM_N,
        region_copies=copies,
        cold_region_load_s=round(load_s, 1),
        seconds=round(report["seconds"], 2),
        records_per_s=round(STREAM_N / report["seconds"], 1),
        peak_rss_mb=round(report["peak_rss_mb"], 1),
        rss_after_first_chunk_mb=round(report["rss_after_chunks_mb"][0], 1) if report["rss_after_chunks_mb"] else None,
        rss_after_middle_chunk_mb=round(report["rss_after_chunks_mb"][len(report["rss_after_chunks_mb"]) // 2], 1)
        if report["rss_after_chunks_mb"]
        else None,
        rss_after_last_chunk_mb=round(report["rss_after_chunks_mb"][-1], 1) if report["rss_after_chunks_mb"] else None,
        rss_slope_mb_per_1000_records=_slope(report),
        rss_slope_steady_mb_per_1000_records=_steady_slope(report),
        peak_rss_mb_500_records=round(small_report["peak_rss_mb"], 1),
        self_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
