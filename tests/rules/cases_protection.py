"""Rule cases: the main protection as a breaker (MCB B/C/D, adjustable), the KV from the customer index, and the
assumed upstream fuse.

Device data written out (policy_default.toml, each with its tag there):

* MCB instantaneous trip ranges (IEC 60898-1, ti-soft.com) [S]: B 3-5 In, C 5-10 In, D 10-20 In; the fault
  current must reach the upper bound (disconnection);
* adjustable breaker: trips at 1.2 x its lowest pickup (IEC 60947-2 tolerance) [R];
* gG gates I_min(0.1 s) and I_max(5 s) (IEC 60269-1) [R] and minimum pre-arcing I2t at 0.01 s [R];
* a breaker without a datasheet let-through lets through Ik_max^2 x 0.01 s (one half-cycle) [R];
* gG above gG: rating ratio >= 1.6 [S].

Ik_min from pandapower ``calc_sc(case="min")`` (:func:`tests.rules.case_model.ik_min`), Ik_max the 3-phase
``ikss_ka`` of pandapower ``calc_sc(case="max")`` (c_max = 1.1).
"""

from __future__ import annotations

import warnings
from functools import cache

import pandapower.shortcircuit as sc

from tests.helpers.case_region import CASE_KV, CASE_POINTS, case_network
from tests.helpers.grids import bus_named
from tests.rules.case_model import I5S, at_least, auto_approvable, case, expect, ik_min, note, point, unknown
from tests.rules.cases_fuse import ASSUMED_UPSTREAM_A, fuse_change

MCB = {"B": (3, 5), "C": (5, 10), "D": (10, 20)}
BREAKER_TOLERANCE = 1.2
LET_THROUGH_TIME_S = 0.01
I_MIN_0_1S = {40: 260, 50: 350, 63: 450, 80: 610, 100: 820, 125: 1100, 250: 2590}
PREARC_I2T = {40: 4000, 50: 5750, 63: 9000, 80: 13700, 100: 21200, 125: 36000, 250: 185000}
SELECTIVITY = 1.6
I5S_KV = {**I5S, 250: 1650}


@cache
def ik_max(key: str) -> float:
    """Maximum 3-phase fault current at a case point: pandapower calc_sc(case='max') ikss [A]."""
    nid, bus, *_ = CASE_POINTS[key]
    net = case_network(nid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="max", fault="3ph")
    return 1000.0 * float(net.res_bus_sc.ikss_ka[bus_named(net, bus)])


def breaker_checks(key: str, after: float, budget_kw: float, trip_a: float, let_through: float | None = None) -> dict:
    """The checks of an OV change to a breaker of ``after`` A that trips instantaneously at ``trip_a``.

    As :func:`tests.rules.cases_fuse.fuse_change` (load, service cable, thermal, voltage), with the breaker's
    own criteria: PROT.FAULT_CURRENT Ik_min >= trip_a; PROT.SELECTIVITY against the upstream fuse (on record,
    else 250 A assumed): its I_min(0.1 s) >= trip_a (the fuse does not melt before the breaker trips), then
    its pre-arcing I2t >= the breaker's let-through (datasheet, else Ik_max^2 x 0.01 s).
    """
    checks = fuse_change(key, after, budget_kw)
    up = CASE_POINTS[key][5] or ASSUMED_UPSTREAM_A
    let = let_through if let_through is not None else ik_max(key) ** 2 * LET_THROUGH_TIME_S
    checks["PROT.FAULT_CURRENT"] = at_least(ik_min(point(key)), trip_a)
    checks["PROT.SELECTIVITY"] = at_least(I_MIN_0_1S[int(up)], trip_a)
    checks["PROT.SELECTIVITY#2"] = at_least(PREARC_I2T[int(up)], let)
    return checks


