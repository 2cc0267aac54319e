"""Stage 2: demand cases -> :class:`Evaluation` (the kernels of :mod:`powercheck.quality` over a batch).

Every number the checks compare with a limit is computed here, for all notifications of
a batch at once, and kept in typed, frozen arrays whose names carry their unit. Rows of
notifications that are not evaluable (incomplete, unknown point, wrong system) hold
values computed at a dummy bus; the checks never read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.quality.codes import CONN_3PH, CONN_LN, SQRT3, SYSTEM_IT, SYSTEM_TN
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.harmonics import harmonic_voltages_percent, thd_percent
from powercheck.quality.impedance import min_fault_current_a
from powercheck.quality.superposition import worst_buses
from powercheck.quality.thermal import path_headroom
from powercheck.quality.unbalance import unbalance_percent
from powercheck.quality.voltage import line_current_a, voltage_after_constant_power, voltage_change_percent
from powercheck.rules.context import GridView
from powercheck.rules.demand import ApplianceCase, Component, DemandCase
from powercheck.rules.policy import Policy, PolicyKey


@dataclass(frozen=True)
class ConnectionPoint:
    """Per notification: the bus and its minimum-case Thevenin impedances."""

    bus_row: np.ndarray
    """Global bus row (0 for rows that are not evaluable)."""
    r1_ohm: np.ndarray
    x1_ohm: np.ndarray
    r0_ohm: np.ndarray
    """Zero sequence (NaN in IT networks)."""
    x0_ohm: np.ndarray
    u_ll_v: np.ndarray
    """Nominal line-to-line voltage [V]."""
    system: np.ndarray
    """``SYSTEM_TN`` / ``SYSTEM_IT`` codes."""


@dataclass(frozen=True)
class AddedPower:
    """Per notification: the added load (or export) as current and voltage change."""

    current_a: np.ndarray
    """Sum of the components' line currents at nominal voltage [A]."""
    voltage_change_percent: np.ndarray
    """Sum of the components' voltage changes at nominal-voltage current [% of the reference voltage]."""
    positive_sequence_change_percent: np.ndarray
    """Sum of the components' positive-sequence voltage changes [% of the phase voltage]."""
    component_indptr: np.ndarray
    """Components of notification k: ``component_indptr[k]:component_indptr[k+1]`` of the arrays below."""
    component_conn: np.ndarray
    component_current_a: np.ndarray
    """Line current of each component at nominal voltage [A]."""
    component_cos_phi: np.ndarray


@dataclass(frozen=True)
class NetworkWorst:
    """Per notification: the worst bus of its network once its load (or export) is added.

    The load's drop (export's rise) reaches every bus through the impedance its path shares with
    the notification's (:mod:`powercheck.quality.superposition`); the connection point itself
    keeps its constant-power solution. Bus rows are global (the connection point's own row when
    it is the worst).
    """

    v_peak_pu: np.ndarray
    """Lowest voltage in the network at peak [pu]."""
    v_peak_bus_row: np.ndarray
    v_low_pu: np.ndarray
    """Highest voltage in the network at low load [pu]."""
    v_low_bus_row: np.ndarray
    unbalance_peak_percent: np.ndarray
    """Highest unbalance in the network at peak, background/base + reserved + added [%]."""
    unbalance_peak_bus_row: np.ndarray
    unbalance_low_percent: np.ndarray
    unbalance_low_bus_row: np.ndarray


@dataclass(frozen=True)
class Reserved:
    """Per notification: what the ledger's active requests add at its bus (zeros without a ledger)."""

    drop_percent: np.ndarray
    """Voltage drop of the reserved load at peak [%]."""
    rise_percent: np.ndarray
    """Voltage rise of the reserved export at low load [%]."""
    unbalance_peak_percent: np.ndarray
    """Unbalance of the reserved single-phase load [%]."""
    unbalance_low_percent: np.ndarray
    """Unbalance of the reserved single-phase export [%]."""
    trafo_peak_a: np.ndarray
    """Reserved current on the notification's transformer at peak [A]."""
    trafo_low_a: np.ndarray


