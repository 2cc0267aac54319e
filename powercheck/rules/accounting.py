"""Power accounting ("effektregnskap") at the customer point: the installation after the job against its fuses.

The customer's coincident demand after the job -- the power budget when there is one, else the
existing peak plus the listed appliances with the policy's diversity -- becomes a current per
phase on the service connection:

* three-phase supply: the balanced part ``P / (sqrt3 U cos)`` in every phase (the existing peak
  and a budget at the demand cos phi, three-phase appliances at their own), and every
  single-phase appliance on the same phase (worst case, the phase is not notified):
  L-N in TN ``P / (U/sqrt3 cos)``, L-L (IT, or 400 V appliances in TN) ``P / (U cos)`` in both
  line conductors;
* single-phase supply: everything on the one connection (L-N in TN, L-L in IT).

Currents of different power factors are added as magnitudes (conservative).

The export after the job is accounted the same way. A motor or compressor start adds
``(ratio - 1) I_rated`` of its largest unit to the running current for the start duration,
held against the current the fuse carries that long without melting (gG gates, policy).
Requests approved earlier at the same metering point (capacity ledger) count as demand.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from powercheck.models import ApplianceKind, Notification
from powercheck.protection_device import DeviceType, MainDevice
from powercheck.quality.codes import CONN_3PH, CONN_LL, SQRT3
from powercheck.records import maker
from powercheck.rules.policy import PerPolicy, Policy, PolicyKey


def reference_voltage_v(conn: int, u_ll_v: float) -> float:
    """Voltage a single connection's current refers to: U/sqrt3 (3ph, L-N) or U (L-L) [V]."""
    return u_ll_v if conn == CONN_LL else u_ll_v / SQRT3


def phase_current_a(p_kw: float, cos_phi: float, conn: int, u_ll_v: float) -> float:
    """Current in each loaded conductor [A]: S / (sqrt3 U) three-phase, S / U_ref single-phase."""
    s_va = 1000.0 * p_kw / cos_phi
    return s_va / (SQRT3 * u_ll_v) if conn == CONN_3PH else s_va / reference_voltage_v(conn, u_ll_v)


@dataclass(frozen=True)  # no __slots__: made by powercheck.records.maker
class Accounting:
    """The installation after the job as currents on its service connection."""

    demand_after_kw: float
    """Coincident demand after the job [kW]."""
    phase_current_a: float
    """Worst-phase demand current after the job [A]."""
    export_after_kw: float
    export_phase_current_a: float
    """Worst-phase export current after the job [A]."""
    start_current_a: float | None
    """Worst-phase current while the largest unit starts [A] (None: nothing with a start current)."""
    start_duration_s: float | None
    start_label: str | None
    assumptions: tuple[str, ...]


@dataclass(frozen=True)  # no __slots__: made by powercheck.records.maker
class AccountedAppliance:
    """What the accounting needs of one appliance row."""

    label: str
    kind: ApplianceKind
    conn: int
    total_kw: float
    unit_kw: float
    cos_phi: float
    start_current_ratio: float
    start_duration_s: float | None
    defaults_used: tuple[str, ...]


_make_accounting = maker(Accounting)
make_accounted_appliance = maker(AccountedAppliance)


def account(
    n: Notification,
    appliances: Sequence[AccountedAppliance],
    *,
    existing_kw: float,
    existing_export_kw: float,
    same_point_kw: float,
    supply: int,
    u_ll_v: float,
    policy: Policy,
    scale: float = 1.0,
) -> Accounting:
    """The customer's demand, export and start currents after the job (see the module docstring).

    ``scale`` multiplies what the job adds -- the appliances' power, the budget above the existing
    peak, the export -- (0: the installation without the job; the inverse answers use it).
    """
    site = dict(existing_kw=existing_kw, existing_export_kw=existing_export_kw, same_point_kw=same_point_kw,
                supply=supply, u_ll_v=u_ll_v, policy=policy)  # fmt: skip
    return accounts(n, appliances, **site, scales=(scale,))[0]


