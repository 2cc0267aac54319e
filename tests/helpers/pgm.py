"""power-grid-model input built from a pandapower net (lines, two-winding transformers, an external grid, loads,
static generators, asymmetric loads: the IEEE European LV feeder and the SimBench LV grids), and the feeder with a
96-step daily load profile: shared by
``benchmarks/bench_batchpf.py`` and ``tests/powerflow/test_vs_power_grid_model.py``."""

from __future__ import annotations

import warnings

import numpy as np

P_COLS = ["p_a_mw", "p_b_mw", "p_c_mw"]
Q_COLS = ["q_a_mvar", "q_b_mvar", "q_c_mvar"]


def ieee_feeder_case(steps: int = 96, seed: int = 96):
    """pandapower's IEEE European LV feeder (906 LV buses, 55 loads) and ``steps`` load cases [MW, Mvar]:
    every load scaled by its own daily curve, 0.3 .. 2.5 x the stored value."""
    import pandapower.networks as pn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pn.ieee_european_lv_asymmetric("on_peak_566")
    rng = np.random.default_rng(seed)
    n = len(net.asymmetric_load)
    t = np.arange(steps) / steps
    phase = rng.uniform(-0.1, 0.1, n)
    curve = 0.3 + 2.2 * np.exp(-(((t[:, None] - 0.78 - phase[None]) / 0.08) ** 2))
    p = net.asymmetric_load[P_COLS].to_numpy()[None] * curve[:, :, None]
    q = net.asymmetric_load[Q_COLS].to_numpy()[None] * curve[:, :, None]
    return net, p, q


