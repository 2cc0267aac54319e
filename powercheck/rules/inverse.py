"""Inverse answers: how large the job may be at this connection point, and which check binds.

Everything a notification adds (its appliances, the budget above the existing peak, its export)
is scaled by one factor ``s``; for every grid check the largest ``s`` that still passes follows
from the numbers the evaluation already has, by the closed forms the kernels imply:

* currents (fuses, start current, cables, transformer) are linear in ``s``:
  ``s = (limit - fixed) / per_unit``;
* the steady-state voltage at the connection point solves ``v^2 - v_b v + s d0 = 0``, so the
  voltage limit ``v_lim`` is reached at ``s = v_lim (v_b - v_lim) / d0`` (at low load
  ``v_lim (v_lim - v_b) / r0``); at every other bus of the network the change is linear
  (:func:`powercheck.quality.superposition.scale_limits`);
* rapid voltage changes are linear in ``s``; flicker ``Pst`` is linear in ``d`` and so in ``s``,
  combined with the background as ``(bg^a + s^a sum p^a)^(1/a)``;
* an individual harmonic voltage ``((s e)^a + bg^a)^(1/a)`` reaches its limit in closed form;
* where there is none -- unbalance at the connection point (the current grows as ``1/v``), THD --
  a bracketed bisection on the monotone function.

The answers use the same numbers as the forward checks (ledger reservations included), so the
returned size passes them and 1 % more fails the binding one. Besides the scale, the largest
start-current ratio of a single starting appliance and the range of main fuses the point takes
(the smallest that carries the installation, the largest protection allows) are returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.models import SizeLimit
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.hosting import thd_scale, unbalance_scale
from powercheck.quality.superposition import scale_limits
from powercheck.quality.unbalance import unbalance_percent
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import Evaluation, base_unbalance
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId

SCALE_CAP = 1000.0
"""Scales above this count as "not limited by any grid check"."""


def _ratio(room: float, per_unit: float) -> float:
    """room / per_unit where per_unit > 0 (inf elsewhere; NaN room counts as no limit), floored at 0."""
    room, per_unit = float(room), float(per_unit)
    if not per_unit > 1e-12 or math.isnan(room):
        return math.inf
    return max(room / per_unit, 0.0)


def _flicker_scale(ps: np.ndarray, background: float, alpha: float, limit: float) -> float:
    """Largest s with (bg^a + s^a sum p^a)^(1/a) <= limit."""
    total = float(np.sum(ps**alpha))
    if total <= 0.0:
        return math.inf
    room = limit**alpha - background**alpha
    return max(0.0, room / total) ** (1.0 / alpha) if room > 0 else 0.0


class _Limits:
    """Per-rule scale limits of one notification, keeping the smallest of repeated rules."""

    def __init__(self) -> None:
        self.by_rule: dict[str, float] = {}

    def add(self, rule: RuleId, s: float) -> None:
        if not math.isfinite(s) or s >= SCALE_CAP:
            return
        self.by_rule[str(rule)] = min(self.by_rule.get(str(rule), math.inf), max(0.0, float(s)))

    def binding(self) -> tuple[float, str | None]:
        if not self.by_rule:
            return math.inf, None
        rule = min(self.by_rule, key=self.by_rule.get)
        return self.by_rule[rule], rule


def _network_scales(cases, ev: Evaluation, grid: GridView, policy: Policy, state: CapacityState | None):
    """Scale limits from every other bus of each notification's network (load at peak, export at low load)."""
    arr = grid.arrays
    n_bus = arr.bus_ids.shape[0]
    zeros = np.zeros(n_bus)
    background = policy.number(PolicyKey.BACKGROUND_UNBALANCE_PERCENT)
    base_unb = base_unbalance(grid, np.arange(n_bus), background)
    common = (grid.bus_bounds, arr.network_index, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min,
              arr.xk0_min, arr.u_ll_v)  # fmt: skip
    unb_max = policy.number(PolicyKey.UNBALANCE_MAX_PERCENT)
    out = {}
    for side, added, s1, vm, dv_res, vuf_res, sign, vlim in (
        ("load", ev.load, ev.s1_load_kva, arr.vm_peak_pu, state.bus_drop_percent if state else zeros,
         state.bus_vuf_peak_percent if state else zeros, -1.0, policy.number(PolicyKey.VOLTAGE_MIN_PU)),
        ("export", ev.export, ev.s1_export_kva, arr.vm_low_pu, state.bus_rise_percent if state else zeros,
         state.bus_vuf_low_percent if state else zeros, 1.0, policy.number(PolicyKey.VOLTAGE_MAX_PU)),
    ):  # fmt: skip
        rows = np.where(added.current_a > 0, ev.point.bus_row, -1)
        q = np.full(added.component_conn.shape[0], -sign)
        out[side] = scale_limits(
            rows, added.component_indptr, added.component_conn, added.component_current_a, added.component_cos_phi,
            q, s1, *common, vm, dv_res, sign, vlim, base_unb, vuf_res, unb_max, grid.work_mark,
        )  # fmt: skip
    return out


