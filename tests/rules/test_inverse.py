"""Inverse answers against the forward checks: at every demo customer point, the largest size passes every
check and 1 % more fails the binding one."""

from __future__ import annotations

from collections import Counter

import pytest

from powercheck.ledger import CapacityState
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, without_measures, without_paperwork

DEVICES = {
    "ev_1ph": {"kind": "ev_charger", "rated_kw": 7.4, "cos_phi": 0.99},
    "ev_3ph": {"kind": "ev_charger", "rated_kw": 22.0, "connection": "3ph", "cos_phi": 0.99},
    "pv_3ph": {"kind": "pv_inverter", "rated_kw": 10.0, "connection": "3ph"},
    "heat_pump": {
        "kind": "heat_pump",
        "rated_kw": 6.0,
        "connection": "3ph",
        "start_current_ratio": 2.5,
        "starts_per_hour": 3,
        "cos_phi": 0.95,
        "cos_phi_start": 0.6,
    },  # fmt: skip
}
JOB = {"ev_charger": "ev_charger", "pv_inverter": "pv", "heat_pump": "heat_pump"}


def _note(i: int, mp: str, system: str, device: dict, scale: float = 1.0, fuse: float = 63) -> Notification:
    appliance = dict(device)
    appliance.setdefault("connection", "L-N" if system == "TN_400" else "L-L")
    appliance["rated_kw"] = appliance["rated_kw"] * scale
    return Notification.model_validate(
        {"notification_id": f"INV-{i}", "job_type": JOB[device["kind"]], "metering_point_id": mp,
         "network_system": system, "main_fuse_before_a": fuse, "appliances": [appliance]}
    )  # fmt: skip


def _both_ways(assessor: Assessor, notes: list[Notification]) -> Counter:
    decisions = assessor.assess_many(notes)
    below, above, binding = [], [], []
    for n, d in zip(notes, decisions):
        size = d.limits[0]
        if size.largest is None or size.scale is None:
            continue
        device = n.appliances[0].model_dump(exclude_none=True)
        system = n.network_system.value
        fuse = n.main_fuse_before_a
        below.append(_note(0, n.metering_point_id, system, device, size.scale * (1 - 1e-7), fuse))
        above.append(_note(0, n.metering_point_id, system, device, size.scale * 1.01, fuse))
        binding.append(size.binding_rule)
    ok = assessor.assess_many(below)
    over = assessor.assess_many(above)
    for rule, d_ok, d_over in zip(binding, ok, over):
        grid_checks = [c for c in d_ok.checks if not c.rule_id.startswith(("DATA", "GRID", "LEDGER", "PROT.SERV",
                                                                            "PROT.SEL", "PROT.FAULT"))]  # fmt: skip
        assert all(c.status == "pass" for c in grid_checks), (
            rule,
            [(c.rule_id, c.value, c.limit) for c in grid_checks],
        )
        failing = {c.rule_id for c in d_over.checks if c.status == "fail"}
        assert rule in failing, (rule, failing)
    return Counter(binding)


@pytest.mark.parametrize("fuse", [63, 160])
@pytest.mark.parametrize("device", sorted(DEVICES))
def test_largest_size_passes_and_one_percent_more_fails_at_every_demo_point(demo_region, policy, device, fuse):
    """With a 63 A main fuse the customer's fuse binds at most points; behind 160 A the grid checks do."""
    c = demo_region.customers
    notes = [
        _note(i, str(mp), "TN_400" if nid.startswith("tn") else "IT_230", DEVICES[device], fuse=fuse)
        for i, (mp, nid) in enumerate(zip(c.metering_point_id, c.network_id))
    ]
    binding = _both_ways(
        Assessor(demo_region, without_paperwork(without_measures(policy)), clock=lambda: FIXED_TIME), notes
    )
    assert sum(binding.values()) >= len(notes) // 2
    if fuse == 160:  # the grid binds (cables, voltage, unbalance, voltage steps; see the counts)
        assert sum(n for r, n in binding.items() if r.startswith(("THERMAL", "VOLT", "PQ"))) > len(notes) // 2


def test_inverse_answers_include_the_ledger(demo_region, policy):
    """With earlier approvals reserving the feeder, the largest size at a point shrinks and is still exact."""
    c = demo_region.customers[demo_region.customers.network_id == "it-landnetz-luft"]
    state = CapacityState.empty(demo_region)
    with_ledger = Assessor(demo_region, without_paperwork(without_measures(appliance_jobs_auto_approvable(policy))),
                         clock=lambda: FIXED_TIME, ledger=state)  # fmt: skip
    mp = str(c.metering_point_id.iloc[-1])
    alone = with_ledger.assess(_note(0, mp, "IT_230", DEVICES["ev_3ph"])).limits[0]
    others = [_note(100 + i, str(m), "IT_230", DEVICES["ev_3ph"], 0.3) for i, m in enumerate(c.metering_point_id[:8])]
    recorded = with_ledger.assess_many(others)
    assert any(d.ledger_status == "approved" for d in recorded)
    after = with_ledger.assess(_note(1, mp, "IT_230", DEVICES["ev_3ph"])).limits[0]
    assert after.largest < alone.largest
    # the forward check on the same ledger confirms the answer (a fresh id: assessed without recording it)
    probe = Assessor(demo_region, without_paperwork(without_measures(policy)), clock=lambda: FIXED_TIME, ledger=state)
    d_ok = probe.assess_batch([_note(2, mp, "IT_230", DEVICES["ev_3ph"], after.scale * (1 - 1e-7))]).decision(0)
    d_over = probe.assess_batch([_note(3, mp, "IT_230", DEVICES["ev_3ph"], after.scale * 1.01)]).decision(0)
    assert d_ok.check(after.binding_rule).status == "pass"
    assert d_over.check(after.binding_rule).status == "fail"