CONSUMING = frozenset(k for k in ApplianceKind if k.consumes)
"""Appliance kinds that draw power (:attr:`ApplianceKind.consumes`, looked up once)."""
GENERATING = frozenset(k for k in ApplianceKind if k.generates)
"""Appliance kinds that can export (:attr:`ApplianceKind.generates`, looked up once)."""


@dataclass(frozen=True, slots=True)
class AccountingTables:
    """What the accounting looks up in a policy, made once per policy (:func:`accounting_tables`)."""

    demand_cos_phi: float
    cos_assumptions: tuple[str, ...]
    """``policy.assumption_keys(DEMAND_COS_PHI)``."""
    diversity: dict[ApplianceKind, float]
    """The ``appliance_diversity`` factor of every kind (1.0 when the policy gives none)."""
    fuse_sizes: tuple[float, ...]
    """``standard_fuse_sizes_a`` as floats (strictly increasing: the policy checks it)."""
    fuse_size_bounds: tuple[float, ...]
    """``size + 1e-9`` of each: the first size that carries a current is the first bound not below it."""
    always: dict[str, str]
    """``notification_thresholds.always``: job type -> why it is notified."""
    thresholds: dict
    """``notification_thresholds``."""
    soft_start_max_ratio: float


def _make_accounting_tables(policy: Policy) -> AccountingTables:
    diversity: dict[str, float] = policy.value(PolicyKey.APPLIANCE_DIVERSITY)
    sizes = policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)
    thresholds = policy.value(PolicyKey.NOTIFICATION_THRESHOLDS)
    return AccountingTables(
        demand_cos_phi=policy.number(PolicyKey.DEMAND_COS_PHI),
        cos_assumptions=tuple(policy.assumption_keys(PolicyKey.DEMAND_COS_PHI)),
        diversity={k: diversity.get(k.value, 1.0) for k in ApplianceKind},
        fuse_sizes=tuple(float(size) for size in sizes),
        fuse_size_bounds=tuple(size + 1e-9 for size in sizes),
        always={job: f"{job} is always notified" for job in thresholds["always"]},
        thresholds=thresholds,
        soft_start_max_ratio=policy.number(PolicyKey.SOFT_START_MAX_RATIO),
    )


_ACCOUNTING_TABLES = PerPolicy("accounting.tables", _make_accounting_tables)


def accounting_tables(policy: Policy) -> AccountingTables:
    """The policy's :class:`AccountingTables` (made once per policy)."""
    return _ACCOUNTING_TABLES(policy)


def accounts(
    n: Notification,
    appliances: Sequence[AccountedAppliance],
    *,
    existing_kw: float,
    existing_export_kw: float,
    same_point_kw: float,
    supply: int,
    u_ll_v: float,
    policy: Policy,
    scales: Sequence[float] = (1.0,),
) -> list[Accounting]:
    """:func:`account` at each of ``scales``, the policy lookups and the appliance split done once."""
    t = accounting_tables(policy)
    budget = n.power_budget
    cos = (budget.cos_phi if budget is not None else None) or t.demand_cos_phi
    used = t.cos_assumptions if budget is None or budget.cos_phi is None else ()
    diversity = t.diversity
    consuming = [a for a in appliances if a.kind in CONSUMING]
    factors = [diversity[a.kind] for a in consuming]
    generating = [a for a in appliances if a.kind in GENERATING]
    # phase_current_a inlined below: 1000 P / cos / ref[conn], ref = sqrt3 U (3ph), U/sqrt3 (L-N), U (L-L) -- the
    # same operations in the same order, so the same currents to the bit
    ref = (SQRT3 * u_ll_v, u_ll_v / SQRT3, u_ll_v)
    site = (existing_kw, existing_export_kw, same_point_kw, supply, ref)
    return [_account(budget, cos, list(used), consuming, factors, generating, *site, scale) for scale in scales]


