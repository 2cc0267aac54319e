"""Batched power flow for radial LV feeders: pandapower net -> compact radial model -> numba sweep.

:func:`build_radial_model` turns a pandapower network into a :class:`RadialModel`
(buses in topological order, one admittance two-port per tree edge and sequence,
PQ-element mapping). :func:`run_batch` (balanced, positive sequence) and
:func:`run_batch_3ph` (unbalanced, per phase, wye and delta loads) solve any
number of load cases at once with the kernels in
:mod:`powercheck.powerflow.kernels`. :class:`BatchPowerFlow` bundles both.

What is modelled, and how it matches pandapower
-----------------------------------------------
The model reproduces the branch models of pandapower's ``runpp`` and
``runpp_3ph`` term by term (pandapower 3.x, ``build_branch.py``,
``pd2ppc_zero.py``, ``pypower/makeYbus.py``):

* **ext_grid** -- an ideal slack (``vm_pu``, ``va_degree``) in ``runpp`` and in
  the positive sequence of ``runpp_3ph``. In the negative and zero sequence of
  ``runpp_3ph`` pandapower connects the short-circuit impedance
  (``c = 1.1``, ``s_sc_max_mva``, ``rx_max``, ``x0x_max``, ``r0x0_max``) from
  the slack bus to ground; so does this model.
* **line** -- pi model: ``r, x`` from ``r/x_ohm_per_km * length_km / parallel``,
  charging ``2 pi f c_nf_per_km`` and ``g_us_per_km`` split half/half; zero
  sequence from ``r0/x0_ohm_per_km`` and ``c0_nf_per_km`` (no conductance).
* **trafo** -- series impedance from ``vk_percent``/``vkr_percent`` on the
  tap-adjusted LV voltage, magnetising branch from ``pfe_kw``/``i0_percent``,
  ``trafo_model="t"`` (default, converted to the equivalent pi with
  pandapower's star-delta formula and ``leakage_resistance/reactance_ratio_hv``
  (default 0.5)) or ``"pi"``; off-nominal ratio relative to the bus voltages;
  phase shift ``shift_degree`` (negated in the negative sequence); tap changers
  without characteristic tables (``tap_changer_type`` "Ratio", "Symmetrical",
  "Ideal"; any other type, e.g. ``None``, has no effect, as in pandapower).
  Zero sequence: ``Dyn`` exactly as pandapower (T or pi equivalent of
  ``vk0/vkr0_percent``, ``mag0_percent``, ``mag0_rx``, ``si0_hv_partial``,
  earthed on the LV side, open on the HV side). Unearthed groups (``Dy``,
  ``Yy``, ``Dd``, ``Yd``) leave the LV zero sequence floating: allowed only
  with phase-to-phase (delta) loads, i.e. IT networks (an extension:
  pandapower's ``runpp_3ph`` cannot solve these).
* **switch** -- closed bus-bus switches are fused (``z_ohm > 0``: a series
  impedance with ``switch_rx_ratio = 2``, as pandapower); an open line or
  transformer switch opens that end of the branch; a branch open at one end
  still draws its charging/magnetising current from the other end (pandapower
  does the same with an auxiliary bus). Out-of-service buses act like open ends.
* **load, sgen, storage, asymmetric_load, asymmetric_sgen** -- constant-power
  PQ injections. In ``run_batch_3ph`` balanced elements are split 1/3 per
  phase, wye unless ``type == "delta"``; asymmetric elements use
  ``p_a/b/c_mw``, and for ``type == "delta"`` the a/b/c values are the ab/bc/ca
  branches, as in pandapower.

Buses not connected to the slack get NaN voltages, as in pandapower.

Rejected with an error naming the element: meshed networks (the branch closing
the loop), several or no ext_grid, in-service elements of other types (gen,
shunt, ward, xward, impedance, trafo3w, motor, ...), voltage-dependent loads
(``const_z/i_*_percent`` != 0) and tap-dependent impedance tables.

Known differences to pandapower
-------------------------------
* ``runpp_3ph`` silently ignores ``load``/``sgen`` rows whose ``type`` is not
  exactly ``"wye"`` or ``"delta"`` (SimBench has ``NaN``/``"PV"``) and ignores
  ``storage``; :func:`run_batch_3ph` treats them as balanced wye elements.
* Parallel branches between the same two buses are accepted (their two-ports
  are summed), which is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from powercheck.grid.networks import GridModelError
from powercheck.powerflow import kernels

__all__ = [
    "BatchPowerFlow",
    "BatchResult",
    "BatchResult3ph",
    "PowerFlowNotConverged",
    "RadialModel",
    "RadialModelError",
    "build_radial_model",
    "run_batch",
    "run_batch_3ph",
]

_SQRT3 = math.sqrt(3.0)
_C_EXT_GRID = 1.1  # voltage factor pandapower uses for the ext_grid impedance in runpp_3ph
_SWITCH_RX_RATIO = 2.0  # pandapower default switch_rx_ratio

_UNSUPPORTED_TABLES = (
    "gen",
    "shunt",
    "ward",
    "xward",
    "impedance",
    "trafo3w",
    "motor",
    "dcline",
    "svc",
    "tcsc",
    "ssc",
    "vsc",
    "load_dc",
    "line_dc",
    "source_dc",
)
_ZIP_COLUMNS = (
    "const_z_p_percent",
    "const_i_p_percent",
    "const_z_q_percent",
    "const_i_q_percent",
    "const_z_percent",
    "const_i_percent",
)
_EARTHED_DYN = "dyn"
_UNEARTHED_LV = ("dy", "yy", "dd", "yd")


class RadialModelError(GridModelError):
    """The network cannot be turned into a radial model; the message names the element."""


class PowerFlowNotConverged(RuntimeError):
    """At least one batch item did not converge (raised only with ``errors="raise"``)."""


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _ElementTable:
    """PQ elements of one pandapower table, all rows in table order."""

    table: str
    index: np.ndarray  # pandapower indices (all rows)
    pos: np.ndarray  # internal bus position, -1 = inactive or unsupplied
    delta: np.ndarray  # bool, phase-to-phase connection (3ph only)
    sign: float  # +1 consumption, -1 generation
    p_mw: np.ndarray  # static values incl. scaling: [n] or [n, 3] for asymmetric tables
    q_mvar: np.ndarray


@dataclass(frozen=True, eq=False)
class RadialModel:
    """Compact radial model of a pandapower network (see module docstring).

    Attributes
    ----------
    sn_mva : float
        Power base [MVA].
    parent : ndarray of int64, shape (n,)
        Parent of each internal bus in topological order; bus 0 is the slack.
    node_bus : ndarray of int64, shape (n,)
        Representative pandapower bus index of each internal bus.
    vn_kv : ndarray of float, shape (n,)
        Nominal voltage of each internal bus [kV].
    bus_index : ndarray of int64
        pandapower bus indices (``net.bus.index``) in result order.
    bus_pos : ndarray of int64
        Internal bus of each entry of ``bus_index``; -1 = not supplied.
    line_index, trafo_index : ndarray of int64
        pandapower line / trafo indices in result order (all rows).
    load_index, sgen_index, storage_index, asym_load_index, asym_sgen_index : ndarray
        pandapower indices of the PQ elements, i.e. the columns of the power
        arrays passed to :func:`run_batch` / :func:`run_batch_3ph`.
    v_slack : complex
        Slack voltage ``vm_pu * exp(j va_degree)`` [pu].
    ypp, ypc, ycp, ycc : ndarray of complex, shape (3, n)
        Two-port of the branch(es) above each bus per sequence (0, 1, 2),
        parent/child orientation [pu on ``sn_mva``].
    ysh : ndarray of complex, shape (3, n)
        Constant shunt admittance per bus and sequence (branches open at one
        end) [pu].
    y_slack : ndarray of complex, shape (3,)
        Slack-to-ground admittance in the zero and negative sequence [pu].
    m, kup : ndarray of complex, shape (3, n)
        Sweep factors (:func:`powercheck.powerflow.kernels.sweep_factors`).
    zero_seq_floating : bool
        An unearthed transformer LV winding feeds the network (IT): only
        phase-to-phase loads are possible in :func:`run_batch_3ph`.
    three_phase_error : str or None
        Why the model cannot be used for :func:`run_batch_3ph` (None = it can).
    """

    sn_mva: float
    parent: np.ndarray
    node_bus: np.ndarray
    vn_kv: np.ndarray
    bus_index: np.ndarray
    bus_pos: np.ndarray
    v_slack: complex
    # per sequence (0, 1, 2) tree-edge two-ports, parent/child orientation, and factors
    ypp: np.ndarray
    ypc: np.ndarray
    ycp: np.ndarray
    ycc: np.ndarray
    ysh: np.ndarray
    y_slack: np.ndarray
    m: np.ndarray
    kup: np.ndarray
    zero_seq_floating: bool
    # branch results
    line_index: np.ndarray
    trafo_index: np.ndarray
    br_f: np.ndarray
    br_t: np.ndarray
    br_y: np.ndarray  # complex [3, 4, n_branch]: yff, yft, ytf, ytt per sequence
    br_ibase_f: np.ndarray  # [kA per pu]
    br_ibase_t: np.ndarray
    line_imax_ka: np.ndarray
    trafo_sn_mva: np.ndarray
    trafo_vn_hv_kv: np.ndarray
    trafo_vn_lv_kv: np.ndarray
    trafo_rating_factor: np.ndarray  # parallel * df
    elements: dict[str, _ElementTable] = field(repr=False)
    three_phase_error: str | None = None
    root_children: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_bus(self) -> int:
        """Number of supplied (internal) buses."""
        return int(self.parent.shape[0])

    @property
    def load_index(self) -> np.ndarray:
        """``net.load`` indices: the element axis of the corresponding power arrays."""
        return self.elements["load"].index

    @property
    def sgen_index(self) -> np.ndarray:
        """``net.sgen`` indices: the element axis of the corresponding power arrays."""
        return self.elements["sgen"].index

    @property
    def storage_index(self) -> np.ndarray:
        """``net.storage`` indices: the element axis of the corresponding power arrays."""
        return self.elements["storage"].index

    @property
    def asym_load_index(self) -> np.ndarray:
        """``net.asymmetric_load`` indices: the element axis of the corresponding power arrays."""
        return self.elements["asymmetric_load"].index

    @property
    def asym_sgen_index(self) -> np.ndarray:
        """``net.asymmetric_sgen`` indices: the element axis of the corresponding power arrays."""
        return self.elements["asymmetric_sgen"].index


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.p = np.arange(n)

    def find(self, a: int) -> int:
        p = self.p
        root = a
        while p[root] != root:
            root = p[root]
        while p[a] != root:
            p[a], a = root, p[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def _col(df: pd.DataFrame, name: str, default: Any) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), default)
    return df[name].to_numpy()


def _float_col(df: pd.DataFrame, name: str, default: float = np.nan) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), default, dtype=float)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _bool_col(df: pd.DataFrame, name: str, default: bool) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), default, dtype=bool)
    return df[name].fillna(default).astype(bool).to_numpy()


def _two_port(ys_f, ys_t, bc_f, bc_t, tap):
    """pandapower's ``branch_vectors``: (yff, yft, ytf, ytt) from series/shunt admittances and complex tap."""
    ytt = ys_t + bc_t / 2.0
    yff = (ys_f + bc_f / 2.0) / (tap * np.conj(tap))
    yft = -ys_f / np.conj(tap)
    ytf = -ys_t / tap
    return yff, yft, ytf, ytt


