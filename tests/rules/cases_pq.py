"""Rule cases: appliances -- rapid voltage change, flicker, harmonics, unbalance."""

from __future__ import annotations

import math

from tests.helpers.case_region import CASE_POINTS
from tests.rules.case_model import (
    BACKGROUND_UNBALANCE,
    DEMAND_COS,
    GRID_PLT_MAX,
    GRID_PST_MAX,
    I_NO_MELT_10S,
    PST_BACKGROUND,
    RVC_FOL_MAX,
    RVC_FREQUENT,
    RVC_RARE,
    RVC_STATIONARY,
    SHARE_PLT_MAX,
    SHARE_PST_MAX,
    SPECTRA,
    THD_WEEK_MAX,
    UNBALANCE_MAX,
    at_most,
    auto_approvable,
    bottleneck,
    case,
    change_percent,
    const_power,
    current,
    expect,
    harmonics,
    low_voltage,
    network_worst,
    note,
    peak_voltage,
    point,
    positive_sequence_percent,
    pst,
    unbalance_added,
)


def peak_checks(key: str, conn: str, i_add: float, cos: float) -> dict:
    """Thermal and voltage at peak with a current ``i_add`` on connection ``conn`` (lowest bus of the network)."""
    p = point(key)
    _, base, rated = bottleneck(key, "peak")
    v = const_power(p.v_peak, change_percent(p, conn, i_add, cos))
    v = network_worst(key, [(conn, i_add, cos, 1.0)], 0.0, v, 0.0, peak=True)[0]
    return {
        "THERMAL.LINE_PEAK": at_most(base + i_add, rated),
        "THERMAL.TRAFO_PEAK": at_most(p.trafo_peak + i_add, p.trafo_rated),
        **peak_voltage(v),
    }


def flicker_checks(
    d_start: float, d_rated: float, starts_per_hour: float, active_intervals: int = 12, ramped: bool = False
) -> dict:
    """Pst of one appliance: a change of d_start at every start and of d_rated at every stop, each
    n = starts/6 times per 10 min. Its Plt follows from its operating pattern: switching in
    ``active_intervals`` of the twelve 10-min intervals of 2 h (silent in the others),
    Plt = (1/12 sum Pst_i^3)^(1/3) = Pst (active/12)^(1/3) (12 when no pattern is declared: the
    policy's worst case, Plt = Pst). An appliance that ramps up (EV charger, inverter: policy
    start_behaviour) makes no start step: only its stops count.

    Grid totals (legal, FoL): cubic summation with the 0.3 background against Pst 1.2 / Plt 1.0.
    The customer's own emission (no background) against its share Pst 0.8 / Plt 0.6.
    """
    n = starts_per_hour / 6
    if ramped:
        p_app = pst(d_rated, n)
    else:
        p_app = (pst(d_start, n) ** 3.2 + pst(d_rated, n) ** 3.2) ** (1 / 3.2)
    plt_app = p_app * (active_intervals / 12) ** (1 / 3)
    total = (PST_BACKGROUND**3 + p_app**3) ** (1 / 3)
    total_plt = (PST_BACKGROUND**3 + plt_app**3) ** (1 / 3)
    return {
        "PQ.FLICKER_PST": at_most(total, GRID_PST_MAX),
        "PQ.FLICKER_PLT": at_most(total_plt, GRID_PLT_MAX),
        "PQ.FLICKER_SHARE_PST": at_most(p_app, SHARE_PST_MAX),
        "PQ.FLICKER_SHARE_PLT": at_most(plt_app, SHARE_PLT_MAX),
    }


