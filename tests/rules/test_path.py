"""The feeder path of a decision against pandapower: the buses and distances from the network's topology,
the voltages from ``runpp`` of the network without and with the request (and with the ledger's earlier
approvals).

The engine's voltage change along the path uses the minimum-case impedances (conductors at 80 degC,
pandapower's ``calc_sc(case="min")``), the load flow the 20 degC ones: on the lines the engine's drop
is up to 1 + 0.004 * 60 = 1.24 times the load flow's. Upstream of the connection point the change is
linear at nominal-voltage current, which leaves out the second-order terms of the load flow (the
current at the lower actual voltage, the quadrature drop): a few per cent of the drop, most visible
at the busbar where the transformer (not heated) dominates. Bounds: 0.95 to 1.30 times the load flow's
drop.
"""

from __future__ import annotations

import copy
import math
import warnings

import networkx as nx
import pandapower as pp
import pandapower.topology as top
import pytest

from powercheck.ledger import CapacityState
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import PolicyKey
from tests.helpers.grids import bus_named
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, mini_mp, without_measures
from tests.helpers.paths import path_alone

DROP_BOUNDS = (0.95, 1.30)


def _ev(nid: str, key: str, kw: float) -> Notification:
    return Notification.model_validate(
        {"notification_id": nid, "job_type": "ev_charger", "metering_point_id": mini_mp(key), "network_system": "TN_400",
         "installer_id": "I1", "submitted_at": f"2026-11-0{nid[-1]}T10:00:00Z",
         "appliances": [{"kind": "ev_charger", "rated_kw": kw, "connection": "3ph"}]}
    )  # fmt: skip


