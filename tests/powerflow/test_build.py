"""Building the radial model (powercheck.powerflow.build): branch models, switches and topology, rejected networks.

Every model is checked by solving it against pandapower (references: tests/helpers/powerflow.py).
"""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powercheck.powerflow import (
    RadialModelError,
    build_radial_model,
    run_batch,
    run_batch_3ph,
)
from tests.helpers.powerflow import (
    assert_balanced,
    kerber,
    pp_balanced,
)

# --------------------------------------------------------------------------------------------
# branch models and switches
# --------------------------------------------------------------------------------------------


def test_trafo_taps_models_and_angles_match_runpp():
    """Tap changers on either side (ratio, symmetrical, ideal), pi and T model, no voltage angles."""
    net = kerber("kerber_dorfnetz")
    hv = net.trafo.hv_bus.iat[0]
    net.trafo["pfe_kw"] = 1.5
    net.trafo["i0_percent"] = 0.8
    # a second transformer in series: MV 20 kV -> 10 kV "Ideal" phase shifter upstream of the LV trafo
    mv = pp.create_bus(net, vn_kv=20.0)
    net.ext_grid["bus"] = mv
    pp.create_transformer_from_parameters(
        net,
        mv,
        hv,
        sn_mva=2.0,
        vn_hv_kv=20.0,
        vn_lv_kv=10.0,
        vkr_percent=0.8,
        vk_percent=6.0,
        pfe_kw=2.0,
        i0_percent=0.4,
        shift_degree=0.0,
        tap_side="hv",
        tap_pos=2,
        tap_neutral=0,
        tap_step_percent=np.nan,
        tap_step_degree=1.5,
        tap_changer_type="Ideal",
        leakage_resistance_ratio_hv=0.3,
        leakage_reactance_ratio_hv=0.6,
    )
    net.trafo.loc[0, ["leakage_resistance_ratio_hv", "leakage_reactance_ratio_hv"]] = [0.5, 0.45]
    cases = [
        dict(tap_side="hv", tap_pos=-2, tap_changer_type="Ratio", tap_step_degree=0.0),
        dict(tap_side="lv", tap_pos=1, tap_changer_type="Ratio", tap_step_degree=0.0),
        dict(tap_side="lv", tap_pos=2, tap_changer_type="Symmetrical", tap_step_degree=10.0),
        dict(tap_side="hv", tap_pos=2, tap_changer_type=None, tap_step_degree=0.0),  # no effect, as pandapower
    ]
    p = net.load.p_mw.to_numpy()[None] * np.array([[0.5], [1.5]])
    for kw in cases:
        for col, val in kw.items():
            net.trafo.loc[0, col] = val
        for trafo_model in ("t", "pi"):
            for angles in (True, False):
                model = build_radial_model(
                    net, trafo_model=trafo_model, calculate_voltage_angles=angles, three_phase=False
                )
                res = run_batch(model, p_mw=p, q_mvar=0.2 * p)
                for k in range(2):
                    net.load["p_mw"] = p[k]
                    net.load["q_mvar"] = 0.2 * p[k]
                    pp_balanced(net, trafo_model=trafo_model, calculate_voltage_angles=angles)
                    assert_balanced(res, k, net, f"{kw} {trafo_model} angles={angles}")