def single_phase_ev(key: str, kw: float, conn: str) -> dict:
    """Checks of a single-phase EV charger (cos 0.99 given; policy defaults: start ratio 1, 1 start/h).

    The whole increase kW is single-phase on the charger's connection: I = kW / 0.99 / U_ref;
    d = (R cos + X sin) I / U_ref on the loop (L-N: (2 Z1 + Z0)/3 at U/sqrt3; L-L: 2 Z1 at U).
    Power accounting: the existing peak balanced at cos 0.95 plus the charger's I in one phase
    against the main fuse on record.
    RVC: 1 start/h = 0.0167/min >= 0.01/min -> the 3 % frequent-start limit (D-A-CH-CZ); the charger ramps
    up, so the step is its stop at rated current. Flicker: 1 switching/h >= 1 change/h, so Pst/Plt are
    assessed, from the stops only (Pst = (n 2.3 d^3.2 / 600)^(1/3.2), n = 1/6 per 10 min). Harmonics: the policy EV spectrum. Unbalance: 0.5 %
    assumed background (balanced base case) + 100 S |Z1| / U^2 / (v_load v1): v_load the voltage
    after connection, v1 the positive-sequence voltage (base minus Z1 I1, I1 = I/3 L-N, I/sqrt3 L-L).
    """
    p = point(key)
    _, _, existing, fuse, _, _ = CASE_POINTS[key]
    i = current(kw, 0.99, conn, p.u)
    d = change_percent(p, conn, i, 0.99)
    checks = {"LOAD.MAIN_FUSE": at_most(current(existing, DEMAND_COS, "3ph", p.u) + i, fuse)}
    checks.update(peak_checks(key, conn, i, 0.99))
    checks["PQ.RVC_DACH"] = at_most(d, RVC_FREQUENT)
    checks.update(flicker_checks(d, d, 1.0, ramped=True))
    thd, _, v_worst, limit = harmonics(p, [(conn, i, SPECTRA["ev_charger"])])
    checks["PQ.THD"] = at_most(thd, 8.0)
    checks["PQ.HARMONIC"] = at_most(v_worst, limit)
    v_after = const_power(p.v_peak, d)
    v1 = p.v_peak - positive_sequence_percent(p, conn, i, 0.99) / 100
    own = BACKGROUND_UNBALANCE + unbalance_added(p, kw / 0.99, v_after, v1)
    worst = network_worst(key, [(conn, i, 0.99, 1.0)], kw / 0.99, v_after, own, peak=True)[1]
    checks["PQ.UNBALANCE"] = at_most(worst, UNBALANCE_MAX)
    return checks


def ev(kw: float, conn: str) -> list[dict]:
    return [{"kind": "ev_charger", "rated_kw": kw, "connection": conn, "cos_phi": 0.99}]


@case
def ev_it_single_phase_line_to_line():
    """A 7.4 kW EV charger L-L at the end of the IT feeder: 32.5 A on two phases."""
    checks = single_phase_ev("IT_END", 7.4, "L-L")
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    conditional_checks = {
        "LOAD.MAIN_FUSE": at_most(current(5.0, DEMAND_COS, "3ph", 230.0) + 20.0, 40.0),
    }
    return {
        "notification": note("IT_END", "ev_charger", appliances=ev(7.4, "L-L")),
        "conditional_checks": conditional_checks,
        "expected": expect(outcome, checks, conditional=["charging_current_limit"]),
    }


@case
def ev_tn_single_phase_line_to_neutral():
    """A 7.4 kW EV charger L-N at the end of the TN feeder: 33.8 A on one phase and the neutral."""
    checks = single_phase_ev("TN_END", 7.4, "L-N")
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    return {
        "notification": note("TN_END", "ev_charger", appliances=ev(7.4, "L-N")),
        "expected": expect(outcome, checks, conditional=["charging_current_limit"]),
    }


@case
def ev_weak_feeder_unbalance_fail():
    """A 7.4 kW EV charger L-L at the end of the 1.2 km IT feeder: the unbalance exceeds 2 % and the
    switching step the 3 % frequent-start limit.
    """
    checks = single_phase_ev("WEAK_END", 7.4, "L-L")
    assert checks["PQ.UNBALANCE"]["status"] == "fail"
    return {
        "notification": note("WEAK_END", "ev_charger", appliances=ev(7.4, "L-L")),
        "expected": expect("escalate", checks, reasons=["PQ.UNBALANCE"], conditional=["charging_current_limit"]),
    }