@dataclass(frozen=True)
class ApplianceTable:
    """Per appliance row of the evaluable notifications, grouped by notification (CSR ``indptr``).

    Built from demand cases (:func:`appliance_table`) or directly as arrays (the capacity map's
    standard appliances, :mod:`powercheck.rules.capacity`).
    """

    owner: np.ndarray
    """Notification row of each appliance row."""
    indptr: np.ndarray
    """Appliance rows of notification k: ``indptr[k]:indptr[k+1]``."""
    conn: np.ndarray
    """Connection code of the appliance."""
    unit_kw: np.ndarray
    """Rated power of one unit [kW]."""
    quantity: np.ndarray
    """Units of the row [-]."""
    cos_phi: np.ndarray
    cos_phi_start: np.ndarray
    start_ratio: np.ndarray
    """Start current / rated current [-] (1: no start current)."""
    q_sign: np.ndarray
    """+1 for a consuming appliance (drop), -1 for a generating one (rise)."""
    starts_per_hour: np.ndarray
    """Starts per hour of all units of the row [1/h]."""
    spectra: np.ndarray
    """Harmonic current per order of :func:`harmonic_orders` [% of rated current], shape (rows, orders)."""
    origin: tuple[str | None, ...]
    """Per row: where the spectrum came from ('installer', 'policy:<class>', None: no emission)."""
    kind: tuple[str, ...]
    """Per row: the appliance kind (:class:`powercheck.models.ApplianceKind` value)."""
    cases: tuple[ApplianceCase, ...] = ()
    """The appliance cases of the rows (empty for array-built tables)."""
    active_intervals: np.ndarray | None = None
    """Per row: 10-min intervals of a 2-h window in which the appliance switches at its rate (its declared
    operating pattern; None: the policy's ``flicker_active_intervals`` for every row)."""
    orders_above: tuple[tuple[int, ...], ...] = ()
    """Per row: orders of the installer's spectrum above :func:`harmonic_orders` with a current (not assessed;
    empty tuple for array-built tables)."""


@dataclass(frozen=True)
class ApplianceSteps:
    """Per appliance row (:class:`ApplianceTable`): voltage steps."""

    table: ApplianceTable
    i_rated_a: np.ndarray
    """Rated current of one unit [A]."""
    d_start_percent: np.ndarray
    """Largest voltage change of one unit's switching [%]: its start (start current at cos phi start) when it
    starts direct-on-line, its stop at rated current when it ramps up (policy ``start_behaviour``)."""
    d_rated_percent: np.ndarray
    """Voltage change of one unit at rated current [%]."""
    ramped: np.ndarray
    """Per row: the appliance kind ramps up (no start step, no start flicker)."""

    @property
    def cases(self) -> tuple[ApplianceCase, ...]:
        return self.table.cases

    @property
    def owner(self) -> np.ndarray:
        return self.table.owner

    @property
    def indptr(self) -> np.ndarray:
        return self.table.indptr


@dataclass(frozen=True)
class FlickerResult:
    """Analytic IEC 61000-3-3 flicker of the appliance starts."""

    applies: np.ndarray
    """Per appliance row: switches often enough for a flicker assessment."""
    pst_appliance: np.ndarray
    """Per appliance row: Pst of its starts and stops [-]."""
    present: np.ndarray
    """Per notification: at least one appliance with a flicker assessment."""
    pst_total: np.ndarray
    """Per notification: Pst with the background (cubic summation) [-]."""
    plt_total: np.ndarray
    """Per notification: Plt with the background [-]."""
    plt_appliance: np.ndarray
    """Per appliance row: Plt of its operating pattern, Pst (n_active / 12)^(1/3) [-]."""
    pst_emission: np.ndarray
    """Per notification: the customer's own Pst emission, without the background [-]."""
    plt_emission: np.ndarray
    """Per notification: the customer's own Plt emission, without the background [-]."""


@dataclass(frozen=True)
class HarmonicResult:
    """Harmonic voltages of the appliances' current spectra."""

    orders: tuple[int, ...]
    limit_percent: np.ndarray
    """Per order: the policy limit [% of U1] (inf: no individual limit; the order counts in THD only)."""
    background_percent: np.ndarray
    """Per order: assumed pre-existing level [% of U1]."""
    total_percent: np.ndarray
    """Per notification and order: background + emission (IEC 61000-3-6 summation) [% of U1]."""
    emission_percent: np.ndarray
    """Per notification and order: the appliances' emission alone [% of U1]."""
    thd_percent: np.ndarray
    """Per notification [%]."""
    origin: tuple[str | None, ...]
    """Per appliance row: 'installer', 'policy:<class>' or None (no emission)."""
    emitting: np.ndarray
    """Per appliance row: has a non-zero spectrum."""
    present: np.ndarray
    """Per notification: at least one emitting appliance."""
    continuous: np.ndarray
    """Per notification: an emitting appliance of a kind that runs continuously (the 1-week THD limit applies)."""


