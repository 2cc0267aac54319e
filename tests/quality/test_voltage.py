"""Line current, voltage change and constant-power voltage kernels: by hand and against pandapower."""

import math
import warnings

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pytest

from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN
from powercheck.quality.unbalance import unbalance_percent
from powercheck.quality.voltage import (
    line_current_a,
    voltage_after_constant_power,
    voltage_change_percent,
)
from tests.helpers.grids import bus_named, feeder

A = np.array
R1, X1, R0, X0 = 0.10, 0.05, 0.30, 0.15


def test_line_currents_by_hand():
    i = line_current_a(
        A([11.0, 7.4, 7.4]), A([1.0, 1.0, 0.925]), A([CONN_3PH, CONN_LN, CONN_LL]), A([400.0, 400.0, 230.0])
    )
    # 11 kW 3ph at 400 V: 11000 / (sqrt(3) * 400) = 15.877 A
    # 7.4 kW L-N at 230.94 V: 7400 / 230.94 = 32.043 A
    # 7.4 kW at cos 0.925 L-L 230 V: 8000 VA / 230 = 34.783 A
    np.testing.assert_allclose(i, [15.877, 32.043, 34.783], rtol=1e-4)


def test_voltage_change_by_hand():
    conn = A([CONN_LN, CONN_3PH, CONN_LL])
    u = A([400.0, 400.0, 230.0])
    # EV 7.4 kW L-N cos 1: I = 32.043 A; R_loop = 0.16667 -> d = 0.16667 * 32.043 / 230.94 = 2.3125 %
    # motor 11 kW 3ph cos 0.85, I_start = 6 I_r at cos 0.3:
    #   I_r = 11000 / 0.85 / (sqrt(3) 400) = 18.679 A, I_start = 112.07 A, sin = 0.95394
    #   d = (0.10 * 0.3 + 0.05 * 0.95394) * 112.07 / 230.94 = 0.077697 * 112.07 / 230.94 = 3.7706 %
    # heat pump 3 kW L-L 230 V cos 0.95, I = 13.730 A, sin = 0.31225:
    #   d = (0.2 * 0.95 + 0.1 * 0.31225) * 13.730 / 230 = 1.3206 %
    i = A([32.043, 6 * 18.679, 3000 / 0.95 / 230])
    cos = A([1.0, 0.3, 0.95])
    d = voltage_change_percent(A([R1] * 3), A([X1] * 3), A([R0] * 3), A([X0] * 3), conn, u, i, cos, A([1.0] * 3))
    np.testing.assert_allclose(d, [2.3125, 3.7706, 1.3206], rtol=2e-4)
    # a generator absorbing reactive power: (R cos - X sin) I / U
    g = voltage_change_percent(
        A([R1]), A([X1]), A([R0]), A([X0]), A([CONN_3PH]), A([400.0]), A([20.0]), A([0.9]), A([-1.0])
    )
    assert g[0] == pytest.approx(100 * (0.1 * 0.9 - 0.05 * math.sqrt(1 - 0.81)) * 20 / (400 / math.sqrt(3)))


def test_constant_power_voltage_by_hand():
    # v^2 - 0.98 v + 0.03 = 0 -> v = (0.98 + sqrt(0.9604 - 0.12)) / 2 = 0.948366
    v = voltage_after_constant_power(A([0.98, 1.0, 1.0]), A([3.0, -2.0, 30.0]))
    assert v[0] == pytest.approx(0.948366, abs=1e-6)
    assert v[1] == pytest.approx((1 + math.sqrt(1 + 0.08)) / 2)  # a generator raises the voltage
    assert v[2] == 0.0  # 1 - 4 * 0.3 < 0: voltage collapse


# ---------------------------------------------------------------------------------- against pandapower


def _thevenin(net, bus, fault):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="max", fault=fault)
    r = net.res_bus_sc.loc[bus]
    if fault == "1ph":
        return r.rk_ohm, r.xk_ohm, r.rk0_ohm, r.xk0_ohm
    return r.rk_ohm, r.xk_ohm, np.nan, np.nan


def _phasors(row):
    return np.array([row[f"vm_{p}_pu"] * np.exp(1j * np.deg2rad(row[f"va_{p}_degree"])) for p in "abc"])