def kv_checks(
    key: str, ov_a: float, trip_a: float | None, let_through: float | None = None, kv: float | None = None
) -> dict:
    """KV checks of a point with a KV on record: selectivity KV/OV and KV's own disconnection.

    Above a gG OV: KV / OV >= 1.6. Above a breaker tripping at ``trip_a``: KV I_min(0.1 s) >= trip_a, then
    KV pre-arcing I2t >= let-through (datasheet, else Ik_max^2 x 0.01 s). PROT.KV_FAULT_CURRENT: Ik_min >=
    the KV's I_max(5 s).
    """
    kv = CASE_KV[key] if kv is None else kv
    checks = {}
    if trip_a is None:
        checks["PROT.KV_SELECTIVITY"] = at_least(kv / ov_a, SELECTIVITY)
    else:
        let = let_through if let_through is not None else ik_max(key) ** 2 * LET_THROUGH_TIME_S
        checks["PROT.KV_SELECTIVITY"] = at_least(I_MIN_0_1S[int(kv)], trip_a)
        checks["PROT.KV_SELECTIVITY#2"] = at_least(PREARC_I2T[int(kv)], let)
    ik = ik_min(point(key))
    checks["PROT.KV_FAULT_CURRENT"] = at_least(ik, I5S_KV[int(kv)]) if int(kv) in I5S_KV else unknown(ik)
    return checks


def _ov(key: str, after: float, budget_kw: float, device: dict | None = None) -> dict:
    fields = {"main_fuse_before_a": 25, "main_fuse_after_a": after, "power_budget": {"max_demand_kw": budget_kw}}
    if device is not None:
        fields["main_device_after"] = device
    return note(key, "ov_mv_change", **fields)


# ------------------------------------------------------------------------------------ breakers as OV
@case
def mcb_b_63_passes_at_the_tn_feeder_end():
    """OV 25 A gG -> B 63 A MCB at the TN feeder end, 30 kW budget. B trips instantaneously at 5 x 63 = 315 A;
    Ik_min (calc_sc min, 1-phase) = 937.6 A >= 315 A. Upstream fuse: none on record, 250 A assumed; its
    I_min(0.1 s) = 2590 A >= 315 A, and its pre-arcing I2t 185 000 A^2 s >= Ik_max^2 x 0.01 s =
    2525.9^2 x 0.01 = 63 801 A^2 s. Load, cable, thermal and voltage as the 63 A gG case. Auto-approved.
    """
    trip = MCB["B"][1] * 63
    checks = breaker_checks("TN_END", 63.0, 30.0, trip)
    assert trip == 315 and auto_approvable(checks)
    return {
        "notification": _ov("TN_END", 63, 30, {"type": "mcb", "characteristic": "B"}),
        "expected": expect("auto_approve", checks),
    }


@case
def mcb_c_100_fault_current_fails_where_a_gg_fuse_passes():
    """OV 25 A -> C 100 A MCB at the TN feeder end (20 kW budget): C trips instantaneously at 10 x 100 = 1000 A,
    the minimum fault current 937.6 A does not reach it: PROT.FAULT_CURRENT fails (a 100 A gG fuse melts within
    5 s at 580 A and would pass). Upstream 250 A assumed: 2590 A >= 1000 A, 185 000 >= 63 801 A^2 s pass.
    A smaller breaker would do: C 80 A trips at 800 A <= 937.6 A.
    """
    trip = MCB["C"][1] * 100
    checks = breaker_checks("TN_END", 100.0, 20.0, trip)
    assert checks["PROT.FAULT_CURRENT"]["status"] == "fail" and ik_min(point("TN_END")) >= I5S[100]
    conditional_checks = {"PROT.FAULT_CURRENT": at_least(ik_min(point("TN_END")), MCB["C"][1] * 80)}
    return {
        "notification": _ov("TN_END", 100, 20, {"type": "mcb", "characteristic": "C"}),
        "conditional_checks": conditional_checks,
        "expected": expect("escalate", checks, reasons=["PROT.FAULT_CURRENT"], conditional=["main_fuse"]),
    }