@dataclass(frozen=True)
class ThermalResult:
    """Binding line on the radial path and the transformer, in both load cases."""

    peak_line_row: np.ndarray
    """Global line row of the binding line at peak (-1: the bus is the transformer busbar)."""
    peak_line_base_a: np.ndarray
    peak_line_reserved_a: np.ndarray
    """Current the ledger's active requests add to that line [A]."""
    peak_line_limit_a: np.ndarray
    low_line_row: np.ndarray
    low_line_base_a: np.ndarray
    low_line_reserved_a: np.ndarray
    low_line_limit_a: np.ndarray
    trafo_limit_a: np.ndarray
    """Allowed LV-side transformer current [A] (NaN: no transformer)."""
    trafo_peak_base_a: np.ndarray
    trafo_low_base_a: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """Everything the checks compare with limits, for one batch of demand cases."""

    n: int
    point: ConnectionPoint
    load: AddedPower
    export: AddedPower
    reserved: Reserved
    v_base_peak_pu: np.ndarray
    """Voltage at peak before the notification, with the reserved load [pu]."""
    v_peak_pu: np.ndarray
    """Voltage at peak with the added load (constant power) [pu]."""
    v_base_low_pu: np.ndarray
    """Voltage at low load before the notification, with the reserved export [pu]."""
    v_low_pu: np.ndarray
    """Voltage at low load with the added export [pu]."""
    s1_load_kva: np.ndarray
    """Single-phase apparent power of the added load [kVA]."""
    s1_export_kva: np.ndarray
    """Single-phase apparent power of the added export [kVA]."""
    vuf_load_percent: np.ndarray
    """Unbalance the single-phase load adds: S |Z1| / (U^2 v_load v1) [%]."""
    vuf_export_percent: np.ndarray
    """Unbalance the single-phase export adds [%]."""
    worst: NetworkWorst | None
    """The worst bus of the network with the notification's load / export added (None: not computed)."""
    ik_min_a: np.ndarray
    """Minimum fault current at the bus (TN L-N, IT L-L) [A]."""
    thermal: ThermalResult
    appliances: ApplianceSteps
    flicker: FlickerResult
    harmonics: HarmonicResult

    def appliance_rows(self, k: int) -> range:
        """Appliance rows of notification ``k``."""
        return range(int(self.appliances.indptr[k]), int(self.appliances.indptr[k + 1]))


def _components(cases: Sequence[DemandCase], pick) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    owner: list[int] = []
    conn: list[int] = []
    p_kw: list[float] = []
    cos: list[float] = []
    for k, case in enumerate(cases):
        comp: Component
        for comp in pick(case):
            owner.append(k)
            conn.append(comp.conn)
            p_kw.append(comp.p_kw)
            cos.append(comp.cos_phi)
    return (
        np.asarray(owner, dtype=np.int64),
        np.asarray(conn, dtype=np.int64),
        np.asarray(p_kw, dtype=float),
        np.asarray(cos, dtype=float),
    )


def _added(point: ConnectionPoint, n: int, rows: tuple, q_sign: float) -> AddedPower:
    owner, conn, p_kw, cos = rows
    indptr = np.zeros(n + 1, dtype=np.int64)
    if owner.size == 0:
        empty = np.zeros(0)
        return AddedPower(np.zeros(n), np.zeros(n), np.zeros(n), indptr, np.zeros(0, np.int64), empty, empty)
    np.cumsum(np.bincount(owner, minlength=n), out=indptr[1:])
    u_ll, r1, x1 = point.u_ll_v[owner], point.r1_ohm[owner], point.x1_ohm[owner]  # each gathered once
    current = line_current_a(p_kw, cos, conn, u_ll)
    # positive-sequence drop: Z1 I1 with I1 = I (3ph), I/3 (L-N), I/sqrt3 (L-L), in % of U_ph
    share = np.where(conn == CONN_3PH, 1.0, np.where(conn == CONN_LN, 1.0 / 3.0, 1.0 / SQRT3))
    sin = q_sign * np.sqrt(np.maximum(0.0, 1.0 - cos * cos))
    u_ph = u_ll / SQRT3
    d1 = 100.0 * (r1 * cos + x1 * sin) * share * current / u_ph
    d = voltage_change_percent(
        r1,
        x1,
        point.r0_ohm[owner],
        point.x0_ohm[owner],
        conn,
        u_ll,
        current,
        cos,
        np.full(owner.size, q_sign),
    )
    return AddedPower(
        np.bincount(owner, current, minlength=n),
        np.bincount(owner, d, minlength=n),
        np.bincount(owner, d1, minlength=n),
        indptr,
        conn,
        current,
        cos,
    )


def harmonic_orders(policy: Policy) -> list[int]:
    """The harmonic orders THD runs over (2 to ``thd_max_order``), ascending; every one counts in THD, the ones
    in the policy's table of individual limits also on their own."""
    return list(range(2, int(policy.value(PolicyKey.THD_MAX_ORDER)) + 1))


