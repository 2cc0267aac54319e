"""Approvals add up to a feasible grid: screen many requests with the ledger, then apply every approved
request to the pandapower network at once and check the limits with pandapower's own load flow.

The engine's numbers are a model (minimum-case Thevenin impedances at 80 degC conductor
temperature, currents at nominal voltage, single-phase loads all on one phase): it must be
conservative, so the load flow of the approved set stays inside the limits up to the tolerance
stated here.
"""

from __future__ import annotations

import copy
import math
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pandapower as pp
import pytest

from powercheck.ledger import CapacityState, RequestStatus
from powercheck.models import Notification
from powercheck.quality.codes import CONN_3PH, CONN_LL
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable

V_TOL_PU = 0.002
"""Voltage tolerance of the model [pu]."""
I_TOL = 0.01
"""Relative tolerance on currents."""
VUF_TOL = 0.05
"""Tolerance on the unbalance [%-points]."""


def _note(i: int, mp: str, system: str, kind: str, kw: float, conn: str, **extra) -> Notification:
    appliance = {"kind": kind, "rated_kw": kw, "connection": conn, **extra}
    job = {"ev_charger": "ev_charger", "heat_pump": "heat_pump", "pv_inverter": "pv"}[kind]
    return Notification.model_validate(
        {
            "notification_id": f"FEAS-{i:03d}",
            "job_type": job,
            "metering_point_id": mp,
            "network_system": system,
            "installer_id": f"INST-{i:03d}",
            "submitted_at": (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=7 * i)).isoformat(),
            "appliances": [appliance],
        }
    )


def _apply_to_net(net, requests, bus_of, *, peak: bool) -> bool:
    """Add the reserved load (peak) or export (low load) of every request; True if anything is single-phase."""
    asym = False
    for r in requests:
        bus = bus_of(r)
        components = r.reservation.load if peak else r.reservation.export
        sign = 1.0 if peak else -1.0
        for c in components:
            p = sign * c.p_kw / 1000.0
            q = sign * p * math.tan(math.acos(c.cos_phi)) if peak else 0.0
            if c.conn == CONN_3PH:
                pp.create_asymmetric_load(net, bus, p_a_mw=p / 3, p_b_mw=p / 3, p_c_mw=p / 3,
                                          q_a_mvar=q / 3, q_b_mvar=q / 3, q_c_mvar=q / 3)  # fmt: skip
            else:
                asym = True
                kind = "delta" if c.conn == CONN_LL else "wye"
                pp.create_asymmetric_load(net, bus, p_a_mw=p, q_a_mvar=q, type=kind)  # phase a / pair a-b
    return asym


def _load_flow(region, network_id: str, requests, *, peak: bool):
    """runpp_3ph of the network at peak (or low load) with the approved requests; per-phase results."""
    net = region.network_net(network_id)
    scaling = float(region.defaults["peak_load_scaling" if peak else "low_load_scaling"].value)
    if "asymmetric_load" in net and len(net.asymmetric_load):
        net.asymmetric_load["scaling"] = net.asymmetric_load["scaling"].astype(float) * scaling
    # balanced base loads as three equal phases so runpp_3ph sees them
    for idx, row in net.load.iterrows():
        if not row.in_service:
            continue
        p, q = row.p_mw * row.scaling * scaling, row.q_mvar * row.scaling * scaling
        pp.create_asymmetric_load(net, row.bus, p_a_mw=p / 3, p_b_mw=p / 3, p_c_mw=p / 3,
                                  q_a_mvar=q / 3, q_b_mvar=q / 3, q_c_mvar=q / 3)  # fmt: skip
        net.load.loc[idx, "in_service"] = False
    measured = region.measured.get(network_id)
    if measured is not None:
        # the engine's base case: metered buses at the AMS coincident-peak (low-load) hour, unscaled,
        # with the q/p ratio of the model's loads there
        at = net.load.bus.isin(measured.buses)
        ratio = net.load.q_mvar[at].groupby(net.load.bus[at]).sum() / net.load.p_mw[at].groupby(net.load.bus[at]).sum()
        for table in ("load", "asymmetric_load", "sgen"):
            if table in net and len(net[table]):
                net[table].loc[net[table].bus.isin(measured.buses), "scaling"] = 0.0
        imp = measured.peak_import_kw if peak else measured.low_import_kw
        exp = measured.peak_export_kw if peak else measured.low_export_kw
        for bus, p_kw, e_kw in zip(measured.buses, imp, exp):
            p = (p_kw - e_kw) / 1000.0
            q = p_kw / 1000.0 * float(np.nan_to_num(ratio.get(bus, 0.0)))
            pp.create_asymmetric_load(net, int(bus), p_a_mw=p / 3, p_b_mw=p / 3, p_c_mw=p / 3,
                                      q_a_mvar=q / 3, q_b_mvar=q / 3, q_c_mvar=q / 3)  # fmt: skip
    bus_of = {(r.network_id, r.bus): int(r.bus) for r in requests}
    _apply_to_net(net, requests, lambda r: bus_of[(r.network_id, r.bus)], peak=peak)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp_3ph(net)
    vm = net.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]]
    assert not vm.isna().any().any(), "runpp_3ph did not converge"
    lines = 1000 * net.res_line_3ph[["i_a_ka", "i_b_ka", "i_c_ka"]].max(axis=1)
    rating = 1000 * net.line.max_i_ka * net.line.get("df", 1.0) * net.line.get("parallel", 1)
    trafo = 1000 * net.res_trafo_3ph[["i_a_lv_ka", "i_b_lv_ka", "i_c_lv_ka"]].max(axis=1)
    trafo_rating = net.trafo.sn_mva * 1e6 / (math.sqrt(3) * net.trafo.vn_lv_kv * 1e3)
    lv = net.bus.index[net.bus.vn_kv < 1.0]
    return {
        "vm_min": float(vm.loc[lv].min().min()),
        "vm_max": float(vm.loc[lv].max().max()),
        "line_loading": float((lines / rating).max()),
        "trafo_loading": float((trafo / trafo_rating).max()),
        "unbalance": float(net.res_bus_3ph.unbalance_percent.loc[lv].max()),
    }


