"""Voltage unbalance caused by single-phase loads.

A single-phase current ``I`` drawn at a bus with positive/negative-sequence
Thevenin impedance ``Z1 = Z2`` injects a negative-sequence current and so a
negative-sequence voltage ``V2 = Z2 I2``:

* L-N load on phase a: ``Ia = I, Ib = Ic = 0`` gives ``I2 = I/3``, so
  ``VUF = |Z1| I / (3 U_ph) = |Z1| S / U_LL^2``;
* L-L load between a and b: ``Ia = -Ib = I`` gives ``|I2| = I/sqrt(3)``, so
  ``VUF = |Z1| I / (sqrt(3) U_ph) = |Z1| S / U_LL^2``.

Both reduce to the textbook ``VUF = S / S_k`` with ``S_k = U_LL^2 / |Z1|``
(the three-phase short-circuit power without the c factor).
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit


@njit
def unbalance_percent(s_kva, r1, x1, u_ll_v):
    """Negative-sequence voltage unbalance factor |V2|/|V1| [%] from single-phase load.

    Parameters
    ----------
    s_kva : ndarray of float64
        Apparent power of the single-phase load(s) [kVA], worst case all on one
        phase (pair).
    r1, x1 : ndarray of float64
        Positive-sequence Thevenin impedance at the bus [ohm].
    u_ll_v : ndarray of float64
        Nominal line-to-line voltage [V].
    """
    n = s_kva.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = 100.0 * 1000.0 * s_kva[i] * math.hypot(r1[i], x1[i]) / (u_ll_v[i] * u_ll_v[i])
    return out
