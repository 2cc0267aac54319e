"""Capacity map of a 100,000-point region against finding the same sizes by forward assessments, in the same run.

The synthetic region repeats the demo region's five pandapower LV feeders (the Kerber Landnetz
cable and overhead networks, the Kerber Dorfnetz, the Kerber Vorstadtnetz and the IEEE European
LV feeder; 285 customer points) until it has ``POWERCHECK_BENCH_POINTS`` customer points
(default 100,000; each copy a network of its own with its own metering point ids).

* map: :func:`powercheck.rules.capacity.capacity_map` -- five probes (EV 1-phase, EV 3-phase,
  PV, heat pump, motor) and the main-fuse range at every point, one evaluation per probe;
* baseline: what a user without inverse answers would do -- bisect each size with forward
  assessments (demand -> evaluate -> checks, the whole sample batched per step, which is the
  fastest way to run the forward stages) between 0 and 100 kW to 0.01 kW (14 steps), on a
  sample of ``POWERCHECK_BENCH_SAMPLE`` points (default 300) for every probe; its per-point
  time is extrapolated to the region.

``extra_info``: points, networks, map seconds and points/s, baseline seconds per point,
``speedup`` (baseline / map per point) and the bisection's largest deviation from the map's
sizes (it must agree to the bisection's tolerance). Target: the 100k map in under 10 s on 2 cores.
No absolute timing is asserted.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pandas as pd
import pytest

from powercheck.demo import demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.gs1 import make_gsrn
from powercheck.models import CheckStatus, Notification
from powercheck.rules.capacity import PROBES, Probe, capacity_map
from powercheck.rules.checks import run_checks
from powercheck.rules.checks.base import STATUSES
from powercheck.rules.context import GridView
from powercheck.rules.demand import demand_cases
from powercheck.rules.evaluate import evaluate
from powercheck.rules.policy import PolicyKey, load_policy

POINTS = int(os.environ.get("POWERCHECK_BENCH_POINTS", "100000"))
SAMPLE = int(os.environ.get("POWERCHECK_BENCH_SAMPLE", "300"))
LOW_KW, HIGH_KW, TOL_KW = 0.0, 100.0, 0.01
NOT_GRID = ("DATA", "GRID", "LEDGER", "PROT.SERVICE_CABLE", "PROT.SELECTIVITY", "PROT.FAULT_CURRENT")


def synthetic_region(points: int) -> GridRegion:
    """The demo region's networks repeated until the region has ``points`` customer points."""
    demo = GridRegion.load(demo_region_dir())
    cust = demo.customers.drop(columns=["bus_row"])
    copies = -(-points // len(cust))
    networks, specs, frames = [], [], []
    for c in range(copies):
        for nid in demo.network_order:
            new = f"{nid}-{c:04d}"
            networks.append(dataclasses.replace(demo.networks[nid], network_id=new))
            specs.append(dataclasses.replace(demo.specs[nid], id=new))
        part = cust.copy()
        part["network_id"] = part["network_id"].astype(str) + f"-{c:04d}"
        frames.append(part)
    customers = pd.concat(frames, ignore_index=True).iloc[:points].copy()
    customers["metering_point_id"] = [make_gsrn(f"70705750{i:09d}") for i in range(len(customers))]
    return GridRegion(f"synthetic-{points}", networks, specs, customers, demo.defaults, f"bench-{points}")


@pytest.fixture(scope="module")
def region() -> GridRegion:
    return synthetic_region(POINTS)


def _note(i: int, probe: Probe, mp: str, tn: bool, kw: float, policy) -> Notification:
    conn = ("L-N" if tn else "L-L") if probe.single_phase else "3ph"
    appliance = {"kind": probe.kind.value, "rated_kw": kw, "connection": conn}
    if probe.kind.value == "motor":
        d = policy.value(PolicyKey.APPLIANCE_DEFAULTS)["motor"]
        appliance |= {k: d[k] for k in ("start_current_ratio", "starts_per_hour", "cos_phi")}
    job = {"ev_charger": "ev_charger", "pv_inverter": "pv", "heat_pump": "heat_pump", "motor": "motor"}
    return Notification.model_validate(
        {"notification_id": f"B-{i}", "job_type": job[probe.kind.value], "metering_point_id": mp,
         "network_system": "TN_400" if tn else "IT_230", "appliances": [appliance]}
    )  # fmt: skip


def bisect_sizes(grid: GridView, policy, probe: Probe, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Largest passing size per point by bisection with batched forward assessments; and the steps taken."""
    mps = grid.region.customers.metering_point_id.astype(str).to_numpy()[rows]
    tn = grid.arrays.system_tn[grid.customers.bus_row[rows]]
    lo = np.full(rows.shape[0], LOW_KW)
    hi = np.full(rows.shape[0], HIGH_KW)
    steps = 0
    while (hi - lo).max() > TOL_KW:
        mid = 0.5 * (lo + hi)
        notes = [_note(i, probe, mps[i], bool(tn[i]), max(mid[i], 1e-3), policy) for i in range(rows.shape[0])]
        cases = demand_cases(notes, grid, policy)
        table = run_checks(cases, evaluate(cases, grid, policy), grid, policy)
        owner = np.repeat(np.arange(rows.shape[0]), np.diff(table.indptr))
        grid_rule = np.array([not str(r).startswith(NOT_GRID) for r in table.rule_id], dtype=bool)
        failed = (table.status == STATUSES.index(CheckStatus.FAIL)) & grid_rule
        ok = np.bincount(owner[failed], minlength=rows.shape[0]) == 0
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
        steps += 1
    return lo, steps


def test_capacity_map_vs_forward_bisection(benchmark, region):
    policy = load_policy()
    grid = GridView.of(region)
    small = capacity_map(grid, policy, rows=np.arange(min(2000, POINTS)))  # compile / warm up
    assert small.site.evaluable.all()

    cmap = benchmark.pedantic(capacity_map, args=(grid, policy), rounds=2, iterations=1)
    map_s = benchmark.stats.stats.min
    assert cmap.site.rows.shape[0] == POINTS

    rng = np.random.default_rng(10)
    rows = np.sort(rng.choice(POINTS, size=min(SAMPLE, POINTS), replace=False))
    bisect_sizes(grid, policy, PROBES[0], rows[:20])  # warm up the forward stages
    start = time.perf_counter()
    worst, steps = 0.0, 0
    for i, probe in enumerate(PROBES):
        sizes, steps = bisect_sizes(grid, policy, probe, rows)
        exact = cmap.probes[i].largest_kw[rows]
        inside = np.isfinite(exact) & (exact < HIGH_KW)
        worst = max(worst, float(np.max(np.abs(sizes[inside] - exact[inside]), initial=0.0)))
    baseline_per_point = (time.perf_counter() - start) / rows.shape[0]
    map_per_point = map_s / POINTS
    assert worst <= 2 * TOL_KW, worst
    benchmark.extra_info.update(
        {
            "points": POINTS,
            "networks": len(region.network_order),
            "probes": len(PROBES),
            "map_s": round(map_s, 3),
            "map_points_per_s": round(POINTS / map_s),
            "baseline": f"bisection {LOW_KW:g}-{HIGH_KW:g} kW to {TOL_KW} kW ({steps} forward assessments per size)",
            "baseline_s_per_point": round(baseline_per_point, 5),
            "baseline_extrapolated_s": round(baseline_per_point * POINTS, 1),
            "speedup": round(baseline_per_point / map_per_point, 1),
            "bisection_max_deviation_kw": round(worst, 4),
        }
    )
    print(benchmark.extra_info)