def _check_finite(values: np.ndarray, what: str, index: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise RadialModelError(f"{what} of {index[np.argmax(bad)]} is missing or not finite")


def _trafo_taps(trafo: pd.DataFrame, calculate_voltage_angles: bool):
    """Tap-adjusted rated voltages and phase shift (pandapower's ``_calc_tap_from_dataframe``)."""
    idx = trafo.index.to_numpy()
    vnh = _float_col(trafo, "vn_hv_kv").copy()
    vnl = _float_col(trafo, "vn_lv_kv").copy()
    shift = _float_col(trafo, "shift_degree", 0.0) if calculate_voltage_angles else np.zeros(len(trafo))
    shift = np.nan_to_num(shift.astype(float), nan=0.0)
    if _bool_col(trafo, "tap_dependency_table", False).any():
        bad = idx[_bool_col(trafo, "tap_dependency_table", False)][0]
        raise RadialModelError(f"trafo {bad}: tap_dependency_table (characteristic tables) is not supported")
    for extra in ("tap2_pos",):
        if extra in trafo.columns and np.isfinite(_float_col(trafo, extra)).any():
            bad = idx[np.isfinite(_float_col(trafo, extra))][0]
            raise RadialModelError(f"trafo {bad}: a second tap changer (tap2_*) is not supported")
    tap_pos = _float_col(trafo, "tap_pos")
    if "tap_changer_type" not in trafo.columns:
        if "tap_phase_shifter" in trafo.columns:
            raise RadialModelError("trafo: legacy column tap_phase_shifter is not supported (pandapower < 3.0 data)")
        ctype = np.full(len(trafo), "", dtype=object)
    else:
        ctype = trafo["tap_changer_type"].astype(object).where(trafo["tap_changer_type"].notna(), "").to_numpy()
    side = (
        trafo["tap_side"].astype(object).where(trafo["tap_side"].notna(), "").to_numpy()
        if "tap_side" in trafo.columns
        else np.full(len(trafo), "", dtype=object)
    )
    neutral = _float_col(trafo, "tap_neutral")
    step_pct = _float_col(trafo, "tap_step_percent")
    step_deg = _float_col(trafo, "tap_step_degree")
    diff = tap_pos - neutral
    for s, vn, direction in (("hv", vnh, 1.0), ("lv", vnl, -1.0)):
        ideal = (ctype == "Ideal") & (side == s)
        cplx = ((ctype == "Ratio") | (ctype == "Symmetrical")) & (side == s)
        if ideal.any():
            deg_set = np.nan_to_num(step_deg, nan=0.0) != 0
            pct_set = np.nan_to_num(step_pct, nan=0.0) != 0
            if (ideal & deg_set & pct_set).any():
                bad = idx[ideal & deg_set & pct_set][0]
                raise RadialModelError(f"trafo {bad}: both tap_step_degree and tap_step_percent set for an ideal tap")
            with np.errstate(invalid="ignore"):
                add = np.where(
                    deg_set,
                    direction * diff * step_deg,
                    direction * 2.0 * np.rad2deg(np.arcsin(diff * step_pct / 200.0)),
                )
            shift[ideal] += add[ideal]
        if cplx.any():
            steps = np.nan_to_num(step_pct * diff / 100.0, nan=0.0)
            ang = np.deg2rad(np.nan_to_num(step_deg, nan=0.0))
            du = vn * steps
            new_vn = np.sqrt((vn + du * np.cos(ang)) ** 2 + (du * np.sin(ang)) ** 2)
            add = np.rad2deg(np.arctan(direction * du * np.sin(ang) / (vn + du * np.cos(ang))))
            shift[cplx] += add[cplx]
            vn[cplx] = new_vn[cplx]
    _check_finite(shift, "trafo shift (tap settings)", idx)
    return vnh, vnl, shift


@dataclass
class _Ctx:
    """Shared data while building a model: bases, bus rows, fused representatives, problems found."""

    net: Any
    sn: float
    f_hz: float
    bus_index: np.ndarray
    row_of: pd.Series  # pandapower bus index -> row
    bus_ok: np.ndarray
    vn: np.ndarray  # [kV] per bus row
    want3: bool
    trafo_model: str
    calculate_voltage_angles: bool
    rep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # fused representative row
    three_err: list[str] = field(default_factory=list)

    def rows(self, table: str, idx: np.ndarray, buses: np.ndarray) -> np.ndarray:
        r = self.row_of.reindex(buses).to_numpy()
        if np.isnan(r).any():
            raise RadialModelError(f"{table} {idx[np.isnan(r)][0]}: unknown bus")
        return r.astype(np.int64)


@dataclass
class _Branches:
    """All in-service branches in from/to orientation with their two-ports per sequence."""

    kind: list[str] = field(default_factory=list)
    pp_index: list[int] = field(default_factory=list)
    frow: list[int] = field(default_factory=list)
    trow: list[int] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)  # each [3 sequences, 4] = yff, yft, ytf, ytt

    def add(self, kind: str, pp_index: int, frow: int, trow: int, y012: np.ndarray) -> None:
        self.kind.append(kind)
        self.pp_index.append(int(pp_index))
        self.frow.append(int(frow))
        self.trow.append(int(trow))
        self.y.append(y012)


def _check_supported(net: Any) -> None:
    for table in _UNSUPPORTED_TABLES:
        df = net[table] if table in net else None
        if df is None or not isinstance(df, pd.DataFrame) or len(df) == 0:
            continue
        active = _bool_col(df, "in_service", True)
        if active.any():
            raise RadialModelError(
                f"{table} {df.index[np.argmax(active)]} is in service: element type {table!r} is not supported "
                "by the radial solver"
            )
    load = net.load
    if len(load):
        active = _bool_col(load, "in_service", True)
        for c in _ZIP_COLUMNS:
            if c in load.columns:
                bad = active & (np.nan_to_num(_float_col(load, c), nan=0.0) != 0)
                if bad.any():
                    raise RadialModelError(
                        f"load {load.index[np.argmax(bad)]}: voltage-dependent load ({c} != 0) is not supported"
                    )


def _fuse_buses(ctx: _Ctx) -> tuple[list[int], dict[tuple[str, int], set[int]]]:
    """Fuse closed bus-bus switches; returns impedance switches (row numbers) and open branch ends."""
    net = ctx.net
    n = len(ctx.bus_index)
    uf = _UnionFind(n)
    sw = net.switch if "switch" in net else pd.DataFrame()
    imp_switches: list[int] = []
    open_ends: dict[tuple[str, int], set[int]] = {}
    if len(sw):
        closed = _bool_col(sw, "closed", True)
        et = _col(sw, "et", "b")
        z = np.nan_to_num(_float_col(sw, "z_ohm", 0.0), nan=0.0)
        bus_rows = ctx.row_of.reindex(sw["bus"].to_numpy()).to_numpy()
        if np.isnan(bus_rows).any():
            raise RadialModelError(f"switch {sw.index[np.isnan(bus_rows)][0]}: unknown bus")
        for k in range(len(sw)):
            if et[k] == "b" and closed[k]:
                b = int(ctx.row_of.get(int(sw["element"].iat[k]), -1))
                if b < 0:
                    raise RadialModelError(f"switch {sw.index[k]}: unknown bus {sw['element'].iat[k]}")
                if z[k] > 0:
                    imp_switches.append(k)
                else:
                    uf.union(int(bus_rows[k]), b)
            elif et[k] in ("l", "t") and not closed[k]:
                key = ("line" if et[k] == "l" else "trafo", int(sw["element"].iat[k]))
                open_ends.setdefault(key, set()).add(int(bus_rows[k]))
    ctx.rep = np.array([uf.find(i) for i in range(n)], dtype=np.int64)
    return imp_switches, open_ends


