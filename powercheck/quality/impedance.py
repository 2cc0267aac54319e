"""Loop impedances and minimum fault currents at a connection point.

All functions take the Thevenin (network) impedances at the bus, as pandapower's
``calc_sc`` reports them in ``res_bus_sc.rk_ohm/xk_ohm`` (positive sequence,
phase-to-neutral equivalent) and ``rk0_ohm/xk0_ohm`` (zero sequence), in ohm.

Loop impedance seen by a load, by connection (Z2 = Z1 for static networks):

* three-phase balanced:  Z = Z1 (per phase, against the phase voltage)
* line-to-neutral:       Z = (Z1 + Z2 + Z0)/3 = (2 Z1 + Z0)/3
  (for a 4-core cable Z0 = Z_ph + 3 Z_N, so this is Z_ph + Z_N: out on the
  phase, back on the neutral)
* line-to-line:          Z = Z1 + Z2 = 2 Z1 (out on one phase, back on another;
  no zero-sequence current)

Minimum fault currents (IEC 60909 equivalent voltage source, factor c):

* TN, line-to-earth/neutral fault:  Ik1 = sqrt(3) c U_LL / |2 Z1 + Z0|
* IT, line-to-line fault (a double earth fault is cleared as L-L):
  Ik2 = c U_LL / |2 Z1|
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3, SYSTEM_IT, SYSTEM_TN


@njit
def loop_impedance(r1, x1, r0, x0, conn):
    """Loop resistance and reactance for each load connection.

    Parameters
    ----------
    r1, x1 : ndarray of float64
        Positive-sequence Thevenin resistance/reactance at the bus [ohm].
    r0, x0 : ndarray of float64
        Zero-sequence Thevenin resistance/reactance at the bus [ohm]; only used
        for L-N connections (may be NaN elsewhere).
    conn : ndarray of int64
        Connection codes (``codes.CONN_*``).

    Returns
    -------
    r_loop, x_loop : ndarray of float64
        Loop impedance [ohm]; NaN for unknown codes or missing data.
    """
    n = r1.shape[0]
    r_loop = np.empty(n)
    x_loop = np.empty(n)
    for i in range(n):
        c = conn[i]
        if c == CONN_3PH:
            r_loop[i] = r1[i]
            x_loop[i] = x1[i]
        elif c == CONN_LN:
            r_loop[i] = (2.0 * r1[i] + r0[i]) / 3.0
            x_loop[i] = (2.0 * x1[i] + x0[i]) / 3.0
        elif c == CONN_LL:
            r_loop[i] = 2.0 * r1[i]
            x_loop[i] = 2.0 * x1[i]
        else:
            r_loop[i] = np.nan
            x_loop[i] = np.nan
    return r_loop, x_loop


@njit
def min_fault_current_a(r1, x1, r0, x0, u_ll_v, system, c_min):
    """Minimum prospective fault current at the bus [A].

    Parameters
    ----------
    r1, x1, r0, x0 : ndarray of float64
        Thevenin sequence impedances for the *minimum* short-circuit case [ohm]
        (highest impedance: conductors at end temperature, weakest source).
    u_ll_v : ndarray of float64
        Nominal line-to-line voltage [V] (230 in IT 230 V, 400 in TN 400 V).
    system : ndarray of int64
        ``codes.SYSTEM_TN`` (line-to-neutral fault) or ``codes.SYSTEM_IT``
        (line-to-line fault).
    c_min : float
        IEC 60909 voltage factor for the minimum case [-].

    Returns
    -------
    ndarray of float64
        Fault current [A]; NaN where an impedance is missing.
    """
    n = r1.shape[0]
    out = np.empty(n)
    for i in range(n):
        if system[i] == SYSTEM_TN:
            z = math.hypot(2.0 * r1[i] + r0[i], 2.0 * x1[i] + x0[i])
            out[i] = SQRT3 * c_min * u_ll_v[i] / z
        elif system[i] == SYSTEM_IT:
            z = 2.0 * math.hypot(r1[i], x1[i])
            out[i] = c_min * u_ll_v[i] / z
        else:
            out[i] = np.nan
    return out
