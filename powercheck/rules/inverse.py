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
  The voltage answers stop at the *planning* band (``voltage_planning_min_pu`` / ``voltage_planning_max_pu``,
  binding rule ``VOLT.PEAK_PLANNING`` / ``VOLT.LOW_PLANNING``): the largest size that can still be
  auto-approved, not the legal FoL limit;
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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.models import SizeLimit, construct
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.hosting import thd_scale, unbalance_scale
from powercheck.quality.superposition import scale_limits
from powercheck.quality.unbalance import unbalance_percent
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import Evaluation, base_unbalance, bus_unbalance, bus_zeros, harmonic_setup
from powercheck.rules.fuse_range import fuse_inputs_of_points, ik_max_of_buses, main_fuse_range, upstream_from_feeder
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId

SCALE_CAP = 1000.0
"""Scales above this count as "not limited by any grid check"."""


def _ratio(room, per_unit) -> np.ndarray:
    """room / per_unit where per_unit > 0 (inf elsewhere; NaN room counts as no limit), floored at 0."""
    room = np.asarray(room, dtype=float)
    per = np.asarray(per_unit, dtype=float)
    ok = (per > 1e-12) & ~np.isnan(room)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, np.maximum(room / np.where(ok, per, 1.0), 0.0), np.inf)


def _flicker_scale(total: np.ndarray, background: float, alpha: float, limit: float) -> np.ndarray:
    """Largest s with (bg^a + s^a total)^(1/a) <= limit, ``total`` = sum of p^a per notification."""
    room = limit**alpha - background**alpha
    if room <= 0:
        return np.where(total > 0, 0.0, np.inf)
    with np.errstate(divide="ignore"):
        return np.where(total > 0, np.maximum(room / np.where(total > 0, total, 1.0), 0.0) ** (1.0 / alpha), np.inf)


RULE_ORDER: tuple[RuleId, ...] = (
    RuleId.LOAD_MAIN_FUSE,
    RuleId.LOAD_METER_FUSE,
    RuleId.LOAD_EXPORT_FUSE,
    RuleId.PROT_START_CURRENT,
    RuleId.THERMAL_LINE_PEAK,
    RuleId.THERMAL_TRAFO_PEAK,
    RuleId.VOLT_PEAK_PLANNING,
    RuleId.PQ_UNBALANCE,
    RuleId.THERMAL_LINE_EXPORT,
    RuleId.THERMAL_TRAFO_EXPORT,
    RuleId.VOLT_LOW_PLANNING,
    RuleId.PQ_RVC,
    RuleId.PQ_RVC_FOL_MAX,
    RuleId.PQ_RVC_STATIONARY,
    RuleId.PQ_FLICKER_PST,
    RuleId.PQ_FLICKER_PLT,
    RuleId.PQ_FLICKER_SHARE_PST,
    RuleId.PQ_FLICKER_SHARE_PLT,
    RuleId.PQ_HARMONIC,
    RuleId.PQ_THD,
    RuleId.PQ_THD_WEEK,
)
"""The rules with a scale limit; of equal limits the first in this order binds."""