def _add_lines(ctx: _Ctx, br: _Branches) -> None:
    """pandapower's line pi model (``_calc_line_parameter``, ``_add_line_sc_impedance_zero``)."""
    line = ctx.net.line
    nl = len(line)
    if not nl:
        return
    idx = line.index.to_numpy()
    fr = ctx.rows("line", idx, line["from_bus"].to_numpy())
    to = ctx.rows("line", idx, line["to_bus"].to_numpy())
    zb = ctx.vn[ctx.rep[fr]] ** 2 / ctx.sn  # base of the from bus
    length = _float_col(line, "length_km")
    par = _float_col(line, "parallel", 1.0)
    act = _bool_col(line, "in_service", True)
    w = 2 * ctx.f_hz * math.pi
    r = _float_col(line, "r_ohm_per_km") * length / zb / par
    x = _float_col(line, "x_ohm_per_km") * length / zb / par
    b = w * _float_col(line, "c_nf_per_km", 0.0) * 1e-9 * zb * length * par
    g = np.nan_to_num(_float_col(line, "g_us_per_km", 0.0), nan=0.0) * 1e-6 * zb * length * par
    for what, val in (("r_ohm_per_km, length_km or parallel", r), ("x_ohm_per_km", x), ("c_nf_per_km", b)):
        _check_finite(np.where(act, val, 0.0), f"line {what}", idx)
    zero_z = act & (r == 0) & (x == 0)
    if zero_z.any():
        raise RadialModelError(f"line {idx[np.argmax(zero_z)]}: zero impedance")
    ys = 1.0 / np.where(act, r + 1j * x, 1.0)
    y1 = np.array(_two_port(ys, ys, g + 1j * b, g + 1j * b, np.ones(nl)))
    y0 = np.zeros_like(y1)
    if ctx.want3:
        cols = ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km")
        missing = [c for c in cols if c not in line.columns]
        if missing:
            ctx.three_err.append(f"line: zero-sequence data missing (columns {', '.join(missing)})")
        else:
            r0 = _float_col(line, "r0_ohm_per_km") * length / zb / par
            x0 = _float_col(line, "x0_ohm_per_km") * length / zb / par
            b0 = w * _float_col(line, "c0_nf_per_km") * 1e-9 * zb * length * par
            bad = act & ~(np.isfinite(r0) & np.isfinite(x0) & np.isfinite(b0))
            zero0 = act & (r0 == 0) & (x0 == 0)
            if bad.any():
                ctx.three_err.append(f"line {idx[np.argmax(bad)]}: zero-sequence data missing ({', '.join(cols)})")
            elif zero0.any():
                ctx.three_err.append(f"line {idx[np.argmax(zero0)]}: zero zero-sequence impedance")
            else:
                ys0 = 1.0 / np.where(act, r0 + 1j * x0, 1.0)
                y0 = np.array(_two_port(ys0, ys0, 1j * b0, 1j * b0, np.ones(nl)))
    for k in np.flatnonzero(act):
        br.add("line", idx[k], fr[k], to[k], np.stack([y0[:, k], y1[:, k], y1[:, k]]))


def _trafo_pi(ctx: _Ctx, trafo: pd.DataFrame, act: np.ndarray, vnl_t: np.ndarray, vn_bus_lv: np.ndarray):
    """Series impedance and magnetising admittance as pi-model parameters (pandapower's
    ``_calc_r_x_from_dataframe``, ``_calc_y_from_dataframe`` and ``_wye_delta``).

    Returns r, x, g, b, g_asym, b_asym [pu] and tap_lv (LV impedance base correction).
    """
    idx = trafo.index.to_numpy()
    par = _float_col(trafo, "parallel", 1.0)
    sn_t = _float_col(trafo, "sn_mva")
    vn_lv_rated = _float_col(trafo, "vn_lv_kv")
    tap_lv = (vnl_t / vn_bus_lv) ** 2 * ctx.sn
    z_sc = _float_col(trafo, "vk_percent") / 100.0 / sn_t * tap_lv
    r_sc = _float_col(trafo, "vkr_percent") / 100.0 / sn_t * tap_lv
    with np.errstate(invalid="ignore"):
        x_sc = np.sign(z_sc) * np.sqrt(z_sc**2 - r_sc**2)
    _check_finite(np.where(act, x_sc, 0.0), "trafo vk_percent/vkr_percent (vkr > vk?)", idx)
    r = r_sc / par
    x = x_sc / par
    base_z = vn_bus_lv**2 / ctx.sn
    pfe = _float_col(trafo, "pfe_kw") * 1e-3
    ym = _float_col(trafo, "i0_percent") / 100.0 * sn_t
    b_mva = -np.sqrt(np.maximum(ym**2 - pfe**2, 0.0))
    corr = base_z * par / vn_lv_rated**2 / (vnl_t / vn_lv_rated) ** 2
    g = pfe * corr
    b = b_mva * corr
    g_asym = np.zeros(len(trafo))
    b_asym = np.zeros(len(trafo))
    if ctx.trafo_model == "t":
        # T circuit -> equivalent pi (star-delta), magnetising branch between the two leakage halves
        r_ratio = np.nan_to_num(_float_col(trafo, "leakage_resistance_ratio_hv", 0.5), nan=0.5)
        x_ratio = np.nan_to_num(_float_col(trafo, "leakage_reactance_ratio_hv", 0.5), nan=0.5)
        t = act & ((g != 0) | (b != 0))
        za = r[t] * r_ratio[t] + 1j * x[t] * x_ratio[t]
        zb = r[t] * (1 - r_ratio[t]) + 1j * x[t] * (1 - x_ratio[t])
        zc = 1.0 / (g[t] + 1j * b[t])
        zsum = za * zb + za * zc + zb * zc
        zab = zsum / zc
        yf = zb / zsum  # 1 / z_ac
        yt = za / zsum  # 1 / z_bc
        r[t], x[t] = zab.real, zab.imag
        g[t], b[t] = 2 * yf.real, 2 * yf.imag
        g_asym[t] = 2 * yt.real - g[t]
        b_asym[t] = 2 * yt.imag - b[t]
    return r, x, g, b, g_asym, b_asym, tap_lv


def _trafo_zero_sequence(ctx: _Ctx, trafo: pd.DataFrame, k: int, tap_lv: float, vn_bus_lv: float, vk0_fallback):
    """LV-side zero-sequence shunt of a Dyn transformer (``_add_trafo_sc_impedance_zero``) [pu], or None."""
    tidx = trafo.index[k]
    need = ("vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx", "si0_hv_partial")
    vals = {c: _float_col(trafo, c)[k] for c in need}
    miss = [c for c, v in vals.items() if not np.isfinite(v)]
    if miss:
        ctx.three_err.append(f"trafo {tidx}: zero-sequence data missing ({', '.join(miss)})")
        return None
    use_vk0, use_vkr0 = vk0_fallback
    vk0 = vals["vk0_percent"] if use_vk0 else _float_col(trafo, "vk_percent")[k]
    vkr0 = vals["vkr0_percent"] if use_vkr0 else _float_col(trafo, "vkr_percent")[k]
    sn_t = _float_col(trafo, "sn_mva")[k]
    par = _float_col(trafo, "parallel", 1.0)[k]
    z0 = vk0 / 100.0 / sn_t * tap_lv
    r0 = vkr0 / 100.0 / sn_t * tap_lv
    x0 = np.sign(z0) * math.sqrt(max(z0**2 - r0**2, 0.0))
    z0_k = (r0 + 1j * x0) / par
    xn = np.nan_to_num(_float_col(trafo, "xn_ohm", 0.0)[k], nan=0.0)
    rn = np.nan_to_num(_float_col(trafo, "rn_ohm", 0.0)[k], nan=0.0)
    if xn != 0 or rn != 0:  # neutral earthing impedance, 3 Z_N in series
        z0_k = z0_k + 3 * (rn + 1j * xn) / (vn_bus_lv**2 / ctx.sn)
    if ctx.trafo_model == "pi":
        return 1.0 / z0_k
    z_m = z0 * vals["mag0_percent"] * 1e-2
    x_m = z_m / math.sqrt(vals["mag0_rx"] ** 2 + 1)
    z0_mag = (x_m * vals["mag0_rx"] + 1j * x_m) / par
    z1 = vals["si0_hv_partial"] * z0_k  # HV leakage part (delta: shorted in the zero sequence)
    z2 = (1 - vals["si0_hv_partial"]) * z0_k
    zt = z1 * z2 + z2 * z0_mag + z1 * z0_mag
    return (z0_mag + z1) / zt  # pandapower's YAB + YBN = 1 / (z2 + z1 || z0_mag)


