"""Harmonic voltages at the connection point from appliance harmonic currents.

Model (IEC 61000-3-6 style, per harmonic order ``h``):

* harmonic current of a device: ``I_h = s_h / 100 * I_rated`` with ``s_h`` the
  device class spectrum in percent of the rated current;
* harmonic impedance from the Thevenin impedance at the bus: the reactance scales
  with frequency, the resistance with skin/proximity effect as ``R_h = R_1 h^beta``
  (``beta`` configurable; 0 = no skin effect, 0.5 = the common sqrt(h) rule):
  ``Z_h = R_1 h^beta + j h X_1`` (positive/negative sequence, likewise zero
  sequence);
* loop impedance by connection as at 50 Hz: ``Z1_h`` for 3-phase devices, except
  their triplen orders, which are zero sequence: in TN they return over the neutral
  and see ``Z0_h``; in a 3-wire IT system they cannot flow and are dropped;
  ``(2 Z1_h + Z0_h)/3`` for L-N devices (phase out, neutral back); ``2 Z1_h`` for
  L-L devices;
* ``|V_h| = |Z_loop,h| I_h`` as a percentage of the phase voltage (L-N, 3-phase) or
  of U_LL (L-L);
* several devices and the background add with the IEC 61000-3-6 summation law
  ``V_h = (sum_i V_h,i^alpha_h)^(1/alpha_h)``;
* ``THD = sqrt(sum_h V_h^2)`` over the orders given.
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3, SYSTEM_TN


@njit
def harmonic_voltages_percent(
    owner,
    n_owners,
    conn,
    i_rated_a,
    spectra_percent,
    r1,
    x1,
    r0,
    x0,
    u_ll_v,
    system,
    orders,
    alpha,
    background_percent,
    skin_exponent,
):
    """Harmonic voltage per owner (notification) and order [% of the reference voltage].

    Parameters
    ----------
    owner : ndarray of int64, shape (n_devices,)
        Owner row (0..n_owners-1) of each device; negative rows are skipped.
    n_owners : int
        Number of owners (rows of the result).
    conn : ndarray of int64, shape (n_devices,)
        Connection code of each device.
    i_rated_a : ndarray of float64, shape (n_devices,)
        Rated (fundamental) current of each device [A].
    spectra_percent : ndarray of float64, shape (n_devices, n_orders)
        Harmonic current of each device at each order [% of rated current].
    r1, x1, r0, x0 : ndarray of float64, shape (n_owners,)
        Thevenin sequence impedances at each owner's bus at 50 Hz [ohm].
    u_ll_v : ndarray of float64, shape (n_owners,)
        Nominal line-to-line voltage at the bus [V].
    system : ndarray of int64, shape (n_owners,)
        ``codes.SYSTEM_TN`` or ``codes.SYSTEM_IT`` (decides where triplens of 3-phase
        devices go).
    orders : ndarray of int64, shape (n_orders,)
        Harmonic orders.
    alpha : ndarray of float64, shape (n_orders,)
        Summation exponent per order [-].
    background_percent : ndarray of float64, shape (n_owners, n_orders)
        Pre-existing harmonic voltage [%]; combined with the same summation law.
    skin_exponent : float
        ``beta`` in ``R_h = R_1 h^beta`` [-].

    Returns
    -------
    v_percent : ndarray of float64, shape (n_owners, n_orders)
        Total harmonic voltage (background and devices) [%].
    emission_percent : ndarray of float64, shape (n_owners, n_orders)
        The devices' contribution alone [%].
    """
    n_orders = orders.shape[0]
    acc = np.zeros((n_owners, n_orders))
    for j in range(owner.shape[0]):
        o = owner[j]
        if o < 0:
            continue
        c = conn[j]
        for k in range(n_orders):
            s = spectra_percent[j, k]
            if s <= 0.0:
                continue
            h = float(orders[k])
            rh = h**skin_exponent
            r1h = r1[o] * rh
            x1h = x1[o] * h
            if c == CONN_3PH:
                if orders[k] % 3 == 0:
                    if system[o] != SYSTEM_TN:
                        continue
                    zr = r0[o] * rh
                    zx = x0[o] * h
                else:
                    zr = r1h
                    zx = x1h
                u_ref = u_ll_v[o] / SQRT3
            elif c == CONN_LN:
                zr = (2.0 * r1h + r0[o] * rh) / 3.0
                zx = (2.0 * x1h + x0[o] * h) / 3.0
                u_ref = u_ll_v[o] / SQRT3
            elif c == CONN_LL:
                zr = 2.0 * r1h
                zx = 2.0 * x1h
                u_ref = u_ll_v[o]
            else:
                continue
            v = 100.0 * math.hypot(zr, zx) * (s / 100.0) * i_rated_a[j] / u_ref
            acc[o, k] += v ** alpha[k]
    emission = np.zeros((n_owners, n_orders))
    total = np.zeros((n_owners, n_orders))
    for o in range(n_owners):
        for k in range(n_orders):
            a = alpha[k]
            emission[o, k] = acc[o, k] ** (1.0 / a)
            total[o, k] = (acc[o, k] + background_percent[o, k] ** a) ** (1.0 / a)
    return total, emission


@njit
def thd_percent(v_percent):
    """Total harmonic distortion ``sqrt(sum_h V_h^2)`` per row [%]."""
    n = v_percent.shape[0]
    out = np.empty(n)
    for i in range(n):
        acc = 0.0
        for k in range(v_percent.shape[1]):
            acc += v_percent[i, k] * v_percent[i, k]
        out[i] = math.sqrt(acc)
    return out