def _in_order(values: list[float]) -> float:
    """The values added one after the other from 0.0, as :func:`accounts_batch`'s ``np.bincount`` adds an
    installation's rows. Not ``sum``: from Python 3.12 it compensates the rounding, which would let a notification's
    currents differ in the last bit between a batch and a lone case (on 3.11 ``sum`` of floats is exactly this)."""
    total = 0.0
    for v in values:
        total += v
    return total


def _account(
    budget,
    cos: float,
    used: list[str],
    consuming: list[AccountedAppliance],
    factors: list[float],
    generating: list[AccountedAppliance],
    existing_kw: float,
    existing_export_kw: float,
    same_point_kw: float,
    supply: int,
    ref: tuple[float, float, float],
    scale: float,
) -> Accounting:
    kws = [scale * f * a.total_kw for a, f in zip(consuming, factors)]
    three = supply == CONN_3PH
    if budget is not None:
        # the budget is the installation after the job: its single-phase appliances on one phase, the rest balanced
        demand = budget.max_demand_kw
        total_kw = demand if scale == 1.0 else demand - (1.0 - scale) * max(0.0, demand - existing_kw)
        total_kw += same_point_kw
        if not three:
            current = 1000.0 * total_kw / cos / ref[supply]
        else:
            single = [(a, kw) for a, kw in zip(consuming, kws) if a.conn != CONN_3PH]
            single_sum = _in_order([kw for _, kw in single])
            single_kw = min(total_kw, single_sum)
            share = single_kw / single_sum if single_kw > 0 else 0.0
            current = 1000.0 * (total_kw - single_kw) / cos / ref[CONN_3PH]
            current += _in_order([1000.0 * (share * kw) / a.cos_phi / ref[a.conn] for a, kw in single])
    else:
        # the existing peak (balanced, at the demand cos) plus every appliance at its own cos phi
        base_kw = existing_kw + same_point_kw
        total_kw = base_kw + _in_order(kws)
        current = 1000.0 * base_kw / cos / ref[supply]
        if not three:
            r = ref[supply]
            current += _in_order([1000.0 * kw / a.cos_phi / r for a, kw in zip(consuming, kws)])
        else:
            current += _in_order([1000.0 * kw / a.cos_phi / ref[a.conn] for a, kw in zip(consuming, kws)])

    gen_kw = scale * _in_order([a.total_kw for a in generating])
    if budget is not None and budget.max_export_kw > 0:
        most = budget.max_export_kw
        export_kw = most if scale == 1.0 else most - (1.0 - scale) * max(0.0, most - existing_export_kw)
    else:
        export_kw = existing_export_kw + gen_kw
    if export_kw <= 0:
        export_current = 0.0
    elif not three:
        export_current = 1000.0 * export_kw / ref[supply]
    else:
        share = export_kw / gen_kw if gen_kw > 0 else 0.0
        single = [a for a in generating if a.conn != CONN_3PH]
        one_phase = _in_order([1000.0 * (share * scale * a.total_kw) / a.cos_phi / ref[a.conn] for a in single])
        balanced_kw = export_kw - share * scale * _in_order([a.total_kw for a in single])
        export_current = one_phase + 1000.0 * max(0.0, balanced_kw) / ref[CONN_3PH]

    start_current, duration, label = None, None, None
    if not scale <= 0.0:  # (as the per-appliance test `scale <= 0.0` skips)
        for a in consuming:
            if a.start_current_ratio <= 1.0:
                continue
            extra = (a.start_current_ratio - 1.0) * (
                1000.0 * (scale * a.unit_kw) / a.cos_phi / ref[a.conn if three else supply]
            )
            if start_current is None or current + extra > start_current:
                start_current, duration, label = current + extra, a.start_duration_s, a.label
                used.extend(a.defaults_used)
    return _make_accounting(
        demand_after_kw=total_kw,
        phase_current_a=current,
        export_after_kw=export_kw,
        export_phase_current_a=export_current,
        start_current_a=start_current,
        start_duration_s=duration,
        start_label=label,
        assumptions=tuple(dict.fromkeys(used)) if used else (),
    )