def _add_trafos(ctx: _Ctx, br: _Branches) -> np.ndarray:
    """pandapower's transformer model per sequence; returns the mask of unearthed (IT) LV windings."""
    trafo = ctx.net.trafo
    nt = len(trafo)
    floating = np.zeros(nt, dtype=bool)
    if not nt:
        return floating
    idx = trafo.index.to_numpy()
    act = _bool_col(trafo, "in_service", True)
    hv = ctx.rows("trafo", idx, trafo["hv_bus"].to_numpy())
    lv = ctx.rows("trafo", idx, trafo["lv_bus"].to_numpy())
    for c in ("vk_percent", "vkr_percent", "sn_mva", "vn_hv_kv", "vn_lv_kv", "pfe_kw", "i0_percent"):
        _check_finite(np.where(act, _float_col(trafo, c), 0.0), f"trafo {c}", idx)
    bad_df = act & ~(_float_col(trafo, "df", 1.0) > 0)
    if bad_df.any():
        raise RadialModelError(f"trafo {idx[np.argmax(bad_df)]}: df must be positive")
    vnh_t, vnl_t, shift = _trafo_taps(trafo, ctx.calculate_voltage_angles)
    vn_bus_hv = ctx.vn[ctx.rep[hv]]
    vn_bus_lv = ctx.vn[ctx.rep[lv]]
    ratio = (vnh_t / vnl_t) / (vn_bus_hv / vn_bus_lv)
    r, x, g, b, g_asym, b_asym, tap_lv = _trafo_pi(ctx, trafo, act, vnl_t, vn_bus_lv)
    zero_z = act & (r == 0) & (x == 0)
    if zero_z.any():
        raise RadialModelError(f"trafo {idx[np.argmax(zero_z)]}: zero short-circuit impedance")
    ys = 1.0 / np.where(act, r + 1j * x, 1.0)
    bcf = g + 1j * b
    bct = (g + g_asym) + 1j * (b + b_asym)
    y1 = np.array(_two_port(ys, ys, bcf, bct, ratio * np.exp(1j * np.deg2rad(shift))))
    y2 = np.array(_two_port(ys, ys, bcf, bct, ratio * np.exp(-1j * np.deg2rad(shift))))  # shift negated
    y0 = np.zeros_like(y1)
    if ctx.want3:
        groups = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v)
            for v in _col(trafo, "vector_group", None)
        ]
        dyn = act & np.array([g_ is not None and g_.lower() == _EARTHED_DYN for g_ in groups])
        # pandapower uses vk/vkr instead of vk0/vkr0 when all of the group's values are ~0
        fallback = tuple(
            bool(dyn.any() and np.nanmax(np.abs(_float_col(trafo, c)[dyn])) > 1e-8)
            for c in ("vk0_percent", "vkr0_percent")
        )
        for k in np.flatnonzero(act):
            vg = groups[k]
            if vg is None:
                ctx.three_err.append(f"trafo {idx[k]}: vector_group missing (set e.g. 'Dyn')")
            elif vg[-1].isdigit():
                ctx.three_err.append(
                    f"trafo {idx[k]}: vector_group {vg!r} has a clock number; use 'Dyn' and shift_degree "
                    "(pandapower's convention)"
                )
            elif vg.lower() in _UNEARTHED_LV:
                floating[k] = True  # zero sequence open on both sides
            elif vg.lower() != _EARTHED_DYN:
                ctx.three_err.append(f"trafo {idx[k]}: vector_group {vg!r} not supported (Dyn, Dy, Yy, Dd, Yd)")
            else:
                y0tt = _trafo_zero_sequence(ctx, trafo, k, tap_lv[k], vn_bus_lv[k], fallback)
                if y0tt is not None:
                    y0[:, k] = (0.0, 0.0, 0.0, y0tt)  # HV side open (delta), LV side earthed
    for k in np.flatnonzero(act):
        br.add("trafo", idx[k], hv[k], lv[k], np.stack([y0[:, k], y1[:, k], y2[:, k]]))
    return floating


def _add_impedance_switches(ctx: _Ctx, br: _Branches, rows: list[int]) -> None:
    """Closed bus-bus switches with ``z_ohm > 0``: series impedance, R/X = ``switch_rx_ratio``."""
    sw = ctx.net.switch
    rz = _SWITCH_RX_RATIO / math.sqrt(1 + _SWITCH_RX_RATIO**2)
    xz = 1.0 / math.sqrt(1 + _SWITCH_RX_RATIO**2)
    for k in rows:
        a = int(ctx.row_of[int(sw["bus"].iat[k])])
        b = int(ctx.row_of[int(sw["element"].iat[k])])
        zb = ctx.vn[ctx.rep[a]] ** 2 / ctx.sn
        ys = 1.0 / (float(sw["z_ohm"].iat[k]) / zb * (rz + 1j * xz))
        yy = np.array([ys, -ys, -ys, ys], dtype=complex)
        br.add("switch", sw.index[k], a, b, np.stack([yy, yy, yy]))


@dataclass
class _Tree:
    parent: np.ndarray  # [n] parent position, -1 for the root
    node_rows: np.ndarray  # [n] fused representative bus row of each position
    pos_of_node: dict[int, int]  # representative row -> position
    edge_branches: list[list[int]]  # [n] branches (indices into _Branches) between a bus and its parent


def _build_tree(ctx: _Ctx, br: _Branches, fn: np.ndarray, tn: np.ndarray, both: np.ndarray, root: int) -> _Tree:
    """Breadth-first tree of the slack's component; raises naming the branch that closes a loop."""
    n = len(ctx.bus_index)
    comp = _UnionFind(n)
    for i in np.flatnonzero(both):
        comp.union(int(fn[i]), int(tn[i]))
    root_c = comp.find(root)
    loops = _UnionFind(n)
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(both):
        a, b = int(fn[i]), int(tn[i])
        if a == b or comp.find(a) != root_c:
            continue  # fused onto one bus (handled as a shunt) or not supplied
        key = (min(a, b), max(a, b))
        if key in pairs:  # parallel branch: summed into the same two-port
            pairs[key].append(int(i))
            continue
        if loops.find(a) == loops.find(b):
            raise RadialModelError(
                f"{br.kind[i]} {br.pp_index[i]} closes a loop: buses {ctx.bus_index[a]} and {ctx.bus_index[b]} "
                "are already connected through other branches; only radial networks are supported (open a switch)"
            )
        loops.union(a, b)
        pairs[key] = [int(i)]
    adj: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for a, b in pairs:
        adj.setdefault(a, []).append((b, (a, b)))
        adj.setdefault(b, []).append((a, (a, b)))
    order, parent, edges = [root], [-1], [[]]
    pos = {root: 0}
    head = 0
    while head < len(order):
        for v, key in sorted(adj.get(order[head], ())):
            if v not in pos:
                pos[v] = len(order)
                order.append(v)
                parent.append(head)
                edges.append(pairs[key])
        head += 1
    return _Tree(np.array(parent, dtype=np.int64), np.array(order, dtype=np.int64), pos, edges)


def _ext_grid_earthing(ctx: _Ctx, eg_idx: Any, eg_row: pd.Series) -> np.ndarray:
    """Slack-to-ground admittance per sequence [pu]: pandapower's ext_grid impedance (c = 1.1) in the
    zero and negative sequence of runpp_3ph; 0 in the positive sequence (ideal slack)."""
    y = np.zeros(3, dtype=complex)
    if not ctx.want3:
        return y
    need = ("s_sc_max_mva", "rx_max", "x0x_max", "r0x0_max")
    vals = {c: float(pd.to_numeric(eg_row.get(c, np.nan), errors="coerce")) for c in need}
    miss = [c for c, v in vals.items() if not np.isfinite(v)]
    if miss:
        ctx.three_err.append(f"ext_grid {eg_idx}: short-circuit data missing ({', '.join(miss)})")
    elif vals["s_sc_max_mva"] <= 0:
        ctx.three_err.append(f"ext_grid {eg_idx}: s_sc_max_mva must be positive")
    else:
        z = _C_EXT_GRID * ctx.sn / vals["s_sc_max_mva"]
        xg = z / math.sqrt(vals["rx_max"] ** 2 + 1)
        x0g = vals["x0x_max"] * xg
        y[2] = 1.0 / (vals["rx_max"] * xg + 1j * xg)
        z0 = vals["r0x0_max"] * x0g + 1j * x0g
        y[0] = 1.0 / z0 if z0 != 0 else 0.0
    return y


def _element_table(ctx: _Ctx, table: str, sign: float, asym: bool, bus_pos: np.ndarray) -> _ElementTable:
    net = ctx.net
    df = net[table] if table in net else None
    if df is None or len(df) == 0:
        shape = (0, 3) if asym else (0,)
        empty_i = np.zeros(0, np.int64)
        return _ElementTable(table, empty_i, empty_i, np.zeros(0, bool), sign, np.zeros(shape), np.zeros(shape))
    idx = df.index.to_numpy().astype(np.int64)
    rows = ctx.rows(table, idx, df["bus"].to_numpy())
    act = _bool_col(df, "in_service", True)
    pos = np.where(act, bus_pos[rows], -1).astype(np.int64)
    scaling = _float_col(df, "scaling", 1.0)
    delta = np.array([isinstance(t, str) and t.lower() == "delta" for t in _col(df, "type", None)], dtype=bool)
    if asym:
        p = np.stack([_float_col(df, f"p_{ph}_mw", 0.0) for ph in "abc"], axis=1) * scaling[:, None]
        q = np.stack([_float_col(df, f"q_{ph}_mvar", 0.0) for ph in "abc"], axis=1) * scaling[:, None]
    else:
        p = _float_col(df, "p_mw", 0.0) * scaling
        q = _float_col(df, "q_mvar", 0.0) * scaling
    finite = (np.isfinite(p) & np.isfinite(q)).reshape(len(idx), -1).all(axis=1)
    if (act & ~finite).any():
        raise RadialModelError(f"{table} {idx[np.argmax(act & ~finite)]}: p/q or scaling missing or not finite")
    return _ElementTable(table, idx, pos, delta, sign, p, q)


