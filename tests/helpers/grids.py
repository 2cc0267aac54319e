"""Small, fully specified LV test networks (every number written here, nothing random)."""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp

# NAYY 4x150 / 4x50 per-km data as in pandapower's std types; zero sequence = 4x (full neutral)
MAIN = dict(r_ohm_per_km=0.208, x_ohm_per_km=0.080, max_i_ka=0.270)
BRANCH = dict(r_ohm_per_km=0.642, x_ohm_per_km=0.083, max_i_ka=0.142)


def add_line(net, a, b, length_km, data, name):
    return pp.create_line_from_parameters(
        net,
        a,
        b,
        length_km=length_km,
        c_nf_per_km=0.0,
        r0_ohm_per_km=4 * data["r_ohm_per_km"],
        x0_ohm_per_km=4 * data["x_ohm_per_km"],
        c0_nf_per_km=0.0,
        endtemp_degree=80.0,
        name=name,
        **data,
    )


def feeder(vn_kv: float = 0.4, *, s_sc_mva: float = 1e6, load_kw: float = 0.0, n_main: int = 3) -> pp.pandapowerNet:
    """MV source -> 315 kVA Dyn transformer -> ``n_main`` x 100 m NAYY 4x150 -> a 30 m NAYY 4x50 house branch
    at every main-cable bus (bus names 'house_1'...). ``load_kw`` per house (cos phi 1).

    With ``s_sc_mva`` = 1e6 the MV source is practically ideal, so runpp (ideal slack) and
    calc_sc (source impedance) see the same network.
    """
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 11.0, name="mv")
    pp.create_ext_grid(
        net,
        hv,
        s_sc_max_mva=s_sc_mva,
        s_sc_min_mva=s_sc_mva,
        rx_max=0.1,
        rx_min=0.1,
        r0x0_max=0.1,
        x0x_max=1.0,
        r0x0_min=0.1,
        x0x_min=1.0,
    )
    lv = pp.create_bus(net, vn_kv, name="busbar")
    pp.create_transformer_from_parameters(
        net,
        hv,
        lv,
        sn_mva=0.315,
        vn_hv_kv=11.0,
        vn_lv_kv=vn_kv,
        vk_percent=4.5,
        vkr_percent=1.2,
        pfe_kw=0.0,
        i0_percent=0.0,
        vector_group="Dyn",
        shift_degree=150,
        vk0_percent=4.5,
        vkr0_percent=1.2,
        mag0_percent=100,
        mag0_rx=0,
        si0_hv_partial=0.9,
    )
    prev = lv
    for i in range(1, n_main + 1):
        cab = pp.create_bus(net, vn_kv, name=f"cabinet_{i}")
        add_line(net, prev, cab, 0.100, MAIN, f"main_{i}")
        house = pp.create_bus(net, vn_kv, name=f"house_{i}")
        add_line(net, cab, house, 0.030, BRANCH, f"branch_{i}")
        if load_kw:
            pp.create_load(net, house, p_mw=load_kw / 1000.0, q_mvar=0.0, name=f"load_{i}")
        prev = cab
    return net


def bus_named(net, name: str) -> int:
    return int(net.bus.index[net.bus.name == name][0])


def to_json(net, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.to_json(net, str(path))


def quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with warnings suppressed (pandapower's FutureWarnings etc.)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def region_row(region, network_id: str, bus: int) -> int:
    """Row of pandapower bus ``bus`` of network ``network_id`` in ``region.arrays`` (computed independently)."""
    arrays = region.networks[network_id]
    start = sum(region.networks[n].n_bus for n in region.network_order[: region.network_order.index(network_id)])
    return start + int(np.flatnonzero(arrays.bus_ids == bus)[0])


def with_measured_base(net, measured, *, peak: bool = True):
    """The network as the engine's base case sees it with AMS data (``region.measured[network_id]``), in place:
    loads and generators at metered buses off, the metered hour's import as a balanced load (q/p of the model's
    loads there) and its export as a static generator. ``measured`` None: unchanged."""
    if measured is None:
        return net
    at = net.load.bus.isin(measured.buses) & net.load.in_service.astype(bool)
    p_bus = net.load.p_mw[at].groupby(net.load.bus[at]).sum()
    q_bus = net.load.q_mvar[at].groupby(net.load.bus[at]).sum()
    for table in ("load", "asymmetric_load", "sgen", "asymmetric_sgen"):
        if table in net and len(net[table]):
            net[table].loc[net[table].bus.isin(measured.buses), "scaling"] = 0.0
    imp = measured.peak_import_kw if peak else measured.low_import_kw
    exp = measured.peak_export_kw if peak else measured.low_export_kw
    for bus, p_kw, e_kw in zip(measured.buses, imp, exp):
        ratio = float(q_bus.get(bus, 0.0) / p_bus[bus]) if p_bus.get(bus, 0.0) > 0 else 0.0
        if p_kw > 0:
            pp.create_load(net, int(bus), p_mw=p_kw / 1000.0, q_mvar=ratio * p_kw / 1000.0)
        if e_kw > 0:
            pp.create_sgen(net, int(bus), p_mw=e_kw / 1000.0, q_mvar=0.0, sn_mva=e_kw / 1000.0)
    return net
