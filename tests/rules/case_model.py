"""The hand-calculation toolkit of the rule cases: pandapower references, formulas, the case registry.

The cases themselves are in ``tests/rules/cases_*.py``; :mod:`tests.rules.case_derivations`
collects them and writes ``tests/data/rules/<case>/``.

Each case is a function that returns the notification and the expected decision: the
outcome, the rule ids that fail or cannot be evaluated, and the key check values. Every
number is computed here from pandapower results of the case region's networks
(``calc_sc(case="min")`` Thevenin impedances, ``runpp`` base cases) and formulas written
out in the function -- never from powercheck's rule engine. The function's docstring is
the case's explanation; it is copied into ``expected.json`` ("derivation").

Regenerate the data files after changing a derivation::

    python -m tests.rules.case_derivations

``tests/rules/test_cases.py`` checks that the files are current and that the engine's
decisions match them.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandapower as pp
import pandapower.shortcircuit as sc

from tests.helpers.case_region import CASE_NETWORKS, CASE_POINTS, case_mp, case_network
from tests.helpers.grids import bus_named

CASES_DIR = Path(__file__).parents[1] / "data" / "rules"
SQ3 = math.sqrt(3.0)

# Policy values the cases rely on (powercheck/rules/policy_default.toml), written out.
C_MIN = 0.90  # sc_c_min (IEC 60909 LV with a +/-10 % tolerance, as pandapower lv_tol_percent=10)
DEMAND_COS = 0.95  # demand_cos_phi
V_MIN, V_MAX = 0.90, 1.10  # legal band (FoL §3-3): below/above it no connection without grid measures
V_PLAN_MIN, V_PLAN_MAX = 0.93, 1.07  # planning band (voltage_planning_*_pu, tag P): decides auto-approval
UNBALANCE_MAX, BACKGROUND_UNBALANCE = 2.0, 0.5
RVC_RARE, RVC_FREQUENT = 5.0, 3.0  # D-A-CH-CZ per start (planning)
RVC_FOL_MAX, RVC_STATIONARY = 5.0, 3.0  # FoL dU_max / dU_stationary, counted against 24 a day (legal)
I5S = {16: 65, 20: 85, 25: 110, 32: 150, 40: 190, 50: 250, 63: 320, 80: 425, 100: 580, 125: 715, 160: 950}
# 35 A: log-log between the 32 A and 40 A gates, rounded up: 150 (190/150)^(ln(35/32)/ln(40/32)) = 164.94 -> 165
I5S[35] = 165
# gG: the current a fuse carries for up to 10 s without melting, I_min(10 s) (IEC 60269-1 gates, policy table)
I_NO_MELT_10S = {16: 33, 20: 42, 25: 52, 32: 75, 40: 95, 50: 125, 63: 160, 80: 215, 100: 290, 125: 355, 160: 460}
STANDARD_FUSES = (10, 16, 20, 25, 32, 35, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630)
PST_BACKGROUND = 0.3  # flicker_background_pst [R]
GRID_PST_MAX, GRID_PLT_MAX = 1.2, 1.0  # FoL totals at the customer point, background included (legal, [R])
SHARE_PST_MAX, SHARE_PLT_MAX = 0.8, 0.6  # one customer's own emission (flicker_customer_*_max, tag P)
THD_MAX = 8.0
THD_WEEK_MAX = 5.0  # FoL 1-week THD for continuously running appliances (thd_week_kinds: heat_pump, water_heater)
EN50160 = {2: 2.0, 3: 5.0, 4: 1.0, 5: 6.0, 6: 0.5, 7: 5.0, 8: 0.5, 9: 1.5, 10: 0.5, 11: 3.5, 12: 0.5, 13: 3.0}
EN50160.update({h: 0.5 for h in (14, 15, 16, 18, 20, 21, 22, 24)})
EN50160.update({17: 2.0, 19: 1.5, 23: 1.5, 25: 1.5})
HARMONIC_BACKGROUND = {3: 0.8, 5: 2.0, 7: 1.2, 9: 0.3, 11: 0.6, 13: 0.5}
LOW_LOAD_SCALING = 0.1
MAIN_A, BRANCH_A = 270.0, 142.0  # NAYY 4x150 / 4x50 max_i_ka x 1000


# ------------------------------------------------------------------------------------ references
@dataclass(frozen=True)
class Point:
    """pandapower results at one customer point of the case region."""

    key: str
    tn: bool
    u: float
    """Nominal line-to-line voltage [V]."""
    r1: float
    x1: float
    r0: float
    x0: float
    v_peak: float
    v_low: float
    line_peak: dict
    """Line name -> base-case current at peak [A]."""
    line_low: dict
    trafo_peak: float
    trafo_low: float
    trafo_rated: float

    @property
    def z1(self) -> float:
        return math.hypot(self.r1, self.x1)


@cache
def _network_results(nid: str) -> dict:
    net = case_network(nid)
    tn = CASE_NETWORKS[nid][0] == "TN_400"
    out: dict[str, Any] = {"net": net}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="min", fault="3ph")
        out["r1"], out["x1"] = net.res_bus_sc.rk_ohm.copy(), net.res_bus_sc.xk_ohm.copy()
        if tn:
            sc.calc_sc(net, case="min", fault="1ph")
            out["r0"], out["x0"] = net.res_bus_sc.rk0_ohm.copy(), net.res_bus_sc.xk0_ohm.copy()
        for case, scaling in (("peak", 1.0), ("low", LOW_LOAD_SCALING)):
            c = copy.deepcopy(net)
            c.load["scaling"] = scaling
            pp.runpp(c)
            out[f"vm_{case}"] = c.res_bus.vm_pu.copy()
            out[f"line_{case}"] = {c.line.name[i]: 1000 * c.res_line.i_ka[i] for i in c.line.index}
            out[f"trafo_{case}"] = 1000 * float(c.res_trafo.i_lv_ka.iloc[0])
    return out


@cache
def point(key: str) -> Point:
    nid, bus_name, *_ = CASE_POINTS[key]
    res = _network_results(nid)
    bus = bus_named(res["net"], bus_name)
    tn = CASE_NETWORKS[nid][0] == "TN_400"
    u = 1000 * CASE_NETWORKS[nid][1]
    return Point(
        key=key,
        tn=tn,
        u=u,
        r1=float(res["r1"][bus]),
        x1=float(res["x1"][bus]),
        r0=float(res["r0"][bus]) if tn else math.nan,
        x0=float(res["x0"][bus]) if tn else math.nan,
        v_peak=float(res["vm_peak"][bus]),
        v_low=float(res["vm_low"][bus]),
        line_peak=res["line_peak"],
        line_low=res["line_low"],
        trafo_peak=res["trafo_peak"],
        trafo_low=res["trafo_low"],
        trafo_rated=315e3 / (SQ3 * u),
    )


# ------------------------------------------------------------------------------------ formulas
def current(p_kw: float, cos: float, conn: str, u: float) -> float:
    """Line current [A]: S / (sqrt3 U) three-phase, S / (U/sqrt3) L-N, S / U L-L."""
    s = 1000 * p_kw / cos
    return {"3ph": s / (SQ3 * u), "L-N": s / (u / SQ3), "L-L": s / u}[conn]


def loop(p: Point, conn: str) -> tuple[float, float]:
    """Loop impedance: Z1 (3ph), (2 Z1 + Z0)/3 (L-N), 2 Z1 (L-L)."""
    if conn == "3ph":
        return p.r1, p.x1
    if conn == "L-N":
        return (2 * p.r1 + p.r0) / 3, (2 * p.x1 + p.x0) / 3
    return 2 * p.r1, 2 * p.x1


def change_percent(p: Point, conn: str, i: float, cos: float, q_sign: float = 1.0) -> float:
    """d = (R cos + q X sin) I / U_ref with U_ref = U/sqrt3 (3ph, L-N) or U (L-L) [%]."""
    r, x = loop(p, conn)
    u_ref = p.u if conn == "L-L" else p.u / SQ3
    return 100 * (r * cos + q_sign * x * math.sqrt(1 - cos * cos)) * i / u_ref


def positive_sequence_percent(p: Point, conn: str, i: float, cos: float, q_sign: float = 1.0) -> float:
    """Positive-sequence voltage change [% of U_ph]: Z1 I1 with I1 = I (3ph), I/3 (L-N), I/sqrt3 (L-L)."""
    share = {"3ph": 1.0, "L-N": 1 / 3, "L-L": 1 / SQ3}[conn]
    return 100 * (p.r1 * cos + q_sign * p.x1 * math.sqrt(1 - cos * cos)) * share * i / (p.u / SQ3)


def unbalance_added(p: Point, s_kva: float, v_load: float, v1: float) -> float:
    """|V2|/|V1| of a single-phase power: S |Z1| / U^2 / (v_load v1) [%] (matches runpp_3ph)."""
    return 100 * 1000 * s_kva * p.z1 / p.u**2 / (v_load * v1)


def required_fuse(current_a: float, start_a: float | None = None) -> float:
    """Smallest standard fuse >= the current whose I_min(10 s) carries the start current."""
    for size in STANDARD_FUSES:
        if size >= current_a and (start_a is None or I_NO_MELT_10S.get(size, 0) >= start_a):
            return float(size)
    raise ValueError("no standard fuse")


def const_power(v_base: float, d_percent: float) -> float:
    """Voltage after a constant-power load: v^2 - v_base v + d0 = 0."""
    return (v_base + math.sqrt(v_base**2 - 4 * d_percent / 100)) / 2


def ik_min(p: Point) -> float:
    """sqrt3 c U / |2 Z1 + Z0| (TN, line-to-neutral) or c U / |2 Z1| (IT, line-to-line) [A]."""
    if p.tn:
        return SQ3 * C_MIN * p.u / math.hypot(2 * p.r1 + p.r0, 2 * p.x1 + p.x0)
    return C_MIN * p.u / (2 * p.z1)


def pst(d_percent: float, changes_per_10min: float) -> float:
    """IEC 61000-3-3 analytical: t_f = 2.3 d^3.2, Pst = (n t_f / 600)^(1/3.2)."""
    return (changes_per_10min * 2.3 * d_percent**3.2 / 600) ** (1 / 3.2)


def path_lines(key: str) -> list[str]:
    """Line names from the customer point to the transformer (radial feeders of the case region)."""
    bus = CASE_POINTS[key][1]
    if bus == "busbar":
        return []
    k = int(bus.split("_")[1])
    return [f"branch_{k}"] + [f"main_{i}" for i in range(k, 0, -1)]


def tree_parent(network_id: str, bus_name: str) -> str | None:
    """The next bus towards the transformer (breadth first from the busbar in line order).

    Radial feeders: house_i -> cabinet_i -> cabinet_(i-1) -> ... -> busbar. In ``tn_mesh`` the
    loop line house_1 - house_3 is met before branch_3, so house_3 hangs below house_1.
    """
    if bus_name == "busbar":
        return None
    kind, i = bus_name.split("_")
    i = int(i)
    if kind == "house":
        if network_id == "tn_mesh" and i == 3:
            return "house_1"
        return f"cabinet_{i}"
    return "busbar" if i == 1 else f"cabinet_{i - 1}"


def lca(network_id: str, a: str, b: str) -> str:
    """Lowest common ancestor of two buses in the tree (the end of their shared impedance)."""
    up = []
    while a is not None:
        up.append(a)
        a = tree_parent(network_id, a)
    while b not in up:
        b = tree_parent(network_id, b)
    return b


def network_worst(
    key: str, components: list[tuple[str, float, float, float]], s1_kva: float, own_v: float, own_u: float, peak: bool
) -> tuple[float, float]:
    """The worst voltage and unbalance in the point's network once its components are added.

    At the point itself ``own_v`` / ``own_u``; at every other bus ``j``: the base-case voltage
    minus (peak) or plus (low load) the components' change through the Thevenin impedance
    (calc_sc min case) at ``lca(point, j)``, and the 0.5 % background + S |Z1(lca)| / U^2 / v_j^2.
    ``components``: (connection, line current [A], cos phi, q sign).
    """
    nid, own, *_ = CASE_POINTS[key]
    res = _network_results(nid)
    net = res["net"]
    u = 1000 * CASE_NETWORKS[nid][1]
    v_best, u_best = own_v, own_u
    for name in net.bus.name:
        if name in ("mv", own, "island"):  # the island bus is fed by nothing: no voltage, never the worst
            continue
        a = bus_named(net, lca(nid, own, name))
        r1, x1 = float(res["r1"][a]), float(res["x1"][a])
        r0 = float(res["r0"][a]) if "r0" in res else math.nan
        x0 = float(res["x0"][a]) if "x0" in res else math.nan
        ref = Point(key, "r0" in res, u, r1, x1, r0, x0, 0, 0, {}, {}, 0, 0, 0)
        dv = sum(change_percent(ref, conn, i, cos, q) for conn, i, cos, q in components)
        base = res["vm_peak" if peak else "vm_low"][bus_named(net, name)]
        v = base - dv / 100 if peak else base + dv / 100
        v_best = min(v_best, v) if peak else max(v_best, v)
        if s1_kva > 0:
            u_best = max(u_best, BACKGROUND_UNBALANCE + 100 * 1000 * s1_kva * math.hypot(r1, x1) / u**2 / v**2)
    return v_best, u_best


def bottleneck(key: str, case: str) -> tuple[str, float, float]:
    """The path line with the least headroom (rating - base current): name, base [A], rating [A]."""
    p = point(key)
    base = p.line_peak if case == "peak" else p.line_low
    rated = {name: (BRANCH_A if name.startswith("branch") else MAIN_A) for name in path_lines(key)}
    name = min(rated, key=lambda n: rated[n] - base[n])
    return name, base[name], rated[name]


# ------------------------------------------------------------------------------------ case registry
CASES: dict[str, Callable[[], dict]] = {}


def case(fn: Callable[[], dict]) -> Callable[[], dict]:
    CASES[fn.__name__] = fn
    return fn


SINGLE_LINE_ABOVE_A = {"TN_400": 63.0, "IT_230": 100.0}  # policy single_line_diagram_above_fuse_a


def note(key: str, job_type: str, *, attach_single_line: bool = True, **fields: Any) -> dict:
    """A case notification; with a main fuse above the policy's single-line threshold (63 A TN, 100 A IT) the
    installer attaches the single-line diagram (``attach_single_line=False``: a case that leaves it out)."""
    system = CASE_NETWORKS[CASE_POINTS[key][0]][0]
    data = {
        "notification_id": f"CASE-{job_type}",
        "revision": 1,
        "job_type": job_type,
        "metering_point_id": case_mp(key),
        "network_system": system,
        **fields,
    }
    fuse = fields.get("main_fuse_after_a")
    attached = {a["kind"] for a in data.get("attachments", [])}
    if attach_single_line and fuse is not None and fuse > SINGLE_LINE_ABOVE_A[system]:
        if "single_line_diagram" not in attached:
            data["attachments"] = [*data.get("attachments", []), {"kind": "single_line_diagram"}]
    return data


def _relative(margin: float, limit: float, scale: float | None) -> float | None:
    """margin / scale (default |limit|); undefined for a zero scale."""
    s = scale if scale is not None else abs(limit)
    return margin / s if s else None


def at_most(value: float, limit: float, rel: float = 1e-9, scale: float | None = None) -> dict:
    """A check with a MAX limit: passes when value <= limit."""
    status = "pass" if value <= limit else "fail"
    return {"value": value, "limit": limit, "status": status, "rel": rel,
            "relative_margin": _relative(limit - value, limit, scale)}  # fmt: skip


def at_least(value: float, limit: float, rel: float = 1e-9, scale: float | None = None) -> dict:
    """A check with a MIN limit: passes when value >= limit."""
    status = "pass" if value >= limit else "fail"
    return {"value": value, "limit": limit, "status": status, "rel": rel,
            "relative_margin": _relative(value - limit, limit, scale)}  # fmt: skip


def peak_voltage(v: float) -> dict:
    """The lowest voltage at peak against the planning limit 0.93 pu (relative margin over 1 - 0.93 = 0.07)
    and the legal FoL limit 0.90 pu (over 0.10)."""
    return {
        "VOLT.PEAK_PLANNING": at_least(v, V_PLAN_MIN, scale=1 - V_PLAN_MIN),
        "VOLT.PEAK_MIN": at_least(v, V_MIN, scale=1 - V_MIN),
    }


def low_voltage(v: float) -> dict:
    """The highest voltage at low load against the planning limit 1.07 pu (over 0.07) and the legal 1.10 pu
    (over 0.10)."""
    return {
        "VOLT.LOW_PLANNING": at_most(v, V_PLAN_MAX, scale=V_PLAN_MAX - 1),
        "VOLT.LOW_MAX": at_most(v, V_MAX, scale=V_MAX - 1),
    }


def unknown(value: float | None = None) -> dict:
    """A check that applies but cannot be evaluated (no limit or no value)."""
    return {"value": value, "limit": None, "status": "not_evaluated", "rel": 1e-9}


def expect(outcome: str, checks: dict | None = None, *, absent=(), reasons=(), conditional=None) -> dict:
    """The expected decision; the failing and not-evaluated rule ids follow from the checks' statuses.

    Keys of ``checks`` are rule ids, with ``#2``, ``#3`` ... for a rule's later results. ``outcome`` and
    the checks are without the policy's measures; ``conditional`` names the installer's measures (in
    order) with which the notification is approved with conditions.
    """
    checks = checks or {}
    rule = {k: k.split("#")[0] for k in checks}
    return {
        "outcome": outcome,
        "failing": sorted({rule[k] for k, c in checks.items() if c["status"] == "fail"}),
        "not_evaluated": sorted({rule[k] for k, c in checks.items() if c["status"] == "not_evaluated"}),
        "checks": checks,
        "absent": sorted(absent),
        "reasons": list(reasons),
        "conditional": list(conditional or []),
    }


def auto_approvable(checks: dict, min_margin: float = 0.05) -> bool:
    """Every check passes with at least the auto-approval relative margin (policy 0.05)."""
    margins = [c.get("relative_margin") for c in checks.values()]
    return all(c["status"] == "pass" for c in checks.values()) and all(m is None or m >= min_margin for m in margins)


# Harmonic current spectra of the policy's device classes [% of rated current] (policy_default.toml).
SPECTRA = {
    "ev_charger": {3: 4.0, 5: 3.0, 7: 2.0, 9: 1.5, 11: 1.0, 13: 0.8},
    "pv_inverter": {3: 1.5, 5: 1.2, 7: 1.0, 9: 0.5, 11: 0.6, 13: 0.5},
    "heat_pump_inverter": {3: 6.0, 5: 30.0, 7: 15.0, 9: 2.0, 11: 7.0, 13: 5.0, 17: 3.0, 19: 2.0, 23: 1.5, 25: 1.0},
    "default": {3: 20.0, 5: 10.0, 7: 7.0, 9: 4.0, 11: 3.0, 13: 2.0, 15: 1.5, 17: 1.2, 19: 1.0},
}


def harmonic_alpha(h: int) -> float:
    """IEC 61000-3-6 summation exponent: 1 below the 5th, 1.4 up to the 10th, 2 above."""
    return 1.0 if h <= 4 else (1.4 if h <= 10 else 2.0)


def harmonics(p: Point, devices: list[tuple[str, float, dict]]) -> tuple[float, int, float, float]:
    """THD [%] over the orders 2-40 (EN 50160), and the order closest to its EN 50160 limit (orders 2-25 have
    one) with its voltage and limit [%].

    ``devices``: (connection, fundamental current of all units [A], spectrum % per order).
    Per device and order: V_h = |Z_h| (I_h/100) I_1 / U_ref with R_h = R sqrt(h), X_h = h X on the
    connection's loop (3-phase: Z1, triplens through Z0 in TN and not at all in IT); devices and
    background add as (sum V^alpha)^(1/alpha).
    """
    totals = {}
    for h in range(2, 41):
        acc = 0.0
        for conn, i1, spectrum in devices:
            s = spectrum.get(h, 0.0)
            if s <= 0:
                continue
            r1h, x1h = p.r1 * math.sqrt(h), p.x1 * h
            if conn == "3ph":
                if h % 3 == 0:
                    if not p.tn:
                        continue
                    zr, zx = p.r0 * math.sqrt(h), p.x0 * h
                else:
                    zr, zx = r1h, x1h
                u_ref = p.u / SQ3
            elif conn == "L-N":
                zr, zx, u_ref = (2 * r1h + p.r0 * math.sqrt(h)) / 3, (2 * x1h + p.x0 * h) / 3, p.u / SQ3
            else:
                zr, zx, u_ref = 2 * r1h, 2 * x1h, p.u
            acc += (100 * math.hypot(zr, zx) * s / 100 * i1 / u_ref) ** harmonic_alpha(h)
        a = harmonic_alpha(h)
        totals[h] = (acc + HARMONIC_BACKGROUND.get(h, 0.0) ** a) ** (1 / a)
    thd = math.sqrt(sum(v * v for v in totals.values()))
    worst = max(EN50160, key=lambda h: totals[h] / EN50160[h])
    return thd, worst, totals[worst], EN50160[worst]