class RuleScales:
    """Per rule the largest scale of every notification (inf: the rule does not limit it).

    :meth:`add` only records its arguments; the limits are worked out once, for all of them together, when first
    read (:attr:`by_rule`): a batch adds about thirty, and for a small batch the array operations of each (about ten
    on arrays of a few values) cost more than doing them once on the stacked rows.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._added: list[tuple[RuleId, Any, Any]] = []
        self._by_rule: dict[RuleId, np.ndarray] | None = None

    def add(self, rule: RuleId, s, where=None) -> None:
        """Limit ``rule`` to ``s`` (array or scalar) where ``where`` (default everywhere); non-finite values and
        values from :data:`SCALE_CAP` up do not limit."""
        self._added.append((rule, s, where))
        self._by_rule = None

    @property
    def by_rule(self) -> dict[RuleId, np.ndarray]:
        """Per rule (in the order first added) the smallest of its added limits, each limit
        ``max(s, 0)`` where ``s`` is finite, below :data:`SCALE_CAP` and ``where`` holds, inf elsewhere."""
        if self._by_rule is None:
            self._by_rule = self._resolve()
        return self._by_rule

    def _resolve(self) -> dict[RuleId, np.ndarray]:
        m, n = len(self._added), self.n
        if not m:
            return {}
        values = np.empty((m, n))
        mask = np.ones((m, n), dtype=bool)
        of_rule: dict[RuleId, list[int]] = {}
        for i, (rule, s, where) in enumerate(self._added):
            values[i] = s  # broadcasts a scalar (or one value) as np.broadcast_to did; a wrong length raises
            if where is not None:
                mask[i] = where
            of_rule.setdefault(rule, []).append(i)
        with np.errstate(invalid="ignore"):
            limits = np.where(np.isfinite(values) & (values < SCALE_CAP) & mask, np.maximum(values, 0.0), np.inf)
        # the limits of a rule combined in the order added (minimum is exact: the same values as one at a time)
        return {rule: limits[rows[0]] if len(rows) == 1 else np.minimum.reduce(limits[rows], axis=0)
                for rule, rows in of_rule.items()}  # fmt: skip

    def binding(self) -> tuple[np.ndarray, list[str | None]]:
        """The smallest scale of every notification and its rule (None: no rule limits it)."""
        by_rule = self.by_rule
        rules = [r for r in RULE_ORDER if r in by_rule]
        if not rules:
            return np.full(self.n, np.inf), [None] * self.n
        stack = np.vstack([by_rule[r] for r in rules])
        first = np.argmin(stack, axis=0)
        s = stack[first, np.arange(self.n)]
        names = [str(rules[i]) if math.isfinite(v) else None for i, v in zip(first, s, strict=True)]
        return s, names

    def of(self, k: int) -> dict[str, float]:
        """The finite limits of notification ``k`` by rule id."""
        return {str(r): float(v[k]) for r, v in self.by_rule.items() if math.isfinite(v[k])}


@dataclass(frozen=True)
class FuseInputs:
    """Per notification the fuse side of the power accounting, linear in the scale ``s`` of the job.

    Currents are worst-phase currents on the service connection [A]: without the job (``*0``) and
    what the job adds per unit scale (``*_per_scale``). NaN fuse: not known (no fuse limit).
    """

    fuse_a: np.ndarray
    """Main fuse after the job [A] (NaN: unknown)."""
    meter_fuse_a: np.ndarray
    """Meter fuse after the job where it differs from the main fuse [A] (NaN: none)."""
    demand0_a: np.ndarray
    demand_per_scale_a: np.ndarray
    export0_a: np.ndarray
    export_per_scale_a: np.ndarray
    start_carries_a: np.ndarray
    """Current the main fuse carries for the start duration without melting [A] (NaN: no start or no gate)."""
    start_per_scale_a: np.ndarray
    """Start current above ``demand0_a`` per unit scale [A]."""

    @classmethod
    def of_cases(cls, cases: Sequence[DemandCase], policy: Policy) -> FuseInputs:
        n = len(cases)
        out = {name: np.full(n, np.nan) for name in cls.__dataclass_fields__}
        for k, case in enumerate(cases):
            acc, acc0 = case.accounting, case.accounting_before
            if not case.evaluable or acc is None or case.fuse_after_a is None:
                continue
            fuse, mv = case.fuse_after_a, case.meter_fuse_after_a
            out["fuse_a"][k] = fuse
            if mv is not None and abs(mv - fuse) > 1e-9:
                out["meter_fuse_a"][k] = mv
            out["demand0_a"][k] = acc0.phase_current_a
            out["demand_per_scale_a"][k] = acc.phase_current_a - acc0.phase_current_a
            out["export0_a"][k] = acc0.export_phase_current_a
            out["export_per_scale_a"][k] = acc.export_phase_current_a - acc0.export_phase_current_a
            if acc.start_current_a is not None:
                carries = policy.fuse_no_melt(fuse, acc.start_duration_s or 0.0)
                if carries is not None:
                    out["start_carries_a"][k] = carries
                    out["start_per_scale_a"][k] = acc.start_current_a - acc0.phase_current_a
        return cls(**out)


def _fuse_scales(lim: RuleScales, f: FuseInputs) -> None:
    """Main fuse, meter fuse, export and start current: linear between the installation without and with the job."""
    lim.add(RuleId.LOAD_MAIN_FUSE, _ratio(f.fuse_a - f.demand0_a, f.demand_per_scale_a))
    lim.add(RuleId.LOAD_METER_FUSE, _ratio(f.meter_fuse_a - f.demand0_a, f.demand_per_scale_a))
    smallest = np.where(np.isnan(f.meter_fuse_a), f.fuse_a, np.fmin(f.fuse_a, f.meter_fuse_a))
    lim.add(RuleId.LOAD_EXPORT_FUSE, _ratio(smallest - f.export0_a, f.export_per_scale_a))
    lim.add(RuleId.PROT_START_CURRENT, _ratio(f.start_carries_a - f.demand0_a, f.start_per_scale_a))


def _side_scales(lim: RuleScales, valid: np.ndarray, ev: Evaluation, grid: GridView, policy: Policy, network,
                 peak: bool) -> None:  # fmt: skip
    """Cables, transformer, voltage band and unbalance at peak (load) or at low load (export)."""
    th = ev.thermal
    added = ev.load if peak else ev.export
    on = valid & (added.current_a > 0)
    radial = on & ~grid.arrays.meshed[ev.point.bus_row]
    i_added = added.current_a
    line_row = th.peak_line_row if peak else th.low_line_row
    base = th.peak_line_base_a if peak else th.low_line_base_a
    reserved = th.peak_line_reserved_a if peak else th.low_line_reserved_a
    limit = th.peak_line_limit_a if peak else th.low_line_limit_a
    rule = RuleId.THERMAL_LINE_PEAK if peak else RuleId.THERMAL_LINE_EXPORT
    lim.add(rule, _ratio(limit - base - reserved, i_added), radial & (line_row >= 0))
    t_base = th.trafo_peak_base_a if peak else th.trafo_low_base_a
    t_res = ev.reserved.trafo_peak_a if peak else ev.reserved.trafo_low_a
    rule = RuleId.THERMAL_TRAFO_PEAK if peak else RuleId.THERMAL_TRAFO_EXPORT
    lim.add(rule, _ratio(th.trafo_limit_a - t_base - t_res, i_added), radial)
    d = added.voltage_change_percent
    if peak:
        v_b, v_lim = ev.v_base_peak_pu, policy.number(PolicyKey.VOLTAGE_PLANNING_MIN_PU)
        rule = RuleId.VOLT_PEAK_PLANNING
        room = v_b - v_lim
    else:
        v_b, v_lim = ev.v_base_low_pu, policy.number(PolicyKey.VOLTAGE_PLANNING_MAX_PU)
        rule = RuleId.VOLT_LOW_PLANNING
        room = v_lim - v_b
    lim.add(rule, np.where(room > 0, _ratio(100.0 * v_lim * room, d), 0.0), on)
    lim.add(rule, network["load" if peak else "export"][0], on)
    single = on & ((ev.s1_load_kva if peak else ev.s1_export_kva) > 0)
    lim.add(RuleId.PQ_UNBALANCE, network["own_load" if peak else "own_export"], single)
    lim.add(RuleId.PQ_UNBALANCE, network["load" if peak else "export"][1], single)


def _appliance_scales(lim: RuleScales, valid: np.ndarray, ev: Evaluation, policy: Policy, harmonic) -> None:
    """Rapid voltage change, stationary steps, flicker and harmonics of the appliances."""
    steps = ev.appliances
    table = steps.table
    n = ev.n
    owner = table.owner
    if owner.size:
        rare = policy.number(PolicyKey.RVC_RARE_RATE_PER_MIN)
        frequent = table.starts_per_hour / 60.0 >= rare
        rvc_max = np.where(frequent, policy.number(PolicyKey.RVC_FREQUENT_MAX_PERCENT),
                           policy.number(PolicyKey.RVC_RARE_MAX_PERCENT))  # fmt: skip
        per_row = _ratio(rvc_max, steps.d_start_percent)
        rvc = np.full(n, np.inf)
        np.minimum.at(rvc, owner, per_row)
        lim.add(RuleId.PQ_RVC, rvc, valid & (np.bincount(owner, minlength=n) > 0))
        hours = policy.number(PolicyKey.OPERATING_HOURS_PER_DAY)
        many = table.starts_per_hour * hours > policy.number(PolicyKey.RVC_MAX_EVENTS_PER_DAY)
        fol_rules = (
            (RuleId.PQ_RVC_FOL_MAX, PolicyKey.RVC_MAX_STEP_PERCENT, steps.d_start_percent),
            (RuleId.PQ_RVC_STATIONARY, PolicyKey.RVC_STATIONARY_MAX_PERCENT, steps.d_rated_percent),
        )
        for rule, key, d in fol_rules:
            per_row = np.where(many, _ratio(policy.number(key), d), np.inf)
            fol = np.full(n, np.inf)
            np.minimum.at(fol, owner, per_row)
            lim.add(rule, fol, valid)
        fl = ev.flicker
        alpha = policy.number(PolicyKey.FLICKER_SUMMATION_ALPHA)
        bg = policy.number(PolicyKey.FLICKER_BACKGROUND_PST)
        applies = fl.applies
        total = np.bincount(owner[applies], fl.pst_appliance[applies] ** alpha, minlength=n)
        total_plt = np.bincount(owner[applies], fl.plt_appliance[applies] ** alpha, minlength=n)
        has = valid & (np.bincount(owner[applies], minlength=n) > 0)
        for rule, sums, background, key in (
            (RuleId.PQ_FLICKER_PST, total, bg, PolicyKey.FLICKER_GRID_PST_MAX),
            (RuleId.PQ_FLICKER_PLT, total_plt, bg, PolicyKey.FLICKER_GRID_PLT_MAX),
            (RuleId.PQ_FLICKER_SHARE_PST, total, 0.0, PolicyKey.FLICKER_CUSTOMER_PST_MAX),
            (RuleId.PQ_FLICKER_SHARE_PLT, total_plt, 0.0, PolicyKey.FLICKER_CUSTOMER_PLT_MAX),
        ):
            lim.add(rule, _flicker_scale(sums, background, alpha, policy.number(key)), has)
    present = valid & ev.harmonics.present
    lim.add(RuleId.PQ_HARMONIC, harmonic["order"], present)
    lim.add(RuleId.PQ_THD, harmonic["thd"], present)
    lim.add(RuleId.PQ_THD_WEEK, harmonic["thd_week"], present & ev.harmonics.continuous)


def _network_scales(ev: Evaluation, grid: GridView, policy: Policy, state: CapacityState | None):
    """Scale limits from every other bus of each notification's network (load at peak, export at low load)."""
    arr = grid.arrays
    zeros = bus_zeros(grid)
    background = policy.number(PolicyKey.BACKGROUND_UNBALANCE_PERCENT)
    base_unb = bus_unbalance(grid, background)
    common = (grid.bus_bounds, arr.network_index, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min,
              arr.xk0_min, arr.u_ll_v)  # fmt: skip
    unb_max = policy.number(PolicyKey.UNBALANCE_MAX_PERCENT)
    out = {}
    for side, added, s1, vm, dv_res, vuf_res, sign, vlim in (
        ("load", ev.load, ev.s1_load_kva, arr.vm_peak_pu, state.bus_drop_percent if state else zeros,
         state.bus_vuf_peak_percent if state else zeros, -1.0, policy.number(PolicyKey.VOLTAGE_PLANNING_MIN_PU)),
        ("export", ev.export, ev.s1_export_kva, arr.vm_low_pu, state.bus_rise_percent if state else zeros,
         state.bus_vuf_low_percent if state else zeros, 1.0, policy.number(PolicyKey.VOLTAGE_PLANNING_MAX_PU)),
    ):  # fmt: skip
        rows = np.where(added.current_a > 0, ev.point.bus_row, -1)
        q = np.full(added.component_conn.shape[0], -sign)
        out[side] = scale_limits(
            rows, added.component_indptr, added.component_conn, added.component_current_a, added.component_cos_phi,
            q, s1, *common, vm, dv_res, sign, vlim, base_unb, vuf_res, unb_max,
        )  # fmt: skip
    return out


