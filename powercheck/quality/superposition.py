"""What a current injected at one bus of a radial feeder does at every other bus (superposition).

A load current ``I`` at bus ``i`` flows through every line on the path from ``i`` to the
transformer, and changes the voltage at bus ``j`` by the drop across the impedance the two
paths share: on a radial tree that is the Thevenin impedance of their lowest common ancestor
``a = lca(i, j)`` (MV source + transformer + the lines from the transformer down to ``a``):

.. math::  \\Delta U_j = \\frac{(R_a \\cos\\varphi + X_a \\sin\\varphi) I}{U_{ref}}

with the loop impedance of the connection at ``a`` (``Z1`` three-phase, ``(2 Z1 + Z0)/3`` L-N,
``2 Z1`` L-L; :func:`powercheck.quality.impedance.loop_impedance`). A single-phase power ``S``
adds negative-sequence voltage ``S |Z1_a| / U^2`` at ``j`` (:mod:`powercheck.quality.unbalance`).
Single-phase injections are assumed on the same phase (pair) as everything else: the
worst case when the phase is not known.

Buses fed by another transformer of the same network share no impedance with ``i`` (the MV
source impedance behind several transformers is neglected).
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3


@njit
def _change_percent(a, r1, x1, r0, x0, u_ll_v, conn, current_a, cos_phi, q_sign):
    """Voltage change [%] the components cause across the Thevenin impedance of bus ``a``."""
    d = 0.0
    for c in range(current_a.shape[0]):
        k = conn[c]
        if k == CONN_3PH:
            rl, xl, u_ref = r1[a], x1[a], u_ll_v[a] / SQRT3
        elif k == CONN_LN:
            rl, xl, u_ref = (2.0 * r1[a] + r0[a]) / 3.0, (2.0 * x1[a] + x0[a]) / 3.0, u_ll_v[a] / SQRT3
        elif k == CONN_LL:
            rl, xl, u_ref = 2.0 * r1[a], 2.0 * x1[a], u_ll_v[a]
        else:
            continue
        cf = cos_phi[c]
        sf = q_sign[c] * math.sqrt(max(0.0, 1.0 - cf * cf))
        d += 100.0 * (rl * cf + xl * sf) * current_a[c] / u_ref
    return d


@njit
def lca_effects(bus_row, bus_lo, bus_hi, parent, r1, x1, r0, x0, u_ll_v, conn, current_a, cos_phi, q_sign, s1_kva,
                dv, vuf):  # fmt: skip
    """Voltage change and unbalance at every bus of a network from components injected at ``bus_row``.

    The lowest common ancestor of ``bus_row`` and each bus ``j`` is found with one upward walk per
    bus that stops at the first bus already resolved (each bus is resolved once: O(buses) per
    injection), and the effect is computed once per bus of the injection's path.

    Parameters
    ----------
    bus_row : int
        Bus of the injection (row of the region arrays).
    bus_lo, bus_hi : int
        Bus rows of the injection's network (``bus_lo <= j < bus_hi``; parents stay inside).
    parent : ndarray of int64
        Parent bus row of every bus in its radial tree (-1 at the transformer busbar).
    r1, x1, r0, x0 : ndarray of float64
        Thevenin sequence impedances of every bus [ohm] (r0/x0 NaN where unknown).
    u_ll_v : ndarray of float64
        Nominal line-to-line voltage of every bus [V].
    conn, current_a, cos_phi, q_sign : ndarray
        Components: connection code, line current at nominal voltage [A], power factor [-],
        +1 for a load (drop), -1 for export (rise with reactive absorption).
    s1_kva : float
        Single-phase apparent power of the injection [kVA] (unbalance).
    dv, vuf : ndarray of float64, shape (bus_hi - bus_lo,)
        Output: voltage change [%] (drop for a load, rise for export) and added unbalance [%]
        at every bus of the network (0 where no impedance is shared).
    """
    n = bus_hi - bus_lo
    anc = np.full(n, -2, dtype=np.int64)  # -2: not resolved yet; -1: no shared impedance; else the LCA row
    stack = np.empty(n, dtype=np.int64)
    dv_at = np.zeros(n)
    vuf_at = np.zeros(n)
    a = bus_row
    while a >= 0:
        anc[a - bus_lo] = a
        dv_at[a - bus_lo] = _change_percent(a, r1, x1, r0, x0, u_ll_v, conn, current_a, cos_phi, q_sign)
        if s1_kva > 0.0:
            vuf_at[a - bus_lo] = 100.0 * 1000.0 * s1_kva * math.hypot(r1[a], x1[a]) / (u_ll_v[a] * u_ll_v[a])
        a = parent[a]
    for j in range(bus_lo, bus_hi):
        top = 0
        a = j
        while a >= 0 and anc[a - bus_lo] == -2:
            stack[top] = a
            top += 1
            a = parent[a]
        res = -1 if a < 0 else anc[a - bus_lo]
        for t in range(top):
            anc[stack[t] - bus_lo] = res
        if res < 0:
            dv[j - bus_lo] = 0.0
            vuf[j - bus_lo] = 0.0
        else:
            dv[j - bus_lo] = dv_at[res - bus_lo]
            vuf[j - bus_lo] = vuf_at[res - bus_lo]


@njit
def add_injection(
    bus_row,
    bus_lo,
    bus_hi,
    parent,
    r1,
    x1,
    r0,
    x0,
    u_ll_v,
    conn,
    current_a,
    cos_phi,
    q_sign,
    s1_kva,
    path_indptr,
    path_lines,
    trafo_row,
    sign,
    line_a,
    trafo_a,
    bus_dv_percent,
    bus_vuf_percent,
):
    """Add (``sign`` = +1) or remove (-1) the effect of components injected at ``bus_row``, in place.

    The lines on the bus's path and its transformer carry the summed component current
    (worst phase); every bus of the network gets the :func:`lca_effects`.

    Parameters
    ----------
    path_indptr, path_lines, trafo_row : ndarray of int64
        Radial paths (CSR line rows per bus) and the transformer row of every bus.
    sign : float
    line_a, trafo_a : ndarray of float64
        Added current per line / transformer [A], worst phase (updated).
    bus_dv_percent, bus_vuf_percent : ndarray of float64
        Added voltage change and unbalance per bus [%] (updated).

    The other parameters are those of :func:`lca_effects`.
    """
    total = 0.0
    for c in range(current_a.shape[0]):
        total += current_a[c]
    for p in range(path_indptr[bus_row], path_indptr[bus_row + 1]):
        line_a[path_lines[p]] += sign * total
    if trafo_row[bus_row] >= 0:
        trafo_a[trafo_row[bus_row]] += sign * total
    n = bus_hi - bus_lo
    dv = np.empty(n)
    vuf = np.empty(n)
    lca_effects(bus_row, bus_lo, bus_hi, parent, r1, x1, r0, x0, u_ll_v, conn, current_a, cos_phi, q_sign, s1_kva,
                dv, vuf)  # fmt: skip
    for j in range(n):
        bus_dv_percent[bus_lo + j] += sign * dv[j]
        bus_vuf_percent[bus_lo + j] += sign * vuf[j]


@njit
def worst_buses(
    bus_rows,
    own_value,
    comp_indptr,
    conn,
    current_a,
    cos_phi,
    q_sign,
    s1_kva,
    bus_bounds,
    network_of_bus,
    parent,
    r1,
    x1,
    r0,
    x0,
    u_ll_v,
    v_base_pu,
    reserved_dv_percent,
    dv_sign,
    unbalance_base_percent,
    reserved_vuf_percent,
    own_unbalance,
):
    """The worst voltage and unbalance anywhere in each notification's network after its injection.

    For notification ``k`` at bus ``i`` and every other bus ``j`` of its network:
    ``v_j = v_base[j] + dv_sign (reserved_dv[j] + dv_j) / 100`` (``dv_sign`` -1 for a load
    at peak, +1 for export at low load) and ``u_j = base[j] + reserved[j] + vuf_j / v_j^2``; at
    ``i`` itself the caller's more exact ``own_value`` / ``own_unbalance`` are used.

    Returns
    -------
    v_worst, v_bus, u_worst, u_bus : ndarray
        Per notification: the lowest (``dv_sign`` -1) or highest (+1) voltage [pu] and its bus
        row, the highest unbalance [%] and its bus row.
    """
    n = bus_rows.shape[0]
    v_worst = own_value.copy()
    v_bus = bus_rows.copy()
    u_worst = own_unbalance.copy()
    u_bus = bus_rows.copy()
    for k in range(n):
        i = bus_rows[k]
        lo, hi = comp_indptr[k], comp_indptr[k + 1]
        if i < 0 or hi == lo:
            continue
        net = network_of_bus[i]
        b_lo, b_hi = bus_bounds[net], bus_bounds[net + 1]
        dv = np.empty(b_hi - b_lo)
        vuf = np.empty(b_hi - b_lo)
        lca_effects(i, b_lo, b_hi, parent, r1, x1, r0, x0, u_ll_v, conn[lo:hi], current_a[lo:hi], cos_phi[lo:hi],
                    q_sign[lo:hi], s1_kva[k], dv, vuf)  # fmt: skip
        for j in range(b_lo, b_hi):
            if j == i:
                continue
            v = v_base_pu[j] + dv_sign * (reserved_dv_percent[j] + dv[j - b_lo]) / 100.0
            if (dv_sign < 0.0 and v < v_worst[k]) or (dv_sign > 0.0 and v > v_worst[k]):
                v_worst[k] = v
                v_bus[k] = j
            if s1_kva[k] > 0.0 and v > 0.0:
                u = unbalance_base_percent[j] + reserved_vuf_percent[j] + vuf[j - b_lo] / (v * v)
                if u > u_worst[k]:
                    u_worst[k] = u
                    u_bus[k] = j
    return v_worst, v_bus, u_worst, u_bus


@njit
def scale_limits(
    bus_rows,
    comp_indptr,
    conn,
    current_a,
    cos_phi,
    q_sign,
    s1_kva,
    bus_bounds,
    network_of_bus,
    parent,
    r1,
    x1,
    r0,
    x0,
    u_ll_v,
    v_base_pu,
    reserved_dv_percent,
    dv_sign,
    v_limit_pu,
    unbalance_base_percent,
    reserved_vuf_percent,
    unbalance_limit_percent,
):
    """The largest factor ``s`` by which each notification's injection may grow before another bus of its
    network leaves the voltage band or exceeds the unbalance limit (the inverse of :func:`worst_buses`).

    With the injection scaled by ``s``, bus ``j`` (not the connection point itself) sees
    ``v_j(s) = v0_j + dv_sign s dv_j / 100`` with ``v0_j = v_base[j] + dv_sign reserved_dv[j] / 100``
    and ``u_j(s) = b_j + s A_j / v_j(s)^2`` with ``A_j`` the unbalance of the unscaled single-phase
    power and ``b_j`` base + reserved. The voltage limit gives ``s_j = 100 (v0_j - v_limit) / dv_j``
    (load, ``dv_sign`` -1) or ``100 (v_limit - v0_j) / dv_j`` (export); the unbalance limit ``L``
    the smallest positive root of ``(L - b_j) (v0_j + dv_sign k_j s)^2 = A_j s`` with
    ``k_j = dv_j / 100``. ``inf`` where nothing binds, 0 where a bus is already beyond its limit.

    Returns
    -------
    s_voltage, s_unbalance : ndarray of float64
    """
    n = bus_rows.shape[0]
    s_v = np.full(n, np.inf)
    s_u = np.full(n, np.inf)
    for k in range(n):
        i = bus_rows[k]
        lo, hi = comp_indptr[k], comp_indptr[k + 1]
        if i < 0 or hi == lo:
            continue
        net = network_of_bus[i]
        b_lo, b_hi = bus_bounds[net], bus_bounds[net + 1]
        dv = np.empty(b_hi - b_lo)
        vuf = np.empty(b_hi - b_lo)
        lca_effects(i, b_lo, b_hi, parent, r1, x1, r0, x0, u_ll_v, conn[lo:hi], current_a[lo:hi], cos_phi[lo:hi],
                    q_sign[lo:hi], s1_kva[k], dv, vuf)  # fmt: skip
        for j in range(b_lo, b_hi):
            if j == i:
                continue
            d = dv[j - b_lo]
            v0 = v_base_pu[j] + dv_sign * reserved_dv_percent[j] / 100.0
            if d > 0.0:
                room = (v0 - v_limit_pu) if dv_sign < 0.0 else (v_limit_pu - v0)
                s = max(0.0, 100.0 * room / d)
                if s < s_v[k]:
                    s_v[k] = s
            a = vuf[j - b_lo]
            if s1_kva[k] > 0.0 and a > 0.0:
                c = unbalance_limit_percent - unbalance_base_percent[j] - reserved_vuf_percent[j]
                if c <= 0.0:
                    s_u[k] = 0.0
                    continue
                kk = dv_sign * d / 100.0
                # c (v0 + kk s)^2 - a s = 0  ->  qa s^2 + qb s + qc = 0
                qa = c * kk * kk
                qb = 2.0 * c * v0 * kk - a
                qc = c * v0 * v0
                if qa == 0.0:
                    s = qc / -qb if qb < 0.0 else np.inf
                else:
                    disc = qb * qb - 4.0 * qa * qc
                    if disc < 0.0:
                        s = np.inf
                    else:
                        root = math.sqrt(disc)
                        s1_ = (-qb - root) / (2.0 * qa)
                        s2_ = (-qb + root) / (2.0 * qa)
                        s = np.inf
                        if s1_ > 0.0:
                            s = s1_
                        elif s2_ > 0.0:
                            s = s2_
                if s < s_u[k]:
                    s_u[k] = s
    return s_v, s_u


@njit
def paths_voltage_change(bus_rows, parent, r1, x1, r0, x0, u_ll_v, lo, hi, conn, current_a, cos_phi, q_sign):
    """The buses from the transformer busbar down to each of many connection points, and the voltage change at each:
    point ``k`` at ``bus_rows[k]`` with the components ``lo[k]:hi[k]`` of ``conn``, ``current_a`` and ``cos_phi``
    and reactive sign ``q_sign`` (one for all), the paths concatenated in order.

    On a path, the lowest common ancestor of a bus with the connection point is the bus itself, so its change is
    the point's components' drop across the bus's own Thevenin impedance (:func:`lca_effects`).

    Returns
    -------
    rows : ndarray of int64
        Every path's bus rows (transformer busbar first, its point last), one path after the other.
    dv : ndarray of float64
        The voltage change at each [%] (drop for a load, rise for export).
    counts : ndarray of int64
        Buses per path.
    """
    m = bus_rows.shape[0]
    counts = np.empty(m, dtype=np.int64)
    total = 0
    for k in range(m):
        n = 0
        a = bus_rows[k]
        while a >= 0:
            n += 1
            a = parent[a]
        counts[k] = n
        total += n
    rows = np.empty(total, dtype=np.int64)
    dv = np.empty(total)
    pos = 0
    for k in range(m):
        c0, c1 = lo[k], hi[k]
        signs = np.full(c1 - c0, q_sign)
        a = bus_rows[k]
        for i in range(pos + counts[k] - 1, pos - 1, -1):
            rows[i] = a
            dv[i] = _change_percent(a, r1, x1, r0, x0, u_ll_v, conn[c0:c1], current_a[c0:c1], cos_phi[c0:c1], signs)
            a = parent[a]
        pos += counts[k]
    return rows, dv, counts