@case
def mcb_d_50_fault_current_fails():
    """OV 25 A -> D 50 A MCB at the TN feeder end (20 kW budget): D trips instantaneously at 20 x 50 = 1000 A
    > Ik_min 937.6 A: PROT.FAULT_CURRENT fails (B 50 A: 250 A, C 50 A: 500 A would pass). The largest D breaker
    the point takes is 40 A (800 A <= 937.6 A), and it carries the 20 kW (30.4 A): the main_fuse measure.
    """
    trip = MCB["D"][1] * 50
    checks = breaker_checks("TN_END", 50.0, 20.0, trip)
    assert checks["PROT.FAULT_CURRENT"]["status"] == "fail"
    conditional_checks = {"PROT.FAULT_CURRENT": at_least(ik_min(point("TN_END")), MCB["D"][1] * 40)}
    return {
        "notification": _ov("TN_END", 50, 20, {"type": "mcb", "characteristic": "D"}),
        "conditional_checks": conditional_checks,
        "expected": expect("escalate", checks, reasons=["PROT.FAULT_CURRENT"], conditional=["main_fuse"]),
    }


@case
def adjustable_breaker_80a_passes():
    """OV 25 A -> adjustable breaker Ir 80 A, Isd 8 x Ir, Ii 10 x Ir at the TN feeder end (30 kW budget). It trips
    on its lowest pickup Isd = 8 x 80 = 640 A, taken with the 1.2 tolerance: 768 A <= Ik_min 937.6 A. Upstream
    250 A assumed: 2590 A >= 768 A; 185 000 >= 63 801 A^2 s. 80 A is at the auto-approval cap (not above) and
    sqrt3 x 400 V x 80 A = 55.43 kVA at the kVA cap: auto-approved.
    """
    trip = BREAKER_TOLERANCE * 8 * 80
    checks = breaker_checks("TN_END", 80.0, 30.0, trip)
    assert abs(trip - 768) < 1e-9 and auto_approvable(checks)
    device = {"type": "adjustable_breaker", "isd_multiple": 8, "ii_multiple": 10}
    return {"notification": _ov("TN_END", 80, 30, device), "expected": expect("auto_approve", checks)}


# ------------------------------------------------------------------------------------ KV
@case
def kv_selectivity_gg_passes():
    """OV 25 -> 50 A gG (25 kW budget) behind a 100 A KV on record: KV/OV = 100/50 = 2.0 >= 1.6; the KV melts
    within 5 s at 580 A <= Ik_min 937.6 A. Upstream 250 A assumed: 250/50 = 5 >= 1.6. Auto-approved.
    """
    checks = {**fuse_change("TN_END_KV", 50.0, 25.0), **kv_checks("TN_END_KV", 50.0, None)}
    assert auto_approvable(checks)
    return {"notification": _ov("TN_END_KV", 50, 25), "expected": expect("auto_approve", checks)}


@case
def kv_selectivity_gg_fails():
    """OV 25 -> 63 A gG (20 kW budget) behind a 100 A KV: 100/63 = 1.587 < 1.6, PROT.KV_SELECTIVITY fails. The
    upstream 250 A on record: 250/63 = 3.97 passes; the KV melts within 5 s at 580 A <= Ik_min 1239.0 A.
    With a 50 A main fuse (the largest the KV allows; 20 kW / 0.95 / (sqrt3 400 V) = 30.4 A needs 32 A):
    100/50 = 2.0 passes (the installer's main_fuse measure).
    """
    checks = {**fuse_change("TN_MID_KV", 63.0, 20.0), **kv_checks("TN_MID_KV", 63.0, None)}
    assert checks["PROT.KV_SELECTIVITY"]["status"] == "fail"
    conditional_checks = {"PROT.KV_SELECTIVITY": at_least(100.0 / 50.0, SELECTIVITY)}
    return {
        "notification": _ov("TN_MID_KV", 63, 20),
        "conditional_checks": conditional_checks,
        "expected": expect("escalate", checks, reasons=["PROT.KV_SELECTIVITY"], conditional=["main_fuse"]),
    }


