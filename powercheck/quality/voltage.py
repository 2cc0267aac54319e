"""Voltage change at the connection point caused by switching a load or generator.

The classic approximation (IEC 61000-3-11 / D-A-CH-CZ / IEC TR 61000-3-7) for the
relative voltage change when a current ``I`` at power factor ``cos phi`` flows
through the loop impedance ``R + jX``:

.. math::

    d = \\frac{(R \\cos\\varphi + X \\sin\\varphi)\\, I}{U_{ref}}

with the loop impedance and reference voltage of the connection
(``impedance.loop_impedance``):

=============  =====================  ====================
connection     loop impedance         U_ref
=============  =====================  ====================
3-phase        Z1                     U_LL / sqrt(3)
L-N (TN)       (2 Z1 + Z0) / 3        U_LL / sqrt(3)
L-L (IT, TN)   2 Z1                   U_LL
=============  =====================  ====================

and the line current ``I = S / (sqrt(3) U_LL)`` (3-phase), ``S / U_ph`` (L-N),
``S / U_LL`` (L-L). For a starting motor ``I`` is the starting current and
``cos phi`` the starting power factor. ``q_sign`` is +1 for a load drawing
inductive reactive power (voltage drop) and -1 for a generator absorbing reactive
power; generators use ``d`` as a rise.
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3
from powercheck.quality.impedance import loop_impedance


@njit
def line_current_a(p_kw, cos_phi, conn, u_ll_v):
    """Current in each loaded conductor [A] for a load of ``p_kw`` at ``cos_phi``.

    Parameters
    ----------
    p_kw : ndarray of float64
        Active power [kW] (load or generation, magnitude).
    cos_phi : ndarray of float64
        Power factor [-], 0 < cos_phi <= 1.
    conn : ndarray of int64
        Connection codes.
    u_ll_v : ndarray of float64
        Nominal line-to-line voltage [V].
    """
    n = p_kw.shape[0]
    out = np.empty(n)
    for i in range(n):
        s_va = 1000.0 * p_kw[i] / cos_phi[i]
        c = conn[i]
        if c == CONN_3PH:
            out[i] = s_va / (SQRT3 * u_ll_v[i])
        elif c == CONN_LN:
            out[i] = s_va / (u_ll_v[i] / SQRT3)
        elif c == CONN_LL:
            out[i] = s_va / u_ll_v[i]
        else:
            out[i] = np.nan
    return out


@njit
def reference_voltage_v(conn, u_ll_v):
    """Voltage the relative change refers to [V]: phase voltage, or U_LL for L-L loads."""
    n = conn.shape[0]
    out = np.empty(n)
    for i in range(n):
        if conn[i] == CONN_LL:
            out[i] = u_ll_v[i]
        elif conn[i] == CONN_3PH or conn[i] == CONN_LN:
            out[i] = u_ll_v[i] / SQRT3
        else:
            out[i] = np.nan
    return out


@njit
def voltage_change_percent(r1, x1, r0, x0, conn, u_ll_v, current_a, cos_phi, q_sign):
    """Relative voltage change [%] at the connection point.

    Parameters
    ----------
    r1, x1, r0, x0 : ndarray of float64
        Thevenin sequence impedances at the bus [ohm].
    conn : ndarray of int64
        Connection codes.
    u_ll_v : ndarray of float64
        Nominal line-to-line voltage [V].
    current_a : ndarray of float64
        Current in the loaded conductors [A] (rated or starting current).
    cos_phi : ndarray of float64
        Power factor of that current [-].
    q_sign : ndarray of float64
        +1 inductive (load), -1 capacitive/absorbing (generator convention).

    Returns
    -------
    ndarray of float64
        ``d`` [%], positive for a drop caused by a load.
    """
    r_loop, x_loop = loop_impedance(r1, x1, r0, x0, conn)
    u_ref = reference_voltage_v(conn, u_ll_v)
    n = r1.shape[0]
    out = np.empty(n)
    for i in range(n):
        c = cos_phi[i]
        s = q_sign[i] * math.sqrt(max(0.0, 1.0 - c * c))
        out[i] = 100.0 * (r_loop[i] * c + x_loop[i] * s) * current_a[i] / u_ref[i]
    return out


@njit
def voltage_after_constant_power(v_base_pu, d0_percent):
    """Voltage after adding a constant-power load (or generator) behind the loop impedance [pu].

    ``d0_percent`` is the relative change computed with the current at nominal
    voltage (:func:`voltage_change_percent`; positive = drop, negative = rise).
    A constant-power load draws ``I = I_nom / v``, so the voltage ``v`` after
    connection solves ``v = v_base - d0 / v``, i.e.

    .. math::  v^2 - v_{base} v + d_0 = 0, \\qquad v = (v_{base} + \\sqrt{v_{base}^2 - 4 d_0}) / 2

    (the classic two-bus solution, neglecting the transverse drop). Returns 0.0
    where no real solution exists (voltage collapse: the load cannot be supplied).

    Parameters
    ----------
    v_base_pu : ndarray of float64
        Voltage before connection [pu].
    d0_percent : ndarray of float64
        Voltage change at nominal-voltage current [%].
    """
    n = v_base_pu.shape[0]
    out = np.empty(n)
    for i in range(n):
        d0 = d0_percent[i] / 100.0
        disc = v_base_pu[i] * v_base_pu[i] - 4.0 * d0
        if disc < 0.0:
            out[i] = 0.0
        else:
            out[i] = 0.5 * (v_base_pu[i] + math.sqrt(disc))
    return out