def _kernel_drop(r1, x1, r0, x0, conn, p_kw, cos, u):
    i = line_current_a(A([p_kw]), A([cos]), A([conn]), A([u]))
    d0 = voltage_change_percent(A([r1]), A([x1]), A([r0]), A([x0]), A([conn]), A([u]), i, A([cos]), A([1.0]))
    v = voltage_after_constant_power(A([1.0]), d0)
    return d0[0], 100 * (1 - v[0])


@pytest.mark.parametrize("vn_kv", [0.4, 0.23])
def test_three_phase_drop_matches_runpp(vn_kv):
    net = feeder(vn_kv)
    bus = bus_named(net, "house_3")
    r1, x1, _, _ = _thevenin(net, bus, "3ph")
    pp.runpp(net)
    v0 = net.res_bus.vm_pu[bus]
    p_kw, cos = 30.0, 0.9
    pp.create_load(net, bus, p_mw=p_kw / 1000, q_mvar=p_kw / 1000 * math.tan(math.acos(cos)))
    pp.runpp(net)
    ref = 100 * (v0 - net.res_bus.vm_pu[bus])
    d0, d = _kernel_drop(r1, x1, np.nan, np.nan, CONN_3PH, p_kw, cos, vn_kv * 1000)
    assert ref > 1.0  # a meaningful drop
    # the constant-power solution agrees with the full load flow within 0.5 %
    assert d == pytest.approx(ref, rel=5e-3)
    # the textbook formula at nominal current underestimates by the current's 1/v growth
    assert d0 < ref


def test_line_to_neutral_drop_and_unbalance_match_runpp_3ph():
    net = feeder(0.4)
    bus = bus_named(net, "house_3")
    r1, x1, r0, x0 = _thevenin(net, bus, "1ph")
    pp.runpp_3ph(net)
    v0 = _phasors(net.res_bus_3ph.loc[bus])
    p_kw, cos = 10.0, 0.9
    pp.create_asymmetric_load(net, bus, p_a_mw=p_kw / 1000, q_a_mvar=p_kw / 1000 * math.tan(math.acos(cos)), type="wye")
    pp.runpp_3ph(net)
    row = net.res_bus_3ph.loc[bus]
    v1 = _phasors(row)
    ref = 100 * (abs(v0[0]) - abs(v1[0]))
    _, d = _kernel_drop(r1, x1, r0, x0, CONN_LN, p_kw, cos, 400.0)
    assert ref > 2.0
    assert d == pytest.approx(ref, rel=0.02)
    vuf = unbalance_percent(A([p_kw / cos]), A([r1]), A([x1]), A([400.0]))[0] / (1 - d / 100)
    assert vuf == pytest.approx(row.unbalance_percent, rel=0.03)


def test_line_to_line_drop_and_unbalance_match_runpp_3ph_in_it():
    net = feeder(0.23)
    bus = bus_named(net, "house_3")
    r1, x1, _, _ = _thevenin(net, bus, "3ph")
    pp.runpp_3ph(net)
    v0 = _phasors(net.res_bus_3ph.loc[bus])
    p_kw, cos = 10.0, 0.9
    # pandapower delta load: p_a_mw is the power between phases a and b
    pp.create_asymmetric_load(
        net, bus, p_a_mw=p_kw / 1000, q_a_mvar=p_kw / 1000 * math.tan(math.acos(cos)), type="delta"
    )
    pp.runpp_3ph(net)
    row = net.res_bus_3ph.loc[bus]
    v1 = _phasors(row)
    ref = 100 * (abs(v0[0] - v0[1]) - abs(v1[0] - v1[1])) / math.sqrt(3)
    _, d = _kernel_drop(r1, x1, np.nan, np.nan, CONN_LL, p_kw, cos, 230.0)
    assert ref > 2.0
    assert d == pytest.approx(ref, rel=5e-3)
    vuf = unbalance_percent(A([p_kw / cos]), A([r1]), A([x1]), A([230.0]))[0] / (1 - d / 100)
    assert vuf == pytest.approx(row.unbalance_percent, rel=0.03)