def _harmonic_limits(ev: Evaluation, policy: Policy) -> dict[str, np.ndarray]:
    """Per notification: the largest scale for the individual orders (closed form) and for THD (bisection)."""
    hr = ev.harmonics
    setup = harmonic_setup(policy)
    if hr.orders == setup.orders:  # the policy's orders (always, for evaluations of this policy): its exponents
        alpha = setup.alpha
    else:
        alpha = np.array([policy.harmonic_alpha(h) for h in hr.orders])
    room = np.maximum(hr.limit_percent**alpha - hr.background_percent**alpha, 0.0) ** (1.0 / alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_order = np.where(hr.emission_percent > 0, room / hr.emission_percent, np.inf)
    order = per_order.min(axis=1) if per_order.shape[1] else np.full(ev.n, np.inf)
    thd = thd_scale(hr.emission_percent, hr.background_percent, alpha, policy.number(PolicyKey.THD_MAX_PERCENT),
                    SCALE_CAP)  # fmt: skip
    week = np.full(ev.n, np.inf)
    if hr.continuous.any():
        rows = np.flatnonzero(hr.continuous)
        week[rows] = thd_scale(hr.emission_percent[rows], hr.background_percent, alpha,
                               policy.number(PolicyKey.THD_WEEK_MAX_PERCENT), SCALE_CAP)  # fmt: skip
    return {"order": order, "thd": thd, "thd_week": week}


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


def rule_scales(
    fuses: FuseInputs, valid: np.ndarray, ev: Evaluation, grid: GridView, policy: Policy,
    state: CapacityState | None = None,
) -> RuleScales:  # fmt: skip
    """Per rule the largest scale of everything each notification adds (``valid``: evaluable rows)."""
    network = _network_scales(ev, grid, policy, state)
    network.update(_own_unbalance(ev, grid, policy))
    lim = RuleScales(ev.n)
    _fuse_scales(lim, fuses)
    _side_scales(lim, valid, ev, grid, policy, network, peak=True)
    _side_scales(lim, valid, ev, grid, policy, network, peak=False)
    _appliance_scales(lim, valid, ev, policy, _harmonic_limits(ev, policy))
    return lim


def _number(x) -> float | None:
    return None if x is None else float(x)


def _size_limit(
    *,
    quantity: str,
    notified=None,
    largest=None,
    smallest=None,
    unit: str = "",
    binding_rule: str | None = None,
    scale=None,
) -> SizeLimit:
    """``SizeLimit(...)`` of the engine's own values without the validation pass (about 5 us each, a few per
    notification): the numbers as floats (None kept), as the model's validation makes them."""
    return construct(
        SizeLimit,
        {
            "quantity": str(quantity),
            "notified": _number(notified),
            "largest": _number(largest),
            "smallest": _number(smallest),
            "unit": unit,
            "binding_rule": None if binding_rule is None else str(binding_rule),
            "scale": _number(scale),
        },
    )


def size_limits(
    cases: Sequence[DemandCase],
    ev: Evaluation,
    grid: GridView,
    policy: Policy,
    state: CapacityState | None = None,
    skip: Collection[int] = (),
) -> list[list[SizeLimit]]:
    """The inverse answers of every evaluable notification (empty list for the others and the rows in ``skip``)."""
    valid = np.array([c.evaluable and c.accounting is not None for c in cases], dtype=bool)
    scales, rules = rule_scales(FuseInputs.of_cases(cases, policy), valid, ev, grid, policy, state).binding()
    wanted = valid.copy()
    wanted[list(skip)] = False
    fuse_ranges = _fuse_ranges(cases, wanted, ev, policy, grid)
    out: list[list[SizeLimit]] = []
    for k, case in enumerate(cases):
        if not wanted[k]:
            out.append([])
            continue
        out.append(_answers(case, float(scales[k]), rules[k], ev, k, policy, fuse_ranges[k], grid))
    return out


def _answers(case: DemandCase, s: float, rule: str | None, ev: Evaluation, k: int, policy: Policy,
             fuse_range: SizeLimit, grid: GridView) -> list:  # fmt: skip
    """The limits of one notification as the sizes an installer sets."""
    largest = None if not math.isfinite(s) else s
    n = case.notification
    answers = []
    for i, a in enumerate(n.appliances):
        answers.append(_size_limit(quantity=f"appliances[{i}].rated_kw", notified=a.rated_kw,
                                 largest=None if largest is None else largest * a.rated_kw, unit="kW",
                                 binding_rule=rule, scale=largest))  # fmt: skip
    budget = n.power_budget
    if budget is not None:
        increase = max(budget.max_demand_kw - case.existing_kw, 0.0)
        answers.append(_size_limit(quantity="power_budget.max_demand_kw", notified=budget.max_demand_kw,
                                 largest=None if largest is None else budget.max_demand_kw - (1 - largest) * increase,
                                 unit="kW", binding_rule=rule, scale=largest))  # fmt: skip
    ratio = _start_ratio(case, ev, k, policy)
    if ratio is not None:
        answers.append(ratio)
    answers.append(fuse_range)
    if case.kv_changed:
        answers.append(_kv_range(case, ev, k, policy, grid))
    return answers


def _kv_range(case: DemandCase, ev: Evaluation, k: int, policy: Policy, grid: GridView) -> SizeLimit:
    """KV sizes a kv_change may set (standard gG sizes): the smallest that discriminates with the main protection
    (PROT.KV_SELECTIVITY), the largest the upstream fuse discriminates with (ratio, PROT.KV_UPSTREAM_SELECTIVITY)
    and the minimum fault current melts within 5 s (PROT.KV_FAULT_CURRENT), sizes tried in ascending order up to
    the first that fails (an untabulated 5-s current does not end the search)."""
    from powercheck.rules.checks.protection import upstream_fuse_of
    from powercheck.rules.devices import fuse_above_device

    sizes = [float(x) for x in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)]
    b = case.location.bus_row
    ik_min = float(ev.ik_min_a[k])
    ik_max = float(ik_max_of_buses(grid, policy, np.array([b]))[0])
    smallest = None
    if case.device is not None:
        for size in sizes:
            results = fuse_above_device(size, case.device, ik_max, policy, what="KV")
            if all(math.isfinite(r.value) and math.isfinite(r.limit) and r.value >= r.limit for r in results):
                smallest = size
                break
    upstream = upstream_fuse_of(grid, policy, case.location.cp_row, b)
    ratio = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    largest, rule = None, None
    for size in sizes:
        if math.isfinite(upstream) and upstream / size < ratio:
            rule = str(RuleId.PROT_KV_UPSTREAM_SELECTIVITY)
            break
        i5 = policy.fuse_melting_5s(size)
        if i5 is not None and i5 > ik_min:
            rule = str(RuleId.PROT_KV_FAULT_CURRENT)
            break
        largest = size
    return _size_limit(quantity="kv_fuse_after_a", notified=case.kv_a, largest=largest, smallest=smallest, unit="A",
                     binding_rule=rule)  # fmt: skip


