"""Capacity map against the engine: at every demo customer point each probe's largest size and binding check equal the
inverse answers of the engine for the probe notification (built notification by notification through the demand,
evaluation and inverse stages), without and with a ledger; the main-fuse range against hand-worked tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powercheck.ledger import CapacityState
from powercheck.models import Notification
from powercheck.rules.capacity import P0_KW, PROBES, Probe, capacity_map
from powercheck.rules.context import GridView
from powercheck.rules.demand import demand_cases
from powercheck.rules.engine import Assessor
from powercheck.rules.evaluate import evaluate
from powercheck.rules.fuse_range import main_fuse_range
from powercheck.rules.inverse import size_limits
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, without_measures, without_paperwork

JOB = {"ev_charger": "ev_charger", "pv_inverter": "pv", "heat_pump": "heat_pump", "motor": "motor"}


def _probe_note(i: int, probe: Probe, mp: str, system: str, policy, kw: float = P0_KW) -> Notification:
    appliance = {"kind": probe.kind.value, "rated_kw": kw}
    if probe.single_phase:
        appliance["connection"] = "L-N" if system == "TN_400" else "L-L"
    else:
        appliance["connection"] = "3ph"
    if probe.kind.value == "motor":  # the installer must give these for a motor: the policy's defaults
        d = policy.value(PolicyKey.APPLIANCE_DEFAULTS)["motor"]
        appliance |= {k: d[k] for k in ("start_current_ratio", "starts_per_hour", "cos_phi")}
    return Notification.model_validate(
        {"notification_id": f"CAP-{i}", "job_type": JOB[probe.kind.value], "metering_point_id": mp,
         "network_system": system, "appliances": [appliance]}
    )  # fmt: skip


def _notes(region, policy, probe: Probe) -> list[Notification]:
    c = region.customers
    grid = GridView.of(region)
    tn = grid.arrays.system_tn[c.bus_row.to_numpy()]
    return [_probe_note(i, probe, str(mp), "TN_400" if t else "IT_230", policy)
            for i, (mp, t) in enumerate(zip(c.metering_point_id, tn, strict=True))]  # fmt: skip


def _engine_answers(region, policy, notes, state):
    grid = GridView.of(region)
    cases = demand_cases(notes, grid, policy, state, screening=True)  # the map's probes are a screening study
    assert all(c.evaluable for c in cases)
    ev = evaluate(cases, grid, policy, state)
    return size_limits(cases, ev, grid, policy, state)


def _ledger(region, policy) -> CapacityState:
    """A ledger with approvals on several feeders: EV chargers at every third point, 0.3 of the test size."""
    state = CapacityState.empty(region)
    assessor = Assessor(region, without_paperwork(without_measures(appliance_jobs_auto_approvable(policy))), clock=lambda: FIXED_TIME,
                        ledger=state)  # fmt: skip
    c = region.customers
    grid = GridView.of(region)
    tn = grid.arrays.system_tn[c.bus_row.to_numpy()]
    notes = [
        _probe_note(1000 + i, PROBES[1], str(mp), "TN_400" if t else "IT_230", policy, kw=6.0)
        for i, (mp, t) in enumerate(zip(c.metering_point_id[::3], tn[::3], strict=True))
    ]
    decisions = assessor.assess_many(notes)
    assert sum(d.ledger_status == "approved" for d in decisions) >= 20
    return state


@pytest.mark.parametrize("with_ledger", [False, True], ids=["static", "ledger"])
def test_map_equals_the_engines_inverse_answers_at_every_demo_point(demo_region, policy, with_ledger):
    state = _ledger(demo_region, policy) if with_ledger else None
    grid = GridView.of(demo_region)
    cmap = capacity_map(grid, policy, state)
    assert cmap.site.evaluable.all()
    limited = 0
    for res in cmap.probes:
        answers = _engine_answers(demo_region, policy, _notes(demo_region, policy, res.probe), state)
        for k, ans in enumerate(answers):
            size = ans[0]
            assert size.quantity == "appliances[0].rated_kw"
            if size.largest is None:
                assert math.isinf(res.largest_kw[k]) and res.binding[k] is None, (res.probe.name, k)
            else:
                limited += 1
                assert res.largest_kw[k] == pytest.approx(size.largest, rel=1e-9, abs=1e-9), (res.probe.name, k)
                assert res.binding[k] == size.binding_rule, (res.probe.name, k)
            fuse = next(a for a in ans if a.quantity == "main_fuse_a")
            assert (None if np.isnan(cmap.main_fuse_max_a[k]) else cmap.main_fuse_max_a[k]) == fuse.largest
            assert cmap.main_fuse_binding[k] == fuse.binding_rule
    assert limited >= 0.9 * len(PROBES) * len(demo_region.customers)
    # the map is not one number: the binding checks differ between probes and points
    assert len({r for res in cmap.probes for r in res.binding}) >= 5


def test_ledger_shrinks_the_map_where_it_reserves(demo_region, policy):
    grid = GridView.of(demo_region)
    alone = capacity_map(grid, policy)
    state = _ledger(demo_region, policy)
    after = capacity_map(grid, policy, state)
    for a, b in zip(alone.probes, after.probes, strict=True):
        both = np.isfinite(a.largest_kw) & np.isfinite(b.largest_kw)
        assert (b.largest_kw[both] <= a.largest_kw[both] * (1 + 1e-9)).all(), a.probe.name
    ev3 = after.probes[1]
    assert (ev3.largest_kw < alone.probes[1].largest_kw - 0.1).sum() >= 20


@pytest.mark.parametrize("probe", [PROBES[0], PROBES[2], PROBES[3]], ids=lambda p: p.name)
def test_largest_size_passes_the_forward_checks_and_one_percent_more_fails(demo_region, policy, probe):
    """A sample of points, decided by the engine at the map's size and at 1.01 x."""
    grid = GridView.of(demo_region)
    sample = np.arange(0, len(demo_region.customers), 7)
    cmap = capacity_map(grid, policy, rows=sample)
    res = next(r for r in cmap.probes if r.probe == probe)
    notes = _notes(demo_region, policy, probe)
    assessor = Assessor(demo_region, without_paperwork(without_measures(policy)), clock=lambda: FIXED_TIME)
    below, above, rules = [], [], []
    for j, k in enumerate(sample):
        if not math.isfinite(res.largest_kw[j]):
            continue
        n = notes[k]
        a = n.appliances[0].model_dump(exclude_none=True)
        system = n.network_system.value
        below.append(_probe_note(k, probe, n.metering_point_id, system, policy, res.largest_kw[j] * (1 - 1e-7)))
        above.append(_probe_note(k, probe, n.metering_point_id, system, policy, res.largest_kw[j] * 1.01))
        assert a["rated_kw"] == P0_KW
        rules.append(res.binding[j])
    assert len(rules) >= 30
    for rule, ok, over in zip(rules, assessor.assess_many(below), assessor.assess_many(above), strict=True):
        assert ok.check(rule).status == "pass", rule
        assert over.check(rule).status == "fail", rule