def _fuse_scales(lim: _Limits, case: DemandCase, policy: Policy) -> None:
    """Main fuse, meter fuse, export and start current: linear between the installation without and with the job."""
    acc, acc0 = case.accounting, case.accounting_before
    fuse, mv = case.fuse_after_a, case.meter_fuse_after_a
    if fuse is None:
        return
    demand = acc.phase_current_a - acc0.phase_current_a
    lim.add(RuleId.LOAD_MAIN_FUSE, _ratio(fuse - acc0.phase_current_a, demand))
    if mv is not None and abs(mv - fuse) > 1e-9:
        lim.add(RuleId.LOAD_METER_FUSE, _ratio(mv - acc0.phase_current_a, demand))
    smallest = min(fuse, mv) if mv is not None else fuse
    export = acc.export_phase_current_a - acc0.export_phase_current_a
    lim.add(RuleId.LOAD_EXPORT_FUSE, _ratio(smallest - acc0.export_phase_current_a, export))
    if acc.start_current_a is not None:
        carries = policy.fuse_no_melt(fuse, acc.start_duration_s or 0.0)
        if carries is not None:
            start = acc.start_current_a - acc0.phase_current_a
            lim.add(RuleId.PROT_START_CURRENT, _ratio(carries - acc0.phase_current_a, start))


def _side_scales(lim: _Limits, k: int, ev: Evaluation, grid: GridView, policy: Policy, network, peak: bool) -> None:
    """Cables, transformer, voltage band and unbalance at peak (load) or at low load (export)."""
    th = ev.thermal
    added = ev.load if peak else ev.export
    i_added = float(added.current_a[k])
    if i_added <= 0:
        return
    if not bool(grid.arrays.meshed[ev.point.bus_row[k]]):
        line_row = th.peak_line_row if peak else th.low_line_row
        if line_row[k] >= 0:
            base = th.peak_line_base_a if peak else th.low_line_base_a
            reserved = th.peak_line_reserved_a if peak else th.low_line_reserved_a
            limit = th.peak_line_limit_a if peak else th.low_line_limit_a
            rule = RuleId.THERMAL_LINE_PEAK if peak else RuleId.THERMAL_LINE_EXPORT
            lim.add(rule, _ratio(limit[k] - base[k] - reserved[k], i_added))
        t_base = th.trafo_peak_base_a if peak else th.trafo_low_base_a
        t_res = ev.reserved.trafo_peak_a if peak else ev.reserved.trafo_low_a
        rule = RuleId.THERMAL_TRAFO_PEAK if peak else RuleId.THERMAL_TRAFO_EXPORT
        lim.add(rule, _ratio(th.trafo_limit_a[k] - t_base[k] - t_res[k], i_added))
    d = float(added.voltage_change_percent[k])
    if peak:
        v_b, v_lim = float(ev.v_base_peak_pu[k]), policy.number(PolicyKey.VOLTAGE_MIN_PU)
        lim.add(RuleId.VOLT_PEAK_MIN, _ratio(100.0 * v_lim * (v_b - v_lim), d) if v_b > v_lim else 0.0)
        lim.add(RuleId.VOLT_PEAK_MIN, float(network["load"][0][k]))
    else:
        v_b, v_lim = float(ev.v_base_low_pu[k]), policy.number(PolicyKey.VOLTAGE_MAX_PU)
        lim.add(RuleId.VOLT_LOW_MAX, _ratio(100.0 * v_lim * (v_lim - v_b), d) if v_b < v_lim else 0.0)
        lim.add(RuleId.VOLT_LOW_MAX, float(network["export"][0][k]))
    s1 = ev.s1_load_kva if peak else ev.s1_export_kva
    if s1[k] <= 0:
        return
    lim.add(RuleId.PQ_UNBALANCE, float(network["own_load" if peak else "own_export"][k]))
    lim.add(RuleId.PQ_UNBALANCE, float(network["load" if peak else "export"][1][k]))