def motor_checks(
    key: str, kw: float, cos: float, ratio: float, cos_start: float, starts: float, active: int = 12
) -> dict:
    """Checks of a three-phase direct-on-line motor with the installer's datasheet values.

    Peak: the kW increase is balanced three-phase at the policy demand cos 0.95. Start step:
    d = (R cos_start + X sin_start) ratio I_r / U_ph with I_r = kW / cos / (sqrt3 U); the limit is
    5 % below 0.6 starts/h (0.01/min), else 3 %. Above 24 switchings a day (starts/h x 24 h) the
    stationary step (rated current at cos) is held against 3 %. From 1 start/h on, Pst/Plt.
    A motor has no harmonic spectrum. Power accounting: the existing peak at cos 0.95 plus the motor's
    rated current at its own cos phi against the main fuse on record; while the motor starts (< 10 s) its extra (ratio - 1) I_r on
    top, against I_min(10 s) of that fuse.
    """
    p = point(key)
    _, _, existing, fuse, _, _ = CASE_POINTS[key]
    i_add = current(kw, DEMAND_COS, "3ph", p.u)
    i_r = current(kw, cos, "3ph", p.u)
    d_start = change_percent(p, "3ph", ratio * i_r, cos_start)
    d_rated = change_percent(p, "3ph", i_r, cos)
    running = current(existing, DEMAND_COS, "3ph", p.u) + i_r
    checks = {"LOAD.MAIN_FUSE": at_most(running, fuse)}
    if ratio > 1:
        checks["PROT.START_CURRENT"] = at_most(running + (ratio - 1) * i_r, I_NO_MELT_10S[int(fuse)])
    checks.update(peak_checks(key, "3ph", i_add, DEMAND_COS))
    checks["PQ.RVC_DACH"] = at_most(d_start, RVC_RARE if starts / 60 < 0.01 else RVC_FREQUENT)
    if starts * 24 > 24:  # FoL counts steps >= 5 % (dU_max) and >= 3 % (stationary) against 24 a day
        checks["PQ.RVC_FOL_MAX"] = at_most(d_start, RVC_FOL_MAX)
        checks["PQ.RVC_FOL_STATIONARY"] = at_most(d_rated, RVC_STATIONARY)
    if starts >= 1:
        checks.update(flicker_checks(d_start, d_rated, starts, active))
    return checks


def motor(kw: float, cos: float, ratio: float, cos_start: float, starts: float) -> list[dict]:
    return [
        {
            "kind": "motor",
            "rated_kw": kw,
            "connection": "3ph",
            "cos_phi": cos,
            "start_current_ratio": ratio,
            "cos_phi_start": cos_start,
            "starts_per_hour": starts,
        }
    ]


@case
def motor_frequent_switching_flicker_and_stationary_step():
    """A 4 kW motor (cos 0.85, start 5 x I_r at cos 0.4) starting 12 times an hour near the
    transformer: 288 switchings a day > 24 -> stationary-step check; 2 starts per 10 min -> Pst/Plt.
    """
    checks = motor_checks("TN_NEAR", 4.0, 0.85, 5.0, 0.4, 12.0)
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    return {
        "notification": note("TN_NEAR", "motor", appliances=motor(4.0, 0.85, 5.0, 0.4, 12.0)),
        "expected": expect(outcome, checks, absent=["PQ.THD"]),
    }


@case
def motor_rare_start_rvc_limit():
    """A 7.5 kW motor (start 6 x I_r at cos 0.35) starting 0.5 times an hour: the 5 % limit for rare
    starts applies; no flicker and no stationary check.
    """
    checks = motor_checks("TN_END", 7.5, 0.85, 6.0, 0.35, 0.5)
    assert checks["PQ.RVC_DACH"]["limit"] == RVC_RARE
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    return {
        "notification": note("TN_END", "motor", appliances=motor(7.5, 0.85, 6.0, 0.35, 0.5)),
        "expected": expect(
            outcome, checks, absent=["PQ.FLICKER_PST", "PQ.RVC_FOL_STATIONARY"], conditional=["soft_starter"]
        ),
    }


@case
def motor_start_voltage_step_fail_on_weak_feeder():
    """A 5.5 kW motor starting direct on line (7 x I_r at cos 0.3) at mid weak IT feeder: the start
    step exceeds the 5 % limit for rare starts.
    """
    checks = motor_checks("WEAK_MID", 5.5, 0.85, 7.0, 0.3, 0.5)
    assert checks["PQ.RVC_DACH"]["status"] == "fail"
    return {
        "notification": note("WEAK_MID", "motor", appliances=motor(5.5, 0.85, 7.0, 0.3, 0.5)),
        "expected": expect("escalate", checks, reasons=["PQ.RVC_DACH"], conditional=["soft_starter"]),
    }


@case
def motor_flicker_fail_on_weak_feeder():
    """A 3 kW motor (4 x I_r at cos 0.5) starting 30 times an hour at the end of the weak IT feeder:
    Pst and Plt of 5 starts per 10 min exceed their limits.
    """
    checks = motor_checks("WEAK_END", 3.0, 0.85, 4.0, 0.5, 30.0)
    assert checks["PQ.FLICKER_PST"]["status"] == "fail"
    return {
        "notification": note("WEAK_END", "motor", appliances=motor(3.0, 0.85, 4.0, 0.5, 30.0)),
        "expected": expect("escalate", checks, reasons=["PQ.FLICKER_PST"]),
    }