def _start_ratio(case: DemandCase, ev: Evaluation, k: int, policy: Policy) -> SizeLimit | None:
    """Largest start-current ratio of the one starting appliance of a notification (RVC, fuse, flicker)."""
    rows = list(ev.appliance_rows(k))
    starting = [j for j in rows if ev.appliances.cases[j].start_current_ratio > 1.0 and not ev.appliances.ramped[j]]
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
        events = r.starts_per_hour * policy.number(PolicyKey.OPERATING_HOURS_PER_DAY)
        if events > policy.number(PolicyKey.RVC_MAX_EVENTS_PER_DAY):
            limits[str(RuleId.PQ_RVC_FOL_MAX)] = ratio0 * policy.number(PolicyKey.RVC_MAX_STEP_PERCENT) / d_start
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
        # the start's and the stop's Pst in one call (the kernel is elementwise: each the same as alone)
        p_start, p_stop = pst_analytic(
            np.array([d_start, float(ev.appliances.d_rated_percent[j])]), per_10min,
            np.array([policy.number(PolicyKey.FLICKER_SHAPE_FACTOR), 1.0]), t_f_coeff=coeff, t_f_exponent=expo,
        ).tolist()  # fmt: skip
        others = [i for i in ev.appliance_rows(k) if i != j and ev.flicker.applies[i]]
        rest_pst = float(np.sum(ev.flicker.pst_appliance[others] ** alpha))
        rest_plt = float(np.sum(ev.flicker.plt_appliance[others] ** alpha))
        active = float(np.cbrt(r.active_intervals / 12.0))
        for rule, limit, background, factor, rest in (
            (RuleId.PQ_FLICKER_PST, PolicyKey.FLICKER_GRID_PST_MAX, bg, 1.0, rest_pst),
            (RuleId.PQ_FLICKER_PLT, PolicyKey.FLICKER_GRID_PLT_MAX, bg, active, rest_plt),
            (RuleId.PQ_FLICKER_SHARE_PST, PolicyKey.FLICKER_CUSTOMER_PST_MAX, 0.0, 1.0, rest_pst),
            (RuleId.PQ_FLICKER_SHARE_PLT, PolicyKey.FLICKER_CUSTOMER_PLT_MAX, 0.0, active, rest_plt),
        ):
            allow = policy.number(limit) ** alpha - background**alpha - rest
            allow = max(allow, 0.0) ** (1.0 / alpha) / factor
            room = allow**expo - p_stop**expo
            if p_start > 0:
                limits[str(rule)] = ratio0 * max(room, 0.0) ** (1.0 / expo) / p_start if room > 0 else 0.0
    if not limits:
        return None
    rule = min(limits, key=limits.get)
    return _size_limit(quantity=f"appliances[{r.index}].start_current_ratio", notified=ratio0,
                     largest=max(limits[rule], 0.0), unit="-", binding_rule=rule)  # fmt: skip


