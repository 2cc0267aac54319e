"""The approvals issue 9 found wrong, each now refused with a reason a case handler understands.

Demo region, numbers by hand: a 25 A main fuse carries 25 A per phase; a 7.4 kW single-phase EV
charger at cos 0.99 draws 7400 / 0.99 / 230 V = 32.5 A (L-L in IT) or 7400 / 0.99 / 230.9 V =
32.4 A (L-N in TN); a 22 kW three-phase charger 22000 / 0.99 / (sqrt3 400 V) = 32.1 A.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from powercheck.ledger import CapacityState
from powercheck.models import Notification, Outcome
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME, without_measures

SQ3 = math.sqrt(3)


def _point(region, network_id: str, fuse: float) -> tuple[str, float]:
    """A customer point of the network with this main fuse on record: (metering point, existing kW)."""
    c = region.customers
    rows = c[(c.network_id == network_id) & (c.main_fuse_a == fuse)]
    return str(rows.metering_point_id.iloc[0]), float(rows.existing_peak_kw.iloc[0])


def _note(nid, mp, system, appliances, job="ev_charger", **kw) -> Notification:
    return Notification.model_validate(
        {"notification_id": nid, "job_type": job, "metering_point_id": mp, "network_system": system,
         "appliances": appliances, **kw}
    )  # fmt: skip


@pytest.fixture()
def assessor(demo_region, policy):
    """Without the policy's measures: the checks of the job as notified."""
    return Assessor(
        demo_region, without_measures(policy), clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region)
    )


@pytest.mark.parametrize(
    ("network_id", "system", "kw", "conn", "fuse"),
    [
        ("tn-vorstadt", "TN_400", 7.4, "L-N", 25.0),
        ("tn-ieee-eu", "TN_400", 7.4, "L-N", 25.0),
        ("it-dorf", "IT_230", 11.0, "L-L", 40.0),  # 47.8 A on two conductors
        ("tn-vorstadt", "TN_400", 22.0, "3ph", 25.0),
    ],
)
def test_ev_charger_above_the_main_fuse_is_not_approved(demo_region, assessor, network_id, system, kw, conn, fuse):
    mp, existing = _point(demo_region, network_id, fuse)
    d = assessor.assess(_note("EV-1", mp, system, [{"kind": "ev_charger", "rated_kw": kw, "connection": conn,
                                                    "cos_phi": 0.99}]))  # fmt: skip
    row = demo_region.customers.bus_row[demo_region.locate([mp])[0]]
    u = float(demo_region.arrays.u_ll_v[row])  # 400 V, 416 V in the IEEE European LV feeder, 230 V in IT
    if conn == "L-N":
        charger = kw * 1000 / 0.99 / (u / SQ3)
    elif conn == "L-L":
        charger = kw * 1000 / 0.99 / u
    else:
        charger = kw * 1000 / 0.99 / (SQ3 * u)
    existing_a = existing * 1000 / 0.95 / (SQ3 * u)  # the existing peak, balanced at the policy cos 0.95
    c = d.check("LOAD.MAIN_FUSE")
    assert c.value == pytest.approx(existing_a + charger, rel=1e-9) and c.limit == fuse and c.status == "fail"
    assert d.outcome is Outcome.ESCALATE
    reason = next(r for r in d.reasons if r.startswith("LOAD.MAIN_FUSE"))
    assert "requires a fuse of at least" in reason
    assert d.required_main_fuse_a is not None and d.required_main_fuse_a >= existing_a + charger
    assert d.notifiable is True


def test_pv_and_battery_export_above_the_main_fuse(demo_region, assessor):
    mp, _ = _point(demo_region, "tn-vorstadt", 25.0)
    d = assessor.assess(
        _note(
            "PV-1",
            mp,
            "TN_400",
            [
                {"kind": "pv_inverter", "rated_kw": 15.0, "connection": "3ph"},
                {"kind": "battery_inverter", "rated_kw": 5.0, "connection": "3ph"},
            ],
            job="pv",
        )  # fmt: skip
    )
    c = d.check("LOAD.EXPORT_FUSE")
    assert c.value == pytest.approx(20000 / (SQ3 * 400), rel=1e-9)  # 28.9 A at cos 1
    assert c.limit == 25.0 and c.status == "fail" and d.outcome is Outcome.ESCALATE


def test_direct_on_line_compressor_on_a_25_a_fuse(demo_region, assessor):
    mp, existing = _point(demo_region, "tn-vorstadt", 25.0)
    motor = {"kind": "motor", "rated_kw": 15.0, "connection": "3ph", "cos_phi": 0.85, "start_current_ratio": 5.0,
             "starts_per_hour": 0.5, "cos_phi_start": 0.4}  # fmt: skip
    d = assessor.assess(_note("MOT-1", mp, "TN_400", [motor], job="motor"))
    i_rated = 15000 / 0.85 / (SQ3 * 400)  # 25.5 A
    running = existing * 1000 / 0.95 / (SQ3 * 400) + i_rated  # the existing peak at cos 0.95, the motor at 0.85
    c = d.check("PROT.START_CURRENT")
    # start: 5 x I_rated for the default 5 s on top of the running rest, against I_min(10 s) = 52 A of a 25 A gG
    assert c.value == pytest.approx(running + 4 * i_rated, rel=1e-9) and c.limit == 52.0 and c.status == "fail"
    assert "policy:appliance_defaults.motor.start_duration_s" in c.assumptions
    assert d.check("LOAD.MAIN_FUSE").status == "fail"
    assert d.required_main_fuse_a == 63.0  # smallest standard fuse whose I_min(10 s) (160 A) carries the start
    assert d.outcome is Outcome.ESCALATE


