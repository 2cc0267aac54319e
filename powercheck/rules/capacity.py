"""Capacity map: for every customer point of a region, how large a standard job may be and which check binds.

For each point the map asks the inverse question of :mod:`powercheck.rules.inverse` for a set of
probe jobs -- an EV charger single-phase and three-phase, a three-phase PV inverter, a heat
pump and a direct-on-line motor with the policy's appliance defaults, on a three-phase supply,
the fuse on record (or the one an approved request sets) unchanged and no power budget -- and
for the largest main fuse the point takes.

The probe's demand case is built as arrays for all points at once, by the same rules as
:func:`powercheck.rules.demand.demand_case` and :func:`powercheck.rules.accounting.account`
give for such a notification (``tests/rules/test_capacity.py`` checks the map against the
engine's inverse answers for the probe notifications at every demo point, with and without a
ledger):

* load: the appliance at ``customer_coincidence`` x ``P0`` -- single-phase on its own connection
  (L-N in TN, L-L in IT), three-phase balanced at ``demand_cos_phi``;
* export (PV): ``P0`` three-phase at the inverter's cos phi;
* accounting: the existing peak plus the ledger's active requests at the point (balanced, at
  ``demand_cos_phi``), plus ``appliance_diversity`` x ``P0`` at the appliance's cos phi; the export
  at cos phi 1; a start adds ``(ratio - 1) I_rated``.

Everything the job adds is linear in ``P0``, so the largest size is ``scale x P0`` with the
scale of :func:`powercheck.rules.inverse.rule_scales` -- one evaluation per probe for the whole
region, no size search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.models import ApplianceKind
from powercheck.protection_device import device_from_code
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3
from powercheck.quality.impedance import min_fault_current_a
from powercheck.quality.voltage import line_current_a
from powercheck.rules.context import GridView
from powercheck.rules.evaluate import (
    ApplianceTable,
    Injections,
    connection_point,
    evaluate_arrays,
    harmonic_orders,
    policy_spectrum,
)
from powercheck.rules.fuse_range import fuse_inputs_of_points, ik_max_of_buses, main_fuse_range, upstream_from_feeder
from powercheck.rules.inverse import FuseInputs, rule_scales
from powercheck.rules.policy import Policy, PolicyKey

P0_KW = 1.0
"""Size of the probe appliance the scales refer to [kW] (the answers do not depend on it)."""


@dataclass(frozen=True)
class Probe:
    """A standard job the map sizes at every point."""

    name: str
    """Column prefix in the map."""
    kind: ApplianceKind
    single_phase: bool
    """Single-phase appliance (L-N in TN, L-L in IT); else three-phase."""


PROBES: tuple[Probe, ...] = (
    Probe("ev_1ph", ApplianceKind.EV_CHARGER, True),
    Probe("ev_3ph", ApplianceKind.EV_CHARGER, False),
    Probe("pv", ApplianceKind.PV_INVERTER, False),
    Probe("heat_pump", ApplianceKind.HEAT_PUMP, False),
    Probe("motor", ApplianceKind.MOTOR, False),
)


def _phase_current(p_kw, cos_phi, conn, u_ll_v) -> np.ndarray:
    """Current in each loaded conductor [A] (as :func:`powercheck.rules.accounting.phase_current_a`)."""
    s_va = 1000.0 * np.asarray(p_kw, dtype=float) / cos_phi
    ref = np.where(conn == CONN_3PH, SQRT3 * u_ll_v, np.where(conn == CONN_LL, u_ll_v, u_ll_v / SQRT3))
    return s_va / ref


@dataclass(frozen=True)
class Site:
    """Per customer point what the map needs besides the grid (ledger applied)."""

    rows: np.ndarray
    """Customer-index rows."""
    bus_row: np.ndarray
    u_ll_v: np.ndarray
    system_tn: np.ndarray
    existing_kw: np.ndarray
    """Existing peak plus the load the ledger's active requests at the point reserve [kW]."""
    existing_export_kw: np.ndarray
    fuse_a: np.ndarray
    """Main fuse before a job: an approved request's new fuse, else the one on record [A] (NaN: unknown)."""
    kv_a: np.ndarray
    """KV before a job: an approved kv_change's new KV, else the one on record [A] (NaN: unknown)."""
    evaluable: np.ndarray
    """The point's bus has finite grid data (Thevenin impedance, base-case voltages) and no grid-data problem."""
    problem: list[str | None]
    """Why the grid model cannot be computed at the point's bus (``GridRegion.bus_problem``); None: it can."""