def policy_spectrum(kind: str, policy: Policy, orders: Sequence[int]) -> tuple[np.ndarray, str | None]:
    """The policy's harmonic current spectrum of an appliance kind over ``orders`` and its origin.

    Made once per policy, kind and orders (every appliance row without its own spectrum reads one); the array is
    shared and read-only.
    """
    memo = policy.derived("harmonic spectra", lambda _: {})
    key = (kind, tuple(orders))
    got = memo.get(key)
    if got is None:
        spectrum, origin = _policy_spectrum(kind, policy, key[1])
        spectrum.flags.writeable = False
        got = memo[key] = (spectrum, origin)
    return got


def _policy_spectrum(kind: str, policy: Policy, orders: Sequence[int]) -> tuple[np.ndarray, str | None]:
    cls = policy.value(PolicyKey.HARMONIC_CLASS_OF_KIND).get(kind, "default")
    if cls == "none":
        return np.zeros(len(orders)), None
    table = {int(h): v for h, v in policy.value(PolicyKey.HARMONIC_SPECTRA)[cls].items()}
    return np.array([float(table.get(h, 0.0)) for h in orders]), f"policy:{cls}"


def _spectrum(case: ApplianceCase, orders: Sequence[int], policy: Policy) -> tuple[np.ndarray, str | None]:
    """Harmonic current spectrum of an appliance over ``orders`` and where it came from."""
    appliance = case.appliance
    if appliance.harmonic_current_percent is not None:
        table = appliance.harmonic_current_percent
        return np.array([float(table.get(h, 0.0)) for h in orders]), "installer"
    return policy_spectrum(appliance.kind.value, policy, orders)


_NUMERIC_COLUMNS = 9
"""The numeric columns :func:`appliance_table` reads of each appliance row."""


def appliance_table(cases: Sequence[DemandCase], policy: Policy) -> ApplianceTable:
    """The appliance rows of the evaluable demand cases."""
    apps: list[ApplianceCase] = []
    owner: list[int] = []
    indptr = np.zeros(len(cases) + 1, dtype=np.int64)
    for k, case in enumerate(cases):
        if case.evaluable:
            apps.extend(case.appliances)
            owner.extend([k] * len(case.appliances))
        indptr[k + 1] = len(apps)
    orders = harmonic_orders(policy)
    top = orders[-1]
    # one pass over the rows: the spectrum (the policy's of a kind found once a call), the numeric columns as one
    # tuple a row, kind, origin and the installer's orders above the assessed ones
    per_kind: dict = {}
    spectra_rows: list[np.ndarray] = []
    origins: list[str | None] = []
    kinds: list[str] = []
    above: list[tuple[int, ...]] = []
    numeric: list[tuple] = []
    for r in apps:
        appliance = r.appliance
        kind = appliance.kind
        got = per_kind.get(kind)
        if got is None:
            value = kind._value_  # the enum's value (``.value`` without the descriptor call)
            got = per_kind[kind] = (value, 1.0 if kind.consumes else -1.0, policy_spectrum(value, policy, orders))
        value, q_sign, policy_row = got
        table = appliance.harmonic_current_percent
        if table is not None:  # the installer's spectrum (as :func:`_spectrum`)
            spectra_rows.append(np.array([float(table.get(h, 0.0)) for h in orders]))
            origins.append("installer")
            above.append(tuple(sorted(int(h) for h, v in table.items() if int(h) > top and v > 0)))
        else:
            spectra_rows.append(policy_row[0])
            origins.append(policy_row[1])
            above.append(())
        kinds.append(value)
        numeric.append(
            (r.conn, appliance.rated_kw, appliance.quantity, r.cos_phi, r.cos_phi_start, r.start_current_ratio,
             q_sign, r.starts_per_hour, r.active_intervals)
        )  # fmt: skip
    spectra = np.array(spectra_rows, dtype=float) if apps else np.zeros((0, len(orders)))
    # the numeric columns in one array (one row per column, each row contiguous) instead of one list per column
    values = np.array(numeric, dtype=float).reshape(len(apps), _NUMERIC_COLUMNS).T.copy()
    conn, unit_kw, quantity, cos_phi, cos_phi_start, start_ratio, q_sign, starts_per_hour, active = values
    return ApplianceTable(
        owner=np.asarray(owner, dtype=np.int64),
        indptr=indptr,
        conn=conn.astype(np.int64),
        unit_kw=unit_kw,
        quantity=quantity,
        cos_phi=cos_phi,
        cos_phi_start=cos_phi_start,
        start_ratio=start_ratio,
        q_sign=q_sign,
        starts_per_hour=starts_per_hour,
        spectra=spectra,
        origin=tuple(origins),
        kind=tuple(kinds),
        cases=tuple(apps),
        active_intervals=active,
        orders_above=tuple(above),
    )