@case
def kv_fuse_above_mcb_i2t_fails_without_datasheet():
    """OV 25 A -> C 40 A MCB (20 kW budget) behind a 100 A KV. Time-current: the KV does not melt within 0.1 s
    below 820 A >= the 10 x 40 = 400 A at which C trips: passes. I2t: without the breaker's datasheet its
    let-through is bounded by Ik_max^2 x 0.01 s = 2525.9^2 x 0.01 = 63 801 A^2 s, above the KV's minimum
    pre-arcing I2t 21 200 A^2 s: PROT.KV_SELECTIVITY fails (the KV may melt on a fault behind the breaker).
    The 250 A upstream fuse (assumed): 2590 A >= 400 A, 185 000 >= 63 801 A^2 s.
    """
    trip = MCB["C"][1] * 40
    checks = {**breaker_checks("TN_END_KV", 40.0, 20.0, trip), **kv_checks("TN_END_KV", 40.0, trip)}
    assert checks["PROT.KV_SELECTIVITY#2"]["status"] == "fail"
    return {
        "notification": _ov("TN_END_KV", 40, 20, {"type": "mcb", "characteristic": "C"}),
        "expected": expect("escalate", checks, reasons=["PROT.KV_SELECTIVITY"]),
    }


@case
def kv_fuse_above_mcb_with_datasheet_let_through():
    """As kv_fuse_above_mcb_i2t_fails_without_datasheet, but the installer gives the breaker's let-through
    I2t at the maximum fault current from its datasheet, 15 000 A^2 s: 21 200 >= 15 000 (KV) and 185 000 >=
    15 000 (upstream) pass. Auto-approved.
    """
    trip = MCB["C"][1] * 40
    checks = {
        **breaker_checks("TN_END_KV", 40.0, 20.0, trip, let_through=15000.0),
        **kv_checks("TN_END_KV", 40.0, trip, let_through=15000.0),
    }
    assert auto_approvable(checks)
    device = {"type": "mcb", "characteristic": "C", "let_through_i2t_a2s": 15000}
    return {"notification": _ov("TN_END_KV", 40, 20, device), "expected": expect("auto_approve", checks)}


@case
def kv_own_disconnection_fails_on_the_weak_feeder():
    """OV 25 -> 32 A gG (5 kW budget) at the end of the 1.2 km IT feeder, behind a 125 A KV. The OV melts
    within 5 s at 150 A <= Ik_min 294.3 A (2-phase, calc_sc min), but the KV needs 715 A: PROT.KV_FAULT_CURRENT
    fails (a fault between the KV and the OV is not cleared in time). KV/OV = 125/32 = 3.9 >= 1.6.
    """
    checks = {**fuse_change("WEAK_END_KV", 32.0, 5.0), **kv_checks("WEAK_END_KV", 32.0, None)}
    assert checks["PROT.KV_FAULT_CURRENT"]["status"] == "fail"
    return {
        "notification": _ov("WEAK_END_KV", 32, 5),
        "expected": expect("escalate", checks, reasons=["PROT.KV_FAULT_CURRENT"]),
    }


@case
def kv_rating_without_data_is_named_missing():
    """OV 25 -> 40 A gG (20 kW budget) behind a 224 A KV (an NH size): the policy has no gG gates for 224 A, so
    the KV's own disconnection is not evaluated and the decision names the missing data (the policy table and
    the rating). KV/OV = 224/40 = 5.6 >= 1.6 needs no table and passes.
    """
    checks = {**fuse_change("TN_NEAR_KV", 40.0, 20.0), **kv_checks("TN_NEAR_KV", 40.0, None)}
    assert checks["PROT.KV_FAULT_CURRENT"]["status"] == "not_evaluated"
    reason = "PROT.KV_FAULT_CURRENT: not evaluated: missing data: no 5-s melting current of a 224 A gG fuse (KV)"
    return {"notification": _ov("TN_NEAR_KV", 40, 20), "expected": expect("escalate", checks, reasons=[reason])}


