"""Loop impedance and minimum fault current kernels: by hand and against pandapower ``calc_sc``."""

import warnings

import numpy as np
import pandapower.shortcircuit as sc

from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SYSTEM_IT, SYSTEM_TN
from powercheck.quality.impedance import loop_impedance, min_fault_current_a
from tests.helpers.grids import bus_named, feeder

A = np.array
R1, X1, R0, X0 = 0.10, 0.05, 0.30, 0.15


def test_loop_impedance_by_connection():
    r, x = loop_impedance(A([R1] * 3), A([X1] * 3), A([R0] * 3), A([X0] * 3), A([CONN_3PH, CONN_LN, CONN_LL]))
    # 3ph: Z1; L-N: (2 Z1 + Z0)/3 = (0.2 + 0.3)/3, (0.1 + 0.15)/3; L-L: 2 Z1
    np.testing.assert_allclose(r, [0.10, 0.5 / 3, 0.20])
    np.testing.assert_allclose(x, [0.05, 0.25 / 3, 0.10])


def test_fault_current_by_hand():
    ik = min_fault_current_a(
        A([R1, R1]), A([X1, X1]), A([R0, np.nan]), A([X0, np.nan]), A([400.0, 230.0]), A([SYSTEM_TN, SYSTEM_IT]), 0.95
    )
    # TN: |2 Z1 + Z0| = |0.5 + j0.25| = 0.55902; sqrt(3) * 0.95 * 400 / 0.55902 = 1177.4 A
    # IT: 0.95 * 230 / (2 * 0.11180) = 977.19 A
    np.testing.assert_allclose(ik, [1177.4, 977.19], rtol=1e-4)


def test_fault_currents_match_calc_sc():
    # lv_tol_percent=6 makes pandapower use c_min = 0.95 on LV, the policy's c_min
    tn = feeder(0.4, s_sc_mva=200.0)
    it = feeder(0.23, s_sc_mva=200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(tn, case="min", fault="1ph", lv_tol_percent=6)
        tn_res = tn.res_bus_sc.copy()
        sc.calc_sc(it, case="min", fault="2ph", lv_tol_percent=6)
        it_res = it.res_bus_sc.copy()
    for net, res, system, u in ((tn, tn_res, SYSTEM_TN, 400.0), (it, it_res, SYSTEM_IT, 230.0)):
        buses = [bus_named(net, f"house_{i}") for i in (1, 2, 3)]
        r = res.loc[buses]
        r0 = r.rk0_ohm.to_numpy() if "rk0_ohm" in r else np.full(3, np.nan)
        x0 = r.xk0_ohm.to_numpy() if "xk0_ohm" in r else np.full(3, np.nan)
        ik = min_fault_current_a(
            r.rk_ohm.to_numpy(), r.xk_ohm.to_numpy(), r0, x0, np.full(3, u), np.full(3, system, dtype=np.int64), 0.95
        )
        np.testing.assert_allclose(ik, 1000 * r.ikss_ka.to_numpy(), rtol=1e-6)