def _approved(state: CapacityState, network_id: str):
    """Every request that reserves capacity (approved, with or without conditions)."""
    active = (RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS)
    return [r for r in state.requests.values() if r.network_id == network_id and r.status in active]


def _assert_feasible(region, policy, state, network_id):
    approved = _approved(state, network_id)
    peak = _load_flow(region, network_id, approved, peak=True)
    low = _load_flow(region, network_id, approved, peak=False)
    assert peak["vm_min"] >= policy.value("voltage_min_pu") - V_TOL_PU, peak
    assert low["vm_max"] <= policy.value("voltage_max_pu") + V_TOL_PU, low
    assert peak["line_loading"] <= 1 + I_TOL and low["line_loading"] <= 1 + I_TOL, (peak, low)
    assert peak["trafo_loading"] <= 1 + I_TOL and low["trafo_loading"] <= 1 + I_TOL, (peak, low)
    assert max(peak["unbalance"], low["unbalance"]) <= policy.value("unbalance_max_percent") + VUF_TOL, (peak, low)
    return peak, low, approved


def test_fifty_requests_on_one_weak_feeder_stay_feasible(demo_region, policy):
    network_id = "it-landnetz-luft"
    points = demo_region.customers[demo_region.customers.network_id == network_id]
    rng = np.random.default_rng(9)
    notes = []
    for i in range(50):
        mp = str(points.metering_point_id.iloc[i % len(points)])
        kind = rng.choice(["ev_charger", "ev_charger", "heat_pump", "pv_inverter"])
        if kind == "ev_charger":
            notes.append(_note(i, mp, "IT_230", "ev_charger", float(rng.choice([3.7, 7.4, 11.0])), "L-L"
                               if rng.random() < 0.5 else "3ph", cos_phi=0.99))  # fmt: skip
        elif kind == "heat_pump":
            notes.append(_note(i, mp, "IT_230", "heat_pump", float(rng.choice([3.0, 5.0])), "3ph",
                               start_current_ratio=1.5, starts_per_hour=2, cos_phi=0.95, cos_phi_start=0.6,
                               harmonic_current_percent={"5": 3.0, "7": 2.0}))  # fmt: skip
        else:
            notes.append(_note(i, mp, "IT_230", "pv_inverter", float(rng.choice([4.0, 8.0, 12.0])), "3ph"))
    policy = appliance_jobs_auto_approvable(policy)  # a grid owner that auto-approves appliance jobs
    state = CapacityState.empty(demo_region)
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=state)
    decisions = assessor.assess_many(notes)
    approved = [d for d in decisions if d.ledger_status in ("approved", "approved_with_conditions")]
    assert len(approved) >= 3, [d.reasons for d in decisions][:5]
    _assert_feasible(demo_region, policy, state, network_id)
    # judged one by one against the static grid, more would have been approved
    alone = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_many(notes)
    assert sum(d.outcome == "auto_approve" for d in alone) > len(approved)


@pytest.mark.parametrize(
    "network_id", ["it-landnetz-kabel", "it-landnetz-luft", "it-dorf", "tn-vorstadt", "tn-ieee-eu"]
)
def test_demo_mix_with_the_ledger_stays_feasible(demo_region, policy, demo_ledger_screening, network_id):
    state = demo_ledger_screening
    _assert_feasible(demo_region, policy, state, network_id)


@pytest.fixture(scope="module")
def demo_ledger_screening(demo_region, policy):
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    state = CapacityState.empty(demo_region)
    Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=state).assess_many(notes)
    return copy.copy(state)