def _appliance_steps(table: ApplianceTable, point: ConnectionPoint, policy: Policy) -> ApplianceSteps:
    own = table.owner
    ramped = np.array([policy.ramped(kind) for kind in table.kind], dtype=bool)
    if own.size == 0:
        empty = np.zeros(0)
        return ApplianceSteps(table, empty, empty, empty, ramped)
    i_rated = line_current_a(table.unit_kw, table.cos_phi, table.conn, point.u_ll_v[own])
    args = (point.r1_ohm[own], point.x1_ohm[own], point.r0_ohm[own], point.x0_ohm[own], table.conn,
            point.u_ll_v[own])  # fmt: skip
    d_start = np.abs(voltage_change_percent(*args, table.start_ratio * i_rated, table.cos_phi_start, table.q_sign))
    d_rated = np.abs(voltage_change_percent(*args, i_rated, table.cos_phi, table.q_sign))
    d_start = np.where(ramped, d_rated, d_start)  # a ramped start makes no step; its stop (or trip) does
    return ApplianceSteps(table, i_rated, d_start, d_rated, ramped)


def _flicker(n: int, steps: ApplianceSteps, policy: Policy) -> FlickerResult:
    """Pst/Plt per appliance (analytical method) and per notification (cubic summation)."""
    coeff = policy.number(PolicyKey.FLICKER_TF_COEFF)
    expo = policy.number(PolicyKey.FLICKER_TF_EXPONENT)
    alpha = policy.number(PolicyKey.FLICKER_SUMMATION_ALPHA)
    background = policy.number(PolicyKey.FLICKER_BACKGROUND_PST)
    table = steps.table
    starts = table.starts_per_hour
    if table.active_intervals is not None:
        active = table.active_intervals
    else:
        active = np.full(starts.shape[0], policy.number(PolicyKey.FLICKER_ACTIVE_INTERVALS))
    applies = starts >= policy.number(PolicyKey.FLICKER_MIN_CHANGES_PER_HOUR)
    if starts.size:
        per_10min = starts / 6.0
        # every start is a change of d_start (shape factor F) and every stop one of d_rated
        shape = policy.number(PolicyKey.FLICKER_SHAPE_FACTOR)
        # the starts and the stops in one call of the (elementwise) kernel: the first half starts, the second stops
        m = starts.shape[0]
        both = pst_analytic(
            np.concatenate((steps.d_start_percent, steps.d_rated_percent)),
            np.concatenate((per_10min, per_10min)),
            np.concatenate((np.full(m, float(shape)), np.ones(m))),
            t_f_coeff=coeff,
            t_f_exponent=expo,
        )
        p_start = np.where(steps.ramped, 0.0, both[:m])  # a ramp up over seconds adds no flicker
        p_stop = both[m:]
        pst_app = (p_start**expo + p_stop**expo) ** (1.0 / expo)
    else:
        pst_app = np.zeros(0)
    plt_app = pst_app * np.cbrt(active / 12.0)
    sel = steps.owner[applies]
    present = np.bincount(sel, minlength=n) > 0
    pst_sum = np.bincount(sel, pst_app[applies] ** alpha, minlength=n)
    plt_sum = np.bincount(sel, plt_app[applies] ** alpha, minlength=n)
    pst_total = (background**alpha + pst_sum) ** (1.0 / alpha)
    plt_total = (background**alpha + plt_sum) ** (1.0 / alpha)
    return FlickerResult(applies, pst_app, present, pst_total, plt_total, plt_app, pst_sum ** (1.0 / alpha),
                         plt_sum ** (1.0 / alpha))  # fmt: skip


@dataclass(frozen=True)
class HarmonicSetup:
    """What the harmonic evaluation takes from the policy, made once per policy (:func:`harmonic_setup`); its
    arrays are shared and only read."""

    orders: tuple[int, ...]
    """:func:`harmonic_orders`."""
    order_array: np.ndarray
    limit_percent: np.ndarray
    """Per order: the individual limit [% of U1] (inf: none)."""
    background_percent: np.ndarray
    alpha: np.ndarray
    """Per order: the summation exponent (:meth:`Policy.harmonic_alpha`)."""
    week_kinds: frozenset[str]


def harmonic_setup(policy: Policy) -> HarmonicSetup:
    """The policy's harmonic orders, limits, background levels and summation exponents as arrays, once per policy."""
    return policy.derived("harmonic setup", _harmonic_setup)


