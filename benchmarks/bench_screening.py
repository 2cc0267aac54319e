"""Screening throughput: powercheck's vectorised engine against one pandapower runpp per notification.

Run with ``pytest benchmarks/ --benchmark-only``. Both are measured in the same run on the
same demo region and notifications; ``extra_info`` records

* ``notifications_per_s``: powercheck ``Assessor.assess_many`` (all checks, best round),
* ``baseline_notifications_per_s``: adding each notification's load to its pandapower network
  and running ``runpp`` once (the cheapest "real" load-flow screening: one voltage, no checks),
* ``speedup_vs_runpp``: the ratio.

No absolute timing is asserted.
"""

from __future__ import annotations

import time
import warnings

import pandapower as pp
import pytest

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy

N_NOTIFICATIONS = 2000
N_BASELINE = 40


@pytest.fixture(scope="module")
def region() -> GridRegion:
    return GridRegion.load(demo_region_dir())


@pytest.fixture(scope="module")
def notifications() -> list[Notification]:
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    out = []
    for i in range(N_NOTIFICATIONS):
        n = valid[i % len(valid)]
        out.append(n.model_copy(update={"notification_id": f"{n.notification_id}-{i}"}))
    return out


def _added_kw(n: Notification) -> float:
    if n.power_budget is not None:
        return n.power_budget.max_demand_kw
    return sum(a.rated_kw * a.quantity for a in n.appliances) or 10.0


def runpp_per_notification(region: GridRegion, notes: list[Notification], nets: dict) -> float:
    """Seconds for one runpp per notification (load added at the customer bus, then removed)."""
    rows = region.locate([n.metering_point_id for n in notes])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, row in zip(notes, rows):
            if row < 0:
                continue
            nid = region.customers.network_id.iat[row]
            bus = int(region.customers.bus.iat[row])
            net = nets[nid]
            idx = pp.create_load(net, bus, p_mw=_added_kw(n) / 1000.0, q_mvar=0.0)
            pp.runpp(net)
            _ = net.res_bus.vm_pu.at[bus]
            net.load.drop(idx, inplace=True)
    return time.perf_counter() - start


def test_screening_throughput_vs_runpp(benchmark, region, notifications):
    assessor = Assessor(region, load_policy())
    assessor.assess_many(notifications[:50])  # compile/warm up
    nets = {nid: region.network_net(nid) for nid in region.network_order}
    sample = [n for n in notifications if region.locate([n.metering_point_id])[0] >= 0][:N_BASELINE]
    runpp_per_notification(region, sample[:3], nets)  # warm up pandapower's own numba code
    baseline_s = min(runpp_per_notification(region, sample, nets) for _ in range(3))
    baseline_rate = len(sample) / baseline_s

    decisions = benchmark.pedantic(assessor.assess_many, args=(notifications,), rounds=3, iterations=1)
    assert len(decisions) == len(notifications)
    rate = len(notifications) / benchmark.stats.stats.min
    benchmark.extra_info.update(
        notifications=len(notifications),
        notifications_per_s=round(rate, 1),
        baseline="pandapower runpp per notification",
        baseline_notifications=len(sample),
        baseline_notifications_per_s=round(baseline_rate, 1),
        speedup_vs_runpp=round(rate / baseline_rate, 1),
    )
