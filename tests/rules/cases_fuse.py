"""Rule cases: fuse changes (protection, budget), incomplete and invalid records, gates of the policy."""

from __future__ import annotations

import math

from powercheck.gs1 import make_gsrn
from tests.helpers.case_region import CASE_POINTS
from tests.rules.case_model import (
    DEMAND_COS,
    I5S,
    SQ3,
    at_least,
    at_most,
    auto_approvable,
    bottleneck,
    case,
    change_percent,
    const_power,
    current,
    expect,
    ik_min,
    network_worst,
    note,
    peak_voltage,
    point,
    unknown,
)

SERVICE_BRANCH_A = 142.0  # the 30 m NAYY 4x50 house branch of every house bus
ASSUMED_UPSTREAM_A = 250.0  # largest standard fuse within the 270 A feeder cable main_1


def fuse_change(key: str, after: float, budget_kw: float | None) -> dict:
    """Checks of a main-fuse change to ``after`` A on a three-phase supply.

    * LOAD.MAIN_FUSE: the installation after the job -- the budget, else the existing peak -- balanced
      three-phase at cos 0.95: P / 0.95 / (sqrt3 U) against the new fuse;
    * PROT.SERVICE_CABLE: new fuse against the ampacity on record, else the 142 A house branch;
    * PROT.SELECTIVITY: upstream fuse on record (else 250 A, the largest standard size within the
      270 A feeder cable) / new fuse against 1.6;
    * PROT.FAULT_CURRENT: Ik_min against the gG 5-s melting current (IEC 60269-1 gate, policy table);
    * the demand increase (budget, else the full new fuse at cos 0.95, minus the existing peak) as a
      balanced three-phase current on the binding path line, the transformer, and the lowest voltage
      of the network at peak (the point itself: constant power; elsewhere the drop through the
      impedance shared with the point).
    """
    p = point(key)
    _, bus, existing, _, ampacity, upstream = CASE_POINTS[key]
    checks = {}
    after_kw = budget_kw if budget_kw is not None else existing
    checks["LOAD.MAIN_FUSE"] = at_most(current(after_kw, DEMAND_COS, "3ph", p.u), after)
    if budget_kw is not None:
        new_kw = budget_kw
    else:
        new_kw = max(existing, SQ3 * p.u * after / 1000 * DEMAND_COS)
    checks["PROT.SERVICE_CABLE"] = at_most(after, ampacity or SERVICE_BRANCH_A)
    checks["PROT.SELECTIVITY"] = at_least((upstream or ASSUMED_UPSTREAM_A) / after, 1.6)
    ik = ik_min(p)
    checks["PROT.FAULT_CURRENT"] = at_least(ik, I5S[int(after)]) if after in I5S else unknown(ik)
    i_add = current(new_kw - existing, DEMAND_COS, "3ph", p.u)
    if bus != "busbar":
        _, base, rated = bottleneck(key, "peak")
        checks["THERMAL.LINE_PEAK"] = at_most(base + i_add, rated)
    checks["THERMAL.TRAFO_PEAK"] = at_most(p.trafo_peak + i_add, p.trafo_rated)
    v = const_power(p.v_peak, change_percent(p, "3ph", i_add, DEMAND_COS))
    v = network_worst(key, [("3ph", i_add, DEMAND_COS, 1.0)], 0.0, v, 0.0, peak=True)[0]
    checks.update(peak_voltage(v))
    return checks