def _fuse_ranges(
    cases: Sequence[DemandCase], valid: np.ndarray, ev: Evaluation, policy: Policy, grid: GridView
) -> dict[int, SizeLimit]:
    """Main fuses each valid notification's point takes: the smallest that carries the installation after the job,
    the largest the service cable, selectivity and the minimum fault current allow
    (:func:`.fuse_range.main_fuse_range`), computed over the batch once per kind of main device (the range is
    elementwise, so a point's answer does not depend on the others in its batch)."""
    ks = np.flatnonzero(valid)
    if not ks.size:
        return {}
    rows = np.array([cases[k].location.cp_row for k in ks], dtype=np.int64)
    bus_rows = np.array([cases[k].location.bus_row for k in ks], dtype=np.int64)
    new_cable = np.array(
        [np.nan if (c := cases[k].notification.service_cable_ampacity_a) is None else c for k in ks], dtype=float
    )
    amp, up, rated = fuse_inputs_of_points(grid, rows, new_cable)
    up = upstream_from_feeder(up, rated, policy)
    ik = np.asarray(ev.ik_min_a, dtype=float)[ks]
    # the KV after the job (customer index, ledger or the notified kv_change)
    kv = np.array([np.nan if (a := cases[k].kv_a) is None else a for k in ks], dtype=float)
    ikx = ik_max_of_buses(grid, policy, bus_rows)
    groups: dict[Any, list[int]] = {}
    for pos, k in enumerate(ks):
        device = cases[k].device.spec if cases[k].device is not None else None
        groups.setdefault(device, []).append(pos)
    largest = np.full(ks.size, np.nan)
    rule: list[str | None] = [None] * ks.size
    for device, positions in groups.items():
        idx = np.array(positions, dtype=np.int64)
        size, why = main_fuse_range(amp[idx], up[idx], ik[idx], policy, device=device, kv_a=kv[idx], ik_max_a=ikx[idx])
        largest[idx] = size
        for p, r in zip(positions, why):
            rule[p] = r
    out: dict[int, SizeLimit] = {}
    for pos, k in enumerate(ks):
        case = cases[k]
        out[int(k)] = _size_limit(quantity="main_fuse_a", notified=case.fuse_after_a,
                                largest=None if math.isnan(largest[pos]) else float(largest[pos]),
                                smallest=case.required_fuse_a, unit="A", binding_rule=rule[pos])  # fmt: skip
    return out
