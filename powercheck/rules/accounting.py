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

from collections.abc import Sequence
from dataclasses import dataclass

from powercheck.models import ApplianceKind, Notification
from powercheck.protection_device import DeviceType, MainDevice
from powercheck.quality.codes import CONN_3PH, CONN_LL, SQRT3
from powercheck.records import maker
from powercheck.rules.policy import Policy, PolicyKey


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
    diversity: dict[str, float] = policy.value(PolicyKey.APPLIANCE_DIVERSITY)
    budget = n.power_budget
    cos = (budget.cos_phi if budget is not None else None) or policy.number(PolicyKey.DEMAND_COS_PHI)
    used = policy.assumption_keys(PolicyKey.DEMAND_COS_PHI) if budget is None or budget.cos_phi is None else []
    consuming = [a for a in appliances if a.kind.consumes]
    generating = [a for a in appliances if a.kind.generates]
    factors = [diversity.get(a.kind.value, 1.0) for a in consuming]
    site = (existing_kw, existing_export_kw, same_point_kw, supply, u_ll_v)
    return [_account(budget, cos, list(used), consuming, factors, generating, *site, scale) for scale in scales]


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
    u_ll_v: float,
    scale: float,
) -> Accounting:
    listed = [(a, scale * f * a.total_kw) for a, f in zip(consuming, factors)]
    if budget is not None:
        # the budget is the installation after the job: its single-phase appliances on one phase, the rest balanced
        increase = max(0.0, budget.max_demand_kw - existing_kw)
        total_kw = budget.max_demand_kw if scale == 1.0 else budget.max_demand_kw - (1.0 - scale) * increase
        total_kw += same_point_kw
        single = [(a, kw) for a, kw in listed if a.conn != CONN_3PH]
        if supply != CONN_3PH:
            current = phase_current_a(total_kw, cos, supply, u_ll_v)
        else:
            single_kw = min(total_kw, sum(kw for _, kw in single))
            share = single_kw / sum(kw for _, kw in single) if single_kw > 0 else 0.0
            current = phase_current_a(total_kw - single_kw, cos, CONN_3PH, u_ll_v)
            current += sum(phase_current_a(share * kw, a.cos_phi, a.conn, u_ll_v) for a, kw in single)
    else:
        # the existing peak (balanced, at the demand cos) plus every appliance at its own cos phi
        total_kw = existing_kw + same_point_kw + sum(kw for _, kw in listed)
        current = phase_current_a(existing_kw + same_point_kw, cos, supply, u_ll_v)
        current += sum(
            phase_current_a(kw, a.cos_phi, supply if supply != CONN_3PH else a.conn, u_ll_v) for a, kw in listed
        )

    gen_kw = scale * sum(a.total_kw for a in generating)
    if budget is not None and budget.max_export_kw > 0:
        increase = max(0.0, budget.max_export_kw - existing_export_kw)
        export_kw = budget.max_export_kw if scale == 1.0 else budget.max_export_kw - (1.0 - scale) * increase
    else:
        export_kw = existing_export_kw + gen_kw
    if export_kw <= 0:
        export_current = 0.0
    elif supply != CONN_3PH:
        export_current = phase_current_a(export_kw, 1.0, supply, u_ll_v)
    else:
        share = export_kw / gen_kw if gen_kw > 0 else 0.0
        one_phase = sum(phase_current_a(share * scale * a.total_kw, a.cos_phi, a.conn, u_ll_v) for a in generating
                        if a.conn != CONN_3PH)  # fmt: skip
        balanced_kw = export_kw - share * scale * sum(a.total_kw for a in generating if a.conn != CONN_3PH)
        export_current = one_phase + phase_current_a(max(0.0, balanced_kw), 1.0, CONN_3PH, u_ll_v)

    start_current, duration, label = None, None, None
    for a in consuming:
        if a.start_current_ratio <= 1.0 or scale <= 0.0:
            continue
        conn = supply if supply != CONN_3PH else a.conn
        extra = (a.start_current_ratio - 1.0) * phase_current_a(scale * a.unit_kw, a.cos_phi, conn, u_ll_v)
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
        assumptions=tuple(dict.fromkeys(used)),
    )


def required_fuse_a(accounting: Accounting, policy: Policy, device: MainDevice | None = None) -> float | None:
    """The smallest standard size of the main protection that carries the demand and export and survives the
    start [A]: a gG fuse (``device`` None or a gG fuse) by its time-current gates, a breaker by its own no-trip
    criterion (:func:`.devices.no_trip_current`: an MCB's instantaneous lower bound or thermal no-trip current,
    an adjustable breaker's lowest pickup over the tolerance)."""
    from powercheck.rules.devices import Device, no_trip_current

    breaker = device is not None and device.type is not DeviceType.GG_FUSE
    need = max(accounting.phase_current_a, accounting.export_phase_current_a)
    for size in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A):
        if size + 1e-9 < need:
            continue
        if accounting.start_current_a is not None:
            duration = accounting.start_duration_s or 0.0
            if breaker:
                carries = no_trip_current(Device(device, float(size), "sizing"), duration, policy).value
            else:
                carries = policy.fuse_no_melt(float(size), duration)
            if carries is None or carries < accounting.start_current_a:
                continue
        return float(size)
    return None


def notifiable(n: Notification, appliances: Sequence[AccountedAppliance], u_ll_v: float, policy: Policy) -> str | None:
    """Why the job had to be notified (the first threshold it crosses), or None."""
    t = policy.value(PolicyKey.NOTIFICATION_THRESHOLDS)
    if n.job_type.value in t["always"]:
        return f"{n.job_type.value} is always notified"
    soft = policy.number(PolicyKey.SOFT_START_MAX_RATIO)
    for a in appliances:
        single = a.conn != CONN_3PH
        current = phase_current_a(a.unit_kw, a.cos_phi, a.conn, u_ll_v)
        phase = 0 if single else 1
        if single and current > t["single_phase_appliance_a"]:
            return f"{a.label}: single-phase {current:.1f} A > {t['single_phase_appliance_a']:g} A"
        if a.kind is ApplianceKind.PV_INVERTER and a.total_kw > t["pv_kw"]:
            return f"{a.label}: PV {a.total_kw:g} kW > {t['pv_kw']:g} kW"
        if a.kind is ApplianceKind.BATTERY_INVERTER and a.total_kw > t["battery_kw"]:
            return f"{a.label}: battery {a.total_kw:g} kW > {t['battery_kw']:g} kW"
        if a.kind in (ApplianceKind.MOTOR, ApplianceKind.HEAT_PUMP):
            key = "motor_soft_start_kw" if a.start_current_ratio <= soft else "motor_direct_on_line_kw"
            if a.unit_kw > t[key][phase]:
                return f"{a.label}: motor {a.unit_kw:g} kW > {t[key][phase]:g} kW ({key})"
        if a.kind in (ApplianceKind.EV_CHARGER, ApplianceKind.PV_INVERTER, ApplianceKind.BATTERY_INVERTER):
            if a.unit_kw > t["inverter_kw"][phase]:
                return f"{a.label}: inverter {a.unit_kw:g} kW > {t['inverter_kw'][phase]:g} kW"
    return None
