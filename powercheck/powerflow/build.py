"""Building the radial model: pandapower net -> :class:`~powercheck.powerflow.model.RadialModel`.

:func:`build_radial_model` turns a pandapower network into a
:class:`~powercheck.powerflow.model.RadialModel` (buses in topological order, one
admittance two-port per tree edge and sequence, PQ-element mapping). The branch models
are in :mod:`powercheck.powerflow.branches`, the switch semantics and the tree in
:mod:`powercheck.grid.topology`. :func:`~powercheck.powerflow.solve.run_batch` (balanced,
positive sequence) and :func:`~powercheck.powerflow.solve.run_batch_3ph` (unbalanced, per
phase, wye and delta loads) solve any number of load cases at once with the kernels in
:mod:`powercheck.powerflow.kernels`; results are :mod:`powercheck.powerflow.results`.

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
  ``storage``; :func:`~powercheck.powerflow.solve.run_batch_3ph` treats them as balanced wye elements.
* Parallel branches between the same two buses are accepted (their two-ports
  are summed), which is exact.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from powercheck.grid.topology import (
    MeshError,
    RadialTree,
    Switches,
    branch_end_closed,
    fuse,
    network_switches,
    radial_tree,
)
from powercheck.lazy import lazy_module
from powercheck.powerflow import kernels
from powercheck.powerflow.branches import (
    Branches,
    BuildContext,
    add_impedance_switches,
    add_lines,
    add_trafos,
    bool_col,
    col,
    float_col,
)
from powercheck.powerflow.model import ElementTable, RadialModel, RadialModelError

pd = lazy_module("pandas")

__all__ = ["build_radial_model"]

_SQRT3 = math.sqrt(3.0)
_C_EXT_GRID = 1.1  # voltage factor pandapower uses for the ext_grid impedance in runpp_3ph

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


def _check_supported(net: Any) -> None:
    for table in _UNSUPPORTED_TABLES:
        df = net[table] if table in net else None
        if df is None or not isinstance(df, pd.DataFrame) or len(df) == 0:
            continue
        active = bool_col(df, "in_service", True)
        if active.any():
            raise RadialModelError(
                f"{table} {df.index[np.argmax(active)]} is in service: element type {table!r} is not supported "
                "by the radial solver"
            )
    load = net.load
    if len(load):
        active = bool_col(load, "in_service", True)
        for c in _ZIP_COLUMNS:
            if c in load.columns:
                bad = active & (np.nan_to_num(float_col(load, c), nan=0.0) != 0)
                if bad.any():
                    raise RadialModelError(
                        f"load {load.index[np.argmax(bad)]}: voltage-dependent load ({c} != 0) is not supported"
                    )


def _fuse_buses(ctx: BuildContext) -> tuple[list[int], Switches]:
    """Fuse closed ideal bus-bus switches (sets ``ctx.rep``); returns the impedance switches and the switches.

    The switch semantics are :func:`powercheck.grid.topology.network_switches`; here only
    the switch buses are checked (an unknown bus is an error naming the switch).
    """
    net = ctx.net
    sw = net.switch if "switch" in net else pd.DataFrame()
    states = network_switches(net)
    pairs: list[tuple[int, int]] = []
    imp_switches: list[int] = []
    if len(sw):
        bus_rows = ctx.row_of.reindex(sw["bus"].to_numpy()).to_numpy()
        if np.isnan(bus_rows).any():
            raise RadialModelError(f"switch {sw.index[np.isnan(bus_rows)][0]}: unknown bus")
        for k, other, ideal in zip(states.bus_bus, states.bus_bus_b, states.fused):
            b = int(ctx.row_of.get(int(other), -1))
            if b < 0:
                raise RadialModelError(f"switch {sw.index[k]}: unknown bus {sw['element'].iat[k]}")
            if ideal:
                pairs.append((int(bus_rows[k]), b))
            else:
                imp_switches.append(int(k))
    ctx.rep = fuse(len(ctx.bus_index), pairs)
    return imp_switches, states


def _ext_grid_earthing(ctx: BuildContext, eg_idx: Any, eg_row: pd.Series) -> np.ndarray:
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


def _element_table(ctx: BuildContext, table: str, sign: float, asym: bool, bus_pos: np.ndarray) -> ElementTable:
    net = ctx.net
    df = net[table] if table in net else None
    if df is None or len(df) == 0:
        shape = (0, 3) if asym else (0,)
        empty_i = np.zeros(0, np.int64)
        return ElementTable(table, empty_i, empty_i, np.zeros(0, bool), sign, np.zeros(shape), np.zeros(shape))
    idx = df.index.to_numpy().astype(np.int64)
    rows = ctx.rows(table, idx, df["bus"].to_numpy())
    act = bool_col(df, "in_service", True)
    pos = np.where(act, bus_pos[rows], -1).astype(np.int64)
    scaling = float_col(df, "scaling", 1.0)
    delta = np.array([isinstance(t, str) and t.lower() == "delta" for t in col(df, "type", None)], dtype=bool)
    if asym:
        p = np.stack([float_col(df, f"p_{ph}_mw", 0.0) for ph in "abc"], axis=1) * scaling[:, None]
        q = np.stack([float_col(df, f"q_{ph}_mvar", 0.0) for ph in "abc"], axis=1) * scaling[:, None]
    else:
        p = float_col(df, "p_mw", 0.0) * scaling
        q = float_col(df, "q_mvar", 0.0) * scaling
    finite = (np.isfinite(p) & np.isfinite(q)).reshape(len(idx), -1).all(axis=1)
    if (act & ~finite).any():
        raise RadialModelError(f"{table} {idx[np.argmax(act & ~finite)]}: p/q or scaling missing or not finite")
    return ElementTable(table, idx, pos, delta, sign, p, q)


def _tree_two_ports(tree: RadialTree, br_y_all: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Two-ports of the tree edges in parent/child orientation, parallel branches summed; each (3, n) [pu]."""
    parent = tree.parent
    n = len(parent)
    ypp, ypc, ycp, ycc = (np.zeros((3, n), dtype=complex) for _ in range(4))
    for c in range(1, n):
        for i in tree.edge_branches[c]:
            yff, yft, ytf, ytt = br_y_all[:, :, i].T
            if tree.pos[fn[i]] == parent[c]:
                ypp[:, c] += yff
                ypc[:, c] += yft
                ycp[:, c] += ytf
                ycc[:, c] += ytt
            else:
                ypp[:, c] += ytt
                ypc[:, c] += ytf
                ycp[:, c] += yft
                ycc[:, c] += yff
    return ypp, ypc, ycp, ycc