def _runpp(net, extra: list[tuple[int, float]], cos_phi: float = 1.0):
    """runpp with ``kW`` added at buses, at the engine's power factor of a three-phase demand increase."""
    net = copy.deepcopy(net)
    for bus, kw in extra:
        pp.create_load(net, bus, p_mw=kw / 1000.0, q_mvar=kw / 1000.0 * math.tan(math.acos(cos_phi)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net)
    return net.res_bus.vm_pu


def _expected_path(net, bus: int) -> tuple[list[int], list[float]]:
    """Buses from the transformer's LV bus to ``bus`` and their line distance, from pandapower's graph."""
    graph = top.create_nxgraph(net, include_trafos=False)
    lv = int(net.trafo.lv_bus.iloc[0])
    buses = [int(b) for b in nx.shortest_path(graph, lv, bus)]
    distance, out = 0.0, [0.0]
    for a, b in zip(buses, buses[1:], strict=False):
        line = net.line[
            ((net.line.from_bus == a) & (net.line.to_bus == b)) | ((net.line.from_bus == b) & (net.line.to_bus == a))
        ]
        distance += float(line.length_km.iloc[0])
        out.append(distance)
    return buses, out


def _assert_drop(engine_v, base_v, pp_v, label):
    engine_drop, pp_drop = base_v - engine_v, base_v - pp_v
    lo, hi = DROP_BOUNDS
    assert lo * pp_drop - 1e-6 <= engine_drop <= hi * pp_drop + 1e-6, (label, engine_drop, pp_drop)


def test_path_buses_distances_and_voltages_against_runpp(mini_region, policy):
    net = mini_region.network_net("tn")
    house = bus_named(net, "house_3")
    decision = Assessor(mini_region, without_measures(policy), clock=lambda: FIXED_TIME).assess(
        _ev("PATH-1", "TN_END", 11.0)
    )
    buses, distances = _expected_path(net, house)
    assert [p.bus for p in decision.path] == buses
    assert [p.distance_km for p in decision.path] == pytest.approx(distances, abs=1e-9)
    # 3 x 100 m + 30 m, written out
    assert decision.path[-1].distance_km == pytest.approx(0.33)

    base = _runpp(net, [])
    with_request = _runpp(net, [(house, 11.0)], policy.number(PolicyKey.DEMAND_COS_PHI))
    for p in decision.path:
        assert p.v_peak_base_pu == pytest.approx(float(base[p.bus]), abs=1e-6)
        assert p.v_peak_ledger_pu == p.v_peak_base_pu  # no ledger
        _assert_drop(p.v_peak_pu, p.v_peak_base_pu, float(with_request[p.bus]), p.bus)
    # the connection point shows the value the voltage check judged
    assert decision.path[-1].v_peak_pu == pytest.approx(decision.check("VOLT.PEAK_MIN").value, abs=1e-9)
    # voltage falls along the path towards the customer
    v = [p.v_peak_pu for p in decision.path]
    assert v == sorted(v, reverse=True)


def test_path_with_the_ledger_against_runpp(mini_region, policy):
    """An earlier approval at another house lowers the path's voltage where the two paths share lines."""
    net = mini_region.network_net("tn")
    mid, end = bus_named(net, "house_2"), bus_named(net, "house_3")
    ledger = CapacityState.empty(mini_region)
    assessor = Assessor(mini_region, without_measures(appliance_jobs_auto_approvable(policy)), clock=lambda: FIXED_TIME,
                        ledger=ledger)  # fmt: skip
    first, second = assessor.assess_many([_ev("PATH-1", "TN_MID", 11.0), _ev("PATH-2", "TN_END", 11.0)])
    assert first.ledger_status == "approved", first.reasons
    base = _runpp(net, [])
    cos_phi = policy.number(PolicyKey.DEMAND_COS_PHI)
    with_first = _runpp(net, [(mid, 11.0)], cos_phi)
    with_both = _runpp(net, [(mid, 11.0), (end, 11.0)], cos_phi)
    for p in second.path:
        assert p.v_peak_base_pu == pytest.approx(float(base[p.bus]), abs=1e-6)
        _assert_drop(p.v_peak_ledger_pu, p.v_peak_base_pu, float(with_first[p.bus]), ("ledger", p.bus))
        _assert_drop(p.v_peak_pu, p.v_peak_base_pu, float(with_both[p.bus]), ("both", p.bus))
    # house_3 hangs off cabinet_3, which is downstream of cabinet_2 where house_2's branch leaves:
    # the first request's drop at house_3 equals its drop at cabinet_2 (the shared part)
    by_bus = {p.bus: p for p in second.path}
    cab2 = bus_named(net, "cabinet_2")
    drop_cab2 = by_bus[cab2].v_peak_base_pu - by_bus[cab2].v_peak_ledger_pu
    drop_end = by_bus[end].v_peak_base_pu - by_bus[end].v_peak_ledger_pu
    assert drop_end == pytest.approx(drop_cab2, rel=1e-9)
    assert drop_cab2 > 0


def test_batched_path_changes_equal_each_path_alone(demo_region, policy, monkeypatch):
    """voltage_paths works out every path in one kernel call (path._changes): each path's bus rows and voltage
    changes are the same numbers as walking that path alone gives -- its buses from the point up through the
    parents, and at each the drop of the point's own components across the bus's impedance
    (superposition._change_percent, tests/helpers/paths.py) -- on every demo path."""
    import numpy as np

    import powercheck.rules.engine as engine
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications
    from powercheck.rules import path as path_module

    seen = []

    def record(cases, ev, grid, state=None, only=None):
        seen.append((cases, ev, grid, only))
        return path_module.voltage_paths(cases, ev, grid, state, only)

    monkeypatch.setattr(engine, "voltage_paths", record)
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    Assessor(demo_region, policy).assess_many(notes)
    compared = longest = 0
    for cases, ev, grid, only in seen:
        kept = [
            k for k, c in enumerate(cases) if c.evaluable and c.location is not None and (only is None or k in only)
        ]
        at = np.array(kept, dtype=np.int64)
        bus_rows = np.asarray(ev.point.bus_row, dtype=np.int64)[at]
        for added, sign in ((ev.load, 1.0), (ev.export, -1.0)):
            rows, dv, counts = path_module._changes(at, bus_rows, added, sign, grid)
            ends = np.cumsum(counts)
            for k, end, n in zip(kept, ends, counts):
                alone_rows, alone_dv = path_alone(k, int(ev.point.bus_row[k]), added, sign, grid)
                assert rows[end - n : end].tolist() == alone_rows.tolist()
                assert dv[end - n : end].tolist() == alone_dv.tolist()
                compared += 1
            longest = max(longest, int(counts.max()))
    assert compared > 300 and longest > 3  # many paths, not only points at the busbar