def _harmonic_setup(policy: Policy) -> HarmonicSetup:
    limits = {int(h): float(v) for h, v in policy.value(PolicyKey.HARMONIC_VOLTAGE_MAX_PERCENT).items()}
    orders = harmonic_orders(policy)
    background_table = policy.value(PolicyKey.HARMONIC_BACKGROUND_PERCENT)
    setup = HarmonicSetup(
        orders=tuple(orders),
        order_array=np.array(orders, dtype=np.int64),
        limit_percent=np.array([limits.get(h, np.inf) for h in orders]),
        background_percent=np.array([float(background_table.get(str(h), 0.0)) for h in orders]),
        alpha=np.array([policy.harmonic_alpha(h) for h in orders]),
        week_kinds=frozenset(policy.value(PolicyKey.THD_WEEK_KINDS)),
    )
    for shared in (setup.order_array, setup.limit_percent, setup.background_percent, setup.alpha):
        shared.flags.writeable = False  # every later batch reads them
    return setup


def _harmonics(n: int, steps: ApplianceSteps, point: ConnectionPoint, policy: Policy) -> HarmonicResult:
    setup = harmonic_setup(policy)
    table = steps.table
    spectra = table.spectra
    emitting = spectra.sum(axis=1) > 0 if spectra.shape[0] else np.zeros(0, dtype=bool)
    if table.orders_above:  # a spectrum only above the THD range still gets its check, naming those orders
        emitting = emitting | np.array([bool(o) for o in table.orders_above], dtype=bool)
    present = np.bincount(table.owner[emitting], minlength=n) > 0
    week_kinds = setup.week_kinds
    steady = emitting & np.array([k in week_kinds for k in table.kind], dtype=bool)
    continuous = np.bincount(table.owner[steady], minlength=n) > 0
    background = setup.background_percent.copy()  # the result's own copy (the setup's arrays are shared)
    total, emission = harmonic_voltages_percent(
        np.where(emitting, table.owner, -1).astype(np.int64),
        n,
        table.conn,
        steps.i_rated_a * table.quantity,
        spectra,
        point.r1_ohm,
        point.x1_ohm,
        point.r0_ohm,
        point.x0_ohm,
        point.u_ll_v,
        point.system,
        setup.order_array,
        setup.alpha,
        np.tile(background, (n, 1)),
        policy.number(PolicyKey.HARMONIC_SKIN_EXPONENT),
    )
    return HarmonicResult(
        orders=setup.orders,
        limit_percent=setup.limit_percent.copy(),
        background_percent=background,
        total_percent=total,
        emission_percent=emission,
        thd_percent=thd_percent(total),
        origin=table.origin,
        emitting=emitting,
        present=present,
        continuous=continuous,
    )


def _thermal(point: ConnectionPoint, grid: GridView, policy: Policy, state: CapacityState | None) -> ThermalResult:
    arr = grid.arrays
    bus_rows = point.bus_row
    line_frac = policy.number(PolicyKey.LINE_LOADING_MAX_PERCENT) / 100.0
    trafo_frac = policy.number(PolicyKey.TRANSFORMER_LOADING_MAX_PERCENT) / 100.0
    zeros = line_zeros(grid)
    res_peak = state.line_peak_a if state is not None else zeros
    res_low = state.line_low_a if state is not None else zeros
    paths = (arr.path_indptr, arr.path_lines, bus_rows, arr.line_i_max_a)
    peak = path_headroom(*paths, arr.line_i_peak_a, res_peak, line_frac)
    low = path_headroom(*paths, arr.line_i_low_a, res_low, line_frac)
    t_row = arr.trafo_row[bus_rows]
    t_ok = t_row >= 0
    t_safe = np.where(t_ok, t_row, 0)
    has_trafo = arr.trafo_i_rated_a.size > 0
    trafo_limit = np.where(t_ok, trafo_frac * arr.trafo_i_rated_a[t_safe] if has_trafo else np.nan, np.nan)
    trafo_peak = np.where(t_ok, arr.trafo_i_peak_a[t_safe] if has_trafo else np.nan, np.nan)
    trafo_low = np.where(t_ok, arr.trafo_i_low_a[t_safe] if has_trafo else np.nan, np.nan)
    return ThermalResult(*peak, *low, trafo_limit, trafo_peak, trafo_low)


def base_unbalance(grid: GridView, bus_rows: np.ndarray, background: float) -> np.ndarray:
    """Base-case unbalance of the buses, the policy's background where the base case is balanced [%]."""
    base = grid.arrays.unbalance_base_percent[bus_rows]
    return np.where(np.isfinite(base), base, background)


def bus_zeros(grid: GridView) -> np.ndarray:
    """Zeros per bus of the region (what a missing ledger reserves); shared: callers only read it."""
    return grid.derived("bus zeros", lambda g: np.zeros(g.arrays.bus_ids.shape[0]))


def line_zeros(grid: GridView) -> np.ndarray:
    """Zeros per line of the region (a missing ledger's reserved currents); shared: callers only read it."""
    return grid.derived("line zeros", lambda g: np.zeros_like(g.arrays.line_i_max_a))