@case
def ov_change_tn_budget_auto_approve():
    """OV 25 -> 63 A at the end of the TN feeder with a 30 kW budget (existing peak 5 kW).

    Budget current 30 kW / 0.95 / (sqrt3 400 V) = 45.6 A <= 63 A. Service cable: the 142 A house
    branch. Selectivity: no upstream fuse on record -> 250 A assumed (largest standard size within
    the 270 A feeder cable): 250/63 = 3.97 >= 1.6. Ik_min = sqrt3 0.95 400 / |2 Z1 + Z0| with
    Z from pandapower calc_sc(case='min') against 320 A (63 A gG, 5 s). Added current
    (30 - 5) kW / 0.95 three-phase on the binding line and the transformer; voltage at peak from
    v^2 - v_base v + d0 = 0 with d0 = (R cos + X sin) I / U_ph. Every check passes with margin:
    auto-approved.
    """
    checks = fuse_change("TN_END", 63.0, 30.0)
    assert auto_approvable(checks)
    return {
        "notification": note(
            "TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=63, power_budget={"max_demand_kw": 30}
        ),
        "expected": expect("auto_approve", checks),
    }


@case
def ov_change_selectivity_fail():
    """OV 25 -> 63 A behind a 100 A upstream fuse (customer index): 100/63 = 1.587 < 1.6 fails."""
    checks = fuse_change("TN_MID", 63.0, 20.0)
    assert checks["PROT.SELECTIVITY"]["status"] == "fail"
    conditional_checks = {
        "PROT.SELECTIVITY": at_least(100.0 / 50.0, 1.6),
        "PROT.FAULT_CURRENT": at_least(checks["PROT.FAULT_CURRENT"]["value"], I5S[50]),
    }
    return {
        "notification": note(
            "TN_MID", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=63, power_budget={"max_demand_kw": 20}
        ),
        "conditional_checks": conditional_checks,
        "expected": expect("escalate", checks, reasons=["PROT.SELECTIVITY"], conditional=["main_fuse"]),
    }


@case
def ov_change_service_cable_fail():
    """OV 25 -> 80 A where the customer index records a 63 A service cable: 80 A > 63 A fails."""
    checks = fuse_change("TN_NEAR", 80.0, 20.0)
    assert checks["PROT.SERVICE_CABLE"]["status"] == "fail"
    return {
        "notification": note(
            "TN_NEAR", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=80, power_budget={"max_demand_kw": 20}
        ),
        "expected": expect("escalate", checks, reasons=["PROT.SERVICE_CABLE"], conditional=["service_cable"]),
    }