def site_of(grid: GridView, state: CapacityState | None = None, rows: np.ndarray | None = None) -> Site:
    """The customer points ``rows`` (default: all) with the ledger's requests at them applied."""
    cust = grid.customers
    arr = grid.arrays
    rows = np.arange(cust.bus_row.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    bus_row = cust.bus_row[rows]
    existing = cust.existing_peak_kw[rows].copy()
    fuse = cust.main_fuse_a[rows].copy()
    kv = cust.kv_fuse_a[rows].copy()
    if state is not None and state.active_by_mp:
        mp_ids = grid.region.customers["metering_point_id"].to_numpy(dtype=object)[rows]
        for k, mp in enumerate(mp_ids):
            if mp not in state.active_by_mp:
                continue
            for other in state.active_at(mp):
                existing[k] += sum(c.p_kw for c in other.reservation.load)
                if other.fuse_after_a is not None:
                    fuse[k] = other.fuse_after_a
                if other.kv_after_a is not None:
                    kv[k] = other.kv_after_a
    finite = (
        np.isfinite(arr.rk1_min[bus_row])
        & np.isfinite(arr.xk1_min[bus_row])
        & np.isfinite(arr.vm_peak_pu[bus_row])
        & np.isfinite(arr.vm_low_pu[bus_row])
        & (arr.bus_problem[bus_row] == 0)
    )
    return Site(
        rows=rows,
        bus_row=bus_row,
        u_ll_v=arr.u_ll_v[bus_row],
        system_tn=arr.system_tn[bus_row].astype(bool),
        existing_kw=existing,
        existing_export_kw=cust.existing_export_kw[rows],
        fuse_a=fuse,
        kv_a=kv,
        evaluable=finite,
        problem=[grid.region.bus_problem(int(b)) for b in bus_row],
    )


@dataclass(frozen=True)
class ProbeInputs:
    """The probe job at every point as the evaluation and the inverse answers take it."""

    injections: Injections
    table: ApplianceTable
    fuses: FuseInputs


def _defaults(kind: ApplianceKind, policy: Policy) -> dict[str, float]:
    d = dict(policy.value(PolicyKey.APPLIANCE_DEFAULTS).get(kind.value, {}))
    missing = [k for k in ("cos_phi", "start_current_ratio", "starts_per_hour") if k not in d]
    if missing:
        raise KeyError(f"policy appliance_defaults.{kind.value} lacks {', '.join(missing)}")
    return d


def probe_inputs(probe: Probe, site: Site, policy: Policy, p0_kw: float = P0_KW) -> ProbeInputs:
    """Arrays of the probe job at every point (see the module docstring for the demand model)."""
    n = site.rows.shape[0]
    idx = np.arange(n, dtype=np.int64)
    u = site.u_ll_v
    d = _defaults(probe.kind, policy)
    cos = float(d["cos_phi"])
    ratio = float(d["start_current_ratio"])
    cos_start = float(d["cos_phi_start"]) if ratio > 1.0 and "cos_phi_start" in d else cos
    duration = float(d.get("start_duration_s", 0.0)) if ratio > 1.0 else None
    if probe.single_phase:
        conn = np.where(site.system_tn, CONN_LN, CONN_LL).astype(np.int64)
    else:
        conn = np.full(n, CONN_3PH, dtype=np.int64)
    coincidence = policy.number(PolicyKey.CUSTOMER_COINCIDENCE)
    demand_cos = policy.number(PolicyKey.DEMAND_COS_PHI)
    diversity = float(policy.value(PolicyKey.APPLIANCE_DIVERSITY).get(probe.kind.value, 1.0))
    consumes = probe.kind.consumes

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    load, export = empty, empty
    s1_load = np.zeros(n)
    s1_export = np.zeros(n)
    if consumes:
        d_p = coincidence * p0_kw
        if probe.single_phase:
            share = min(1.0, d_p / p0_kw)
            rest = max(0.0, d_p - share * p0_kw)
            owner, cconn = [idx], [conn]
            kw, ccos = [np.full(n, share * p0_kw)], [np.full(n, cos)]
            s1_load += share * p0_kw / cos
            if rest > 0:  # a coincidence above 1 puts the rest on the (three-phase) supply
                owner.append(idx)
                cconn.append(np.full(n, CONN_3PH, np.int64))
                kw.append(np.full(n, rest))
                ccos.append(np.full(n, demand_cos))
            order = np.argsort(np.concatenate(owner), kind="stable")
            load = tuple(np.concatenate(x)[order] for x in (owner, cconn, kw, ccos))
        elif d_p > 0:
            load = (idx, np.full(n, CONN_3PH, np.int64), np.full(n, d_p), np.full(n, demand_cos))
    else:
        export = (idx, conn, np.full(n, p0_kw), np.full(n, cos))
        s1_export = np.where(conn != CONN_3PH, p0_kw / cos, 0.0)

    orders = harmonic_orders(policy)
    spectrum, origin = policy_spectrum(probe.kind.value, policy, orders)
    starts = float(d["starts_per_hour"])
    table = ApplianceTable(
        owner=idx,
        indptr=np.arange(n + 1, dtype=np.int64),
        conn=conn,
        unit_kw=np.full(n, p0_kw),
        quantity=np.ones(n),
        cos_phi=np.full(n, cos),
        cos_phi_start=np.full(n, cos_start),
        start_ratio=np.full(n, ratio),
        q_sign=np.full(n, 1.0 if consumes else -1.0),
        starts_per_hour=np.full(n, starts),
        spectra=np.tile(spectrum, (n, 1)),
        origin=(origin,) * n,
        kind=(probe.kind.value,) * n,
    )
    inj = Injections(bus_row=site.bus_row, load=load, export=export, s1_load_kva=s1_load, s1_export_kva=s1_export)

    # power accounting on the three-phase supply (rows without a known fuse: no fuse limit, as the engine)
    known = np.isfinite(site.fuse_a)
    nan = np.full(n, np.nan)
    demand0 = _phase_current(site.existing_kw, demand_cos, CONN_3PH, u)
    demand_per = _phase_current(diversity * p0_kw, cos, conn, u) if consumes else np.zeros(n)
    ex = site.existing_export_kw
    export0 = np.where(ex > 0, _phase_current(ex, 1.0, CONN_3PH, u), 0.0)
    export_per = np.zeros(n) if consumes else _phase_current(ex + p0_kw, 1.0, CONN_3PH, u) - export0
    carries, start_per = nan, nan
    if consumes and ratio > 1.0:
        by_fuse = {f: policy.fuse_no_melt(float(f), duration or 0.0) for f in np.unique(site.fuse_a[known])}
        carries = np.array([by_fuse.get(f) if ok else None for f, ok in zip(site.fuse_a, known, strict=True)],
                           dtype=float)  # fmt: skip
        start_per = np.where(np.isfinite(carries), demand_per + (ratio - 1.0) * _phase_current(p0_kw, cos, conn, u),
                             np.nan)  # fmt: skip
    fuses = FuseInputs(
        fuse_a=np.where(known, site.fuse_a, np.nan),
        meter_fuse_a=nan,
        demand0_a=np.where(known, demand0, np.nan),
        demand_per_scale_a=np.where(known, demand_per, np.nan),
        export0_a=np.where(known, export0, np.nan),
        export_per_scale_a=np.where(known, export_per, np.nan),
        start_carries_a=carries,
        start_per_scale_a=start_per,
    )
    return ProbeInputs(inj, table, fuses)


@dataclass(frozen=True)
class ProbeResult:
    """The largest size of one probe at every point."""

    probe: Probe
    largest_kw: np.ndarray
    """Largest rated power every check passes with [kW] (inf: no grid check limits it; NaN: not evaluated)."""
    binding: list[str | None]
    """Rule id of the binding check (None: no limit, or not evaluated)."""
    start_current_a: np.ndarray
    """Start current of the largest size [A] (NaN without a start current or without a limit)."""


def size_probe(probe: Probe, site: Site, grid: GridView, policy: Policy, state: CapacityState | None = None,
               p0_kw: float = P0_KW) -> ProbeResult:  # fmt: skip
    """One evaluation of the probe at every point, then the closed-form scale limits.

    Points without usable grid data are evaluated at a usable bus in their place (the kernels take
    no NaN) and answered NaN / None.
    """
    n = site.bus_row.shape[0]
    if not site.evaluable.any():
        return ProbeResult(probe, np.full(n, np.nan), [None] * n, np.full(n, np.nan))
    if not site.evaluable.all():
        stand_in = int(site.bus_row[np.flatnonzero(site.evaluable)[0]])
        arr = grid.arrays
        bus_row = np.where(site.evaluable, site.bus_row, stand_in)
        site = replace(site, bus_row=bus_row, u_ll_v=arr.u_ll_v[bus_row], system_tn=arr.system_tn[bus_row].astype(bool))
    inputs = probe_inputs(probe, site, policy, p0_kw)
    ev = evaluate_arrays(inputs.injections, inputs.table, grid, policy, state, network_worst=False)
    valid = site.evaluable.copy()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scales, rules = rule_scales(inputs.fuses, valid, ev, grid, policy, state).binding()
        largest = np.where(valid, scales * p0_kw, np.nan)
    binding = [r if ok else None for r, ok in zip(rules, valid, strict=True)]
    d = _defaults(probe.kind, policy)
    ratio = float(d["start_current_ratio"])
    start = np.full(largest.shape, np.nan)
    if ratio > 1.0 and probe.kind.consumes:
        finite = np.isfinite(largest)
        kw = np.where(finite, largest, 0.0)
        i_rated = line_current_a(kw, np.full(kw.shape, float(d["cos_phi"])), inputs.table.conn, site.u_ll_v)
        start = np.where(finite, ratio * i_rated, np.nan)
    return ProbeResult(probe, largest, binding, start)


@dataclass(frozen=True)
class CapacityMap:
    """The capacity map of a region: one row per customer point."""

    site: Site
    probes: tuple[ProbeResult, ...]
    main_fuse_max_a: np.ndarray
    main_fuse_binding: list[str | None]
    ik_min_a: np.ndarray

    def columns(self, grid: GridView) -> dict[str, object]:
        """Columns of the map (see :data:`powercheck.io.CAPACITY_SCHEMA`)."""
        arr = grid.arrays
        rows = self.site.rows
        cust = grid.region.customers
        out: dict[str, object] = {
            "metering_point_id": cust["metering_point_id"].to_numpy(dtype=object)[rows].astype(str).tolist(),
            "network_id": grid.customers.network_id[rows].astype(str).tolist(),
            "bus": grid.customers.bus[rows],
            "distance_km": arr.path_length_km[self.site.bus_row],
            "system": np.where(self.site.system_tn, "TN_400", "IT_230").tolist(),
            "main_fuse_a": self.site.fuse_a,
            "existing_peak_kw": self.site.existing_kw,
            "evaluated": self.site.evaluable,
            "grid_problem": self.site.problem,
            "ik_min_a": self.ik_min_a,
        }
        for res in self.probes:
            out[f"{res.probe.name}_kw_max"] = res.largest_kw
            out[f"{res.probe.name}_binding"] = res.binding
            if np.isfinite(res.start_current_a).any():
                out[f"{res.probe.name}_start_a"] = res.start_current_a
        out["main_fuse_max_a"] = self.main_fuse_max_a
        out["main_fuse_binding"] = self.main_fuse_binding
        return out


def capacity_map(
    grid: GridView,
    policy: Policy,
    state: CapacityState | None = None,
    *,
    rows: np.ndarray | None = None,
    probes: Sequence[Probe] = PROBES,
) -> CapacityMap:
    """The capacity map of the customer points ``rows`` (default: all), with the ledger's reservations."""
    site = site_of(grid, state, rows)
    results = tuple(size_probe(p, site, grid, policy, state) for p in probes)
    point = connection_point(site.bus_row, grid)
    ik = min_fault_current_a(point.r1_ohm, point.x1_ohm, point.r0_ohm, point.x0_ohm, point.u_ll_v, point.system,
                             policy.number(PolicyKey.SC_C_MIN))  # fmt: skip
    amp, up, rated = fuse_inputs_of_points(grid, site.rows)
    largest, rule = main_fuses_of_points(grid, policy, site.rows, site.bus_row, amp,
                                         upstream_from_feeder(up, rated, policy), ik, kv_a=site.kv_a)  # fmt: skip
    largest = np.where(site.evaluable, largest, np.nan)
    rule = [r if ok else None for r, ok in zip(rule, site.evaluable, strict=True)]
    return CapacityMap(site, results, largest, rule, ik)


def main_fuses_of_points(
    grid: GridView,
    policy: Policy,
    rows: np.ndarray,
    bus_rows: np.ndarray,
    amp: np.ndarray,
    up: np.ndarray,
    ik: np.ndarray,
    kv_a: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """The largest main protection of the kind each point has on record (gG fuse, MCB, adjustable breaker),
    with its KV (``kv_a``, default the customer index's), as the engine's inverse answer gives it
    (:func:`.fuse_range.main_fuse_range` per device kind)."""
    cust = grid.customers
    codes = cust.main_device[rows]
    isd, ii = cust.main_isd_multiple[rows], cust.main_ii_multiple[rows]
    kv = cust.kv_fuse_a[rows] if kv_a is None else np.asarray(kv_a, dtype=float)
    ikx = ik_max_of_buses(grid, policy, bus_rows)
    kinds = [(c, _setting(a), _setting(b)) for c, a, b in zip(codes, isd, ii, strict=True)]
    largest = np.full(len(rows), np.nan)
    rule: list[str | None] = [None] * len(rows)
    groups: dict[tuple, list[int]] = {}
    for i, kind in enumerate(kinds):
        groups.setdefault(kind, []).append(i)
    for (code, a, b), members in groups.items():
        idx = np.asarray(members, dtype=np.int64)
        device = None if code is None else device_from_code(code, isd_multiple=a, ii_multiple=b)
        size, why = main_fuse_range(amp[idx], up[idx], ik[idx], policy, device=device, kv_a=kv[idx], ik_max_a=ikx[idx])
        largest[idx] = size
        for j, r in zip(idx, why, strict=True):
            rule[j] = r
    return largest, rule


def _setting(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def not_limited(value: float) -> bool:
    """True for the map's "no grid check limits it" value."""
    return math.isinf(value) and value > 0