def _appliance_scales(lim: _Limits, k: int, ev: Evaluation, policy: Policy, harmonic) -> None:
    """Rapid voltage change, stationary steps, flicker and harmonics of the appliances."""
    rows = list(ev.appliance_rows(k))
    steps = ev.appliances
    rare = policy.number(PolicyKey.RVC_RARE_RATE_PER_MIN)
    events_max = policy.number(PolicyKey.RVC_MAX_EVENTS_PER_DAY)
    hours = policy.number(PolicyKey.OPERATING_HOURS_PER_DAY)
    stationary = policy.number(PolicyKey.RVC_STATIONARY_MAX_PERCENT)
    for j in rows:
        r = steps.cases[j]
        frequent = r.starts_per_hour / 60.0 >= rare
        key = PolicyKey.RVC_FREQUENT_MAX_PERCENT if frequent else PolicyKey.RVC_RARE_MAX_PERCENT
        lim.add(RuleId.PQ_RVC, _ratio(policy.number(key), steps.d_start_percent[j]))
        if r.starts_per_hour * hours > events_max:
            lim.add(RuleId.PQ_RVC_STATIONARY, _ratio(stationary, steps.d_rated_percent[j]))
    fl = ev.flicker
    applies = [j for j in rows if fl.applies[j]]
    if applies:
        alpha = policy.number(PolicyKey.FLICKER_SUMMATION_ALPHA)
        bg = policy.number(PolicyKey.FLICKER_BACKGROUND_PST)
        ps = fl.pst_appliance[applies]
        lim.add(RuleId.PQ_FLICKER_PST, _flicker_scale(ps, bg, alpha, policy.number(PolicyKey.FLICKER_PST_MAX)))
        factor = np.cbrt(policy.number(PolicyKey.FLICKER_ACTIVE_INTERVALS) / 12.0)
        lim.add(RuleId.PQ_FLICKER_PLT, _flicker_scale(ps * factor, bg, alpha, policy.number(PolicyKey.FLICKER_PLT_MAX)))
    if ev.harmonics.present[k]:
        lim.add(RuleId.PQ_HARMONIC, float(harmonic["order"][k]))
        lim.add(RuleId.PQ_THD, float(harmonic["thd"][k]))