@case
def ov_change_35a_fuse_interpolated_gates():
    """OV 25 -> 35 A, the Nordic main-fuse size: the policy's 35 A gG gates are interpolated log-log
    between 32 A and 40 A, I_max(5 s) = 150 (190/150)^(ln(35/32)/ln(40/32)) = 164.94 -> 165 A, and the
    minimum fault current at the TN feeder end is held against it (before, 35 A had no data and the
    check was not evaluated). Without a budget (not required up to 40 A in TN) the new demand is the
    full 35 A fuse at cos 0.95: sqrt3 400 V 35 A 0.95 = 23.0 kW. Every check passes with margin.
    """
    assert abs(150 * (190 / 150) ** (math.log(35 / 32) / math.log(40 / 32)) - 164.94) < 0.01
    checks = fuse_change("TN_END", 35.0, None)
    assert checks["PROT.FAULT_CURRENT"]["limit"] == 165 and auto_approvable(checks)
    return {
        "notification": note("TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=35),
        "expected": expect("auto_approve", checks),
    }


@case
def ov_change_weak_feeder_fault_current_fail():
    """OV 25 -> 100 A at the end of the 1.2 km IT feeder: the minimum line-to-line fault current
    0.95 230 V / |2 Z1| is below the 580 A that melts a 100 A gG fuse in 5 s.
    """
    checks = fuse_change("WEAK_END", 100.0, 20.0)
    assert checks["PROT.FAULT_CURRENT"]["status"] == "fail"
    return {
        "notification": note(
            "WEAK_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=100, power_budget={"max_demand_kw": 20}
        ),
        "expected": expect("escalate", checks, reasons=["PROT.FAULT_CURRENT"]),
    }


@case
def ov_change_budget_exceeds_new_fuse():
    """OV 25 -> 32 A with a 25 kW budget: 25 kW / 0.95 / (sqrt3 400 V) = 38.0 A > 32 A fails (40 A needed)."""
    checks = fuse_change("TN_END", 32.0, 25.0)
    assert checks["LOAD.MAIN_FUSE"]["status"] == "fail"
    return {
        "notification": note(
            "TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=32, power_budget={"max_demand_kw": 25}
        ),
        "expected": expect(
            "escalate",
            checks,
            reasons=["LOAD.MAIN_FUSE", "requires a fuse of at least 40 A"],
            conditional=["main_fuse"],
        ),
    }


@case
def ov_change_above_auto_approval_cap():
    """OV 40 -> 100 A in IT with a 15 kW budget (required above 63 A): every check passes, but the
    policy auto-approves fuses up to 80 A only (POLICY.MAX_FUSE), and sqrt3 x 230 V x 100 A = 39.8 kVA
    is above the 31.87 kVA of 80 A (POLICY.MAX_FUSE_KVA). 100 A stays below the IT tariff threshold 125 A.
    """
    checks = fuse_change("IT_END", 100.0, 15.0)
    assert all(c["status"] == "pass" for c in checks.values())
    return {
        "notification": note(
            "IT_END", "ov_mv_change", main_fuse_before_a=40, main_fuse_after_a=100, power_budget={"max_demand_kw": 15}
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.MAX_FUSE:", "POLICY.MAX_FUSE_KVA"]),
    }


@case
def ov_change_crosses_the_tariff_threshold():
    """OV 25 -> 100 A in TN with a 15 kW budget (required above 40 A): every check passes; 100 A is above
    the 80 A auto-approval cap (POLICY.MAX_FUSE), sqrt3 x 400 V x 100 A = 69.3 kVA above 55.43 kVA
    (POLICY.MAX_FUSE_KVA), and it crosses the TN tariff threshold of 80 A (25 A before): another tariff
    class and metering, flagged for the case handler (POLICY.TARIFF).
    """
    checks = fuse_change("TN_END", 100.0, 15.0)
    assert all(c["status"] == "pass" for c in checks.values())
    assert SQ3 * 400 * 100 / 1000 > 55.43
    return {
        "notification": note(
            "TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=100, power_budget={"max_demand_kw": 15}
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.MAX_FUSE:", "POLICY.MAX_FUSE_KVA", "POLICY.TARIFF"]),
    }


@case
def meter_work_auto_approved():
    """Work at the metering point (meter change) at the TN feeder end: no load, fuse or service change.
    The power accounting holds the existing 5 kW at cos 0.95 on the 25 A main fuse on record:
    5000 / (0.95 sqrt3 400) = 7.60 A <= 25 A; no grid check runs (nothing is added). The default policy
    auto-approves metering-point work.
    """
    checks = {"LOAD.MAIN_FUSE": at_most(5000 / (DEMAND_COS * SQ3 * 400), 25.0)}
    return {"notification": note("TN_END", "meter_work"), "expected": expect("auto_approve", checks)}


@case
def new_connection_is_not_auto_approvable():
    """A new connection (25 A, 8 kW budget) passes every check, but the default policy never
    auto-approves new connections (POLICY.JOB_TYPE). The connection is new, so the fuse counts as
    changed and the protection checks run.
    """
    checks = fuse_change("TN_END", 25.0, 8.0)
    assert auto_approvable(checks)
    return {
        "notification": note(
            "TN_END",
            "new_connection",
            main_fuse_after_a=25,
            power_budget={"max_demand_kw": 8},
            attachments=[{"kind": "site_plan"}],
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.JOB_TYPE"]),
    }


@case
def ov_change_missing_fuse_before_and_budget():
    """OV change to 50 A without the fuse before the job and without the power budget that the
    policy requires above 40 A in TN: reject_incomplete with both fields named (2 missing).
    """
    return {
        "notification": note("TN_END", "ov_mv_change", main_fuse_after_a=50),
        "expected": expect(
            "reject_incomplete",
            {"DATA.COMPLETE": at_most(2.0, 0.0)},
            reasons=["missing main_fuse_before_a", "missing power_budget"],
        ),
    }


@case
def motor_without_datasheet_values():
    """A motor (a challenging appliance) notified without its datasheet values and without its datasheet:
    request_info naming the four values the policy wants for motors (cos phi, start current ratio, cos phi at
    start, starts per hour) and the datasheet attachment (2 items asked for); nothing is decided on the
    policy's appliance defaults.
    """
    return {
        "notification": note("TN_END", "motor", appliances=[{"kind": "motor", "rated_kw": 4.0, "connection": "3ph"}]),
        "expected": expect(
            "request_info",
            {"DATA.INFO": at_most(2.0, 0.0)},
            reasons=[
                "appliances[0] (motor): datasheet values needed: cos_phi, start_current_ratio, cos_phi_start, "
                "starts_per_hour",
                "attachments: the datasheet of appliances[0] (motor)",
            ],
            absent=["PQ.RVC_DACH", "LOAD.MAIN_FUSE"],
        ),
    }


@case
def ev_charger_notification_without_charger():
    """An EV-charger notification that lists no EV charger: reject_incomplete (1 missing)."""
    return {
        "notification": note("TN_END", "ev_charger"),
        "expected": expect("reject_incomplete", {"DATA.COMPLETE": at_most(1.0, 0.0)}, reasons=["missing appliances"]),
    }


@case
def budget_export_without_generator():
    """A power budget that declares 5 kW export with no generating appliance listed: incomplete."""
    return {
        "notification": note(
            "TN_END",
            "ov_mv_change",
            main_fuse_before_a=25,
            main_fuse_after_a=32,
            power_budget={"max_demand_kw": 10, "max_export_kw": 5},
        ),
        "expected": expect("reject_incomplete", {"DATA.COMPLETE": at_most(1.0, 0.0)}, reasons=["missing appliances"]),
    }


@case
def invalid_line_to_neutral_appliance_in_it():
    """An L-N EV charger in a 230 V IT network (no neutral) fails field validation: DATA.VALID,
    reject_incomplete, the field named.
    """
    return {
        "notification": note(
            "IT_END", "ev_charger", appliances=[{"kind": "ev_charger", "rated_kw": 3.7, "connection": "L-N"}]
        ),
        "expected": expect(
            "reject_incomplete",
            {"DATA.VALID": at_most(1.0, 0.0)},
            reasons=["appliances[0].connection: L-N is impossible in an IT 230 V system"],
        ),
    }


@case
def invalid_metering_point_check_digit():
    """A metering point id whose GS1 check digit is wrong (last digit changed): DATA.VALID."""
    data = note("TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=32)
    good = data["metering_point_id"]
    data["metering_point_id"] = good[:-1] + str((int(good[-1]) + 1) % 10)
    return {
        "notification": data,
        "expected": expect(
            "reject_incomplete", {"DATA.VALID": at_most(1.0, 0.0)}, reasons=["invalid metering_point_id"]
        ),
    }


@case
def unknown_metering_point():
    """A valid GS1 id that is not in the customer index: GRID.LOCATED not evaluated, escalate."""
    data = note("TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=32)
    data["metering_point_id"] = make_gsrn("70705750099999999")
    return {
        "notification": data,
        "expected": expect("escalate", {"GRID.LOCATED": unknown()}, reasons=["GRID.LOCATED"]),
    }


@case
def islanded_bus_grid_data_not_evaluated():
    """A metering point at a bus no line connects to a transformer (issue 12): GRID.DATA not evaluated, escalate,
    naming the network, the bus and why -- no grid check runs on a model that cannot be computed there."""
    data = note("ISLAND", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=32)
    return {
        "notification": data,
        "expected": expect(
            "escalate",
            {"GRID.DATA": unknown()},
            reasons=["GRID.DATA: not evaluated: the grid model of network tn_mesh cannot be computed", "islanded"],
        ),
    }


@case
def notified_system_differs_from_grid_model():
    """A TN metering point notified as IT_230: GRID.SYSTEM not evaluated, escalate, both systems named."""
    data = note("TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=32)
    data["network_system"] = "IT_230"
    return {
        "notification": data,
        "expected": expect("escalate", {"GRID.SYSTEM": unknown()}, reasons=["GRID.SYSTEM: notification says IT_230"]),
    }


@case
def ov_change_meter_fuse_stays_too_small():
    """OV 25 -> 40 A with a 20 kW budget while the meter fuse stays 25 A: 20 kW / 0.95 / (sqrt3 400 V)
    = 30.4 A fits the new main fuse but not the 25 A meter fuse (LOAD.METER_FUSE); 32 A would do.
    """
    checks = fuse_change("TN_END", 40.0, 20.0)
    checks["LOAD.METER_FUSE#"] = dict(checks["LOAD.MAIN_FUSE"])
    meter = at_most(checks["LOAD.MAIN_FUSE"]["value"], 25.0)
    checks = {("LOAD.METER_FUSE" if k == "LOAD.METER_FUSE#" else k): (meter if k == "LOAD.METER_FUSE#" else v)
              for k, v in checks.items()}  # fmt: skip
    assert meter["status"] == "fail"
    return {
        "notification": note(
            "TN_END",
            "ov_mv_change",
            main_fuse_before_a=25,
            main_fuse_after_a=40,
            meter_fuse_before_a=25,
            meter_fuse_after_a=25,
            power_budget={"max_demand_kw": 20},
        ),
        "expected": expect(
            "escalate",
            checks,
            reasons=["LOAD.METER_FUSE", "requires a fuse of at least 32 A"],
            conditional=["main_fuse"],
        ),
    }


@case
def second_open_request_from_another_installer():
    """The ledger holds a pending request of installer INST-A at the metering point; installer INST-B
    notifies an OV change there: LEDGER.CONFLICT fails (1 conflicting request, named in the reason)
    and the notification escalates. The grid checks still run (as in ov_change_tn_budget_auto_approve
    with a 20 kW budget).
    """
    checks = fuse_change("TN_END", 40.0, 20.0)
    checks = {"LEDGER.CONFLICT": at_most(1.0, 0.0), **checks}
    data = note(
        "TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=40, power_budget={"max_demand_kw": 20}
    )
    data["installer_id"] = "INST-B"
    return {
        "notification": data,
        "ledger": [
            {
                "notification_id": "CASE-EARLIER",
                "revision": 1,
                "point": "TN_END",
                "status": "pending",
                "installer_id": "INST-A",
                "job_type": "ev_charger",
            }
        ],  # fmt: skip
        "expected": expect(
            "escalate",
            checks,
            reasons=["LEDGER.CONFLICT: request CASE-EARLIER (revision 1, pending by installer INST-A)"],
        ),
    }


@case
def fuse_before_contradicts_an_approved_request():
    """An approved, not yet built request of the same installer sets the main fuse to 40 A; the new
    notification says the fuse before is 25 A: LEDGER.CONFLICT names the approved request.
    """
    checks = fuse_change("TN_END", 50.0, 25.0)
    checks = {"LEDGER.CONFLICT": at_most(1.0, 0.0), **checks}
    data = note(
        "TN_END", "ov_mv_change", main_fuse_before_a=25, main_fuse_after_a=50, power_budget={"max_demand_kw": 25}
    )
    data["installer_id"] = "INST-A"
    return {
        "notification": data,
        "ledger": [
            {
                "notification_id": "CASE-APPROVED",
                "revision": 1,
                "point": "TN_END",
                "status": "approved",
                "installer_id": "INST-A",
                "job_type": "ov_mv_change",
                "fuse_after_a": 40.0,
            }
        ],  # fmt: skip
        "expected": expect("escalate", checks, reasons=["LEDGER.CONFLICT: main fuse before 25 A contradicts"]),
    }