def pgm_input(net, pgm):
    """PGM input arrays of a pandapower net of lines, two-winding transformers (no tap offset), one ext_grid and
    constant-power ``load``/``sgen``/``asymmetric_load`` rows: the IEEE EU LV feeder and the SimBench LV grids.

    Transformers: delta/wye-n windings from ``vector_group`` (``Dyn`` when missing; only the unbalanced calculation
    uses them), clock ``shift_degree / 30``. ``load`` -> ``sym_load``, ``sgen`` -> ``sym_gen`` (generation
    positive), ``asymmetric_load`` -> ``asym_load`` and a ``sym_load`` with the phase sum (the caller switches off
    the one it does not use). Line zero-sequence data are required (``complete_network`` fills SimBench's).
    """
    ia = pgm.initialize_array
    bus = net.bus
    node = ia("input", "node", len(bus))
    node["id"] = bus.index.to_numpy()
    node["u_rated"] = bus.vn_kv.to_numpy() * 1e3
    off = int(bus.index.max()) + 1
    ln = net.line
    line = ia("input", "line", len(ln))
    line["id"] = off + np.arange(len(ln))
    line["from_node"] = ln.from_bus.to_numpy()
    line["to_node"] = ln.to_bus.to_numpy()
    line["from_status"] = line["to_status"] = ln.in_service.to_numpy().astype(np.int8)
    length, par = ln.length_km.to_numpy(), ln.parallel.to_numpy()
    line["r1"] = ln.r_ohm_per_km.to_numpy() * length / par
    line["x1"] = ln.x_ohm_per_km.to_numpy() * length / par
    line["c1"] = ln.c_nf_per_km.to_numpy() * 1e-9 * length * par
    line["tan1"] = 0.0
    line["r0"] = ln.r0_ohm_per_km.to_numpy() * length / par
    line["x0"] = ln.x0_ohm_per_km.to_numpy() * length / par
    line["c0"] = ln.c0_nf_per_km.to_numpy().astype(float) * 1e-9 * length * par
    line["tan0"] = 0.0
    line["i_n"] = ln.max_i_ka.to_numpy() * 1e3
    off += len(ln)
    tr = net.trafo
    assert (tr.get("tap_pos", 0) == tr.get("tap_neutral", 0)).all(), "pgm_input: transformers at neutral tap only"
    trafo = ia("input", "transformer", len(tr))
    trafo["id"] = off + np.arange(len(tr))
    trafo["from_node"] = tr.hv_bus.to_numpy()
    trafo["to_node"] = tr.lv_bus.to_numpy()
    trafo["from_status"] = trafo["to_status"] = tr.in_service.to_numpy().astype(np.int8)
    trafo["u1"] = tr.vn_hv_kv.to_numpy() * 1e3
    trafo["u2"] = tr.vn_lv_kv.to_numpy() * 1e3
    trafo["sn"] = tr.sn_mva.to_numpy() * 1e6
    trafo["uk"] = tr.vk_percent.to_numpy() / 100
    trafo["pk"] = tr.vkr_percent.to_numpy() / 100 * tr.sn_mva.to_numpy() * 1e6
    trafo["i0"] = tr.i0_percent.to_numpy() / 100
    trafo["p0"] = tr.pfe_kw.to_numpy() * 1e3
    groups = tr.vector_group if "vector_group" in tr else [None] * len(tr)
    winding = {"D": pgm.WindingType.delta, "Y": pgm.WindingType.wye, "YN": pgm.WindingType.wye_n}
    for j, g in enumerate(groups):
        g = str(g).rstrip("0123456789") if isinstance(g, str) and g else "Dyn"
        hv = "YN" if g.startswith("YN") else g[0]
        lv = g[len(hv) :].upper()
        trafo["winding_from"][j] = winding[hv]
        trafo["winding_to"][j] = winding["YN" if lv == "YN" else lv[0]]
    trafo["clock"] = np.round(tr.shift_degree.to_numpy() / 30).astype(int) % 12
    trafo["tap_side"] = pgm.BranchSide.from_side
    trafo["tap_pos"] = trafo["tap_nom"] = trafo["tap_min"] = trafo["tap_max"] = 0
    trafo["tap_size"] = 0.0
    off += len(tr)
    eg = net.ext_grid
    src = ia("input", "source", len(eg))
    src["id"] = off + np.arange(len(eg))
    src["node"] = eg.bus.to_numpy()
    src["status"] = 1
    src["u_ref"] = eg.vm_pu.to_numpy()
    src["u_ref_angle"] = np.deg2rad(eg.va_degree.to_numpy())
    src["sk"] = 1e15  # ~ideal slack, as pandapower's runpp
    off += len(eg)
    out = {"node": node, "line": line, "transformer": trafo, "source": src}

    def sym(component, df):
        nonlocal off
        arr = ia("input", component, len(df))
        arr["id"] = off + np.arange(len(df))
        off += len(df)
        arr["node"] = df.bus.to_numpy()
        arr["status"] = df.in_service.to_numpy().astype(np.int8) if "in_service" in df else 1
        arr["type"] = pgm.LoadGenType.const_power
        scale = df.scaling.to_numpy(dtype=float) if "scaling" in df else 1.0
        arr["p_specified"] = df.p_mw.to_numpy() * scale * 1e6
        arr["q_specified"] = df.q_mvar.to_numpy() * scale * 1e6
        return arr

    al = net.asymmetric_load
    if len(al):
        load = ia("input", "asym_load", len(al))
        load["id"] = off + np.arange(len(al))
        off += len(al)
        load["node"] = al.bus.to_numpy()
        load["status"] = 1
        load["type"] = pgm.LoadGenType.const_power
        load["p_specified"] = al[P_COLS].to_numpy() * 1e6
        load["q_specified"] = al[Q_COLS].to_numpy() * 1e6
        out["asym_load"] = load
        summed = al.assign(p_mw=al[P_COLS].to_numpy().sum(axis=1), q_mvar=al[Q_COLS].to_numpy().sum(axis=1))
        out["sym_load"] = sym("sym_load", summed.assign(scaling=1.0))
    elif len(net.load):
        out["sym_load"] = sym("sym_load", net.load)
    if len(net.sgen):
        out["sym_gen"] = sym("sym_gen", net.sgen)
    return out


def pgm_sym_update(pgm, inp, load_p, load_q, sgen_p=None, sgen_q=None):
    """Batch update of ``sym_load`` (``[steps, n_load]`` [MW], [Mvar]) and, if given, ``sym_gen`` (generation
    positive)."""
    upd = pgm.initialize_array("update", "sym_load", load_p.shape)
    upd["id"] = inp["sym_load"]["id"][None]
    upd["p_specified"] = load_p * 1e6
    upd["q_specified"] = load_q * 1e6
    out = {"sym_load": upd}
    if sgen_p is not None and sgen_p.shape[1]:
        gen = pgm.initialize_array("update", "sym_gen", sgen_p.shape)
        gen["id"] = inp["sym_gen"]["id"][None]
        gen["p_specified"] = sgen_p * 1e6
        gen["q_specified"] = sgen_q * 1e6
        out["sym_gen"] = gen
    return out


def pgm_update(pgm, inp, p, q, symmetric: bool):
    if symmetric:
        upd = pgm.initialize_array("update", "sym_load", p.shape[:2])
        upd["id"] = inp["sym_load"]["id"][None]
        upd["p_specified"] = p.sum(axis=2) * 1e6
        upd["q_specified"] = q.sum(axis=2) * 1e6
        return {"sym_load": upd}
    upd = pgm.initialize_array("update", "asym_load", p.shape[:2])
    upd["id"] = inp["asym_load"]["id"][None]
    upd["p_specified"] = p * 1e6
    upd["q_specified"] = q * 1e6
    return {"asym_load": upd}