def test_main_fuse_range_by_hand(policy):
    """Standard sizes 25, 32, 40, 50, 63, 80 ... A (policy); gG melting currents at 5 s from the policy's table."""
    sizes = [float(s) for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)]
    assert {25.0, 32.0, 40.0, 50.0, 63.0, 80.0} <= set(sizes)
    i5_40, i5_50 = policy.fuse_melting_5s(40.0), policy.fuse_melting_5s(50.0)
    sel = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    big = 1e6
    amp = np.array([50.0, np.nan, np.nan, np.nan, 45.0])
    # 100 A upstream: 100 / 63 = 1.59, 100 / 50 = 2.0 -> with a selectivity ratio of 1.6 the largest is 50 A
    up = np.array([np.nan, 100.0, np.nan, np.nan, np.nan])
    # fault current between I5s(40 A) and I5s(50 A): 40 A still melts within 5 s, 50 A does not
    ik = np.array([big, big, 0.5 * (i5_40 + i5_50), big, big])
    largest, rule = main_fuse_range(amp, up, ik, policy)
    assert largest[0] == 50.0 and rule[0] == str(RuleId.PROT_SERVICE_CABLE)
    expect_sel = max(s for s in sizes if 100.0 / s >= sel and policy.fuse_melting_5s(s) is not None)
    assert 1.5 < sel <= 100.0 / 50.0 < 100.0 / 40.0
    assert largest[1] == expect_sel == 50.0 and rule[1] == str(RuleId.PROT_SELECTIVITY)
    assert largest[2] == 40.0 and rule[2] == str(RuleId.PROT_FAULT_CURRENT)
    # nothing limits but the table's end: the largest tabulated size, binding "fault current" where the
    # next standard size has no melting current and no larger tabulated size follows
    tabulated = [s for s in sizes if policy.fuse_melting_5s(s) is not None]
    assert largest[3] == max(tabulated)
    # 45 A cable: 40 A fits, 50 A does not
    assert largest[4] == 40.0 and rule[4] == str(RuleId.PROT_SERVICE_CABLE)


def test_map_uses_the_kv_of_a_built_kv_change(demo_region, policy):
    """A built kv_change that set a 40 A KV at a point with a gG main fuse (or none recorded): the largest gG main
    fuse behind it is the largest standard size s with 40 / s >= 1.6, s <= 25 -> 25 A (PROT.KV_SELECTIVITY binds,
    unless something else binds lower); without the request the map's answer at the point is larger."""
    from powercheck.ledger.model import LedgerRequest, RequestStatus

    grid = GridView.of(demo_region)
    codes = grid.customers.main_device
    row = next(i for i in range(len(codes)) if codes[i] in (None, "gG_fuse") and np.isnan(grid.customers.kv_fuse_a[i]))
    mp = str(demo_region.customers["metering_point_id"].iloc[row])
    alone = capacity_map(grid, policy, rows=np.array([row]))
    assert alone.main_fuse_max_a[0] > 25.0
    state = CapacityState.empty(demo_region)
    state.put(
        LedgerRequest(
            notification_id="KV-40",
            revision=1,
            metering_point_id=mp,
            network_id=None,
            bus=None,
            status=RequestStatus.BUILT,
            job_type="kv_change",
            kv_after_a=40.0,
        )  # fmt: skip
    )
    after = capacity_map(grid, policy, state, rows=np.array([row]))
    assert after.site.kv_a[0] == 40.0
    assert after.main_fuse_max_a[0] == 25.0 and after.main_fuse_binding[0] == "PROT.KV_SELECTIVITY"