@case
def upstream_fuse_assumed_is_named():
    """OV 25 -> 40 A gG (20 kW budget) at the TN feeder end: the customer index has no upstream fuse, so it is
    assumed as the largest standard size within the 270 A feeder cable main_1: 250 A (policy
    upstream_fuse_from_feeder_cable, tag R), 250/40 = 6.25 >= 1.6, and the decision names the assumption.
    """
    checks = fuse_change("TN_END", 40.0, 20.0)
    assert checks["PROT.SELECTIVITY"]["value"] == 250 / 40 and auto_approvable(checks)
    expected = expect("auto_approve", checks)
    expected["assumptions"] = ["policy:upstream_fuse_from_feeder_cable"]
    return {"notification": _ov("TN_END", 40, 20), "expected": expected}


# ------------------------------------------------------------------------------------ kv_change: the new KV
SINGLE_LINE = [{"kind": "single_line_diagram"}]


def _kv_change(key: str, kv: float) -> dict:
    return note(key, "kv_change", kv_fuse_after_a=kv, attachments=SINGLE_LINE)


@case
def kv_change_passes_with_the_upstream_fuse_on_record():
    """KV 100 A -> 63 A (kv_change) at TN_MID_KV: the 25 A gG main fuse on record stays. KV/OV = 63/25 = 2.52
    >= 1.6; the new KV melts within 5 s at I_max(5 s) = 320 A <= Ik_min 1239.0 A; the upstream fuse on record,
    250 A, over the new KV: 250/63 = 3.97 >= 1.6. Every check passes, but the default policy does not auto-approve
    a kv_change (POLICY.JOB_TYPE). No load, thermal or voltage check (job_types: protection only).
    """
    checks = {
        "PROT.KV_SELECTIVITY": at_least(63 / 25, SELECTIVITY),
        "PROT.KV_FAULT_CURRENT": at_least(ik_min(point("TN_MID_KV")), I5S_KV[63]),
        "PROT.KV_UPSTREAM_SELECTIVITY": at_least(250 / 63, SELECTIVITY),
    }
    assert auto_approvable(checks) and I5S_KV[63] == 320
    return {
        "notification": _kv_change("TN_MID_KV", 63),
        "expected": expect(
            "escalate", checks, reasons=["POLICY.JOB_TYPE"], absent=["LOAD.MAIN_FUSE", "PROT.SELECTIVITY"]
        ),
    }


@case
def kv_change_too_large_for_the_upstream_fuse():
    """KV 100 A -> 200 A at TN_MID_KV (upstream 250 A on record, OV 25 A gG): upstream/KV = 250/200 = 1.25 < 1.6,
    PROT.KV_UPSTREAM_SELECTIVITY fails; the 200 A KV melts within 5 s only above I_max(5 s) = 1250 A, the minimum
    fault current is 1239.0 A: PROT.KV_FAULT_CURRENT fails. KV/OV = 200/25 = 8 >= 1.6 passes.
    """
    ik = ik_min(point("TN_MID_KV"))
    checks = {
        "PROT.KV_SELECTIVITY": at_least(200 / 25, SELECTIVITY),
        "PROT.KV_FAULT_CURRENT": at_least(ik, 1250.0),
        "PROT.KV_UPSTREAM_SELECTIVITY": at_least(250 / 200, SELECTIVITY),
    }
    assert checks["PROT.KV_FAULT_CURRENT"]["status"] == "fail"
    assert checks["PROT.KV_UPSTREAM_SELECTIVITY"]["status"] == "fail"
    return {
        "notification": _kv_change("TN_MID_KV", 200),
        "expected": expect("escalate", checks, reasons=["PROT.KV_UPSTREAM_SELECTIVITY", "PROT.KV_FAULT_CURRENT"]),
    }