def build_radial_model(
    net: Any,
    *,
    calculate_voltage_angles: bool = True,
    trafo_model: Literal["t", "pi"] = "t",
    three_phase: bool | None = None,
) -> RadialModel:
    """Build the compact radial model of a pandapower network.

    Parameters
    ----------
    net : pandapowerNet
        A radial network with exactly one in-service ext_grid.
    calculate_voltage_angles : bool, default True
        Include transformer phase shifts in the voltage angles (as pandapower's
        option of the same name).
    trafo_model : {"t", "pi"}, default "t"
        Transformer equivalent circuit, as pandapower's option.
    three_phase : bool or None, default None
        Build the negative- and zero-sequence data for :func:`run_batch_3ph`.
        ``True`` raises if the data are missing; ``None`` builds them when
        possible and records the reason otherwise in
        :attr:`RadialModel.three_phase_error`; ``False`` skips them.

    Returns
    -------
    RadialModel

    Raises
    ------
    RadialModelError
        Meshed network (names the branch closing the loop), unsupported element
        or parameter (names the element), missing or invalid data.
    """
    if trafo_model not in ("t", "pi"):
        raise RadialModelError(f"trafo_model must be 't' or 'pi', got {trafo_model!r}")
    _check_supported(net)
    eg = net.ext_grid
    eg_active = _bool_col(eg, "in_service", True)
    if eg_active.sum() != 1:
        raise RadialModelError(f"exactly one in-service ext_grid required, found {int(eg_active.sum())}")
    eg_idx = eg.index[eg_active][0]
    eg_row = eg.loc[eg_idx]

    bus_index = net.bus.index.to_numpy().astype(np.int64)
    ctx = _Ctx(
        net=net,
        sn=float(net.sn_mva),
        f_hz=float(net.f_hz),
        bus_index=bus_index,
        row_of=pd.Series(np.arange(len(bus_index)), index=bus_index),
        bus_ok=_bool_col(net.bus, "in_service", True),
        vn=_float_col(net.bus, "vn_kv"),
        want3=three_phase is not False,
        trafo_model=trafo_model,
        calculate_voltage_angles=calculate_voltage_angles,
    )
    imp_switches, open_ends = _fuse_buses(ctx)

    # branches in from/to orientation
    br = _Branches()
    _add_lines(ctx, br)
    floating_trafo = _add_trafos(ctx, br)
    _add_impedance_switches(ctx, br, imp_switches)
    nbr = len(br.kind)
    br_y_all = np.stack(br.y, axis=2) if nbr else np.zeros((3, 4, 0), dtype=complex)
    frow = np.array(br.frow, dtype=np.int64)
    trow = np.array(br.trow, dtype=np.int64)
    f_ok = np.array(
        [ctx.bus_ok[frow[i]] and frow[i] not in open_ends.get((br.kind[i], br.pp_index[i]), ()) for i in range(nbr)],
        dtype=bool,
    )
    t_ok = np.array(
        [ctx.bus_ok[trow[i]] and trow[i] not in open_ends.get((br.kind[i], br.pp_index[i]), ()) for i in range(nbr)],
        dtype=bool,
    )
    fn, tn = ctx.rep[frow], ctx.rep[trow]

    # topology
    slack_row = int(ctx.row_of.get(int(eg_row["bus"]), -1))
    if slack_row < 0:
        raise RadialModelError(f"ext_grid {eg_idx}: unknown bus {eg_row['bus']}")
    if not ctx.bus_ok[slack_row]:
        raise RadialModelError(f"ext_grid {eg_idx}: bus {eg_row['bus']} is out of service")
    tree = _build_tree(ctx, br, fn, tn, f_ok & t_ok, int(ctx.rep[slack_row]))
    parent = tree.parent
    n = len(parent)
    bus_pos = np.array(
        [tree.pos_of_node.get(int(ctx.rep[i]), -1) if ctx.bus_ok[i] else -1 for i in range(len(bus_index))],
        dtype=np.int64,
    )

    # tree two-ports in parent/child orientation; dangling branches become shunts
    ypp, ypc, ycp, ycc, ysh = (np.zeros((3, n), dtype=complex) for _ in range(5))
    for c in range(1, n):
        for i in tree.edge_branches[c]:
            yff, yft, ytf, ytt = br_y_all[:, :, i].T
            if tree.pos_of_node[int(fn[i])] == parent[c]:
                ypp[:, c] += yff
                ypc[:, c] += yft
                ycp[:, c] += ytf
                ycc[:, c] += ytt
            else:
                ypp[:, c] += ytt
                ypc[:, c] += ytf
                ycp[:, c] += yft
                ycc[:, c] += yff
    br_f = np.zeros(nbr, dtype=np.int64)
    br_t = np.zeros(nbr, dtype=np.int64)
    br_y = np.zeros((3, 4, nbr), dtype=complex)
    for i in range(nbr):
        pf = tree.pos_of_node.get(int(fn[i]), -1) if f_ok[i] else -1
        pt = tree.pos_of_node.get(int(tn[i]), -1) if t_ok[i] else -1
        yff, yft, ytf, ytt = br_y_all[:, :, i].T
        with np.errstate(divide="ignore", invalid="ignore"):
            if pf >= 0 and pt >= 0:
                br_f[i], br_t[i] = pf, pt
                br_y[:, :, i] = br_y_all[:, :, i]
                if pf == pt:  # both ends on one (fused) bus
                    ysh[:, pf] += yff + yft + ytf + ytt
            elif pf >= 0:  # to-end open: the branch is a shunt at the from-end
                yeq = np.where(ytt != 0, yff - yft * ytf / ytt, yff)
                br_f[i] = br_t[i] = pf
                br_y[:, 0, i] = yeq
                ysh[:, pf] += yeq
            elif pt >= 0:
                yeq = np.where(yff != 0, ytt - ytf * yft / yff, ytt)
                br_f[i] = br_t[i] = pt
                br_y[:, 3, i] = yeq
                ysh[:, pt] += yeq

    y_slack = _ext_grid_earthing(ctx, eg_idx, eg_row)
    floating = bool(np.any(floating_trafo))  # an unearthed LV winding: IT network, zero sequence floating

    # PQ elements
    elems = {
        "load": _element_table(ctx, "load", 1.0, False, bus_pos),
        "sgen": _element_table(ctx, "sgen", -1.0, False, bus_pos),
        "storage": _element_table(ctx, "storage", 1.0, False, bus_pos),
        "asymmetric_load": _element_table(ctx, "asymmetric_load", 1.0, True, bus_pos),
        "asymmetric_sgen": _element_table(ctx, "asymmetric_sgen", -1.0, True, bus_pos),
    }
    if floating and ctx.want3:
        for name, el in elems.items():
            wye = (el.pos >= 0) & ~el.delta
            if wye.any():
                ctx.three_err.append(
                    f"{name} {el.index[np.argmax(wye)]} is connected phase-to-neutral, but the zero-sequence "
                    "network is not earthed (unearthed transformer LV winding): only delta loads are possible"
                )
                break
    if three_phase and ctx.three_err:
        raise RadialModelError("; ".join(ctx.three_err))

    # sweep factors per sequence
    m = np.zeros((3, n), dtype=complex)
    kup = np.zeros((3, n), dtype=complex)
    seqs = (0, 1, 2) if (ctx.want3 and not ctx.three_err) else (1,)
    for s in seqs:
        m[s], kup[s], _ = kernels.sweep_factors(
            parent, ypp[s], ypc[s], ycp[s], ycc[s], ysh[s], y_slack[s] if s != 1 else 0j
        )
    if np.any(m[1, 1:] == 0):
        raise RadialModelError("positive-sequence network is singular (a branch without admittance?)")

    # line / trafo result rows
    line_index = net.line.index.to_numpy().astype(np.int64)
    trafo_index = net.trafo.index.to_numpy().astype(np.int64)
    nL, nT = len(line_index), len(trafo_index)
    res_f = np.zeros(nL + nT, dtype=np.int64)
    res_t = np.zeros(nL + nT, dtype=np.int64)
    res_y = np.zeros((3, 4, nL + nT), dtype=complex)
    ib_f = np.zeros(nL + nT)
    ib_t = np.zeros(nL + nT)
    row_in_result = {("line", int(v)): k for k, v in enumerate(line_index)}
    row_in_result.update({("trafo", int(v)): nL + k for k, v in enumerate(trafo_index)})
    for i in range(nbr):
        k = row_in_result.get((br.kind[i], br.pp_index[i]), -1)
        if k < 0:
            continue  # impedance switch
        res_f[k], res_t[k] = br_f[i], br_t[i]
        res_y[:, :, k] = br_y[:, :, i]
        ib_f[k] = ctx.sn / (_SQRT3 * ctx.vn[ctx.rep[frow[i]]])
        ib_t[k] = ctx.sn / (_SQRT3 * ctx.vn[ctx.rep[trow[i]]])
    trafo = net.trafo

    va = float(eg_row.get("va_degree", 0.0))
    v_slack = complex(float(eg_row["vm_pu"]) * np.exp(1j * np.deg2rad(va)))
    if not np.isfinite(v_slack):
        raise RadialModelError(f"ext_grid {eg_idx}: vm_pu/va_degree not finite")
    if not ctx.want3:
        three_phase_error: str | None = "model built with three_phase=False"
    else:
        three_phase_error = "; ".join(ctx.three_err) or None

    return RadialModel(
        sn_mva=ctx.sn,
        parent=parent,
        node_bus=bus_index[tree.node_rows],
        vn_kv=ctx.vn[tree.node_rows],
        bus_index=bus_index,
        bus_pos=bus_pos,
        v_slack=v_slack,
        ypp=ypp,
        ypc=ypc,
        ycp=ycp,
        ycc=ycc,
        ysh=ysh,
        y_slack=y_slack,
        m=m,
        kup=kup,
        zero_seq_floating=floating,
        line_index=line_index,
        trafo_index=trafo_index,
        br_f=res_f,
        br_t=res_t,
        br_y=res_y,
        br_ibase_f=ib_f,
        br_ibase_t=ib_t,
        line_imax_ka=_float_col(net.line, "max_i_ka")
        * _float_col(net.line, "df", 1.0)
        * _float_col(net.line, "parallel", 1.0),
        trafo_sn_mva=_float_col(trafo, "sn_mva"),
        trafo_vn_hv_kv=_float_col(trafo, "vn_hv_kv"),
        trafo_vn_lv_kv=_float_col(trafo, "vn_lv_kv"),
        trafo_rating_factor=_float_col(trafo, "parallel", 1.0) * _float_col(trafo, "df", 1.0),
        elements=elems,
        three_phase_error=three_phase_error,
        root_children=np.flatnonzero(parent == 0).astype(np.int64),
    )


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------

_ErrorMode = Literal["mask", "raise"]