def bus_unbalance(grid: GridView, background: float) -> np.ndarray:
    """:func:`base_unbalance` of every bus of the region (per background value); shared: callers only read it."""
    return grid.derived(
        ("bus unbalance", float(background)),
        lambda g: base_unbalance(g, np.arange(g.arrays.bus_ids.shape[0]), background),
    )


def _network_worst(
    point: ConnectionPoint,
    grid: GridView,
    state: CapacityState | None,
    load: AddedPower,
    export: AddedPower,
    s1_load: np.ndarray,
    s1_export: np.ndarray,
    v_peak: np.ndarray,
    v_low: np.ndarray,
    own_peak_unbalance: np.ndarray,
    own_low_unbalance: np.ndarray,
    background: float,
) -> NetworkWorst:
    arr = grid.arrays
    zeros = bus_zeros(grid)
    drop = state.bus_drop_percent if state is not None else zeros
    rise = state.bus_rise_percent if state is not None else zeros
    vuf_peak = state.bus_vuf_peak_percent if state is not None else zeros
    vuf_low = state.bus_vuf_low_percent if state is not None else zeros
    unbalance_of_bus = bus_unbalance(grid, background)
    common = (grid.bus_bounds, arr.network_index, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min,
              arr.xk0_min, arr.u_ll_v)  # fmt: skip
    bus_rows = np.where(load.current_a > 0, point.bus_row, -1)
    v_p, v_p_bus, u_p, u_p_bus = worst_buses(
        bus_rows, v_peak, load.component_indptr, load.component_conn, load.component_current_a,
        load.component_cos_phi, np.ones(load.component_conn.shape[0]), s1_load, *common, arr.vm_peak_pu, drop, -1.0,
        unbalance_of_bus, vuf_peak, own_peak_unbalance,
    )  # fmt: skip
    bus_rows = np.where(export.current_a > 0, point.bus_row, -1)
    v_l, v_l_bus, u_l, u_l_bus = worst_buses(
        bus_rows, v_low, export.component_indptr, export.component_conn, export.component_current_a,
        export.component_cos_phi, -np.ones(export.component_conn.shape[0]), s1_export, *common, arr.vm_low_pu, rise,
        1.0, unbalance_of_bus, vuf_low, own_low_unbalance,
    )  # fmt: skip
    return NetworkWorst(v_p, v_p_bus, v_l, v_l_bus, u_p, u_p_bus, u_l, u_l_bus)


def connection_point(bus_rows: np.ndarray, grid: GridView) -> ConnectionPoint:
    """The minimum-case Thevenin data at the buses (global bus rows)."""
    arr = grid.arrays
    bus_rows = np.asarray(bus_rows, dtype=np.int64)
    return ConnectionPoint(
        bus_row=bus_rows,
        r1_ohm=arr.rk1_min[bus_rows],
        x1_ohm=arr.xk1_min[bus_rows],
        r0_ohm=arr.rk0_min[bus_rows],
        x0_ohm=arr.xk0_min[bus_rows],
        u_ll_v=arr.u_ll_v[bus_rows],
        system=np.where(arr.system_tn[bus_rows], SYSTEM_TN, SYSTEM_IT).astype(np.int64),
    )


def connection_points(cases: Sequence[DemandCase], grid: GridView) -> ConnectionPoint:
    """The minimum-case Thevenin data at each notification's bus (bus row 0 where not evaluable)."""
    return connection_point(np.array([c.location.bus_row if c.evaluable else 0 for c in cases], dtype=np.int64), grid)


def _reserved(point: ConnectionPoint, grid: GridView, state: CapacityState | None) -> Reserved:
    n = point.bus_row.shape[0]
    if state is None:
        z = np.zeros(n)
        return Reserved(z, z, z, z, z, z)
    t_row = grid.arrays.trafo_row[point.bus_row]
    t_ok = (t_row >= 0) & (state.trafo_peak_a.size > 0)
    t_safe = np.where(t_ok, t_row, 0)
    b = point.bus_row
    return Reserved(
        drop_percent=state.bus_drop_percent[b],
        rise_percent=state.bus_rise_percent[b],
        unbalance_peak_percent=state.bus_vuf_peak_percent[b],
        unbalance_low_percent=state.bus_vuf_low_percent[b],
        trafo_peak_a=np.where(t_ok, state.trafo_peak_a[t_safe] if state.trafo_peak_a.size else 0.0, 0.0),
        trafo_low_a=np.where(t_ok, state.trafo_low_a[t_safe] if state.trafo_low_a.size else 0.0, 0.0),
    )


