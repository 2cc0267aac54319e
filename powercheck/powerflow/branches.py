"""Branch models of the radial power flow: lines, transformers, impedance switches.

Each function reproduces a pandapower branch model term by term (pandapower 3.x,
``build_branch.py``, ``pd2ppc_zero.py``) and adds one two-port per in-service branch and
sequence (0, 1, 2) to a :class:`Branches` collection, in from/to orientation:
``yff, yft, ytf, ytt`` [pu on ``sn_mva``] as pandapower's ``branch_vectors``. Which
branch ends connect, and how the branches form the tree the solver runs on, is decided
afterwards (:mod:`powercheck.grid.topology`, :func:`powercheck.powerflow.build.build_radial_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from powercheck.lazy import lazy_module
from powercheck.powerflow.model import RadialModelError

pd = lazy_module("pandas")

__all__ = [
    "Branches",
    "BuildContext",
    "add_impedance_switches",
    "add_lines",
    "add_trafos",
    "bool_col",
    "check_finite",
    "col",
    "float_col",
    "trafo_taps",
    "two_port",
]

SWITCH_RX_RATIO = 2.0
"""R/X ratio of a bus-bus switch with ``z_ohm > 0`` (pandapower's default ``switch_rx_ratio``)."""

EARTHED_DYN = "dyn"
"""The transformer vector group whose LV star point is earthed (zero sequence modelled)."""

UNEARTHED_LV = ("dy", "yy", "dd", "yd")
"""Vector groups (lower case) without an earthed LV star point: zero sequence open (IT networks)."""


def col(df: pd.DataFrame, name: str, default: Any) -> np.ndarray:
    """Column ``name`` of ``df`` as an array, or ``default`` for every row if the column is absent."""
    if name not in df.columns:
        return np.full(len(df), default)
    return df[name].to_numpy()


def float_col(df: pd.DataFrame, name: str, default: float = np.nan) -> np.ndarray:
    """Column ``name`` as float (unreadable values NaN), or ``default`` if the column is absent."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=float)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def bool_col(df: pd.DataFrame, name: str, default: bool) -> np.ndarray:
    """Column ``name`` as bool (missing values ``default``), or ``default`` if the column is absent."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=bool)
    return df[name].fillna(default).astype(bool).to_numpy()


def two_port(ys_f, ys_t, bc_f, bc_t, tap):
    """pandapower's ``branch_vectors``: (yff, yft, ytf, ytt) from series/shunt admittances and complex tap."""
    ytt = ys_t + bc_t / 2.0
    yff = (ys_f + bc_f / 2.0) / (tap * np.conj(tap))
    yft = -ys_f / np.conj(tap)
    ytf = -ys_t / tap
    return yff, yft, ytf, ytt


def check_finite(values: np.ndarray, what: str, index: np.ndarray) -> None:
    """Raise :class:`RadialModelError` naming the first element (``index``) whose value is not finite."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise RadialModelError(f"{what} of {index[np.argmax(bad)]} is missing or not finite")


def trafo_taps(trafo: pd.DataFrame, calculate_voltage_angles: bool):
    """Tap-adjusted rated voltages and phase shift (pandapower's ``_calc_tap_from_dataframe``).

    Returns ``vn_hv_kv``, ``vn_lv_kv`` [kV] and ``shift_degree`` [degree] per transformer row.
    """
    idx = trafo.index.to_numpy()
    vnh = float_col(trafo, "vn_hv_kv").copy()
    vnl = float_col(trafo, "vn_lv_kv").copy()
    shift = float_col(trafo, "shift_degree", 0.0) if calculate_voltage_angles else np.zeros(len(trafo))
    shift = np.nan_to_num(shift.astype(float), nan=0.0)
    if bool_col(trafo, "tap_dependency_table", False).any():
        bad = idx[bool_col(trafo, "tap_dependency_table", False)][0]
        raise RadialModelError(f"trafo {bad}: tap_dependency_table (characteristic tables) is not supported")
    for extra in ("tap2_pos",):
        if extra in trafo.columns and np.isfinite(float_col(trafo, extra)).any():
            bad = idx[np.isfinite(float_col(trafo, extra))][0]
            raise RadialModelError(f"trafo {bad}: a second tap changer (tap2_*) is not supported")
    tap_pos = float_col(trafo, "tap_pos")
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
    neutral = float_col(trafo, "tap_neutral")
    step_pct = float_col(trafo, "tap_step_percent")
    step_deg = float_col(trafo, "tap_step_degree")
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
    check_finite(shift, "trafo shift (tap settings)", idx)
    return vnh, vnl, shift


@dataclass
class BuildContext:
    """Shared data while building a model: bases, bus rows, fused representatives, problems found.

    Attributes
    ----------
    net : pandapowerNet
        The network.
    sn : float
        Power base ``net.sn_mva`` [MVA].
    f_hz : float
        System frequency [Hz].
    bus_index : ndarray of int64
        ``net.bus.index``; a *bus row* is a position in it.
    row_of : Series
        pandapower bus index -> bus row.
    bus_ok : ndarray of bool
        Bus in service, per bus row.
    vn : ndarray of float
        Nominal voltage per bus row [kV].
    want3 : bool
        Build the zero and negative sequence too.
    trafo_model : {"t", "pi"}
        Transformer equivalent circuit.
    calculate_voltage_angles : bool
        Include transformer phase shifts.
    rep : ndarray of int64
        Fused representative bus row of every bus row (closed ideal bus-bus switches).
    three_err : list of str
        Why the zero/negative sequence cannot be built (empty: it can).
    """

    net: Any
    sn: float
    f_hz: float
    bus_index: np.ndarray
    row_of: pd.Series
    bus_ok: np.ndarray
    vn: np.ndarray
    want3: bool
    trafo_model: str
    calculate_voltage_angles: bool
    rep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    three_err: list[str] = field(default_factory=list)

    def rows(self, table: str, idx: np.ndarray, buses: np.ndarray) -> np.ndarray:
        """Bus rows of ``buses`` (pandapower indices) of elements ``idx`` of ``table``; raises if unknown."""
        r = self.row_of.reindex(buses).to_numpy()
        if np.isnan(r).any():
            raise RadialModelError(f"{table} {idx[np.isnan(r)][0]}: unknown bus")
        return r.astype(np.int64)


@dataclass
class Branches:
    """All in-service branches in from/to orientation with their two-ports per sequence.

    Attributes
    ----------
    kind : list of str
        "line", "trafo" or "switch" (an impedance bus-bus switch).
    pp_index : list of int
        pandapower index in that table.
    frow, trow : list of int
        Bus rows of the from (HV) and to (LV) end.
    y : list of ndarray of complex, shape (3, 4)
        Per sequence (0, 1, 2): ``yff, yft, ytf, ytt`` [pu on ``sn_mva``].
    """

    kind: list[str] = field(default_factory=list)
    pp_index: list[int] = field(default_factory=list)
    frow: list[int] = field(default_factory=list)
    trow: list[int] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def names(self) -> list[str]:
        """``"<kind> <pp_index>"`` per branch, as error messages name them."""
        return [f"{k} {i}" for k, i in zip(self.kind, self.pp_index)]

    def add(self, kind: str, pp_index: int, frow: int, trow: int, y012: np.ndarray) -> None:
        """Append one branch."""
        self.kind.append(kind)
        self.pp_index.append(int(pp_index))
        self.frow.append(int(frow))
        self.trow.append(int(trow))
        self.y.append(y012)


def add_lines(ctx: BuildContext, br: Branches) -> None:
    """pandapower's line pi model (``_calc_line_parameter``, ``_add_line_sc_impedance_zero``)."""
    line = ctx.net.line
    nl = len(line)
    if not nl:
        return
    idx = line.index.to_numpy()
    fr = ctx.rows("line", idx, line["from_bus"].to_numpy())
    to = ctx.rows("line", idx, line["to_bus"].to_numpy())
    zb = ctx.vn[ctx.rep[fr]] ** 2 / ctx.sn  # base of the from bus
    length = float_col(line, "length_km")
    par = float_col(line, "parallel", 1.0)
    act = bool_col(line, "in_service", True)
    w = 2 * ctx.f_hz * math.pi
    r = float_col(line, "r_ohm_per_km") * length / zb / par
    x = float_col(line, "x_ohm_per_km") * length / zb / par
    b = w * float_col(line, "c_nf_per_km", 0.0) * 1e-9 * zb * length * par
    g = np.nan_to_num(float_col(line, "g_us_per_km", 0.0), nan=0.0) * 1e-6 * zb * length * par
    for what, val in (("r_ohm_per_km, length_km or parallel", r), ("x_ohm_per_km", x), ("c_nf_per_km", b)):
        check_finite(np.where(act, val, 0.0), f"line {what}", idx)
    zero_z = act & (r == 0) & (x == 0)
    if zero_z.any():
        raise RadialModelError(f"line {idx[np.argmax(zero_z)]}: zero impedance")
    ys = 1.0 / np.where(act, r + 1j * x, 1.0)
    y1 = np.array(two_port(ys, ys, g + 1j * b, g + 1j * b, np.ones(nl)))
    y0 = np.zeros_like(y1)
    if ctx.want3:
        cols = ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km")
        missing = [c for c in cols if c not in line.columns]
        if missing:
            ctx.three_err.append(f"line: zero-sequence data missing (columns {', '.join(missing)})")
        else:
            r0 = float_col(line, "r0_ohm_per_km") * length / zb / par
            x0 = float_col(line, "x0_ohm_per_km") * length / zb / par
            b0 = w * float_col(line, "c0_nf_per_km") * 1e-9 * zb * length * par
            bad = act & ~(np.isfinite(r0) & np.isfinite(x0) & np.isfinite(b0))
            zero0 = act & (r0 == 0) & (x0 == 0)
            if bad.any():
                ctx.three_err.append(f"line {idx[np.argmax(bad)]}: zero-sequence data missing ({', '.join(cols)})")
            elif zero0.any():
                ctx.three_err.append(f"line {idx[np.argmax(zero0)]}: zero zero-sequence impedance")
            else:
                ys0 = 1.0 / np.where(act, r0 + 1j * x0, 1.0)
                y0 = np.array(two_port(ys0, ys0, 1j * b0, 1j * b0, np.ones(nl)))
    for k in np.flatnonzero(act):
        br.add("line", idx[k], fr[k], to[k], np.stack([y0[:, k], y1[:, k], y1[:, k]]))


def _trafo_pi(ctx: BuildContext, trafo: pd.DataFrame, act: np.ndarray, vnl_t: np.ndarray, vn_bus_lv: np.ndarray):
    """Series impedance and magnetising admittance as pi-model parameters (pandapower's
    ``_calc_r_x_from_dataframe``, ``_calc_y_from_dataframe`` and ``_wye_delta``).

    Returns r, x, g, b, g_asym, b_asym [pu] and tap_lv (LV impedance base correction).
    """
    idx = trafo.index.to_numpy()
    par = float_col(trafo, "parallel", 1.0)
    sn_t = float_col(trafo, "sn_mva")
    vn_lv_rated = float_col(trafo, "vn_lv_kv")
    tap_lv = (vnl_t / vn_bus_lv) ** 2 * ctx.sn
    z_sc = float_col(trafo, "vk_percent") / 100.0 / sn_t * tap_lv
    r_sc = float_col(trafo, "vkr_percent") / 100.0 / sn_t * tap_lv
    with np.errstate(invalid="ignore"):
        x_sc = np.sign(z_sc) * np.sqrt(z_sc**2 - r_sc**2)
    check_finite(np.where(act, x_sc, 0.0), "trafo vk_percent/vkr_percent (vkr > vk?)", idx)
    r = r_sc / par
    x = x_sc / par
    base_z = vn_bus_lv**2 / ctx.sn
    pfe = float_col(trafo, "pfe_kw") * 1e-3
    ym = float_col(trafo, "i0_percent") / 100.0 * sn_t
    b_mva = -np.sqrt(np.maximum(ym**2 - pfe**2, 0.0))
    corr = base_z * par / vn_lv_rated**2 / (vnl_t / vn_lv_rated) ** 2
    g = pfe * corr
    b = b_mva * corr
    g_asym = np.zeros(len(trafo))
    b_asym = np.zeros(len(trafo))
    if ctx.trafo_model == "t":
        # T circuit -> equivalent pi (star-delta), magnetising branch between the two leakage halves
        r_ratio = np.nan_to_num(float_col(trafo, "leakage_resistance_ratio_hv", 0.5), nan=0.5)
        x_ratio = np.nan_to_num(float_col(trafo, "leakage_reactance_ratio_hv", 0.5), nan=0.5)
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


def _trafo_zero_sequence(ctx: BuildContext, trafo: pd.DataFrame, k: int, tap_lv: float, vn_bus_lv: float, vk0_fallback):
    """LV-side zero-sequence shunt of a Dyn transformer (``_add_trafo_sc_impedance_zero``) [pu], or None."""
    tidx = trafo.index[k]
    need = ("vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx", "si0_hv_partial")
    vals = {c: float_col(trafo, c)[k] for c in need}
    miss = [c for c, v in vals.items() if not np.isfinite(v)]
    if miss:
        ctx.three_err.append(f"trafo {tidx}: zero-sequence data missing ({', '.join(miss)})")
        return None
    use_vk0, use_vkr0 = vk0_fallback
    vk0 = vals["vk0_percent"] if use_vk0 else float_col(trafo, "vk_percent")[k]
    vkr0 = vals["vkr0_percent"] if use_vkr0 else float_col(trafo, "vkr_percent")[k]
    sn_t = float_col(trafo, "sn_mva")[k]
    par = float_col(trafo, "parallel", 1.0)[k]
    z0 = vk0 / 100.0 / sn_t * tap_lv
    r0 = vkr0 / 100.0 / sn_t * tap_lv
    x0 = np.sign(z0) * math.sqrt(max(z0**2 - r0**2, 0.0))
    z0_k = (r0 + 1j * x0) / par
    xn = np.nan_to_num(float_col(trafo, "xn_ohm", 0.0)[k], nan=0.0)
    rn = np.nan_to_num(float_col(trafo, "rn_ohm", 0.0)[k], nan=0.0)
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


def add_trafos(ctx: BuildContext, br: Branches) -> np.ndarray:
    """pandapower's transformer model per sequence; returns the mask of unearthed (IT) LV windings."""
    trafo = ctx.net.trafo
    nt = len(trafo)
    floating = np.zeros(nt, dtype=bool)
    if not nt:
        return floating
    idx = trafo.index.to_numpy()
    act = bool_col(trafo, "in_service", True)
    hv = ctx.rows("trafo", idx, trafo["hv_bus"].to_numpy())
    lv = ctx.rows("trafo", idx, trafo["lv_bus"].to_numpy())
    for c in ("vk_percent", "vkr_percent", "sn_mva", "vn_hv_kv", "vn_lv_kv", "pfe_kw", "i0_percent"):
        check_finite(np.where(act, float_col(trafo, c), 0.0), f"trafo {c}", idx)
    bad_df = act & ~(float_col(trafo, "df", 1.0) > 0)
    if bad_df.any():
        raise RadialModelError(f"trafo {idx[np.argmax(bad_df)]}: df must be positive")
    vnh_t, vnl_t, shift = trafo_taps(trafo, ctx.calculate_voltage_angles)
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
    y1 = np.array(two_port(ys, ys, bcf, bct, ratio * np.exp(1j * np.deg2rad(shift))))
    y2 = np.array(two_port(ys, ys, bcf, bct, ratio * np.exp(-1j * np.deg2rad(shift))))  # shift negated
    y0 = np.zeros_like(y1)
    if ctx.want3:
        groups = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v)
            for v in col(trafo, "vector_group", None)
        ]
        dyn = act & np.array([g_ is not None and g_.lower() == EARTHED_DYN for g_ in groups])
        # pandapower uses vk/vkr instead of vk0/vkr0 when all of the group's values are ~0
        fallback = tuple(
            bool(dyn.any() and np.nanmax(np.abs(float_col(trafo, c)[dyn])) > 1e-8)
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
            elif vg.lower() in UNEARTHED_LV:
                floating[k] = True  # zero sequence open on both sides
            elif vg.lower() != EARTHED_DYN:
                ctx.three_err.append(f"trafo {idx[k]}: vector_group {vg!r} not supported (Dyn, Dy, Yy, Dd, Yd)")
            else:
                y0tt = _trafo_zero_sequence(ctx, trafo, k, tap_lv[k], vn_bus_lv[k], fallback)
                if y0tt is not None:
                    y0[:, k] = (0.0, 0.0, 0.0, y0tt)  # HV side open (delta), LV side earthed
    for k in np.flatnonzero(act):
        br.add("trafo", idx[k], hv[k], lv[k], np.stack([y0[:, k], y1[:, k], y2[:, k]]))
    return floating


def add_impedance_switches(ctx: BuildContext, br: Branches, rows: list[int]) -> None:
    """Closed bus-bus switches with ``z_ohm > 0``: series impedance, R/X = ``switch_rx_ratio``."""
    sw = ctx.net.switch
    rz = SWITCH_RX_RATIO / math.sqrt(1 + SWITCH_RX_RATIO**2)
    xz = 1.0 / math.sqrt(1 + SWITCH_RX_RATIO**2)
    for k in rows:
        a = int(ctx.row_of[int(sw["bus"].iat[k])])
        b = int(ctx.row_of[int(sw["element"].iat[k])])
        zb = ctx.vn[ctx.rep[a]] ** 2 / ctx.sn
        ys = 1.0 / (float(sw["z_ohm"].iat[k]) / zb * (rz + 1j * xz))
        yy = np.array([ys, -ys, -ys, ys], dtype=complex)
        br.add("switch", sw.index[k], a, b, np.stack([yy, yy, yy]))