@case
def kv_change_too_small_for_the_main_fuse():
    """A new 35 A KV at the end of the weak IT feeder (no KV on record) in front of the 25 A gG main fuse on
    record: KV/OV = 35/25 = 1.4 < 1.6, PROT.KV_SELECTIVITY fails. The 35 A KV gets its own values: I_max(5 s) =
    165 A (interpolated log-log between 32 and 40 A in the policy) <= Ik_min 294.3 A. No upstream fuse on record:
    250 A assumed from the 270 A feeder cable (named), 250/35 = 7.14 >= 1.6.
    """
    checks = {
        "PROT.KV_SELECTIVITY": at_least(35 / 25, SELECTIVITY),
        "PROT.KV_FAULT_CURRENT": at_least(ik_min(point("WEAK_END")), I5S_KV[35]),
        "PROT.KV_UPSTREAM_SELECTIVITY": at_least(ASSUMED_UPSTREAM_A / 35, SELECTIVITY),
    }
    assert checks["PROT.KV_SELECTIVITY"]["status"] == "fail" and I5S_KV[35] == 165
    expected = expect("escalate", checks, reasons=["PROT.KV_SELECTIVITY"])
    expected["assumptions"] = ["policy:upstream_fuse_from_feeder_cable"]
    return {"notification": _kv_change("WEAK_END", 35), "expected": expected}


@case
def ov_change_uses_the_kv_of_a_built_kv_change():
    """OV 25 -> 50 A gG (25 kW budget) at the TN feeder end, which has no KV in the customer index, but the ledger
    holds a built kv_change there that set a 100 A KV: the KV checks run with it. KV/OV = 100/50 = 2.0 >= 1.6; the
    100 A KV melts within 5 s at 580 A <= Ik_min 937.6 A. The rest as kv_selectivity_gg_passes: auto-approved.
    """
    checks = {**fuse_change("TN_END", 50.0, 25.0), **kv_checks("TN_END", 50.0, None, kv=100.0)}
    assert auto_approvable(checks)
    ledger = [
        {
            "notification_id": "CASE-kv_change-earlier",
            "revision": 1,
            "point": "TN_END",
            "status": "built",
            "job_type": "kv_change",
            "kv_after_a": 100.0,
        }
    ]
    return {
        "notification": _ov("TN_END", 50, 25),
        "ledger": ledger,
        "expected": expect("auto_approve", checks, reasons=[]),
    }


@case
def kv_change_in_front_of_a_breaker_on_record():
    """A new 100 A KV at the TN feeder end, where the ledger holds a built change of the main protection to a C 40 A
    MCB. Above a breaker (as kv_fuse_above_mcb_i2t_fails_without_datasheet): the KV does not melt within 0.1 s below
    I_min(0.1 s) = 820 A >= 10 x 40 = 400 A at which C trips: passes; its minimum pre-arcing I2t 21 200 A^2 s is
    below the breaker's let-through bound Ik_max^2 x 0.01 s = 2525.9^2 x 0.01 = 63 801 A^2 s: PROT.KV_SELECTIVITY
    fails. The KV melts within 5 s at 580 A <= Ik_min 937.6 A; upstream 250 A assumed / 100 = 2.5 >= 1.6.
    """
    trip = MCB["C"][1] * 40
    checks = {
        **kv_checks("TN_END", 40.0, trip, kv=100.0),
        "PROT.KV_UPSTREAM_SELECTIVITY": at_least(ASSUMED_UPSTREAM_A / 100, SELECTIVITY),
    }
    assert checks["PROT.KV_SELECTIVITY"]["status"] == "pass" and checks["PROT.KV_SELECTIVITY#2"]["status"] == "fail"
    ledger = [
        {
            "notification_id": "CASE-ov_mv_change-earlier",
            "revision": 1,
            "point": "TN_END",
            "status": "built",
            "job_type": "ov_mv_change",
            "fuse_after_a": 40.0,
            "device_after": {"rating_a": 40.0, "type": "mcb", "characteristic": "C"},
        }
    ]
    return {
        "notification": _kv_change("TN_END", 100),
        "ledger": ledger,
        "expected": expect("escalate", checks, reasons=["PROT.KV_SELECTIVITY"]),
    }