def _harmonic_limits(ev: Evaluation, policy: Policy) -> dict[str, np.ndarray]:
    """Per notification: the largest scale for the individual orders (closed form) and for THD (bisection)."""
    hr = ev.harmonics
    alpha = np.array([policy.harmonic_alpha(h) for h in hr.orders])
    room = np.maximum(hr.limit_percent**alpha - hr.background_percent**alpha, 0.0) ** (1.0 / alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_order = np.where(hr.emission_percent > 0, room / hr.emission_percent, np.inf)
    order = per_order.min(axis=1) if per_order.shape[1] else np.full(ev.n, np.inf)
    thd = thd_scale(hr.emission_percent, hr.background_percent, alpha, policy.number(PolicyKey.THD_MAX_PERCENT),
                    SCALE_CAP)  # fmt: skip
    return {"order": order, "thd": thd}


def _own_unbalance(ev: Evaluation, grid: GridView, policy: Policy) -> dict[str, np.ndarray]:
    """Per notification: the largest scale before the unbalance at the connection point reaches its limit."""
    pt = ev.point
    base = base_unbalance(grid, pt.bus_row, policy.number(PolicyKey.BACKGROUND_UNBALANCE_PERCENT))
    limit = policy.number(PolicyKey.UNBALANCE_MAX_PERCENT)
    out = {}
    for side, s1, added, v_b, reserved, sign in (
        ("own_load", ev.s1_load_kva, ev.load, ev.v_base_peak_pu, ev.reserved.unbalance_peak_percent, 1.0),
        ("own_export", ev.s1_export_kva, ev.export, ev.v_base_low_pu, ev.reserved.unbalance_low_percent, -1.0),
    ):
        a0 = unbalance_percent(s1, pt.r1_ohm, pt.x1_ohm, pt.u_ll_v)
        d = sign * added.voltage_change_percent
        d1 = sign * added.positive_sequence_change_percent
        out[side] = unbalance_scale(base + reserved, np.where(s1 > 0, a0, 0.0), v_b, d, d1, limit, SCALE_CAP)
    return out


def size_limits(
    cases: Sequence[DemandCase], ev: Evaluation, grid: GridView, policy: Policy, state: CapacityState | None = None
) -> list[list[SizeLimit]]:
    """The inverse answers of every evaluable notification (empty list for the others)."""
    network = _network_scales(cases, ev, grid, policy, state)
    network.update(_own_unbalance(ev, grid, policy))
    harmonic = _harmonic_limits(ev, policy)
    out: list[list[SizeLimit]] = []
    for k, case in enumerate(cases):
        if not case.evaluable or case.accounting is None:
            out.append([])
            continue
        lim = _Limits()
        _fuse_scales(lim, case, policy)
        _side_scales(lim, k, ev, grid, policy, network, peak=True)
        _side_scales(lim, k, ev, grid, policy, network, peak=False)
        _appliance_scales(lim, k, ev, policy, harmonic)
        out.append(_answers(case, lim, ev, k, policy, grid))
    return out


def _answers(case: DemandCase, lim: _Limits, ev: Evaluation, k: int, policy: Policy, grid: GridView) -> list:
    """The limits of one notification as the sizes an installer sets."""
    s, rule = lim.binding()
    largest = None if not math.isfinite(s) else s
    n = case.notification
    answers = []
    for i, a in enumerate(n.appliances):
        answers.append(SizeLimit(quantity=f"appliances[{i}].rated_kw", notified=a.rated_kw,
                                 largest=None if largest is None else largest * a.rated_kw, unit="kW",
                                 binding_rule=rule, scale=largest))  # fmt: skip
    budget = n.power_budget
    if budget is not None:
        increase = max(budget.max_demand_kw - case.existing_kw, 0.0)
        answers.append(SizeLimit(quantity="power_budget.max_demand_kw", notified=budget.max_demand_kw,
                                 largest=None if largest is None else budget.max_demand_kw - (1 - largest) * increase,
                                 unit="kW", binding_rule=rule, scale=largest))  # fmt: skip
    ratio = _start_ratio(case, ev, k, policy)
    if ratio is not None:
        answers.append(ratio)
    answers.append(_fuse_range(case, ev, k, policy, grid))
    return answers


def _start_ratio(case: DemandCase, ev: Evaluation, k: int, policy: Policy) -> SizeLimit | None:
    """Largest start-current ratio of the one starting appliance of a notification (RVC, fuse, flicker)."""
    rows = list(ev.appliance_rows(k))
    starting = [j for j in rows if ev.appliances.cases[j].start_current_ratio > 1.0]
    if len(starting) != 1:
        return None
    j = starting[0]
    r = ev.appliances.cases[j]
    ratio0 = r.start_current_ratio
    limits: dict[str, float] = {}
    rare = policy.number(PolicyKey.RVC_RARE_RATE_PER_MIN)
    key = PolicyKey.RVC_RARE_MAX_PERCENT if r.starts_per_hour / 60.0 < rare else PolicyKey.RVC_FREQUENT_MAX_PERCENT
    d_start = float(ev.appliances.d_start_percent[j])
    if d_start > 0:
        limits[str(RuleId.PQ_RVC)] = ratio0 * policy.number(key) / d_start
    acc = case.accounting
    if acc.start_current_a is not None and case.fuse_after_a is not None:
        carries = policy.fuse_no_melt(case.fuse_after_a, acc.start_duration_s or 0.0)
        per_ratio = (acc.start_current_a - acc.phase_current_a) / (ratio0 - 1.0)
        if carries is not None and per_ratio > 0:
            limits[str(RuleId.PROT_START_CURRENT)] = 1.0 + (carries - acc.phase_current_a) / per_ratio
    if ev.flicker.applies[j]:
        expo = policy.number(PolicyKey.FLICKER_TF_EXPONENT)
        alpha = policy.number(PolicyKey.FLICKER_SUMMATION_ALPHA)
        bg = policy.number(PolicyKey.FLICKER_BACKGROUND_PST)
        coeff = policy.number(PolicyKey.FLICKER_TF_COEFF)
        per_10min = r.starts_per_hour / 6.0
        p_start = float(pst_analytic(d_start, per_10min, policy.number(PolicyKey.FLICKER_SHAPE_FACTOR),
                                     t_f_coeff=coeff, t_f_exponent=expo))  # fmt: skip
        p_stop = float(pst_analytic(float(ev.appliances.d_rated_percent[j]), per_10min, 1.0, t_f_coeff=coeff,
                                    t_f_exponent=expo))  # fmt: skip
        others = [i for i in ev.appliance_rows(k) if i != j and ev.flicker.applies[i]]
        rest = float(np.sum(ev.flicker.pst_appliance[others] ** alpha))
        active = np.cbrt(policy.number(PolicyKey.FLICKER_ACTIVE_INTERVALS) / 12.0)
        for rule, limit, factor in ((RuleId.PQ_FLICKER_PST, PolicyKey.FLICKER_PST_MAX, 1.0),
                                    (RuleId.PQ_FLICKER_PLT, PolicyKey.FLICKER_PLT_MAX, float(active))):  # fmt: skip
            allow = policy.number(limit) ** alpha - bg**alpha - rest * factor**alpha
            allow = max(allow, 0.0) ** (1.0 / alpha) / factor
            room = allow**expo - p_stop**expo
            if p_start > 0:
                limits[str(rule)] = ratio0 * max(room, 0.0) ** (1.0 / expo) / p_start if room > 0 else 0.0
    if not limits:
        return None
    rule = min(limits, key=limits.get)
    return SizeLimit(quantity=f"appliances[{r.index}].start_current_ratio", notified=ratio0,
                     largest=max(limits[rule], 0.0), unit="-", binding_rule=rule)  # fmt: skip


def _fuse_range(case: DemandCase, ev: Evaluation, k: int, policy: Policy, grid: GridView) -> SizeLimit:
    """Main fuses the point takes: the smallest that carries the installation after the job, the largest the
    service cable, selectivity and the minimum fault current allow."""
    arr = grid.arrays
    cust = grid.customers
    cp, bus = case.location.cp_row, case.location.bus_row
    new_cable = case.notification.service_cable_ampacity_a
    ampacity = float(new_cable) if new_cable is not None else float(cust.service_cable_ampacity_a[cp])
    if not math.isfinite(ampacity) and arr.service_line_row[bus] >= 0:
        ampacity = float(arr.line_i_max_a[arr.service_line_row[bus]])
    upstream = float(cust.upstream_fuse_a[cp])
    if not math.isfinite(upstream) and arr.feeder_line_row[bus] >= 0:
        rated = float(arr.line_i_max_a[arr.feeder_line_row[bus]])
        sizes = [x for x in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A) if x <= rated + 1e-9]
        upstream = float(max(sizes)) if sizes else math.nan
    ik = float(ev.ik_min_a[k])
    sel = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    largest, rule = None, None
    for size in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A):
        reasons = []
        if math.isfinite(ampacity) and size > ampacity + 1e-9:
            reasons.append(RuleId.PROT_SERVICE_CABLE)
        if math.isfinite(upstream) and upstream / size < sel:
            reasons.append(RuleId.PROT_SELECTIVITY)
        i5 = policy.fuse_melting_5s(float(size))
        if i5 is None or not math.isfinite(ik) or ik < i5:
            reasons.append(RuleId.PROT_FAULT_CURRENT)
        if reasons:
            if i5 is None and reasons == [RuleId.PROT_FAULT_CURRENT]:
                continue  # an untabulated size (10 A, 35 A, above 160 A) does not end the search
            rule = str(reasons[0])
            break
        largest = float(size)
    return SizeLimit(quantity="main_fuse_a", notified=case.fuse_after_a, largest=largest,
                     smallest=case.required_fuse_a, unit="A", binding_rule=rule)  # fmt: skip
