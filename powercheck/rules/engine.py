"""The rule engine: notifications + grid region + policy -> decisions.

Evaluation is vectorised over a batch of notifications: a Python pass turns
each notification into rows of plain arrays (load components, export
components, appliances), the numba kernels of :mod:`powercheck.quality` compute
currents, voltage changes, unbalance, fault currents and thermal bottlenecks for
all rows at once, and a last pass turns the numbers into ``CheckResult``s and a
``Decision``.

Demand model (all numbers per notification; every assumption is named in the
checks that use it):

* New coincident demand. With a power budget: ``max_demand_kw``. Without one:
  the larger of the listed consuming appliances on top of the existing demand,
  and -- when the fuse changes -- ``fuse_demand_factor`` x the new fuse's
  capacity at ``demand_cos_phi``.
* Increase ``dP = customer_coincidence * max(0, new - existing_peak_kw)``.
* Single-phase consuming appliances take their share of ``dP`` on their own
  connection (worst case: all on the same phase); the rest is balanced
  three-phase at ``demand_cos_phi``. A single-phase supply carries everything
  single-phase.
* Export: the budget's ``max_export_kw`` minus existing export, or the sum of
  the generating appliances; generators are treated with reactive absorption at
  their cos phi (voltage rise ``(R cos phi - X sin phi) I / U``).

Checks (rule ids):

==========================  ======================================================
``DATA.COMPLETE``           job-type and policy fields present (else reject_incomplete)
``GRID.LOCATED``            metering point in the customer index
``GRID.SYSTEM``             notified IT/TN system matches the grid model
``LOAD.BUDGET_FUSE``        budget current <= new fuse
``PROT.SERVICE_CABLE``      service cable ampacity >= new fuse
``PROT.SELECTIVITY``        upstream fuse / new fuse >= 1.6
``PROT.FAULT_CURRENT``      minimum fault current >= 5-s melting current of the new fuse
``THERMAL.LINE_PEAK``       binding line on the path at peak with the added current
``THERMAL.TRAFO_PEAK``      transformer at peak with the added current
``THERMAL.LINE_EXPORT``     binding line at low load with the added export
``THERMAL.TRAFO_EXPORT``    transformer at low load with the added export
``VOLT.PEAK_MIN``           voltage at peak with the added load >= voltage_min_pu
``VOLT.LOW_MAX``            voltage at low load with the added export <= voltage_max_pu
``PQ.RVC``                  rapid voltage change per appliance start (limit by start rate)
``PQ.RVC_STATIONARY``       stationary step per switching when > 24 events a day
``PQ.FLICKER_PST``          short-term flicker of the starts (IEC 61000-3-3 analytical method)
``PQ.FLICKER_PLT``          long-term flicker, the appliance running for 2 h
``PQ.THD``                  total harmonic distortion with the appliances' harmonic currents
``PQ.HARMONIC``             the individual harmonic voltage closest to its EN 50160 limit
``PQ.UNBALANCE``            negative-sequence unbalance from single-phase load/export
==========================  ======================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from powercheck import __version__
from powercheck.grid.region import GridRegion
from powercheck.models import (
    Appliance,
    CheckResult,
    CheckStatus,
    Decision,
    LimitKind,
    NetworkSystem,
    Notification,
    Outcome,
    SupplyPhases,
)
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3, SYSTEM_IT, SYSTEM_TN, conn_code
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.harmonics import harmonic_voltages_percent, thd_percent
from powercheck.quality.impedance import min_fault_current_a
from powercheck.quality.thermal import path_bottleneck
from powercheck.quality.unbalance import unbalance_percent
from powercheck.quality.voltage import line_current_a, voltage_after_constant_power, voltage_change_percent
from powercheck.rules.completeness import FUSE_JOBS, missing_fields, new_fuse_a
from powercheck.rules.policy import Policy

GRID_RULE_GROUPS = ("PROT", "THERMAL", "VOLT", "PQ")
"""Rule-id prefixes whose results depend on the grid model (and so on its completion defaults)."""


def _check(
    rule_id: str,
    name: str,
    value: float | None,
    limit: float | None,
    kind: LimitKind,
    unit: str,
    *,
    limit_key: str | None = None,
    assumptions: Sequence[str] = (),
    detail: str = "",
    margin_scale: float | None = None,
) -> CheckResult:
    """A check from a value and a limit; NaN/None anywhere gives NOT_EVALUATED."""
    if value is None or limit is None or not math.isfinite(value) or not math.isfinite(limit):
        return CheckResult.model_construct(
            rule_id=rule_id,
            name=name,
            status=CheckStatus.NOT_EVALUATED,
            value=None if value is None or not math.isfinite(value) else float(value),
            limit=None if limit is None or not math.isfinite(limit) else float(limit),
            limit_kind=kind,
            margin=None,
            unit=unit,
            margin_scale=margin_scale,
            limit_key=limit_key,
            assumptions=sorted(set(assumptions)),
            detail=detail or "could not be computed: input data missing",
        )
    margin = (limit - value) if kind is LimitKind.MAX else (value - limit)
    return CheckResult.model_construct(
        rule_id=rule_id,
        name=name,
        status=CheckStatus.PASS if margin >= 0 else CheckStatus.FAIL,
        value=float(value),
        limit=float(limit),
        limit_kind=kind,
        margin=float(margin),
        unit=unit,
        margin_scale=margin_scale,
        limit_key=limit_key,
        assumptions=sorted(set(assumptions)),
        detail=detail,
    )


def _not_evaluated(rule_id: str, name: str, detail: str, assumptions: Sequence[str] = ()) -> CheckResult:
    return CheckResult.model_construct(
        rule_id=rule_id,
        name=name,
        status=CheckStatus.NOT_EVALUATED,
        value=None,
        limit=None,
        limit_kind=LimitKind.MAX,
        margin=None,
        unit="",
        margin_scale=None,
        limit_key=None,
        assumptions=sorted(set(assumptions)),
        detail=detail,
    )


@dataclass
class _Rows:
    """Growing column lists for one kind of row (load components, export components, appliances)."""

    owner: list[int] = field(default_factory=list)
    conn: list[int] = field(default_factory=list)
    p_kw: list[float] = field(default_factory=list)
    cos_phi: list[float] = field(default_factory=list)

    def add(self, owner: int, conn: int, p_kw: float, cos_phi: float) -> None:
        self.owner.append(owner)
        self.conn.append(conn)
        self.p_kw.append(p_kw)
        self.cos_phi.append(cos_phi)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.owner, dtype=np.int64),
            np.asarray(self.conn, dtype=np.int64),
            np.asarray(self.p_kw, dtype=float),
            np.asarray(self.cos_phi, dtype=float),
        )


@dataclass
class _ApplianceRow:
    owner: int
    index: int
    appliance: Appliance
    conn: int
    cos_phi: float
    ratio: float
    cos_start: float
    starts_per_hour: float
    defaults_used: list[str]

    @property
    def total_kw(self) -> float:
        """Rated power of all units of the row [kW]."""
        return self.appliance.rated_kw * self.appliance.quantity


@dataclass
class _Prep:
    """What the first pass learned about one notification."""

    notification: Notification
    missing: list[str] = field(default_factory=list)
    cp_row: int = -1
    bus_row: int = -1
    network_id: str | None = None
    bus: int | None = None
    system_mismatch: str | None = None
    fuse_after: float | None = None
    fuse_changed: bool = False
    d_p_kw: float = 0.0
    export_kw: float = 0.0
    demand_cos: float = 1.0
    """Power factor of the demand increase (the budget's, else the policy's demand_cos_phi)."""
    budget_current_a: float | None = None
    s_1ph_load_kva: float = 0.0
    s_1ph_export_kva: float = 0.0
    demand_assumptions: list[str] = field(default_factory=list)
    export_assumptions: list[str] = field(default_factory=list)
    appliances: list[_ApplianceRow] = field(default_factory=list)

    @property
    def evaluable(self) -> bool:
        return not self.missing and self.bus_row >= 0 and self.system_mismatch is None


def _supply_conn(system: NetworkSystem, supply: SupplyPhases) -> int:
    if supply is SupplyPhases.THREE:
        return CONN_3PH
    return CONN_LN if system is NetworkSystem.TN_400 else CONN_LL


def fuse_capacity_kva(fuse_a: float, u_ll_v: float, conn: int) -> float:
    """Apparent power a fuse lets through at nominal voltage [kVA]."""
    if conn == CONN_3PH:
        return SQRT3 * u_ll_v * fuse_a / 1000.0
    if conn == CONN_LN:
        return u_ll_v / SQRT3 * fuse_a / 1000.0
    return u_ll_v * fuse_a / 1000.0


class Assessor:
    """Decides notifications against one grid region and one policy.

    Parameters
    ----------
    region : GridRegion
        The grid model with its customer index.
    policy : Policy
        Limits and assumptions.
    clock : callable, optional
        Returns the decision timestamp (injectable for reproducible tests).
    """

    def __init__(self, region: GridRegion, policy: Policy, *, clock: Callable[[], datetime] | None = None):
        self.region = region
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self._grid_assumptions = {nid: region.assumptions_for_network(nid) for nid in region.networks}
        cust = region.customers
        self._cust = {
            "bus_row": cust.bus_row.to_numpy(dtype=np.int64),
            "bus": cust.bus.to_numpy(dtype=np.int64),
            "network_id": cust.network_id.astype(str).to_numpy(dtype=object),
            "existing_peak_kw": cust.existing_peak_kw.to_numpy(dtype=float),
            "existing_export_kw": cust.existing_export_kw.to_numpy(dtype=float),
            "main_fuse_a": cust.main_fuse_a.to_numpy(dtype=float),
            "service_cable_ampacity_a": cust.service_cable_ampacity_a.to_numpy(dtype=float),
            "upstream_fuse_a": cust.upstream_fuse_a.to_numpy(dtype=float),
        }

    # ------------------------------------------------------------------ public API
    def assess(self, notification: Notification) -> Decision:
        """Decide one notification."""
        return self.assess_many([notification])[0]

    def assess_many(self, notifications: Sequence[Notification]) -> list[Decision]:
        """Decide a batch of notifications (vectorised; order preserved)."""
        if not notifications:
            return []
        preps = [self._prepare(n) for n in notifications]
        self._locate(preps)
        for p in preps:
            if not p.missing and p.bus_row >= 0 and p.system_mismatch is None:
                self._demand(p)
        numbers = self._compute(preps)
        now = self.clock()
        return [self._decide(i, p, numbers, now) for i, p in enumerate(preps)]

    def invalid_decision(
        self,
        errors: Sequence[str],
        *,
        notification_id: str | None,
        revision: int | None = None,
        source: str = "",
    ) -> Decision:
        """The decision for input that failed validation: reject_incomplete, errors named by field."""
        return Decision.model_construct(
            notification_id=notification_id or f"invalid:{source}",
            revision=revision or 1,
            metering_point_id=None,
            job_type=None,
            outcome=Outcome.REJECT_INCOMPLETE,
            reasons=[f"invalid {e}" for e in errors],
            checks=[
                CheckResult.model_construct(
                    rule_id="DATA.VALID",
                    name="Notification passes field validation",
                    status=CheckStatus.FAIL,
                    value=float(len(errors)),
                    limit=0.0,
                    limit_kind=LimitKind.MAX,
                    margin=-float(len(errors)),
                    unit="invalid fields",
                    margin_scale=None,
                    limit_key=None,
                    assumptions=[],
                    detail="; ".join(errors),
                )
            ],
            score=None,
            policy_id=self.policy.id,
            policy_version=self.policy.version,
            policy_hash=self.policy.hash,
            grid_model_version=self.region.version,
            network_id=None,
            bus=None,
            assumptions=[],
            input_hash=None,
            engine_version=__version__,
            decided_at=self.clock(),
        )

    # ------------------------------------------------------------------ pass 1: per notification
    def _prepare(self, n: Notification) -> _Prep:
        p = _Prep(notification=n)
        p.missing = missing_fields(n, self.policy)
        return p

    def _locate(self, preps: list[_Prep]) -> None:
        rows = self.region.locate([p.notification.metering_point_id for p in preps])
        customers = self._cust
        arrays = self.region.arrays
        for p, row in zip(preps, rows):
            if row < 0:
                continue
            p.cp_row = int(row)
            p.bus_row = int(customers["bus_row"][row])
            p.network_id = str(customers["network_id"][row])
            p.bus = int(customers["bus"][row])
            grid_tn = bool(arrays.system_tn[p.bus_row])
            notified_tn = p.notification.network_system is NetworkSystem.TN_400
            if grid_tn != notified_tn:
                p.system_mismatch = (
                    f"notification says {p.notification.network_system.value} but network {p.network_id} "
                    f"is {'TN_400' if grid_tn else 'IT_230'}"
                )

    def _appliance_defaults(self, appliance: Appliance) -> tuple[float, float, float, float, list[str]]:
        defaults: dict[str, dict[str, float]] = self.policy.value("appliance_defaults")
        kind_defaults = defaults.get(appliance.kind.value, {})
        used: list[str] = []

        def pick(name: str, fallback: float | None = None) -> float:
            given = getattr(appliance, name)
            if given is not None:
                return float(given)
            if name in kind_defaults:
                used.append(f"policy:appliance_defaults.{appliance.kind.value}.{name}")
                return float(kind_defaults[name])
            if fallback is not None:
                return fallback
            raise KeyError(f"policy appliance_defaults.{appliance.kind.value}.{name} is missing")

        cos_phi = pick("cos_phi")
        ratio = pick("start_current_ratio")
        starts = pick("starts_per_hour")
        if appliance.cos_phi_start is not None:
            cos_start = float(appliance.cos_phi_start)
        elif ratio > 1.0 and "cos_phi_start" in kind_defaults:
            cos_start = float(kind_defaults["cos_phi_start"])
            used.append(f"policy:appliance_defaults.{appliance.kind.value}.cos_phi_start")
        else:
            cos_start = cos_phi
        return cos_phi, ratio, cos_start, starts, used

    def _demand(self, p: _Prep) -> None:
        n = p.notification
        pol = self.policy
        cust = self._cust
        u_ll = float(self.region.arrays.u_ll_v[p.bus_row])
        existing = float(cust["existing_peak_kw"][p.cp_row])
        existing_export = float(cust["existing_export_kw"][p.cp_row])
        record_fuse = cust["main_fuse_a"][p.cp_row]
        coincidence = float(pol.value("customer_coincidence"))
        demand_cos = float(pol.value("demand_cos_phi"))
        supply = _supply_conn(n.network_system, n.supply_phases)

        fuse_after = new_fuse_a(n)
        before = n.main_fuse_before_a if n.main_fuse_after_a is not None else n.meter_fuse_before_a
        if before is None and not (record_fuse is None or (isinstance(record_fuse, float) and math.isnan(record_fuse))):
            before = float(record_fuse)
        p.fuse_changed = fuse_after is not None and (
            before is None or abs(fuse_after - before) > 1e-9 or n.job_type in FUSE_JOBS
        )
        if fuse_after is None and before is not None:
            fuse_after = before
        p.fuse_after = fuse_after

        for i, a in enumerate(n.appliances):
            cos_phi, ratio, cos_start, starts, used = self._appliance_defaults(a)
            conn = conn_code(a.connection.value)
            p.appliances.append(
                _ApplianceRow(
                    owner=-1,
                    index=i,
                    appliance=a,
                    conn=conn,
                    cos_phi=cos_phi,
                    ratio=ratio,
                    cos_start=cos_start,
                    starts_per_hour=starts * a.quantity,
                    defaults_used=used,
                )
            )

        consuming = [r for r in p.appliances if r.appliance.kind.consumes]
        generating = [r for r in p.appliances if r.appliance.kind.generates]
        appl_kw = sum(r.total_kw for r in consuming)

        assumptions = pol.assumption_keys("customer_coincidence")
        p.demand_cos = (n.power_budget.cos_phi if n.power_budget is not None else None) or demand_cos
        if n.power_budget is not None:
            new_demand = n.power_budget.max_demand_kw
            if n.power_budget.cos_phi is None:
                assumptions += pol.assumption_keys("demand_cos_phi")
            if fuse_after is not None:
                cap_kva = fuse_capacity_kva(1.0, u_ll, supply)
                p.budget_current_a = new_demand / p.demand_cos / cap_kva
        else:
            new_demand = existing + appl_kw
            if p.fuse_changed and fuse_after is not None:
                fuse_kw = (
                    float(pol.value("fuse_demand_factor")) * fuse_capacity_kva(fuse_after, u_ll, supply) * demand_cos
                )
                new_demand = max(new_demand, fuse_kw)
                assumptions += pol.assumption_keys("fuse_demand_factor", "demand_cos_phi")
            elif appl_kw > 0:
                assumptions += pol.assumption_keys("demand_cos_phi")
        d_p = coincidence * max(0.0, new_demand - existing)
        p.d_p_kw = d_p
        p.demand_assumptions = assumptions

        # export
        gen_kw = sum(r.total_kw for r in generating)
        if n.power_budget is not None and n.power_budget.max_export_kw > 0:
            p.export_kw = max(0.0, n.power_budget.max_export_kw - existing_export)
        else:
            p.export_kw = gen_kw
        p.export_assumptions = (
            ["grid:low_load_scaling"] if self.region.defaults["low_load_scaling"].is_assumption else []
        )

    # ------------------------------------------------------------------ pass 2: vectorised numbers
    def _compute(self, preps: list[_Prep]) -> dict[str, np.ndarray]:
        pol = self.policy
        arr = self.region.arrays
        n = len(preps)
        loads = _Rows()
        exports = _Rows()
        apps: list[_ApplianceRow] = []
        s1_load = np.zeros(n)
        s1_export = np.zeros(n)
        for k, p in enumerate(preps):
            if not p.evaluable:
                continue
            nt = p.notification
            supply = _supply_conn(nt.network_system, nt.supply_phases)
            # loads: single-phase appliances first, the rest balanced (or on the single-phase supply)
            one_phase = [r for r in p.appliances if r.appliance.kind.consumes and r.conn != CONN_3PH]
            total_1ph = sum(r.total_kw for r in one_phase)
            share = min(1.0, p.d_p_kw / total_1ph) if total_1ph > 0 else 0.0
            for r in one_phase:
                pk = share * r.total_kw
                loads.add(k, r.conn, pk, r.cos_phi)
                s1_load[k] += pk / r.cos_phi
            rest = max(0.0, p.d_p_kw - share * total_1ph)
            if rest > 0:
                loads.add(k, supply, rest, p.demand_cos)
                if supply != CONN_3PH:
                    s1_load[k] += rest / p.demand_cos
            # exports
            gens = [r for r in p.appliances if r.appliance.kind.generates]
            gen_total = sum(r.total_kw for r in gens)
            if p.export_kw > 0 and gen_total > 0:
                gshare = p.export_kw / gen_total
                for r in gens:
                    pk = gshare * r.total_kw
                    conn = r.conn if nt.supply_phases is SupplyPhases.THREE else supply
                    exports.add(k, conn, pk, r.cos_phi)
                    if conn != CONN_3PH:
                        s1_export[k] += pk / r.cos_phi
            for r in p.appliances:
                r.owner = k
                apps.append(r)

        bus_rows = np.array([p.bus_row if p.evaluable else 0 for p in preps], dtype=np.int64)
        r1 = arr.rk1_min[bus_rows]
        x1 = arr.xk1_min[bus_rows]
        r0 = arr.rk0_min[bus_rows]
        x0 = arr.xk0_min[bus_rows]
        u_ll = arr.u_ll_v[bus_rows]
        system = np.where(arr.system_tn[bus_rows], SYSTEM_TN, SYSTEM_IT).astype(np.int64)

        def component_effects(rows: _Rows, q_sign: float) -> tuple[np.ndarray, np.ndarray]:
            owner, conn, p_kw, cos = rows.arrays()
            if owner.size == 0:
                return np.zeros(n), np.zeros(n)
            current = line_current_a(p_kw, cos, conn, u_ll[owner])
            d = voltage_change_percent(
                r1[owner],
                x1[owner],
                r0[owner],
                x0[owner],
                conn,
                u_ll[owner],
                current,
                cos,
                np.full(owner.size, q_sign),
            )
            return np.bincount(owner, current, minlength=n), np.bincount(owner, d, minlength=n)

        d_i_load, d_u_load = component_effects(loads, +1.0)
        d_i_export, d_u_export = component_effects(exports, -1.0)

        # appliances: start and rated steps
        if apps:
            owner = np.array([r.owner for r in apps], dtype=np.int64)
            conn = np.array([r.conn for r in apps], dtype=np.int64)
            p_unit = np.array([r.appliance.rated_kw for r in apps])
            cos = np.array([r.cos_phi for r in apps])
            cos_start = np.array([r.cos_start for r in apps])
            ratio = np.array([r.ratio for r in apps])
            q_sign = np.array([-1.0 if not r.appliance.kind.consumes else 1.0 for r in apps])
            i_rated = line_current_a(p_unit, cos, conn, u_ll[owner])
            args = (r1[owner], x1[owner], r0[owner], x0[owner], conn, u_ll[owner])
            d_start = np.abs(voltage_change_percent(*args, ratio * i_rated, cos_start, q_sign))
            d_rated = np.abs(voltage_change_percent(*args, i_rated, cos, q_sign))
        else:
            owner = np.zeros(0, dtype=np.int64)
            conn = np.zeros(0, dtype=np.int64)
            i_rated = np.zeros(0)
            d_start = d_rated = np.zeros(0)

        flicker = self._flicker(n, apps, owner, d_start, d_rated)
        harmonics = self._harmonics(n, apps, owner, conn, i_rated, r1, x1, r0, x0, u_ll, system)

        # steady-state voltages with constant-power load/export
        v_peak = voltage_after_constant_power(arr.vm_peak_pu[bus_rows], d_u_load)
        v_low = voltage_after_constant_power(arr.vm_low_pu[bus_rows], -d_u_export)

        # unbalance (worst of load and export side); the single-phase current grows as 1/v
        s1 = np.maximum(s1_load, s1_export)
        v_for_unbalance = np.where(s1_load >= s1_export, v_peak, v_low)
        with np.errstate(divide="ignore", invalid="ignore"):
            vuf_new = unbalance_percent(s1, r1, x1, u_ll) / v_for_unbalance

        # fault current with the minimum-case impedances
        ik_min = min_fault_current_a(r1, x1, r0, x0, u_ll, system, float(pol.value("sc_c_min")))

        # thermal
        line_frac = float(pol.value("line_loading_max_percent")) / 100.0
        trafo_frac = float(pol.value("transformer_loading_max_percent")) / 100.0
        peak_line, peak_base, peak_limit = path_bottleneck(
            arr.path_indptr, arr.path_lines, bus_rows, arr.line_i_max_a, arr.line_i_peak_a, line_frac
        )
        low_line, low_base, low_limit = path_bottleneck(
            arr.path_indptr, arr.path_lines, bus_rows, arr.line_i_max_a, arr.line_i_low_a, line_frac
        )
        t_row = arr.trafo_row[bus_rows]
        t_ok = t_row >= 0
        t_safe = np.where(t_ok, t_row, 0)
        trafo_limit = np.where(
            t_ok, trafo_frac * arr.trafo_i_rated_a[t_safe] if arr.trafo_i_rated_a.size else np.nan, np.nan
        )
        trafo_peak = np.where(t_ok, arr.trafo_i_peak_a[t_safe] if arr.trafo_i_peak_a.size else np.nan, np.nan)
        trafo_low = np.where(t_ok, arr.trafo_i_low_a[t_safe] if arr.trafo_i_low_a.size else np.nan, np.nan)
        apps_by_owner: dict[int, list[int]] = {}
        for j, r in enumerate(apps):
            apps_by_owner.setdefault(r.owner, []).append(j)
        return {
            "apps_by_owner": apps_by_owner,
            **flicker,
            **harmonics,
            "d_i_load": d_i_load,
            "d_u_load": d_u_load,
            "d_i_export": d_i_export,
            "d_u_export": d_u_export,
            "apps": apps,
            "d_start": d_start,
            "d_rated": d_rated,
            "vuf_new": vuf_new,
            "v_peak": v_peak,
            "v_low": v_low,
            "s1": s1,
            "ik_min": ik_min,
            "peak_line": peak_line,
            "peak_base": peak_base,
            "peak_limit": peak_limit,
            "low_line": low_line,
            "low_base": low_base,
            "low_limit": low_limit,
            "trafo_limit": trafo_limit,
            "trafo_peak": trafo_peak,
            "trafo_low": trafo_low,
            "bus_rows": bus_rows,
        }

    def _flicker(
        self, n: int, apps: list[_ApplianceRow], owner: np.ndarray, d_start: np.ndarray, d_rated: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Pst/Plt per appliance (analytical method) and per notification (cubic summation)."""
        pol = self.policy
        coeff = float(pol.value("flicker_tf_coeff"))
        expo = float(pol.value("flicker_tf_exponent"))
        alpha = float(pol.value("flicker_summation_alpha"))
        background = float(pol.value("flicker_background_pst"))
        active = float(pol.value("flicker_active_intervals"))
        starts = np.array([r.starts_per_hour for r in apps], dtype=float)
        applies = starts >= float(pol.value("flicker_min_changes_per_hour"))
        if apps:
            per_10min = starts / 6.0
            # every start is a change of d_start (shape factor F) and every stop one of d_rated
            p_start = pst_analytic(
                d_start, per_10min, float(pol.value("flicker_shape_factor")), t_f_coeff=coeff, t_f_exponent=expo
            )
            p_stop = pst_analytic(d_rated, per_10min, 1.0, t_f_coeff=coeff, t_f_exponent=expo)
            pst_app = (p_start**expo + p_stop**expo) ** (1.0 / expo)
        else:
            pst_app = np.zeros(0)
        plt_app = pst_app * np.cbrt(active / 12.0)
        sel = owner[applies]
        has = np.bincount(sel, minlength=n) > 0
        pst_total = (background**alpha + np.bincount(sel, pst_app[applies] ** alpha, minlength=n)) ** (1.0 / alpha)
        plt_total = (background**alpha + np.bincount(sel, plt_app[applies] ** alpha, minlength=n)) ** (1.0 / alpha)
        return {
            "flicker_applies": applies,
            "pst_app": pst_app,
            "has_flicker": has,
            "pst_total": pst_total,
            "plt_total": plt_total,
        }

    def _spectrum(self, appliance: Appliance, orders: list[int]) -> tuple[np.ndarray, str | None]:
        """Harmonic current spectrum of an appliance over ``orders`` and where it came from."""
        if appliance.harmonic_current_percent is not None:
            table = appliance.harmonic_current_percent
            origin = "installer"
        else:
            cls = self.policy.value("harmonic_class_of_kind").get(appliance.kind.value, "default")
            if cls == "none":
                return np.zeros(len(orders)), None
            table = {int(h): v for h, v in self.policy.value("harmonic_spectra")[cls].items()}
            origin = f"policy:{cls}"
        return np.array([float(table.get(h, 0.0)) for h in orders]), origin

    def _harmonics(
        self,
        n: int,
        apps: list[_ApplianceRow],
        owner: np.ndarray,
        conn: np.ndarray,
        i_rated: np.ndarray,
        r1: np.ndarray,
        x1: np.ndarray,
        r0: np.ndarray,
        x0: np.ndarray,
        u_ll: np.ndarray,
        system: np.ndarray,
    ) -> dict[str, object]:
        pol = self.policy
        limits = {int(h): float(v) for h, v in pol.value("harmonic_voltage_max_percent").items()}
        orders = sorted(limits)
        spectra = np.zeros((len(apps), len(orders)))
        origins: list[str | None] = []
        for j, r in enumerate(apps):
            spectra[j], origin = self._spectrum(r.appliance, orders)
            origins.append(origin)
        emitting = spectra.sum(axis=1) > 0 if len(apps) else np.zeros(0, dtype=bool)
        has = np.bincount(owner[emitting], minlength=n) > 0
        background = np.array([float(pol.value("harmonic_background_percent").get(str(h), 0.0)) for h in orders])
        alpha = np.array([pol.harmonic_alpha(h) for h in orders])
        quantity = np.array([r.appliance.quantity for r in apps], dtype=float)
        total, emission = harmonic_voltages_percent(
            np.where(emitting, owner, -1).astype(np.int64),
            n,
            conn,
            i_rated * quantity,
            spectra,
            r1,
            x1,
            r0,
            x0,
            u_ll,
            system,
            np.array(orders, dtype=np.int64),
            alpha,
            np.tile(background, (n, 1)),
            float(pol.value("harmonic_skin_exponent")),
        )
        return {
            "has_harmonics": has,
            "harm_orders": orders,
            "harm_limits": np.array([limits[h] for h in orders]),
            "harm_total": total,
            "harm_emission": emission,
            "harm_background": background,
            "thd": thd_percent(total),
            "harm_origins": origins,
            "harm_emitting": emitting,
        }

    # ------------------------------------------------------------------ pass 3: checks and outcome
    def _decide(self, k: int, p: _Prep, num: dict, now: datetime) -> Decision:
        n = p.notification
        pol = self.policy
        checks: list[CheckResult] = []
        reasons: list[str] = []
        grid_assumptions = self._grid_assumptions.get(p.network_id, []) if p.network_id else []

        def decision(outcome: Outcome) -> Decision:
            evaluated = [c.relative_margin for c in checks if c.status is not CheckStatus.NOT_EVALUATED]
            evaluated = [m for m in evaluated if m is not None]
            grid_used = any(c.rule_id.split(".")[0] in GRID_RULE_GROUPS for c in checks)
            assumptions = sorted(
                {a for c in checks for a in c.assumptions} | set(grid_assumptions if grid_used else [])
            )
            return Decision.model_construct(
                notification_id=n.notification_id,
                revision=n.revision,
                metering_point_id=n.metering_point_id,
                job_type=n.job_type.value,
                outcome=outcome,
                reasons=reasons,
                checks=checks,
                score=min(evaluated) if evaluated else None,
                policy_id=pol.id,
                policy_version=pol.version,
                policy_hash=pol.hash,
                grid_model_version=self.region.version,
                network_id=p.network_id,
                bus=p.bus,
                assumptions=assumptions,
                input_hash=n.input_hash(),
                engine_version=__version__,
                decided_at=now,
            )

        if p.missing:
            checks.append(
                CheckResult.model_construct(
                    rule_id="DATA.COMPLETE",
                    name="Notification carries the data its job type needs",
                    status=CheckStatus.FAIL,
                    value=float(len(p.missing)),
                    limit=0.0,
                    limit_kind=LimitKind.MAX,
                    margin=-float(len(p.missing)),
                    unit="missing fields",
                    margin_scale=None,
                    limit_key=None,
                    assumptions=[],
                    detail="; ".join(p.missing),
                )
            )
            reasons.extend(f"missing {m}" for m in p.missing)
            return decision(Outcome.REJECT_INCOMPLETE)
        if p.bus_row < 0:
            checks.append(
                _not_evaluated(
                    "GRID.LOCATED",
                    "Metering point is in the customer index",
                    f"metering point {n.metering_point_id} is not in the customer index of region {self.region.name}",
                )
            )
            reasons.append(f"GRID.LOCATED: metering point {n.metering_point_id} unknown to the grid model")
            return decision(Outcome.ESCALATE)
        if p.system_mismatch:
            checks.append(_not_evaluated("GRID.SYSTEM", "Network system matches the grid model", p.system_mismatch))
            reasons.append(f"GRID.SYSTEM: {p.system_mismatch}")
            return decision(Outcome.ESCALATE)

        checks.extend(self._protection_checks(k, p, num))
        checks.extend(self._thermal_checks(k, p, num))
        checks.extend(self._voltage_checks(k, p, num))
        checks.extend(self._pq_checks(k, p, num))

        for c in checks:
            if c.status is CheckStatus.FAIL:
                reasons.append(f"{c.rule_id}: {c.name}: {c.value:.4g} {c.unit} against limit {c.limit:.4g} {c.unit}")
            elif c.status is CheckStatus.NOT_EVALUATED:
                reasons.append(f"{c.rule_id}: not evaluated: {c.detail}")
        if reasons:
            return decision(Outcome.ESCALATE)

        if n.job_type.value not in pol.value("auto_approve_job_types"):
            reasons.append(
                f"POLICY.JOB_TYPE: {n.job_type.value} is not auto-approvable (policy auto_approve_job_types)"
            )
        max_fuse = pol.value("auto_approve_max_fuse_a").get(n.network_system.value)
        if p.fuse_after is not None and max_fuse is not None and p.fuse_after > max_fuse:
            reasons.append(
                f"POLICY.MAX_FUSE: main fuse {p.fuse_after:g} A above the auto-approval limit {max_fuse:g} A"
            )
        min_margin = float(pol.value("auto_approve_min_relative_margin"))
        for c in checks:
            rm = c.relative_margin
            if rm is not None and rm < min_margin:
                reasons.append(
                    f"POLICY.MARGIN: {c.rule_id} passes with relative margin {rm:.3f} < {min_margin:g} "
                    "(auto_approve_min_relative_margin)"
                )
        return decision(Outcome.ESCALATE if reasons else Outcome.AUTO_APPROVE)

    def _policy_check(
        self,
        rule_id: str,
        name: str,
        value: float | None,
        limit_key: str,
        kind: LimitKind,
        unit: str,
        *,
        assumptions: Sequence[str] = (),
        detail: str = "",
        margin_scale: float | None = None,
    ) -> CheckResult:
        """A check whose limit is the policy value ``limit_key``; an [R] limit is named as an assumption."""
        return _check(
            rule_id,
            name,
            value,
            float(self.policy.value(limit_key)),
            kind,
            unit,
            limit_key=limit_key,
            assumptions=[*assumptions, *self.policy.assumption_keys(limit_key)],
            detail=detail,
            margin_scale=margin_scale,
        )

    # -- check groups ------------------------------------------------------
    def _protection_checks(self, k: int, p: _Prep, num: dict) -> list[CheckResult]:
        pol = self.policy
        arr = self.region.arrays
        cust = self._cust
        out: list[CheckResult] = []
        fuse = p.fuse_after
        if p.budget_current_a is not None and fuse is not None:
            out.append(
                _check(
                    "LOAD.BUDGET_FUSE",
                    "Power budget current within the main fuse",
                    p.budget_current_a,
                    fuse,
                    LimitKind.MAX,
                    "A",
                    assumptions=p.demand_assumptions,
                    detail=f"budget {p.notification.power_budget.max_demand_kw:g} kW on a {fuse:g} A fuse",
                )
            )
        if not p.fuse_changed or fuse is None:
            return out
        # service cable
        ampacity = cust["service_cable_ampacity_a"][p.cp_row]
        detail = "service cable ampacity from the customer index"
        if ampacity is None or not math.isfinite(ampacity):
            line_row = arr.service_line_row[p.bus_row]
            if line_row >= 0:
                ampacity = float(arr.line_i_max_a[line_row])
                detail = f"service line {int(arr.line_ids[line_row])} of the grid model ({ampacity:.0f} A rated)"
            else:
                ampacity = float("nan")
                detail = "no service line between the bus and the transformer and none in the customer index"
        out.append(
            _check(
                "PROT.SERVICE_CABLE",
                "Service cable ampacity at least the new main fuse",
                fuse,
                ampacity,
                LimitKind.MAX,
                "A",
                detail=detail,
            )
        )
        # selectivity
        upstream = cust["upstream_fuse_a"][p.cp_row]
        sel_assumptions: list[str] = []
        if upstream is not None and math.isfinite(upstream):
            detail = f"upstream fuse {upstream:g} A from the customer index"
        else:
            feeder_row = arr.feeder_line_row[p.bus_row]
            upstream = float("nan")
            detail = "no upstream fuse in the customer index and no feeder cable in the grid model"
            if feeder_row >= 0:
                rated = float(arr.line_i_max_a[feeder_row])
                sizes = [s for s in pol.value("standard_fuse_sizes_a") if s <= rated + 1e-9]
                if sizes:
                    upstream = float(max(sizes))
                    detail = (
                        f"upstream fuse {upstream:g} A assumed: largest standard size within the "
                        f"{rated:.0f} A rating of feeder cable {int(arr.line_ids[feeder_row])}"
                    )
                    sel_assumptions.append("grid:upstream_fuse_from_feeder_cable")
        out.append(
            self._policy_check(
                "PROT.SELECTIVITY",
                "Upstream fuse discriminates with the new main fuse",
                upstream / fuse,
                "selectivity_ratio_min",
                LimitKind.MIN,
                "ratio",
                assumptions=sel_assumptions,
                detail=detail,
            )
        )
        # minimum fault current
        i5 = pol.fuse_melting_5s(fuse)
        ik = float(num["ik_min"][k])
        kind = "line-to-neutral (TN)" if arr.system_tn[p.bus_row] else "line-to-line (IT)"
        out.append(
            _check(
                "PROT.FAULT_CURRENT",
                "Minimum fault current melts the new main fuse within 5 s",
                ik,
                float("nan") if i5 is None else i5,
                LimitKind.MIN,
                "A",
                limit_key="fuse_melting_5s_a",
                assumptions=pol.assumption_keys("sc_c_min", "fuse_melting_5s_a"),
                detail=(
                    f"minimum {kind} fault current at bus {p.bus}"
                    if i5 is not None
                    else f"no 5-s melting current tabulated for a {fuse:g} A fuse (policy fuse_melting_5s_a)"
                ),
            )
        )
        return out

    def _thermal_checks(self, k: int, p: _Prep, num: dict) -> list[CheckResult]:
        arr = self.region.arrays
        out: list[CheckResult] = []
        meshed = bool(arr.meshed[p.bus_row])
        cases = []
        if num["d_i_load"][k] > 0:
            cases.append(("PEAK", "at peak load", num["d_i_load"][k], "peak", p.demand_assumptions))
        if num["d_i_export"][k] > 0:
            cases.append(("EXPORT", "at low load with full export", num["d_i_export"][k], "low", p.export_assumptions))
        for suffix, label, d_i, case, assumptions in cases:
            if meshed:
                out.append(
                    _not_evaluated(
                        f"THERMAL.LINE_{suffix}",
                        f"Cable loading {label}",
                        f"bus {p.bus} of network {p.network_id} is fed through a mesh: "
                        "the path-based thermal check does not apply",
                    )
                )
                continue
            line_row = int(num[f"{case}_line"][k])
            base = float(num[f"{case}_base"][k])
            limit = float(num[f"{case}_limit"][k])
            detail = (
                f"binding line {int(arr.line_ids[line_row])}: base {base:.1f} A + added {d_i:.1f} A"
                if line_row >= 0
                else "the bus is the transformer busbar: no line on the path"
            )
            if line_row >= 0:
                out.append(
                    _check(
                        f"THERMAL.LINE_{suffix}",
                        f"Cable loading {label}",
                        base + d_i,
                        limit,
                        LimitKind.MAX,
                        "A",
                        limit_key="line_loading_max_percent",
                        assumptions=assumptions,
                        detail=detail,
                    )
                )
            t_base = float(num[f"trafo_{'peak' if case == 'peak' else 'low'}"][k])
            t_limit = float(num["trafo_limit"][k])
            out.append(
                _check(
                    f"THERMAL.TRAFO_{suffix}",
                    f"Transformer loading {label}",
                    t_base + d_i,
                    t_limit,
                    LimitKind.MAX,
                    "A",
                    limit_key="transformer_loading_max_percent",
                    assumptions=assumptions,
                    detail=f"LV-side current: base {t_base:.1f} A + added {d_i:.1f} A",
                )
            )
        return out

    def _voltage_checks(self, k: int, p: _Prep, num: dict) -> list[CheckResult]:
        pol = self.policy
        arr = self.region.arrays
        out: list[CheckResult] = []
        if num["d_i_load"][k] > 0:
            base = float(arr.vm_peak_pu[p.bus_row])
            d = float(num["d_u_load"][k])
            out.append(
                self._policy_check(
                    "VOLT.PEAK_MIN",
                    "Voltage at peak load with the added demand",
                    float(num["v_peak"][k]),
                    "voltage_min_pu",
                    LimitKind.MIN,
                    "pu",
                    margin_scale=abs(1.0 - float(pol.value("voltage_min_pu"))),
                    assumptions=p.demand_assumptions,
                    detail=(
                        f"base case {base:.4f} pu, added drop {d:.2f} % at nominal-voltage current "
                        "(constant power, minimum short-circuit impedance case)"
                    ),
                )
            )
        if num["d_i_export"][k] > 0:
            base = float(arr.vm_low_pu[p.bus_row])
            d = float(num["d_u_export"][k])
            out.append(
                self._policy_check(
                    "VOLT.LOW_MAX",
                    "Voltage at low load with the added export",
                    float(num["v_low"][k]),
                    "voltage_max_pu",
                    LimitKind.MAX,
                    "pu",
                    margin_scale=abs(float(pol.value("voltage_max_pu")) - 1.0),
                    assumptions=p.export_assumptions,
                    detail=(
                        f"low-load case {base:.4f} pu, added rise {d:.2f} % at nominal-voltage current (constant power)"
                    ),
                )
            )
        return out

    def _pq_checks(self, k: int, p: _Prep, num: dict) -> list[CheckResult]:
        pol = self.policy
        arr = self.region.arrays
        out: list[CheckResult] = []
        rare_rate = float(pol.value("rvc_rare_rate_per_min"))
        hours = float(pol.value("operating_hours_per_day"))
        flicker_parts: list[str] = []
        flicker_assumptions: list[str] = []
        harmonic_parts: list[str] = []
        harmonic_assumptions: list[str] = []
        max_events = float(pol.value("rvc_max_events_per_day"))
        apps = num["apps"]
        for j in num["apps_by_owner"].get(k, ()):
            r = apps[j]
            a = r.appliance
            label = f"{a.kind.value}#{r.index}"
            rate = r.starts_per_hour / 60.0
            if rate < rare_rate:
                key = "rvc_rare_max_percent"
            else:
                key = "rvc_frequent_max_percent"
            out.append(
                self._policy_check(
                    "PQ.RVC",
                    f"Rapid voltage change when {label} starts",
                    float(num["d_start"][j]),
                    key,
                    LimitKind.MAX,
                    "%",
                    assumptions=r.defaults_used,
                    detail=(
                        f"I_start = {r.ratio:g} x I_rated at cos phi {r.cos_start:g}, "
                        f"{r.starts_per_hour:g} starts/h ({rate:.3g}/min)"
                    ),
                )
            )
            events = r.starts_per_hour * hours
            if events > max_events:
                out.append(
                    self._policy_check(
                        "PQ.RVC_STATIONARY",
                        f"Stationary voltage step when {label} switches",
                        float(num["d_rated"][j]),
                        "rvc_stationary_max_percent",
                        LimitKind.MAX,
                        "%",
                        assumptions=r.defaults_used + pol.assumption_keys("rvc_max_events_per_day"),
                        detail=f"{events:g} switching events per day > {max_events:g}",
                    )
                )
            if num["flicker_applies"][j]:
                flicker_parts.append(f"{label} Pst {num['pst_app'][j]:.3f} ({r.starts_per_hour:g} starts/h)")
                flicker_assumptions.extend(r.defaults_used)
            if num["harm_emitting"][j]:
                harmonic_parts.append(f"{label} spectrum {num['harm_origins'][j]}")
                if str(num["harm_origins"][j]).startswith("policy:"):
                    harmonic_assumptions.extend(pol.assumption_keys("harmonic_spectra"))
                harmonic_assumptions.extend(r.defaults_used)
        if num["has_flicker"][k]:
            out.extend(self._flicker_checks(k, num, flicker_parts, flicker_assumptions))
        if num["has_harmonics"][k]:
            out.extend(self._harmonic_checks(k, num, harmonic_parts, harmonic_assumptions))
        s1 = float(num["s1"][k])
        if s1 > 0:
            base = float(arr.unbalance_base_percent[p.bus_row])
            assumptions: list[str] = []
            if not math.isfinite(base):
                base = float(pol.value("background_unbalance_percent"))
                assumptions += pol.assumption_keys("background_unbalance_percent")
                origin = "assumed background"
            else:
                origin = "base-case load flow"
            vuf = float(num["vuf_new"][k])
            out.append(
                self._policy_check(
                    "PQ.UNBALANCE",
                    "Voltage unbalance with the single-phase load/export",
                    base + vuf,
                    "unbalance_max_percent",
                    LimitKind.MAX,
                    "%",
                    assumptions=assumptions + p.demand_assumptions,
                    detail=f"{origin} {base:.2f} % + {vuf:.2f} % from {s1:.1f} kVA single-phase (S/Sk, worst phase)",
                )
            )
        return out

    def _flicker_checks(self, k: int, num: dict, parts: list[str], assumptions: list[str]) -> list[CheckResult]:
        pol = self.policy
        common = pol.assumption_keys("flicker_tf_coeff", "flicker_tf_exponent", "flicker_background_pst")
        background = float(pol.value("flicker_background_pst"))
        detail = f"background Pst {background:g} + " + "; ".join(parts) + " (cubic summation)"
        return [
            self._policy_check(
                "PQ.FLICKER_PST",
                "Short-term flicker Pst with the appliance starts",
                float(num["pst_total"][k]),
                "flicker_pst_max",
                LimitKind.MAX,
                "-",
                assumptions=assumptions + common,
                detail=detail,
            ),
            self._policy_check(
                "PQ.FLICKER_PLT",
                "Long-term flicker Plt with the appliances running for 2 h",
                float(num["plt_total"][k]),
                "flicker_plt_max",
                LimitKind.MAX,
                "-",
                assumptions=assumptions + common,
                detail=f"{int(pol.value('flicker_active_intervals'))} of 12 10-min intervals active",
            ),
        ]

    def _harmonic_checks(self, k: int, num: dict, parts: list[str], assumptions: list[str]) -> list[CheckResult]:
        pol = self.policy
        common = pol.assumption_keys(
            "harmonic_summation_alpha", "harmonic_skin_exponent", "harmonic_background_percent"
        )
        total = num["harm_total"][k]
        limits = num["harm_limits"]
        orders = num["harm_orders"]
        worst = int(np.argmax(total / limits))
        h = orders[worst]
        return [
            self._policy_check(
                "PQ.THD",
                "Total harmonic distortion with the appliances",
                float(num["thd"][k]),
                "thd_max_percent",
                LimitKind.MAX,
                "%",
                assumptions=assumptions + common,
                detail="orders " + f"{orders[0]}-{orders[-1]}; " + "; ".join(parts),
            ),
            _check(
                "PQ.HARMONIC",
                f"Harmonic voltage of order {h} (closest to its limit)",
                float(total[worst]),
                float(limits[worst]),
                LimitKind.MAX,
                "%",
                limit_key="harmonic_voltage_max_percent",
                assumptions=assumptions + common,
                detail=(
                    f"order {h}: background {num['harm_background'][worst]:.2f} % + emission "
                    f"{num['harm_emission'][k, worst]:.2f} % (IEC 61000-3-6 summation, alpha {pol.harmonic_alpha(h):g})"
                ),
            ),
        ]