class AccountingInput(NamedTuple):
    """What :func:`accounts` takes for one installation (its arguments but the policy and the scales)."""

    notification: Notification
    appliances: Sequence[AccountedAppliance]
    existing_kw: float
    existing_export_kw: float
    same_point_kw: float
    supply: int
    u_ll_v: float


def accounts_batch(
    inputs: Sequence[AccountingInput], policy: Policy, scales: Sequence[float] = (1.0,)
) -> list[list[Accounting]]:
    """:func:`accounts` of many installations at once: ``[accounts(i..., scales=scales) for i in inputs]``, the
    same accountings to the bit.

    The currents are worked out as arrays: every elementwise operation is the one :func:`_account` does, in the
    same order, and each installation's sums over its appliances are ``np.bincount`` sums, which add the rows one
    after the other from 0.0 in row order as :func:`_in_order` does in :func:`_account`
    (tests/rules/test_demand_batch.py). The
    largest unit's start -- a running maximum that also collects the assumptions of each row that raises it --
    stays a loop over the appliances with a start current.
    """
    count = len(inputs)
    if count == 0:
        return []
    t = accounting_tables(policy)
    diversity = t.diversity
    default_cos = t.demand_cos_phi
    budgets = [i.notification.power_budget for i in inputs]
    site = np.array(
        [
            (i.existing_kw, i.existing_export_kw, i.same_point_kw, i.supply, i.u_ll_v)
            + ((b.max_demand_kw, b.max_export_kw, b.cos_phi or default_cos, 1.0) if b is not None else
               (0.0, 0.0, default_cos, 0.0))
            for i, b in zip(inputs, budgets)
        ],
        dtype=float,
    ).T  # fmt: skip
    existing, export0, same, supply_f, u, md, me, cos, budget_f = site
    has_budget = budget_f == 1.0
    supply = supply_f.astype(np.int64)
    ref = np.stack([SQRT3 * u, u / SQRT3, u])  # ref[conn, job]: sqrt3 U (3ph), U/sqrt3 (L-N), U (L-L)
    jobs = np.arange(count)
    ref_supply = ref[supply, jobs]
    three = supply == CONN_3PH

    consuming = [(k, a) for k, i in enumerate(inputs) for a in i.appliances if a.kind in CONSUMING]
    generating = [(k, a) for k, i in enumerate(inputs) for a in i.appliances if a.kind in GENERATING]
    rows = (
        np.array(
            [
                (k, diversity[a.kind], a.total_kw, a.conn, a.cos_phi, a.unit_kw, a.start_current_ratio)
                for k, a in consuming
            ],
            dtype=float,
        )
        .reshape(-1, 7)
        .T
    )
    c_job, c_factor, c_total, c_conn, c_cos, c_unit, c_ratio = rows
    c_job, c_conn = c_job.astype(np.int64), c_conn.astype(np.int64)
    c_single = c_conn != CONN_3PH
    c_ref_own = ref[c_conn, c_job]  # the appliance's own connection
    c_ref = np.where(three[c_job], c_ref_own, ref_supply[c_job])  # on a single-phase supply: the supply's
    rows = np.array([(k, a.total_kw, a.conn, a.cos_phi) for k, a in generating], dtype=float).reshape(-1, 4).T
    g_job, g_total, g_conn, g_cos = rows
    g_job, g_conn = g_job.astype(np.int64), g_conn.astype(np.int64)
    g_single = g_conn != CONN_3PH
    g_ref = ref[g_conn, g_job]
    starters = [r for r, (_, a) in enumerate(consuming) if not a.start_current_ratio <= 1.0]

    def per_job(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(rows, weights=values, minlength=count) if len(rows) else np.zeros(count)

    cos_used = tuple(dict.fromkeys(t.cos_assumptions))
    base_used = [cos_used if b is None or b.cos_phi is None else () for b in budgets]  # the policy's demand cos phi
    out: list[list[Accounting]] = [[] for _ in range(count)]
    with np.errstate(divide="ignore", invalid="ignore"):
        for scale in scales:
            kw = scale * c_factor * c_total
            # without a budget: the existing peak plus every appliance at its own cos phi
            base_kw = existing + same
            total_plain = base_kw + per_job(c_job, kw)
            current_plain = 1000.0 * base_kw / cos / ref_supply + per_job(c_job, 1000.0 * kw / c_cos / c_ref)
            # with a budget: single-phase appliances on one phase (three-phase supply), the rest balanced
            if scale == 1.0:
                total_budget = md.copy()
            else:
                total_budget = md - (1.0 - scale) * np.where(md - existing > 0.0, md - existing, 0.0)
            total_budget = total_budget + same
            s_rows = np.flatnonzero(c_single)
            single_sum = per_job(c_job[s_rows], kw[s_rows])
            single_kw = np.where(single_sum < total_budget, single_sum, total_budget)  # min(total, single)
            share = np.where(single_kw > 0, single_kw / single_sum, 0.0)
            current_3ph = 1000.0 * (total_budget - single_kw) / cos / ref[CONN_3PH] + per_job(
                c_job[s_rows], 1000.0 * (share[c_job[s_rows]] * kw[s_rows]) / c_cos[s_rows] / c_ref_own[s_rows]
            )
            current_budget = np.where(three, current_3ph, 1000.0 * total_budget / cos / ref_supply)
            total_kw = np.where(has_budget, total_budget, total_plain)
            current = np.where(has_budget, current_budget, current_plain)

            gen_kw = scale * per_job(g_job, g_total)
            if scale == 1.0:
                export_budget = me.copy()
            else:
                export_budget = me - (1.0 - scale) * np.where(me - export0 > 0.0, me - export0, 0.0)
            export_kw = np.where(has_budget & (me > 0), export_budget, export0 + gen_kw)
            g_share = np.where(gen_kw > 0, export_kw / gen_kw, 0.0)
            s_gen = np.flatnonzero(g_single)
            sg_job = g_job[s_gen]
            one_phase = per_job(
                sg_job, 1000.0 * (g_share[sg_job] * scale * g_total[s_gen]) / g_cos[s_gen] / g_ref[s_gen]
            )
            balanced_kw = export_kw - g_share * scale * per_job(sg_job, g_total[s_gen])
            export_3ph = one_phase + 1000.0 * np.where(balanced_kw > 0.0, balanced_kw, 0.0) / ref[CONN_3PH]
            export_current = np.where(export_kw <= 0, 0.0, np.where(three, export_3ph, 1000.0 * export_kw / ref_supply))

            currents = current.tolist()
            starts: dict[int, tuple[float, float | None, str, list[str]]] = {}
            if starters and not scale <= 0.0:  # (as the per-appliance test `scale <= 0.0` skips)
                extras = (
                    (c_ratio[starters] - 1.0)
                    * (1000.0 * (scale * c_unit[starters]) / c_cos[starters] / c_ref[starters])
                ).tolist()
                for r, extra in zip(starters, extras):
                    k, a = consuming[r]
                    got = starts.get(k)
                    value = currents[k] + extra
                    if got is None or value > got[0]:
                        trail = got[3] if got is not None else []
                        trail.extend(a.defaults_used)
                        starts[k] = (value, a.start_duration_s, a.label, trail)
            for k, (total, current_a, export, export_a, used) in enumerate(
                zip(total_kw.tolist(), currents, export_kw.tolist(), export_current.tolist(), base_used)
            ):
                start = starts.get(k) if starts else None
                if start is None:
                    out[k].append(_make_accounting(demand_after_kw=total, phase_current_a=current_a,
                                                   export_after_kw=export, export_phase_current_a=export_a,
                                                   start_current_a=None, start_duration_s=None, start_label=None,
                                                   assumptions=used))  # fmt: skip
                else:
                    out[k].append(_make_accounting(demand_after_kw=total, phase_current_a=current_a,
                                                   export_after_kw=export, export_phase_current_a=export_a,
                                                   start_current_a=start[0], start_duration_s=start[1],
                                                   start_label=start[2],
                                                   assumptions=tuple(dict.fromkeys([*used, *start[3]]))))  # fmt: skip
    return out


def required_fuse_a(accounting: Accounting, policy: Policy, device: MainDevice | None = None) -> float | None:
    """The smallest standard size of the main protection that carries the demand and export and survives the
    start [A]: a gG fuse (``device`` None or a gG fuse) by its time-current gates, a breaker by its own no-trip
    criterion (:func:`.devices.no_trip_current`: an MCB's instantaneous lower bound or thermal no-trip current,
    an adjustable breaker's lowest pickup over the tolerance)."""
    t = accounting_tables(policy)
    need = max(accounting.phase_current_a, accounting.export_phase_current_a)
    first = bisect_left(t.fuse_size_bounds, need)  # the first size with not (size + 1e-9 < need)
    if accounting.start_current_a is None:
        return t.fuse_sizes[first] if first < len(t.fuse_sizes) else None
    from powercheck.rules.devices import Device, no_trip_current

    breaker = device is not None and device.type is not DeviceType.GG_FUSE
    duration = accounting.start_duration_s or 0.0
    for size in t.fuse_sizes[first:]:
        if breaker:
            carries = no_trip_current(Device(device, size, "sizing"), duration, policy).value
        else:
            carries = policy.fuse_no_melt(size, duration)
        if carries is None or carries < accounting.start_current_a:
            continue
        return size
    return None


_PV, _BATTERY = ApplianceKind.PV_INVERTER, ApplianceKind.BATTERY_INVERTER
_MOTORS = (ApplianceKind.MOTOR, ApplianceKind.HEAT_PUMP)
_INVERTERS = (ApplianceKind.EV_CHARGER, ApplianceKind.PV_INVERTER, ApplianceKind.BATTERY_INVERTER)


def notifiable(n: Notification, appliances: Sequence[AccountedAppliance], u_ll_v: float, policy: Policy) -> str | None:
    """Why the job had to be notified (the first threshold it crosses), or None."""
    tables = accounting_tables(policy)
    always = tables.always.get(n.job_type)  # (a job type is a str enum: its value is the key)
    if always is not None:
        return always
    if not appliances:
        return None
    t = tables.thresholds
    soft = tables.soft_start_max_ratio
    single_a = t["single_phase_appliance_a"]
    ref = (SQRT3 * u_ll_v, u_ll_v / SQRT3, u_ll_v)  # phase_current_a inlined (same operations)
    for a in appliances:
        kind = a.kind
        single = a.conn != CONN_3PH
        current = 1000.0 * a.unit_kw / a.cos_phi / ref[a.conn]
        phase = 0 if single else 1
        if single and current > single_a:
            return f"{a.label}: single-phase {current:.1f} A > {single_a:g} A"
        if kind is _PV and a.total_kw > t["pv_kw"]:
            return f"{a.label}: PV {a.total_kw:g} kW > {t['pv_kw']:g} kW"
        if kind is _BATTERY and a.total_kw > t["battery_kw"]:
            return f"{a.label}: battery {a.total_kw:g} kW > {t['battery_kw']:g} kW"
        if kind in _MOTORS:
            key = "motor_soft_start_kw" if a.start_current_ratio <= soft else "motor_direct_on_line_kw"
            if a.unit_kw > t[key][phase]:
                return f"{a.label}: motor {a.unit_kw:g} kW > {t[key][phase]:g} kW ({key})"
        if kind in _INVERTERS:
            if a.unit_kw > t["inverter_kw"][phase]:
                return f"{a.label}: inverter {a.unit_kw:g} kW > {t['inverter_kw'][phase]:g} kW"
    return None