@dataclass(frozen=True)
class Injections:
    """What a batch adds to the grid, as arrays: the evaluation's input besides the appliance rows."""

    bus_row: np.ndarray
    """Global bus row per notification (0 where not evaluable)."""
    load: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    """Load components: (owner, connection code, kW, cos phi)."""
    export: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    """Export components, as ``load``."""
    s1_load_kva: np.ndarray
    """Single-phase apparent power of the added load [kVA]."""
    s1_export_kva: np.ndarray


def injections(cases: Sequence[DemandCase]) -> Injections:
    """The injections of demand cases."""
    return Injections(
        bus_row=np.array([c.location.bus_row if c.evaluable else 0 for c in cases], dtype=np.int64),
        load=_components(cases, lambda c: c.loads if c.evaluable else ()),
        export=_components(cases, lambda c: c.exports if c.evaluable else ()),
        s1_load_kva=np.array([c.s1_load_kva for c in cases], dtype=float),
        s1_export_kva=np.array([c.s1_export_kva for c in cases], dtype=float),
    )


def evaluate(
    cases: Sequence[DemandCase], grid: GridView, policy: Policy, state: CapacityState | None = None
) -> Evaluation:
    """Run every kernel over the batch of demand cases, on the grid with the ledger's reservations."""
    return evaluate_arrays(injections(cases), appliance_table(cases, policy), grid, policy, state)


def evaluate_arrays(
    inj: Injections,
    table: ApplianceTable,
    grid: GridView,
    policy: Policy,
    state: CapacityState | None = None,
    *,
    network_worst: bool = True,
) -> Evaluation:
    """Run every kernel over a batch given as arrays (``network_worst=False``: skip the network's worst bus)."""
    n = inj.bus_row.shape[0]
    arr = grid.arrays
    point = connection_point(inj.bus_row, grid)
    load = _added(point, n, inj.load, +1.0)
    export = _added(point, n, inj.export, -1.0)
    steps = _appliance_steps(table, point, policy)
    reserved = _reserved(point, grid, state)

    # steady-state voltages with constant-power load/export, on top of the reserved drop/rise
    v_base_peak = arr.vm_peak_pu[point.bus_row] - reserved.drop_percent / 100.0
    v_base_low = arr.vm_low_pu[point.bus_row] + reserved.rise_percent / 100.0
    v_peak = voltage_after_constant_power(v_base_peak, load.voltage_change_percent)
    v_low = voltage_after_constant_power(v_base_low, -export.voltage_change_percent)

    # unbalance per side: VUF = |V2|/|V1| = S |Z1| / (U^2 v_load v1), with the single-phase current at the
    # loaded conductors' voltage v_load and the positive-sequence voltage v1 after connection
    s1_load, s1_export = inj.s1_load_kva, inj.s1_export_kva
    v1_peak = v_base_peak - load.positive_sequence_change_percent / 100.0
    v1_low = v_base_low + export.positive_sequence_change_percent / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        vuf_load = unbalance_percent(s1_load, point.r1_ohm, point.x1_ohm, point.u_ll_v) / (v_peak * v1_peak)
        vuf_export = unbalance_percent(s1_export, point.r1_ohm, point.x1_ohm, point.u_ll_v) / (v_low * v1_low)

    worst = None
    if network_worst:
        background = policy.number(PolicyKey.BACKGROUND_UNBALANCE_PERCENT)
        own_peak_unbalance = base_unbalance(grid, point.bus_row, background) + reserved.unbalance_peak_percent
        own_low_unbalance = base_unbalance(grid, point.bus_row, background) + reserved.unbalance_low_percent
        worst = _network_worst(
            point,
            grid,
            state,
            load,
            export,
            s1_load,
            s1_export,
            v_peak,
            v_low,
            own_peak_unbalance + np.where(s1_load > 0, vuf_load, 0.0),
            own_low_unbalance + np.where(s1_export > 0, vuf_export, 0.0),
            background,
        )

    ik_min = min_fault_current_a(
        point.r1_ohm,
        point.x1_ohm,
        point.r0_ohm,
        point.x0_ohm,
        point.u_ll_v,
        point.system,
        policy.number(PolicyKey.SC_C_MIN),
    )
    return Evaluation(
        n=n,
        point=point,
        load=load,
        export=export,
        reserved=reserved,
        v_base_peak_pu=v_base_peak,
        v_peak_pu=v_peak,
        v_base_low_pu=v_base_low,
        v_low_pu=v_low,
        s1_load_kva=s1_load,
        s1_export_kva=s1_export,
        vuf_load_percent=np.where(s1_load > 0, vuf_load, 0.0),
        vuf_export_percent=np.where(s1_export > 0, vuf_export, 0.0),
        worst=worst,
        ik_min_a=ik_min,
        thermal=_thermal(point, grid, policy, state),
        appliances=steps,
        flicker=_flicker(n, steps, policy),
        harmonics=_harmonics(n, steps, point, policy),
    )