@case
def motor_flicker_plt_from_declared_operating_pattern():
    """The 3 kW motor of motor_flicker_fail_on_weak_feeder (4 x I_r at cos 0.5, 30 starts/h) at mid
    weak IT feeder, declared to run 25 minutes of any 2 h (operating_minutes_per_2h = 25): it
    switches in ceil(25/10) = 3 of the twelve 10-min intervals, so its Plt is Pst (3/12)^(1/3) =
    0.63 Pst -- not Plt = Pst. Each flicker value is written out in flicker_checks.
    """
    checks = motor_checks("WEAK_MID", 3.0, 0.85, 4.0, 0.5, 30.0, active=3)
    worst_case = motor_checks("WEAK_MID", 3.0, 0.85, 4.0, 0.5, 30.0)
    ratio = checks["PQ.FLICKER_SHARE_PLT"]["value"] / worst_case["PQ.FLICKER_SHARE_PLT"]["value"]
    assert abs(ratio - 0.25 ** (1 / 3)) < 1e-12
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    m = motor(3.0, 0.85, 4.0, 0.5, 30.0)
    m[0]["operating_minutes_per_2h"] = 25
    return {
        "notification": note("WEAK_MID", "motor", appliances=m),
        "expected": expect(outcome, checks, conditional=["soft_starter"] if outcome == "escalate" else None),
    }


@case
def heat_pump_with_clean_installer_spectrum():
    """A 5 kW three-phase heat pump (start 1.5 x I_r, 2 starts/h) whose installer spectrum says no
    harmonic current: no harmonic checks. cos phi (0.95) and cos phi at start (0.5) are policy
    defaults. 2 starts/h = 0.033/min -> 3 % limit; Pst/Plt from 1/3 start per 10 min.
    """
    checks = motor_checks("TN_END", 5.0, 0.95, 1.5, 0.5, 2.0)
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    hp = {"kind": "heat_pump", "rated_kw": 5.0, "connection": "3ph", "start_current_ratio": 1.5}
    hp.update(starts_per_hour=2.0, harmonic_current_percent={"5": 0.0})
    return {
        "notification": note("TN_END", "heat_pump", appliances=[hp]),
        "expected": expect(outcome, checks, absent=["PQ.THD", "PQ.THD_WEEK", "PQ.HARMONIC"]),
    }


@case
def pv_single_phase_supply_tn():
    """3.6 kW PV on a single-phase TN supply (L-N): 15.6 A export on one phase at low load.

    Rise (R cos) I / U_ph on the L-N loop (2 Z1 + Z0)/3, constant-power solution around the
    low-load voltage; unbalance 0.5 % + 100 S |Z1| / U^2 / v_low-after (the export side is the
    larger single-phase power); RVC at the 5 % rare limit (0.5/h); the policy PV spectrum.
    """
    key = "TN_END"
    p = point(key)
    i = current(3.6, 1.0, "L-N", p.u)
    rise = change_percent(p, "L-N", i, 1.0, q_sign=-1.0)
    v_low = const_power(p.v_low, -rise)
    v1 = p.v_low + positive_sequence_percent(p, "L-N", i, 1.0, q_sign=-1.0) / 100
    own_u = BACKGROUND_UNBALANCE + unbalance_added(p, 3.6, v_low, v1)
    worst_v, worst_u = network_worst(key, [("L-N", i, 1.0, -1.0)], 3.6, v_low, own_u, peak=False)
    _, base, rated = bottleneck(key, "low")
    thd, _, v_worst, limit = harmonics(p, [("L-N", i, SPECTRA["pv_inverter"])])
    checks = {
        # single-phase supply: the existing 5 kW at cos 0.95 and the export, both L-N, on the 25 A fuse
        "LOAD.MAIN_FUSE": at_most(current(5.0, DEMAND_COS, "L-N", p.u), 25.0),
        "LOAD.EXPORT_FUSE": at_most(i, 25.0),
        "THERMAL.LINE_EXPORT": at_most(base + i, rated),
        "THERMAL.TRAFO_EXPORT": at_most(p.trafo_low + i, p.trafo_rated),
        **low_voltage(worst_v),
        "PQ.RVC_DACH": at_most(rise, RVC_RARE),
        "PQ.THD": at_most(thd, 8.0),
        "PQ.HARMONIC": at_most(v_worst, limit),
        "PQ.UNBALANCE": at_most(worst_u, UNBALANCE_MAX),
    }
    assert CASE_POINTS[key][0] == "tn" and math.isfinite(p.r0)
    outcome = "auto_approve" if auto_approvable(checks) else "escalate"
    pv = [{"kind": "pv_inverter", "rated_kw": 3.6, "connection": "L-N"}]
    return {
        "notification": note(key, "pv", supply_phases="1ph", appliances=pv),
        "expected": expect(outcome, checks),
    }


