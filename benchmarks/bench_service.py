"""Load test of the HTTP rule service on loopback: latency percentiles and requests/s.

Run with ``pytest benchmarks/ --benchmark-only``. A real ``powercheck serve`` process is
started on a free loopback port; client threads each send their share of
``POST /v1/assess`` requests (every one a new notification id, so each is decided and
committed to SQLite before the answer). ``extra_info`` records:

* ``requests_per_s``, ``p50_ms``, ``p99_ms`` for new decisions at ``CONCURRENCY`` clients,
* ``server_cpu_ms_per_request``: the server process's CPU time (all its threads, from ``/proc``) per request -- what
  a request costs the server whatever else runs on the machine (None where ``/proc`` is not available),
* ``first_request_ms``: the first request after the server reported ready (its start-up warm-up loads the engine),
* ``replay_p50_ms`` / ``replay_p99_ms`` for idempotent resubmissions,
* ``inprocess_p50_ms``: ``Assessor.assess`` called directly in this process on the same
  notifications (the baseline, same run), and ``http_overhead_factor`` = p50 / in-process p50;
* ``test_service_batch``: ``notifications_per_s`` of ``POST /v1/assess/batch`` with ``BATCH`` new
  notifications a request (and ``server_cpu_ms_per_notification``), against ``Assessor.assess_many`` on the same
  notifications in this process.

No absolute timing is asserted.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import numpy as np
import pytest

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy
from powercheck.service.testing import start_server

TOKEN = "bench-token-0123456789abcdef"
N_REQUESTS = 600
CONCURRENCY = 8
BATCH = 2000
"""Notifications per ``POST /v1/assess/batch`` request (test_service_batch)."""


@pytest.fixture(scope="module")
def notifications():
    return [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    GridRegion.load(demo_region_dir())  # warm the default grid cache the server will use
    srv = start_server(tmp_path_factory.mktemp("bench") / "decisions.sqlite", TOKEN)
    yield srv
    srv.stop()


def _load(server, bodies: list[dict], concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    shares = [bodies[i::concurrency] for i in range(concurrency)]

    def worker(share):
        local = []
        with server.client() as c:
            for body in share:
                t0 = time.perf_counter()
                r = c.post("/v1/assess", json=body)
                local.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def _cpu_s(pid: int) -> float | None:
    """CPU time [s] of a process (user + system, all threads), or None without Linux's ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per(before: float | None, after: float | None, count: int) -> float | None:
    return None if before is None or after is None else round(1000 * (after - before) / count, 3)


def _ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 2)


def test_service_load(benchmark, server, notifications):
    bodies = [
        notifications[i % len(notifications)]
        .model_copy(update={"notification_id": f"LOAD-{i}"})
        .model_dump(mode="json", exclude_none=True)
        for i in range(N_REQUESTS)
    ]
    with server.client() as c:  # the first request after the server reported ready
        t0 = time.perf_counter()
        assert c.post("/v1/assess", json=dict(bodies[0], notification_id="FIRST-0")).status_code == 200
        first = time.perf_counter() - t0
    _load(server, [dict(b, notification_id=f"WARM-{i}") for i, b in enumerate(bodies[:40])], 2)

    result: dict = {}

    def run():
        cpu0 = _cpu_s(server.proc.pid)
        result["latencies"], result["elapsed"] = _load(server, bodies, CONCURRENCY)
        result["cpu"] = _per(cpu0, _cpu_s(server.proc.pid), N_REQUESTS)

    benchmark.pedantic(run, rounds=1, iterations=1)
    lat, elapsed = result["latencies"], result["elapsed"]
    replay_lat, _ = _load(server, bodies[:200], CONCURRENCY)

    # baseline in the same run: the engine called in-process on the same notifications
    assessor = Assessor(GridRegion.load(demo_region_dir()), load_policy())
    inproc = []
    for i in range(200):
        n = notifications[i % len(notifications)]
        t0 = time.perf_counter()
        assessor.assess(n)
        inproc.append(time.perf_counter() - t0)
    benchmark.extra_info.update(
        requests=len(lat),
        concurrency=CONCURRENCY,
        requests_per_s=round(len(lat) / elapsed, 1),
        p50_ms=_ms(lat, 50),
        p99_ms=_ms(lat, 99),
        server_cpu_ms_per_request=result["cpu"],
        first_request_ms=round(1000 * first, 1),
        replay_p50_ms=_ms(replay_lat, 50),
        replay_p99_ms=_ms(replay_lat, 99),
        inprocess_p50_ms=round(1000 * statistics.median(inproc), 3),
        http_overhead_factor=round(float(np.percentile(lat, 50)) / statistics.median(inproc), 1),
    )


def test_service_batch(benchmark, server, notifications):
    bodies = [
        notifications[i % len(notifications)]
        .model_copy(update={"notification_id": f"BATCH-{i}"})
        .model_dump(mode="json", exclude_none=True)
        for i in range(BATCH)
    ]
    result: dict = {}

    def run():
        with server.client(timeout=600.0) as c:
            cpu0 = _cpu_s(server.proc.pid)
            t0 = time.perf_counter()
            r = c.post("/v1/assess/batch", json={"notifications": bodies})
            result["elapsed"] = time.perf_counter() - t0
            result["cpu"] = _per(cpu0, _cpu_s(server.proc.pid), BATCH)
            assert r.status_code == 200, r.text
            result["counts"] = r.json()["counts"]

    benchmark.pedantic(run, rounds=1, iterations=1)
    assessor = Assessor(GridRegion.load(demo_region_dir()), load_policy())
    notes = [notifications[i % len(notifications)].model_copy(update={"notification_id": f"IN-{i}"})
             for i in range(BATCH)]  # fmt: skip
    t0 = time.perf_counter()
    assessor.assess_many(notes)
    inproc = time.perf_counter() - t0
    benchmark.extra_info.update(
        notifications=BATCH,
        counts=result["counts"],
        notifications_per_s=round(BATCH / result["elapsed"], 1),
        server_cpu_ms_per_notification=result["cpu"],
        inprocess_notifications_per_s=round(BATCH / inproc, 1),
    )