def test_thirteen_ev_chargers_on_one_weak_feeder_do_not_add_up_to_an_overload(demo_region, policy):
    network = "it-landnetz-luft"
    points = demo_region.customers[demo_region.customers.network_id == network]
    notes = [
        _note(
            f"EV13-{i}",
            str(mp),
            "IT_230",
            [{"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-L", "cos_phi": 0.99}],  # fmt: skip
            submitted_at=(datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=i)).isoformat(),
            main_fuse_before_a=63.0,
        )  # fmt: skip
        for i, mp in enumerate(points.metering_point_id)
    ]
    assert len(notes) == 13
    state = CapacityState.empty(demo_region)
    decisions = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=state).assess_many(notes)
    approved = [d for d in decisions if d.outcome is Outcome.AUTO_APPROVE]
    alone = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_many(notes)
    assert len(approved) < sum(d.outcome is Outcome.AUTO_APPROVE for d in alone) or not approved
    # the reserved current on every line stays within its rating with the base case
    arr = demo_region.arrays
    k = demo_region.network_order.index(network)
    lines = arr.line_network == k
    assert (arr.line_i_peak_a[lines] + state.line_peak_a[lines] <= arr.line_i_max_a[lines] + 1e-6).all()
    for d in decisions:
        if d.outcome is Outcome.ESCALATE and d.checks_for("THERMAL.LINE_PEAK"):
            c = d.check("THERMAL.LINE_PEAK")
            if c.status == "fail":
                assert "reserved" in c.detail


def test_three_installers_changing_one_main_fuse(demo_region, policy):
    mp, _ = _point(demo_region, "tn-vorstadt", 25.0)
    notes = [
        _note(
            f"OV-{k}",
            mp,
            "TN_400",
            [],
            job="ov_mv_change",
            installer_id=f"INST-{k}",
            main_fuse_before_a=25,
            main_fuse_after_a=after,
            submitted_at=f"2026-11-0{k}T08:00:00+00:00",
        )  # fmt: skip
        for k, after in ((1, 32), (2, 35), (3, 40))
    ]
    decisions = Assessor(
        demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region)
    ).assess_many(notes)
    first, second, third = decisions
    assert not first.checks_for("LEDGER.CONFLICT")
    for d in (second, third):
        assert d.outcome is Outcome.ESCALATE
        reason = next(r for r in d.reasons if r.startswith("LEDGER.CONFLICT"))
        assert "OV-1" in reason  # names the other request
    assert "OV-2" in next(r for r in third.reasons if r.startswith("LEDGER.CONFLICT"))


def test_many_open_requests_at_one_point_are_counted_not_all_named(demo_region, policy):
    """Nine installers notify the same main fuse change: the ninth conflicts with the eight open requests before it.
    LEDGER.CONFLICT counts all eight (value 8 against 0); the decision names the first MAX_CONFLICTS_LISTED (5)
    and counts the other 3 in one message, so a point flooded with requests neither floods the decision nor
    makes work per notification that grows with the flood."""
    from powercheck.rules.demand import MAX_CONFLICTS_LISTED

    mp, _ = _point(demo_region, "tn-vorstadt", 25.0)
    notes = [
        _note(
            f"OV-{k}",
            mp,
            "TN_400",
            [],
            job="ov_mv_change",
            installer_id=f"INST-{k}",
            main_fuse_before_a=25,
            main_fuse_after_a=32,
            submitted_at=f"2026-11-02T{8 + k:02d}:00:00+00:00",
        )  # fmt: skip
        for k in range(1, 10)
    ]
    decisions = Assessor(
        demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region)
    ).assess_many(notes)
    assert MAX_CONFLICTS_LISTED == 5
    for k, d in enumerate(decisions):  # the k-th conflicts with the k open requests before it
        if k == 0:
            assert not d.checks_for("LEDGER.CONFLICT")
            continue
        check = d.check("LEDGER.CONFLICT")
        assert (check.status, check.value, check.limit) == ("fail", float(k), 0.0)
        reason = next(r for r in d.reasons if r.startswith("LEDGER.CONFLICT"))
        named = [f"OV-{i}" for i in range(1, k + 1) if f"request OV-{i} " in reason]
        assert named == [f"OV-{i}" for i in range(1, min(k, 5) + 1)]  # the first five, in ledger order
        if k > 5:
            assert f"and {k - 5} more open requests at this metering point" in reason
            assert f"and {k - 5} more open requests" in check.detail
        else:
            assert "more open requests" not in reason


def test_with_measures_the_wrong_approvals_become_approvals_with_conditions_or_escalations(demo_region, policy):
    """The EV charger above the main fuse is approvable only with a condition that brings it within the fuse."""
    mp, existing = _point(demo_region, "tn-vorstadt", 25.0)
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    note = _note("EV-M", mp, "TN_400", [{"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-N", "cos_phi": 0.99}])
    d = assessor.assess(note)
    assert d.outcome in (Outcome.APPROVED_WITH_CONDITIONS, Outcome.ESCALATE)
    if d.outcome is Outcome.APPROVED_WITH_CONDITIONS:
        main = d.check("LOAD.MAIN_FUSE")
        assert main.status == "pass" and main.value <= main.limit  # the conditioned job fits its fuse
        assert d.conditions and d.ledger_status == "approved_with_conditions"