def _branch_terminals(
    tree: RadialTree,
    br_y_all: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    f_ok: np.ndarray,
    t_ok: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tree buses and two-port of every branch for its terminal currents, and the bus shunts.

    A branch with both ends on one (fused) bus, or with one end open, is a constant shunt at
    the bus of its closed end(s). Returns ``br_f``, ``br_t`` (tree positions), ``br_y``
    (3, 4, n_branch) and ``ysh`` (3, n) [pu].
    """
    n = len(tree.parent)
    nbr = br_y_all.shape[2]
    ysh = np.zeros((3, n), dtype=complex)
    br_f = np.zeros(nbr, dtype=np.int64)
    br_t = np.zeros(nbr, dtype=np.int64)
    br_y = np.zeros((3, 4, nbr), dtype=complex)
    for i in range(nbr):
        pf = tree.pos[fn[i]] if f_ok[i] else -1
        pt = tree.pos[tn[i]] if t_ok[i] else -1
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
    return br_f, br_t, br_y, ysh


def _result_rows(
    ctx: BuildContext,
    br: Branches,
    line_index: np.ndarray,
    trafo_index: np.ndarray,
    br_f: np.ndarray,
    br_t: np.ndarray,
    br_y: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Terminal buses, two-ports and current bases [kA per pu] of the result rows (lines, then trafos)."""
    n_line, n_trafo = len(line_index), len(trafo_index)
    res_f = np.zeros(n_line + n_trafo, dtype=np.int64)
    res_t = np.zeros(n_line + n_trafo, dtype=np.int64)
    res_y = np.zeros((3, 4, n_line + n_trafo), dtype=complex)
    ib_f = np.zeros(n_line + n_trafo)
    ib_t = np.zeros(n_line + n_trafo)
    row_in_result = {("line", int(v)): k for k, v in enumerate(line_index)}
    row_in_result.update({("trafo", int(v)): n_line + k for k, v in enumerate(trafo_index)})
    for i in range(len(br)):
        k = row_in_result.get((br.kind[i], br.pp_index[i]), -1)
        if k < 0:
            continue  # impedance switch
        res_f[k], res_t[k] = br_f[i], br_t[i]
        res_y[:, :, k] = br_y[:, :, i]
        ib_f[k] = ctx.sn / (_SQRT3 * ctx.vn[ctx.rep[br.frow[i]]])
        ib_t[k] = ctx.sn / (_SQRT3 * ctx.vn[ctx.rep[br.trow[i]]])
    return res_f, res_t, res_y, ib_f, ib_t


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
        Build the negative- and zero-sequence data for
        :func:`~powercheck.powerflow.solve.run_batch_3ph`.
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
    eg_active = bool_col(eg, "in_service", True)
    if eg_active.sum() != 1:
        raise RadialModelError(f"exactly one in-service ext_grid required, found {int(eg_active.sum())}")
    eg_idx = eg.index[eg_active][0]
    eg_row = eg.loc[eg_idx]

    bus_index = net.bus.index.to_numpy().astype(np.int64)
    ctx = BuildContext(
        net=net,
        sn=float(net.sn_mva),
        f_hz=float(net.f_hz),
        bus_index=bus_index,
        row_of=pd.Series(np.arange(len(bus_index)), index=bus_index),
        bus_ok=bool_col(net.bus, "in_service", True),
        vn=float_col(net.bus, "vn_kv"),
        want3=three_phase is not False,
        trafo_model=trafo_model,
        calculate_voltage_angles=calculate_voltage_angles,
    )
    imp_switches, switches = _fuse_buses(ctx)

    # branches in from/to orientation
    br = Branches()
    add_lines(ctx, br)
    floating_trafo = add_trafos(ctx, br)
    add_impedance_switches(ctx, br, imp_switches)
    nbr = len(br)
    br_y_all = np.stack(br.y, axis=2) if nbr else np.zeros((3, 4, 0), dtype=complex)
    frow = np.array(br.frow, dtype=np.int64)
    trow = np.array(br.trow, dtype=np.int64)
    f_ok = branch_end_closed(switches, br.kind, br.pp_index, bus_index[frow], ctx.bus_ok[frow])
    t_ok = branch_end_closed(switches, br.kind, br.pp_index, bus_index[trow], ctx.bus_ok[trow])
    fn, tn = ctx.rep[frow], ctx.rep[trow]

    # topology
    slack_row = int(ctx.row_of.get(int(eg_row["bus"]), -1))
    if slack_row < 0:
        raise RadialModelError(f"ext_grid {eg_idx}: unknown bus {eg_row['bus']}")
    if not ctx.bus_ok[slack_row]:
        raise RadialModelError(f"ext_grid {eg_idx}: bus {eg_row['bus']} is out of service")
    try:
        tree = radial_tree(len(bus_index), fn, tn, f_ok & t_ok, int(ctx.rep[slack_row]), br.names, bus_index)
    except MeshError as exc:
        raise RadialModelError(str(exc)) from None
    parent = tree.parent
    n = len(parent)
    bus_pos = np.where(ctx.bus_ok, tree.pos[ctx.rep], -1).astype(np.int64)
    ypp, ypc, ycp, ycc = _tree_two_ports(tree, br_y_all, fn)
    br_f, br_t, br_y, ysh = _branch_terminals(tree, br_y_all, fn, tn, f_ok, t_ok)

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
    res_f, res_t, res_y, ib_f, ib_t = _result_rows(ctx, br, line_index, trafo_index, br_f, br_t, br_y)
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
        node_bus=bus_index[tree.node],
        vn_kv=ctx.vn[tree.node],
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
        line_imax_ka=float_col(net.line, "max_i_ka")
        * float_col(net.line, "df", 1.0)
        * float_col(net.line, "parallel", 1.0),
        trafo_sn_mva=float_col(trafo, "sn_mva"),
        trafo_vn_hv_kv=float_col(trafo, "vn_hv_kv"),
        trafo_vn_lv_kv=float_col(trafo, "vn_lv_kv"),
        trafo_rating_factor=float_col(trafo, "parallel", 1.0) * float_col(trafo, "df", 1.0),
        elements=elems,
        three_phase_error=three_phase_error,
        root_children=np.flatnonzero(parent == 0).astype(np.int64),
    )