def _as_batch(name: str, value: Any, trailing: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a numeric array") from None
    nt = len(trailing)
    if arr.ndim < nt or arr.shape[arr.ndim - nt :] != trailing:
        want = ", ".join(str(t) for t in trailing)
        raise ValueError(f"{name}: expected shape (..., {want}), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
        raise ValueError(f"{name}: contains NaN or infinite values (first at index {where})")
    return arr


class _Inputs:
    """Collects the optional power arrays and checks that their batch shapes agree."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.first: str | None = None

    def add(self, name: str, value: Any, trailing: tuple[int, ...]) -> np.ndarray | None:
        if value is None:
            return None
        arr = _as_batch(name, value, trailing)
        bshape = arr.shape[: arr.ndim - len(trailing)]
        if self.shape is None:
            self.shape, self.first = bshape, name
        elif bshape != self.shape:
            raise ValueError(f"{name}: batch shape {bshape} differs from {self.first}'s batch shape {self.shape}")
        return arr

    def flat(self, arr: np.ndarray | None, static: np.ndarray, trailing: tuple[int, ...]) -> np.ndarray:
        bshape = self.shape or ()
        nb = int(np.prod(bshape)) if bshape else 1
        if arr is None:
            return np.broadcast_to(static, (nb, *trailing))
        return arr.reshape((nb, *trailing))


def _common_inputs(model: RadialModel, kw: dict[str, Any], three_phase: bool):
    """Validate all power arguments; returns (inputs, dict of flattened float arrays)."""
    inp = _Inputs()
    el = model.elements
    nbus = len(model.bus_index)
    spec: list[tuple[str, str, str, tuple[int, ...]]] = [
        ("p_mw", "load", "p", (len(el["load"].index),)),
        ("q_mvar", "load", "q", (len(el["load"].index),)),
        ("sgen_p_mw", "sgen", "p", (len(el["sgen"].index),)),
        ("sgen_q_mvar", "sgen", "q", (len(el["sgen"].index),)),
        ("storage_p_mw", "storage", "p", (len(el["storage"].index),)),
        ("storage_q_mvar", "storage", "q", (len(el["storage"].index),)),
        ("asym_load_p_mw", "asymmetric_load", "p", (len(el["asymmetric_load"].index), 3)),
        ("asym_load_q_mvar", "asymmetric_load", "q", (len(el["asymmetric_load"].index), 3)),
        ("asym_sgen_p_mw", "asymmetric_sgen", "p", (len(el["asymmetric_sgen"].index), 3)),
        ("asym_sgen_q_mvar", "asymmetric_sgen", "q", (len(el["asymmetric_sgen"].index), 3)),
    ]
    bus_spec: list[tuple[str, tuple[int, ...]]] = (
        [
            ("bus_p_mw", (nbus, 3)),
            ("bus_q_mvar", (nbus, 3)),
            ("bus_delta_p_mw", (nbus, 3)),
            ("bus_delta_q_mvar", (nbus, 3)),
        ]
        if three_phase
        else [("bus_p_mw", (nbus,)), ("bus_q_mvar", (nbus,))]
    )
    raw: dict[str, np.ndarray | None] = {}
    for name, _, _, trailing in spec:
        raw[name] = inp.add(name, kw.get(name), trailing)
    for name, trailing in bus_spec:
        raw[name] = inp.add(name, kw.get(name), trailing)
    vm = kw.get("vm_pu_slack")
    vm_arr = None
    if vm is not None:
        vm_arr = np.asarray(vm, dtype=float)
        if inp.shape is None:
            inp.shape, inp.first = vm_arr.shape, "vm_pu_slack"
        elif vm_arr.shape not in (inp.shape, ()):
            raise ValueError(
                f"vm_pu_slack: shape {vm_arr.shape} differs from the batch shape {inp.shape} of {inp.first}"
            )
        if not np.isfinite(vm_arr).all() or (vm_arr <= 0).any():
            raise ValueError("vm_pu_slack: values must be finite and positive")
    flat: dict[str, np.ndarray] = {}
    for name, table, pq, trailing in spec:
        e = el[table]
        static = e.p_mw if pq == "p" else e.q_mvar
        flat[name] = inp.flat(raw[name], static, trailing)
    for name, trailing in bus_spec:
        flat[name] = inp.flat(raw[name], np.zeros(trailing), trailing)
    shape = inp.shape or ()
    nb = int(np.prod(shape)) if shape else 1
    if vm_arr is None:
        v_slack = np.full(nb, model.v_slack, dtype=complex)
    else:
        ang = np.angle(model.v_slack)
        v_slack = (np.broadcast_to(vm_arr, shape).reshape(nb) * np.exp(1j * ang)).astype(complex)
    return shape, nb, flat, v_slack


_PARALLEL_MIN_WORK = 200_000  # batch items x buses below which the serial kernel is used


def _use_threads(parallel: bool | None, nb: int, n_bus: int) -> bool:
    if parallel is None:
        return nb >= 16 and nb * n_bus >= _PARALLEL_MIN_WORK
    return bool(parallel)


def _check_solver_args(tol: float, max_iter: int, errors: str) -> None:
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: must be a positive number, got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter!r}")
    if errors not in ("mask", "raise"):
        raise ValueError(f"errors: must be 'mask' or 'raise', got {errors!r}")


def _raise_not_converged(status: np.ndarray, shape: tuple[int, ...], max_iter: int | None) -> None:
    bad = np.flatnonzero(status != kernels.STATUS_CONVERGED)
    if bad.size:
        where = [tuple(int(j) for j in np.unravel_index(int(b), shape)) if shape else () for b in bad[:5]]
        limit = f" within max_iter={max_iter}" if max_iter is not None else " within max_iter"
        kinds = {kernels.STATUS_MAX_ITER: "no convergence" + limit, kernels.STATUS_DIVERGED: "diverged"}
        first = kinds.get(int(status[bad[0]]), "failed")
        raise PowerFlowNotConverged(
            f"{bad.size} of {status.size} batch items did not converge ({first} at batch index {where[0]}); "
            f"first indices: {where}"
        )


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _BatchResultBase:
    """Fields and accessors shared by the balanced and the per-phase results."""

    v_pu: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray

    @property
    def vm_pu(self) -> np.ndarray:
        """Voltage magnitudes [pu], shape of ``v_pu``."""
        return np.abs(self.v_pu)

    @property
    def va_degree(self) -> np.ndarray:
        """Voltage angles [degree], shape of ``v_pu``."""
        return np.rad2deg(np.angle(self.v_pu))

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    def raise_if_not_converged(self) -> None:
        """Raise :class:`PowerFlowNotConverged` naming the failed batch indices."""
        _raise_not_converged(self.status.ravel(), self.status.shape, None)


@dataclass(frozen=True, eq=False)
class BatchResult(_BatchResultBase):
    """Results of :func:`run_batch`; leading axes are the batch shape of the inputs.

    Attributes
    ----------
    v_pu : ndarray of complex, shape (..., n_bus)
        Bus voltages [pu] in ``bus_index`` order; NaN for unsupplied buses and
        non-converged items.
    converged : ndarray of bool, shape (...)
    n_iter : ndarray of int, shape (...)
        Sweeps used.
    line_i_from_ka, line_i_to_ka, line_i_ka : ndarray, shape (..., n_line)
        Line terminal currents and their maximum [kA].
    line_loading_percent : ndarray, shape (..., n_line)
        ``i_ka / (max_i_ka * df * parallel)`` [%].
    trafo_i_hv_ka, trafo_i_lv_ka : ndarray, shape (..., n_trafo)
        Transformer terminal currents [kA].
    trafo_loading_percent : ndarray, shape (..., n_trafo)
        Current-based loading as pandapower's ``trafo_loading="current"`` [%].
    ext_grid_p_mw, ext_grid_q_mvar : ndarray, shape (...)
        Power supplied by the slack [MW], [Mvar].
    bus_index, line_index, trafo_index : ndarray
        pandapower indices of the last axes.
    """

    line_i_from_ka: np.ndarray | None = None
    line_i_to_ka: np.ndarray | None = None
    line_loading_percent: np.ndarray | None = None
    trafo_i_hv_ka: np.ndarray | None = None
    trafo_i_lv_ka: np.ndarray | None = None
    trafo_loading_percent: np.ndarray | None = None
    ext_grid_p_mw: np.ndarray | None = None
    ext_grid_q_mvar: np.ndarray | None = None

    @property
    def line_i_ka(self) -> np.ndarray | None:
        """Larger of the two terminal currents [kA], shape (..., n_line)."""
        if self.line_i_from_ka is None or self.line_i_to_ka is None:
            return None
        return np.maximum(self.line_i_from_ka, self.line_i_to_ka)


@dataclass(frozen=True, eq=False)
class BatchResult3ph(_BatchResultBase):
    """Results of :func:`run_batch_3ph`; leading axes are the batch shape, the last axis the phase a, b, c.

    Attributes
    ----------
    v_pu : ndarray of complex, shape (..., n_bus, 3)
        Phase-to-neutral voltages [pu of ``vn_kv/sqrt(3)``]; NaN for unsupplied
        buses and non-converged items. For an IT network (unearthed winding)
        these are relative to the symmetrical star point (zero sequence 0).
    converged, n_iter, status : ndarray, shape (...)
    line_i_ka : ndarray, shape (..., n_line, 3)
        Phase currents, larger of the two ends [kA].
    line_i_n_ka : ndarray, shape (..., n_line)
        Neutral (residual) current ``|Ia + Ib + Ic|``, larger end [kA].
    line_loading_percent : ndarray, shape (..., n_line)
        Highest phase current over ``max_i_ka * df * parallel`` [%].
    trafo_i_hv_ka, trafo_i_lv_ka : ndarray, shape (..., n_trafo, 3)
        Transformer phase currents [kA].
    trafo_loading_percent : ndarray, shape (..., n_trafo)
        Highest phase loading, pandapower's current-based definition [%].
    """

    line_i_ka: np.ndarray | None = None
    line_i_n_ka: np.ndarray | None = None
    line_loading_percent: np.ndarray | None = None
    trafo_i_hv_ka: np.ndarray | None = None
    trafo_i_lv_ka: np.ndarray | None = None
    trafo_loading_percent: np.ndarray | None = None

    @property
    def unbalance_percent(self) -> np.ndarray:
        """Voltage unbalance ``|V2| / |V1| * 100`` [%], shape (..., n_bus) (pandapower's definition)."""
        a = np.exp(2j * np.pi / 3)
        va, vb, vc = self.v_pu[..., 0], self.v_pu[..., 1], self.v_pu[..., 2]
        v1 = (va + a * vb + a * a * vc) / 3
        v2 = (va + a * a * vb + a * vc) / 3
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(v2) / np.abs(v1) * 100.0


def _to_net_buses(model: RadialModel, v: np.ndarray, bus_axis: int) -> np.ndarray:
    """Internal bus order -> net.bus order along ``bus_axis`` (NaN where unsupplied)."""
    sup = model.bus_pos >= 0
    shape = list(v.shape)
    shape[bus_axis] = len(model.bus_index)
    out = np.full(shape, np.nan + 0j, dtype=complex)
    idx: list[Any] = [slice(None)] * v.ndim
    idx[bus_axis] = np.flatnonzero(sup)
    out[tuple(idx)] = np.take(v, model.bus_pos[sup], axis=bus_axis)
    return out


# --------------------------------------------------------------------------------------------
# solvers
# --------------------------------------------------------------------------------------------


def run_batch(
    model: RadialModel,
    p_mw: Any = None,
    q_mvar: Any = None,
    *,
    sgen_p_mw: Any = None,
    sgen_q_mvar: Any = None,
    storage_p_mw: Any = None,
    storage_q_mvar: Any = None,
    asym_load_p_mw: Any = None,
    asym_load_q_mvar: Any = None,
    asym_sgen_p_mw: Any = None,
    asym_sgen_q_mvar: Any = None,
    bus_p_mw: Any = None,
    bus_q_mvar: Any = None,
    vm_pu_slack: Any = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    branch_results: bool = True,
    errors: _ErrorMode = "mask",
    parallel: bool | None = None,
) -> BatchResult:
    """Balanced power flow for a batch of load cases (time steps x scenarios x ...).

    Every power argument is optional; an omitted one takes the network's
    static values (``p_mw * scaling`` etc.) for every batch item. Given arrays
    hold the actual element powers (no ``scaling`` applied) with the batch
    axes first, e.g. ``p_mw[steps, n_load]`` or ``p_mw[scenarios, steps,
    n_load]``; all given arrays must share the same batch shape.

    Parameters
    ----------
    model : RadialModel
        From :func:`build_radial_model`.
    p_mw, q_mvar : array_like, shape (..., n_load)
        Load consumption, columns in ``model.load_index`` order [MW], [Mvar].
    sgen_p_mw, sgen_q_mvar : array_like, shape (..., n_sgen)
        Static generator output (generation positive) [MW], [Mvar].
    storage_p_mw, storage_q_mvar : array_like, shape (..., n_storage)
        Storage power (charging positive) [MW], [Mvar].
    asym_load_p_mw, asym_load_q_mvar, asym_sgen_p_mw, asym_sgen_q_mvar : array_like, shape (..., n, 3)
        Asymmetric elements per phase; the balanced solver uses the phase sum
        [MW], [Mvar].
    bus_p_mw, bus_q_mvar : array_like, shape (..., n_bus)
        Extra consumption per bus in ``model.bus_index`` order (e.g. a
        connection candidate) [MW], [Mvar].
    vm_pu_slack : array_like, shape (...) or scalar, optional
        Slack voltage magnitude per item [pu]; default the ext_grid's ``vm_pu``.
    tol : float, default 1e-10
        Convergence tolerance on the voltage change between sweeps [pu].
    max_iter : int, default 100
        Sweep limit per item.
    branch_results : bool, default True
        Compute line/trafo currents and loadings and the slack power.
    errors : {"mask", "raise"}, default "mask"
        ``"mask"``: non-converged items get NaN results and ``converged`` False.
        ``"raise"``: raise :class:`PowerFlowNotConverged`.
    parallel : bool or None, default None
        Solve the batch items on all numba threads. ``None`` decides by batch
        size (threads only pay off for large batches). Results are identical
        either way.

    Returns
    -------
    BatchResult
    """
    _check_solver_args(tol, max_iter, errors)
    kw = dict(
        p_mw=p_mw,
        q_mvar=q_mvar,
        sgen_p_mw=sgen_p_mw,
        sgen_q_mvar=sgen_q_mvar,
        storage_p_mw=storage_p_mw,
        storage_q_mvar=storage_q_mvar,
        asym_load_p_mw=asym_load_p_mw,
        asym_load_q_mvar=asym_load_q_mvar,
        asym_sgen_p_mw=asym_sgen_p_mw,
        asym_sgen_q_mvar=asym_sgen_q_mvar,
        bus_p_mw=bus_p_mw,
        bus_q_mvar=bus_q_mvar,
        vm_pu_slack=vm_pu_slack,
    )
    shape, nb, flat, v_slack = _common_inputs(model, kw, three_phase=False)
    el = model.elements
    sn = model.sn_mva
    blocks: list[np.ndarray] = []
    pos: list[np.ndarray] = []
    for table, pn_, qn_ in (
        ("load", "p_mw", "q_mvar"),
        ("sgen", "sgen_p_mw", "sgen_q_mvar"),
        ("storage", "storage_p_mw", "storage_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            blocks.append(e.sign * (flat[pn_] + 1j * flat[qn_]) / sn)
            pos.append(e.pos)
    for table, pn_, qn_ in (
        ("asymmetric_load", "asym_load_p_mw", "asym_load_q_mvar"),
        ("asymmetric_sgen", "asym_sgen_p_mw", "asym_sgen_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            blocks.append(e.sign * (flat[pn_].sum(axis=2) + 1j * flat[qn_].sum(axis=2)) / sn)
            pos.append(e.pos)
    if bus_p_mw is not None or bus_q_mvar is not None:
        blocks.append((flat["bus_p_mw"] + 1j * flat["bus_q_mvar"]) / sn)
        pos.append(model.bus_pos)
    s_elem = np.ascontiguousarray(np.concatenate(blocks, axis=1)) if blocks else np.zeros((nb, 0), complex)
    elem_pos = np.concatenate(pos).astype(np.int64) if pos else np.zeros(0, np.int64)

    n = model.n_bus
    v = np.empty((nb, n), dtype=complex)
    n_iter = np.zeros(nb, dtype=np.int64)
    status = np.zeros(nb, dtype=np.int64)
    solve = kernels.solve_balanced if _use_threads(parallel, nb, n) else kernels.solve_balanced_serial
    solve(
        model.parent,
        model.m[1],
        model.kup[1],
        model.ycp[1],
        elem_pos,
        s_elem,
        v_slack,
        float(tol),
        int(max_iter),
        v,
        n_iter,
        status,
    )
    if errors == "raise":
        _raise_not_converged(status, shape, max_iter)

    res: dict[str, Any] = {}
    if branch_results:
        nbr = model.br_f.shape[0]
        i_f = np.empty((nb, nbr), dtype=complex)
        i_t = np.empty((nb, nbr), dtype=complex)
        y = model.br_y[1]
        kernels.branch_currents(v, model.br_f, model.br_t, y[0], y[1], y[2], y[3], i_f, i_t)
        a_f = np.abs(i_f) * model.br_ibase_f
        a_t = np.abs(i_t) * model.br_ibase_t
        nL = len(model.line_index)
        with np.errstate(invalid="ignore", divide="ignore"):
            res["line_i_from_ka"] = a_f[:, :nL].reshape(*shape, nL)
            res["line_i_to_ka"] = a_t[:, :nL].reshape(*shape, nL)
            res["line_loading_percent"] = (np.maximum(a_f[:, :nL], a_t[:, :nL]) / model.line_imax_ka * 100.0).reshape(
                *shape, nL
            )
            nT = len(model.trafo_index)
            hv, lv = a_f[:, nL:], a_t[:, nL:]
            res["trafo_i_hv_ka"] = hv.reshape(*shape, nT)
            res["trafo_i_lv_ka"] = lv.reshape(*shape, nT)
            ld = np.maximum(hv * model.trafo_vn_hv_kv, lv * model.trafo_vn_lv_kv) * _SQRT3 / model.trafo_sn_mva * 100.0
            res["trafo_loading_percent"] = (ld / model.trafo_rating_factor).reshape(*shape, nT)
        # slack injection: branches below the root, shunts and elements at the root
        ch = model.root_children
        v0 = v[:, 0]
        i_root = (model.ypp[1, ch] * v0[:, None] + model.ypc[1, ch] * v[:, ch]).sum(axis=1) + model.ysh[1, 0] * v0
        at_root = elem_pos == 0
        if at_root.any():
            i_root = i_root + np.conj(s_elem[:, at_root].sum(axis=1) / v0)
        s_root = v0 * np.conj(i_root) * sn
        res["ext_grid_p_mw"] = s_root.real.reshape(shape)
        res["ext_grid_q_mvar"] = s_root.imag.reshape(shape)
    v_net = _to_net_buses(model, v, 1).reshape(*shape, len(model.bus_index))
    return BatchResult(
        v_pu=v_net,
        converged=(status == kernels.STATUS_CONVERGED).reshape(shape),
        n_iter=n_iter.reshape(shape),
        status=status.reshape(shape),
        bus_index=model.bus_index,
        line_index=model.line_index,
        trafo_index=model.trafo_index,
        **res,
    )


def run_batch_3ph(
    model: RadialModel,
    p_mw: Any = None,
    q_mvar: Any = None,
    *,
    sgen_p_mw: Any = None,
    sgen_q_mvar: Any = None,
    storage_p_mw: Any = None,
    storage_q_mvar: Any = None,
    asym_load_p_mw: Any = None,
    asym_load_q_mvar: Any = None,
    asym_sgen_p_mw: Any = None,
    asym_sgen_q_mvar: Any = None,
    bus_p_mw: Any = None,
    bus_q_mvar: Any = None,
    bus_delta_p_mw: Any = None,
    bus_delta_q_mvar: Any = None,
    vm_pu_slack: Any = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    branch_results: bool = True,
    errors: _ErrorMode = "mask",
    parallel: bool | None = None,
) -> BatchResult3ph:
    """Unbalanced (per-phase) power flow for a batch of load cases.

    Arguments as in :func:`run_batch`, plus per-phase arrays. Balanced
    elements (``load``, ``sgen``, ``storage``) are split 1/3 per phase and
    connected phase-to-neutral, or phase-to-phase when their ``type`` is
    ``"delta"``. Asymmetric elements take ``p_a/b/c``; for ``type == "delta"``
    the three values load the ab, bc and ca branches.

    Parameters
    ----------
    model : RadialModel
        From :func:`build_radial_model` with zero-sequence data
        (``model.three_phase_error is None``).
    p_mw, q_mvar, sgen_p_mw, sgen_q_mvar, storage_p_mw, storage_q_mvar : array_like, shape (..., n)
        Balanced elements, total over the phases [MW], [Mvar].
    asym_load_p_mw, asym_load_q_mvar, asym_sgen_p_mw, asym_sgen_q_mvar : array_like, shape (..., n, 3)
        Asymmetric elements per phase (or per phase pair for delta) [MW], [Mvar].
    bus_p_mw, bus_q_mvar : array_like, shape (..., n_bus, 3)
        Extra phase-to-neutral consumption per bus and phase [MW], [Mvar].
    bus_delta_p_mw, bus_delta_q_mvar : array_like, shape (..., n_bus, 3)
        Extra phase-to-phase consumption per bus on ab, bc, ca [MW], [Mvar].
    vm_pu_slack, tol, max_iter, branch_results, errors, parallel
        As in :func:`run_batch`.

    Returns
    -------
    BatchResult3ph

    Raises
    ------
    RadialModelError
        The model lacks zero-sequence data, or phase-to-neutral loads are
        connected to an unearthed (IT) network.
    """
    if model.three_phase_error is not None:
        raise RadialModelError(f"model not usable for the unbalanced power flow: {model.three_phase_error}")
    _check_solver_args(tol, max_iter, errors)
    kw = dict(
        p_mw=p_mw,
        q_mvar=q_mvar,
        sgen_p_mw=sgen_p_mw,
        sgen_q_mvar=sgen_q_mvar,
        storage_p_mw=storage_p_mw,
        storage_q_mvar=storage_q_mvar,
        asym_load_p_mw=asym_load_p_mw,
        asym_load_q_mvar=asym_load_q_mvar,
        asym_sgen_p_mw=asym_sgen_p_mw,
        asym_sgen_q_mvar=asym_sgen_q_mvar,
        bus_p_mw=bus_p_mw,
        bus_q_mvar=bus_q_mvar,
        bus_delta_p_mw=bus_delta_p_mw,
        bus_delta_q_mvar=bus_delta_q_mvar,
        vm_pu_slack=vm_pu_slack,
    )
    shape, nb, flat, v_slack = _common_inputs(model, kw, three_phase=True)
    el = model.elements
    sn = model.sn_mva
    w_blk: list[np.ndarray] = []
    w_pos: list[np.ndarray] = []
    w_ph: list[np.ndarray] = []
    d_blk: list[np.ndarray] = []
    d_pos: list[np.ndarray] = []
    d_ph: list[np.ndarray] = []

    def add(s3: np.ndarray, pos: np.ndarray, delta: np.ndarray) -> None:
        # s3: [nb, rows, 3] per-phase power [pu on sn/3]
        for sel, blk, pl, phl in ((~delta, w_blk, w_pos, w_ph), (delta, d_blk, d_pos, d_ph)):
            if not sel.any():
                continue
            part = s3[:, sel, :]  # [nb, r, 3]
            r = part.shape[1]
            blk.append(np.transpose(part, (0, 2, 1)).reshape(nb, 3 * r))
            pl.append(np.tile(pos[sel], 3))
            phl.append(np.repeat(np.arange(3, dtype=np.int64), r))

    for table, pn_, qn_ in (
        ("load", "p_mw", "q_mvar"),
        ("sgen", "sgen_p_mw", "sgen_q_mvar"),
        ("storage", "storage_p_mw", "storage_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            s = e.sign * (flat[pn_] + 1j * flat[qn_]) / sn  # (P/3) / (sn/3)
            add(np.repeat(s[:, :, None], 3, axis=2), e.pos, e.delta)
    for table, pn_, qn_ in (
        ("asymmetric_load", "asym_load_p_mw", "asym_load_q_mvar"),
        ("asymmetric_sgen", "asym_sgen_p_mw", "asym_sgen_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            add(e.sign * 3.0 * (flat[pn_] + 1j * flat[qn_]) / sn, e.pos, e.delta)
    nbus = len(model.bus_index)
    if bus_p_mw is not None or bus_q_mvar is not None:
        add(3.0 * (flat["bus_p_mw"] + 1j * flat["bus_q_mvar"]) / sn, model.bus_pos, np.zeros(nbus, bool))
    if bus_delta_p_mw is not None or bus_delta_q_mvar is not None:
        add(3.0 * (flat["bus_delta_p_mw"] + 1j * flat["bus_delta_q_mvar"]) / sn, model.bus_pos, np.ones(nbus, bool))
    if model.zero_seq_floating and w_pos:
        wp = np.concatenate(w_pos)
        wb = np.concatenate(w_blk, axis=1)
        used = (wp >= 0) & np.any(wb != 0, axis=0)
        if used.any():
            raise RadialModelError(
                "phase-to-neutral power given for an unearthed (IT) network: only phase-to-phase (delta) loads "
                "are possible"
            )

    def cat(blk: list[np.ndarray], pl: list[np.ndarray], phl: list[np.ndarray]):
        if not blk:
            return np.zeros((nb, 0), complex), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return (
            np.ascontiguousarray(np.concatenate(blk, axis=1)),
            np.concatenate(pl).astype(np.int64),
            np.concatenate(phl).astype(np.int64),
        )

    s_wye, wye_pos, wye_phase = cat(w_blk, w_pos, w_ph)
    s_del, del_pos, del_pair = cat(d_blk, d_pos, d_ph)

    n = model.n_bus
    v = np.empty((nb, 3, n), dtype=complex)
    n_iter = np.zeros(nb, dtype=np.int64)
    status = np.zeros(nb, dtype=np.int64)
    solve3 = kernels.solve_unbalanced if _use_threads(parallel, nb, 3 * n) else kernels.solve_unbalanced_serial
    solve3(
        model.parent,
        model.m,
        model.kup,
        model.ycp,
        wye_pos,
        wye_phase,
        s_wye,
        del_pos,
        del_pair,
        s_del,
        v_slack,
        float(tol),
        int(max_iter),
        v,
        n_iter,
        status,
    )
    if errors == "raise":
        _raise_not_converged(status, shape, max_iter)

    res: dict[str, Any] = {}
    if branch_results:
        nbr = model.br_f.shape[0]
        i_f = np.empty((nb, 3, nbr), dtype=complex)
        i_t = np.empty((nb, 3, nbr), dtype=complex)
        y = model.br_y
        kernels.branch_currents_unbalanced(v, model.br_f, model.br_t, y[:, 0], y[:, 1], y[:, 2], y[:, 3], i_f, i_t)
        a_f = np.abs(i_f) * model.br_ibase_f  # [nb, 3, nbr]
        a_t = np.abs(i_t) * model.br_ibase_t
        nL = len(model.line_index)
        nT = len(model.trafo_index)
        with np.errstate(invalid="ignore", divide="ignore"):
            li = np.maximum(a_f[:, :, :nL], a_t[:, :, :nL])
            res["line_i_ka"] = np.transpose(li, (0, 2, 1)).reshape(*shape, nL, 3)
            i_n = np.maximum(
                np.abs(i_f[:, :, :nL].sum(axis=1)) * model.br_ibase_f[:nL],
                np.abs(i_t[:, :, :nL].sum(axis=1)) * model.br_ibase_t[:nL],
            )
            res["line_i_n_ka"] = i_n.reshape(*shape, nL)
            res["line_loading_percent"] = (li.max(axis=1) / model.line_imax_ka * 100.0).reshape(*shape, nL)
            hv, lv = a_f[:, :, nL:], a_t[:, :, nL:]
            res["trafo_i_hv_ka"] = np.transpose(hv, (0, 2, 1)).reshape(*shape, nT, 3)
            res["trafo_i_lv_ka"] = np.transpose(lv, (0, 2, 1)).reshape(*shape, nT, 3)
            ld = np.maximum(hv * model.trafo_vn_hv_kv, lv * model.trafo_vn_lv_kv) * _SQRT3 / model.trafo_sn_mva * 100.0
            res["trafo_loading_percent"] = (ld.max(axis=1) / model.trafo_rating_factor).reshape(*shape, nT)
    v_net = _to_net_buses(model, v, 2)  # [nb, 3, nbus]
    v_net = np.transpose(v_net, (0, 2, 1)).reshape(*shape, nbus, 3)
    return BatchResult3ph(
        v_pu=v_net,
        converged=(status == kernels.STATUS_CONVERGED).reshape(shape),
        n_iter=n_iter.reshape(shape),
        status=status.reshape(shape),
        bus_index=model.bus_index,
        line_index=model.line_index,
        trafo_index=model.trafo_index,
        **res,
    )


class BatchPowerFlow:
    """A network's radial model with the balanced and unbalanced batch solvers.

    Parameters
    ----------
    net : pandapowerNet
        Radial network (see :func:`build_radial_model`).
    **model_options
        Passed to :func:`build_radial_model`.

    Examples
    --------
    >>> pf = BatchPowerFlow(net)                         # doctest: +SKIP
    >>> res = pf.run(p_mw=load_p[steps], q_mvar=load_q[steps])  # doctest: +SKIP
    >>> res.vm_pu.min(axis=-1)                           # doctest: +SKIP
    """

    def __init__(self, net: Any, **model_options: Any) -> None:
        self.model = build_radial_model(net, **model_options)

    def run(self, *args: Any, **kwargs: Any) -> BatchResult:
        """:func:`run_batch` on this model."""
        return run_batch(self.model, *args, **kwargs)

    def run_3ph(self, *args: Any, **kwargs: Any) -> BatchResult3ph:
        """:func:`run_batch_3ph` on this model."""
        return run_batch_3ph(self.model, *args, **kwargs)