def test_switches_fused_open_and_impedance_match_runpp():
    """Bus-bus switches fused, open line switches (dangling line), open loop, impedance switch, oos bus."""
    net = kerber("kerber_landnetz_kabel_1")
    lines = net.line.index.to_numpy()
    # split a bus with a closed bus-bus switch: move the to-end of line 3 to a new bus
    b_old = net.line.to_bus.at[lines[3]]
    b_new = pp.create_bus(net, vn_kv=net.bus.vn_kv.at[b_old])
    net.line.loc[lines[3], "to_bus"] = b_new
    pp.create_switch(net, b_old, b_new, et="b", closed=True)
    # an impedance bus-bus switch feeding an extra bus with a load
    b_imp = pp.create_bus(net, vn_kv=net.bus.vn_kv.at[b_old])
    pp.create_switch(net, b_old, b_imp, et="b", closed=True, z_ohm=0.05)
    pp.create_load(net, b_imp, p_mw=0.01, q_mvar=0.002)
    # a loop closed by a line whose switch is open at one end: the line stays charged from the other end
    a, b = net.line.to_bus.at[lines[1]], net.line.to_bus.at[lines[-1]]
    loop = pp.create_line_from_parameters(
        net, a, b, length_km=0.3, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=900.0, max_i_ka=0.27
    )
    pp.create_switch(net, b, loop, et="l", closed=False)
    # an open bus-bus switch to an isolated bus with a load, and an out-of-service bus behind a line
    b_iso = pp.create_bus(net, vn_kv=0.4)
    pp.create_switch(net, b_old, b_iso, et="b", closed=False)
    pp.create_load(net, b_iso, p_mw=0.01)
    b_oos = pp.create_bus(net, vn_kv=0.4, in_service=False)
    pp.create_line_from_parameters(
        net, b_old, b_oos, length_km=0.2, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=800.0, max_i_ka=0.27
    )
    net.line["c_nf_per_km"] = np.maximum(net.line.c_nf_per_km, 500.0)
    model = build_radial_model(net, three_phase=False)
    res = run_batch(model)
    pp_balanced(net)
    assert_balanced(res, (), net, "switches")
    assert np.isnan(res.vm_pu[net.bus.index.get_loc(b_iso)])
    assert res.vm_pu[net.bus.index.get_loc(b_new)] == res.vm_pu[net.bus.index.get_loc(b_old)]
    # the open-ended loop line carries charging current at its closed end only
    k = net.line.index.get_loc(loop)
    assert res.line_i_from_ka[k] > 0 and res.line_i_to_ka[k] == 0
    # opening a line switch with the switch at the line's other end isolates its subtree
    net2 = kerber("kerber_landnetz_kabel_1")
    last = net2.line.index[-1]
    pp.create_switch(net2, net2.line.from_bus.at[last], last, et="l", closed=False)
    res2 = run_batch(build_radial_model(net2))
    pp_balanced(net2)
    assert_balanced(res2, (), net2, "open line switch")
    assert np.isnan(res2.vm_pu[net2.bus.index.get_loc(net2.line.to_bus.at[last])])


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_meshed_network_rejected_naming_the_line():
    net = kerber("kerber_landnetz_kabel_1")
    a, b = net.line.to_bus.iat[2], net.line.to_bus.iat[5]
    loop = pp.create_line_from_parameters(
        net, a, b, length_km=0.1, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=0.0, max_i_ka=0.2
    )
    with pytest.raises(RadialModelError, match=rf"line {loop} closes a loop"):
        build_radial_model(net)
    # the same loop opened by a switch is fine
    pp.create_switch(net, a, loop, et="l", closed=False)
    build_radial_model(net)
    # parallel cables between the same two buses are not a mesh (their two-ports are summed)
    par = net.line.index[4]
    row = net.line.loc[par]
    pp.create_line_from_parameters(
        net,
        row.from_bus,
        row.to_bus,
        length_km=row.length_km,
        r_ohm_per_km=0.3,
        x_ohm_per_km=0.08,
        c_nf_per_km=300.0,
        max_i_ka=0.2,
    )
    res = run_batch(build_radial_model(net))
    pp_balanced(net)
    assert_balanced(res, (), net, "parallel lines")


def test_unsupported_elements_rejected():
    net = kerber("kerber_landnetz_kabel_1")
    g = pp.create_gen(net, net.load.bus.iat[0], p_mw=0.01, vm_pu=1.0)
    with pytest.raises(RadialModelError, match=rf"gen {g} is in service"):
        build_radial_model(net)
    net.gen.loc[g, "in_service"] = False
    build_radial_model(net)  # out-of-service elements are ignored
    pp.create_ext_grid(net, net.load.bus.iat[1])
    with pytest.raises(RadialModelError, match="exactly one in-service ext_grid"):
        build_radial_model(net)
    net = kerber("kerber_landnetz_kabel_1")
    net.load.loc[net.load.index[2], "const_z_p_percent"] = 50.0
    with pytest.raises(RadialModelError, match=rf"load {net.load.index[2]}: voltage-dependent"):
        build_radial_model(net)
    net = kerber("kerber_landnetz_kabel_1")
    net.sgen.drop(net.sgen.index, inplace=True)
    pp.create_sgen(net, net.load.bus.iat[0], p_mw=np.nan, index=17)
    with pytest.raises(RadialModelError, match="sgen 17: p/q"):
        build_radial_model(net)
    net = kerber("kerber_landnetz_kabel_1")
    model = build_radial_model(net)  # Dyn5, no zero-sequence data
    assert model.three_phase_error is not None
    with pytest.raises(RadialModelError, match="zero-sequence data missing"):
        run_batch_3ph(model)
    with pytest.raises(RadialModelError, match="clock number"):
        build_radial_model(net, three_phase=True)