@case
def heat_pump_harmonics_fail_on_weak_feeder():
    """A 10 kW three-phase inverter heat pump at the end of the weak IT feeder with the start data the
    policy asks of a heat pump (start 3 x I_r, 3 starts/h); the policy defaults for the rest (cos 0.95,
    cos 0.5 at start) and the policy's heat-pump spectrum (30 % 5th, 15 % 7th, ...). The 5th harmonic voltage
    |R sqrt5 + j 5X| 0.30 I_1 / U_ph with the 2 % background (alpha 1.4) exceeds the 6 % limit, and
    THD the 8 %; 72 switchings a day bring the stationary step (6 %) against its 3 %.
    """
    key = "WEAK_END"
    p = point(key)
    checks = motor_checks(key, 10.0, 0.95, 3.0, 0.5, 3.0)
    thd, _, v_worst, limit = harmonics(p, [("3ph", current(10.0, 0.95, "3ph", p.u), SPECTRA["heat_pump_inverter"])])
    checks["PQ.THD"] = at_most(thd, 8.0)
    # a heat pump runs continuously: its THD is also held against FoL's 1-week 5 %
    checks["PQ.THD_WEEK"] = at_most(thd, THD_WEEK_MAX)
    checks["PQ.HARMONIC"] = at_most(v_worst, limit)
    assert checks["PQ.HARMONIC"]["status"] == checks["PQ.THD"]["status"] == checks["PQ.THD_WEEK"]["status"] == "fail"
    assert checks["PQ.RVC_FOL_STATIONARY"]["status"] == "fail"
    hp = [{"kind": "heat_pump", "rated_kw": 10.0, "connection": "3ph", "start_current_ratio": 3.0}]
    hp[0]["starts_per_hour"] = 3.0
    return {
        "notification": note(key, "heat_pump", appliances=hp),
        "expected": expect("escalate", checks, reasons=["PQ.THD", "PQ.THD_WEEK", "PQ.HARMONIC"]),
    }


@case
def compressor_start_blows_the_main_fuse():
    """A 15 kW direct-on-line compressor (27 A... 25.5 A rated at cos 0.85, start 5 x I_r, 0.5 starts/h)
    behind a 25 A main fuse: running, existing 5 kW + 15 kW at cos 0.95 is 30.4 A > 25 A; starting,
    30.4 A + 4 x 25.5 A = 132 A > 52 A, the current a 25 A gG fuse carries 10 s without melting.
    The fuse that does both is 63 A (I_min(10 s) 160 A).

    With the measures (a 63 A main fuse and a soft starter, 2.5 x rated): 30.4 A running against 63 A, and
    30.4 A + 1.5 x 25.5 A = 68.7 A starting against I_min(10 s) = 160 A of a 63 A gG fuse.
    """
    checks = motor_checks("TN_END", 15.0, 0.85, 5.0, 0.4, 0.5)
    assert checks["PROT.START_CURRENT"]["status"] == checks["LOAD.MAIN_FUSE"]["status"] == "fail"
    conditional_checks = {
        "LOAD.MAIN_FUSE": at_most(checks["LOAD.MAIN_FUSE"]["value"], 63.0),
        "PROT.START_CURRENT": at_most(
            checks["LOAD.MAIN_FUSE"]["value"] + 1.5 * current(15.0, 0.85, "3ph", 400.0), I_NO_MELT_10S[63]
        ),
    }
    return {
        "notification": note("TN_END", "motor", appliances=motor(15.0, 0.85, 5.0, 0.4, 0.5)),
        "conditional_checks": conditional_checks,
        "expected": expect(
            "escalate",
            checks,
            reasons=["PROT.START_CURRENT", "requires a fuse of at least 63 A"],
            conditional=["main_fuse", "soft_starter"],
        ),
    }
