"""Numba kernels for the batched radial power flow.

Pure array code: no pandas, no pandapower, no I/O. The adapter
(:mod:`powercheck.powerflow.build`) turns a network into the arrays used here.

Radial network representation
-----------------------------
Buses are numbered ``0 .. n-1`` in topological order: bus 0 is the slack
(root), and ``parent[b] < b`` for every other bus. Each non-root bus ``b`` is
connected to ``parent[b]`` by exactly one two-port (several parallel branches
between the same two buses are summed into one two-port beforehand). The
two-port is given in *parent/child* orientation as the admittance matrix

.. math::

    \\begin{pmatrix} I_p \\\\ I_c \\end{pmatrix} =
    \\begin{pmatrix} Y_{pp} & Y_{pc} \\\\ Y_{cp} & Y_{cc} \\end{pmatrix}
    \\begin{pmatrix} V_p \\\\ V_c \\end{pmatrix}

where the currents flow *into* the two-port. This is pandapower's branch model
(``makeYbus``: pi/T transformer model with off-nominal ratio and phase shift,
line charging, magnetising branch) without approximation. ``ysh[b]`` is a
constant shunt admittance at bus ``b`` (e.g. a branch whose far end is open).
In unbalanced (sequence) calculations ``y_slack`` is the admittance between the
slack bus and ground in the negative and zero sequence (pandapower's ext_grid
short-circuit impedance); in the positive sequence the slack voltage is fixed.

Method
------
Current-injection backward/forward sweep with an exact linear network solve:
the backward sweep reduces every subtree to a Norton equivalent
(``J = Yd V + Jn``), so each iteration solves the linear network exactly for
the load currents of the previous iterate, and the only iteration is the
fixed point on the (constant-power) load currents. ``Yd`` depends on the
network only, so the factors ``m = 1/(Ycc + Yd)`` are computed once
(:func:`sweep_factors`). Per iteration and bus this costs one real division
for the load current (``conj(S) V / |V|^2``) and two multiply-adds. The batch
items are swept in blocks of ``_BLOCK`` with the items as the innermost
axis (``_balanced_block``, ``_unbalanced_block``): each item does exactly the
arithmetic of a lone sweep and stops when it has converged, but the CPU overlaps
the items' independent chains of parent-to-child updates (both blocks are
SIMD-vectorised over the items: real arithmetic, selects instead of per-item
branches). The sweeps run on a reduced copy of the network in which every
chain of load-free buses with one child is one equivalent two-port (exact Kron reduction, built once per model by
:func:`powercheck.powerflow.solve.chain_reduction`); one sweep of the full
network with the last load currents then gives the voltages of all buses. Blocks run in parallel
with ``prange`` (``solve_*``) or on one thread (``solve_*_serial``; identical
results, preferable for small batches, where waking threads costs more than the
work).

All quantities are per unit on the three-phase base ``sn_mva`` and the bus
nominal voltage (phase-to-neutral voltages relative to ``vn_kv/sqrt(3)``).
Powers are *consumed* powers (loads positive, generation negative). In the
unbalanced kernel the per-phase powers are given on the per-phase base
``sn_mva/3``.
"""

from __future__ import annotations

import numpy as np

from powercheck.jit import njit, njit_numpy_errors, njit_parallel, prange

#: Status codes returned per batch item.
STATUS_CONVERGED = 0
STATUS_MAX_ITER = 1
STATUS_DIVERGED = 2

_A = complex(-0.5, np.sqrt(3.0) / 2.0)  # exp(j 120 deg)
_A2 = complex(-0.5, -np.sqrt(3.0) / 2.0)  # exp(-j 120 deg)
_V_COLLAPSE = 1e-3  # [pu] a voltage below this means the iteration has collapsed


@njit
def sweep_factors(parent, ypp, ypc, ycp, ycc, ysh, y_slack):
    """Network-only factors of the backward/forward sweep for one sequence.

    Parameters
    ----------
    parent : int64[n]
        Parent bus of every bus in topological order (``parent[0]`` unused).
    ypp, ypc, ycp, ycc : complex128[n]
        Two-port admittances of the branch above each bus, parent/child
        orientation [pu]. Entry 0 unused.
    ysh : complex128[n]
        Constant shunt admittance at each bus [pu].
    y_slack : complex
        Admittance from the slack bus to ground [pu] (0 in the positive
        sequence, where the slack voltage is imposed).

    Returns
    -------
    m : complex128[n]
        ``1 / (Ycc + Yd)`` per bus; ``m[0] = 1 / (Yd_root + y_slack)``. Zero
        where the denominator vanishes (a floating subnetwork, e.g. the zero
        sequence behind an unearthed winding).
    kup : complex128[n]
        ``-Ypc * m``: factor carrying a subtree's Norton current to its parent.
    yd : complex128[n]
        Norton admittance of every subtree (bus included, branch above
        excluded) [pu].
    """
    n = parent.shape[0]
    yd = ysh.copy()
    m = np.zeros(n, dtype=np.complex128)
    kup = np.zeros(n, dtype=np.complex128)
    for b in range(n - 1, 0, -1):
        den = ycc[b] + yd[b]
        if den != 0.0:
            m[b] = 1.0 / den
        kup[b] = -ypc[b] * m[b]
        yd[parent[b]] += ypp[b] - ypc[b] * ycp[b] * m[b]
    den = yd[0] + y_slack
    if den != 0.0:
        m[0] = 1.0 / den
    return m, kup, yd


@njit_numpy_errors
def _load_current(sr, si, xr, xi):
    """``conj(s / x)`` as ``conj(s) x / |x|^2`` (one real division instead of a complex one; differs from it by
    rounding only, < 1e-15 relative), real and imaginary part; exactly 0 where ``s == 0``, whatever ``x`` (a select,
    no branch: vectorizable)."""
    inv = 1.0 / (xr * xr + xi * xi)
    ld = sr != 0.0 or si != 0.0
    return (sr * xr + si * xi) * inv if ld else 0.0, (sr * xi - si * xr) * inv if ld else 0.0


@njit_numpy_errors
def _to_phases(v0r, v0i, v1r, v1i, v2r, v2i):
    """Phase values ``a = x0 + x1 + x2``, ``b = x0 + a^2 x1 + a x2``, ``c = x0 + a x1 + a^2 x2`` from the sequence
    values, real and imaginary parts, computed as the complex expressions are (same rounding)."""
    ar, ai, a2r, a2i = _A.real, _A.imag, _A2.real, _A2.imag
    return (
        v0r + v1r + v2r,
        v0i + v1i + v2i,
        v0r + (a2r * v1r - a2i * v1i) + (ar * v2r - ai * v2i),
        v0i + (a2r * v1i + a2i * v1r) + (ar * v2i + ai * v2r),
        v0r + (ar * v1r - ai * v1i) + (a2r * v2r - a2i * v2i),
        v0i + (ar * v1i + ai * v1r) + (a2r * v2i + a2i * v2r),
    )


@njit_numpy_errors
def _to_sequences(iar, iai, ibr, ibi, icr, ici):
    """Sequence values ``(a + b + c) / 3``, ``(a + a b + a^2 c) / 3``, ``(a + a^2 b + a c) / 3`` from the phase
    values, real and imaginary parts (same rounding as the complex expressions)."""
    ar, ai, a2r, a2i = _A.real, _A.imag, _A2.real, _A2.imag
    third = 1.0 / 3.0
    return (
        third * (iar + ibr + icr),
        third * (iai + ibi + ici),
        third * (iar + (ar * ibr - ai * ibi) + (a2r * icr - a2i * ici)),
        third * (iai + (ar * ibi + ai * ibr) + (a2r * ici + a2i * icr)),
        third * (iar + (a2r * ibr - a2i * ibi) + (ar * icr - ai * ici)),
        third * (iai + (a2r * ibi + a2i * ibr) + (ar * ici + ai * icr)),
    )


_BLOCK = 16  # batch items solved together (independent chains for the CPU, SIMD lanes; see _balanced_block)


@njit_numpy_errors
def _balanced_block(
    fparent, fm, fkup, fycp, full2red, rbus, parent, m, kup, ycp, elem_pos, s_elem, v_slack, tol2, max_iter, i0,
    bus_pos, v_out, n_iter, status, W, branch, branch_out,
):  # fmt: skip
    """Balanced items ``i0 .. i0 + W - 1`` (fewer at the end of the batch), swept together.

    Every item does exactly the arithmetic of a lone sweep (results do not depend on the block), in real
    arithmetic with the block's items as the innermost axis: the sweeps of different items are independent, so
    the CPU overlaps them instead of waiting on one item's chain of parent-to-child updates. An item stops
    being updated when it has converged (squared voltage change <= ``tol2``) or failed; the block ends when all
    have stopped or after ``max_iter`` sweeps. ``W`` (the block width) must reach the compiler as a run-time
    value: with a literal width the item loops are unrolled into scalar code instead of being vectorized (SIMD
    over the items); the NumPy error model (no zero-division check per division) is also needed for that.

    The sweeps run on the reduced network ``parent, m, kup, ycp`` (see :func:`solve_balanced`); the load
    currents that gave each item's last voltages are kept, and one sweep of the full network ``fparent, fm,
    fkup, fycp`` with them gives the voltages of all buses (skipped if nothing was reduced). Writes the voltages
    in the net's bus order (``v_out[i, j]`` of internal bus ``bus_pos[j]``, NaN where negative) and, when
    ``branch_out`` has the batch's rows, the branch results and slack power (:func:`_balanced_block_branches`).
    """
    nb = s_elem.shape[0]
    n = parent.shape[0]
    wn = min(W, nb - i0)
    vr = np.empty((n, W))
    vi = np.empty((n, W))
    sr = np.zeros((n, W))
    si = np.zeros((n, W))
    jr = np.empty((n, W))
    ji = np.empty((n, W))
    nf = fparent.shape[0]
    reduced = n < nf
    lr = np.zeros((n if reduced else 0, W))  # load currents that gave the current voltages (kept when an item stops)
    li = np.zeros((n if reduced else 0, W))
    dv2 = np.empty(W)  # largest squared voltage change of the sweep (convergence)
    dsum = np.empty(W)  # their sum: NaN or inf if any change is (a maximum would lose a NaN to a later bus)
    vmin = np.empty(W)  # smallest squared voltage of the sweep
    active = np.zeros(W, dtype=np.bool_)
    its = np.zeros(W, dtype=np.int64)
    st = np.full(W, STATUS_MAX_ITER, dtype=np.int64)
    for w in range(wn):
        active[w] = True
        for e in range(elem_pos.shape[0]):
            if elem_pos[e] >= 0:
                p = full2red[elem_pos[e]]
                sr[p, w] += s_elem[i0 + w, e].real
                si[p, w] += s_elem[i0 + w, e].imag
    loaded = np.empty(n, dtype=np.int64)  # buses with a load in any item of the block
    nl = 0
    for b in range(n):
        for w in range(W):
            if sr[b, w] != 0.0 or si[b, w] != 0.0:
                loaded[nl] = b
                nl += 1
                break
    # no-load start: the exact solution for zero load currents
    for w in range(W):
        vs = v_slack[i0 + min(w, wn - 1)]
        vr[0, w] = vs.real
        vi[0, w] = vs.imag
    for b in range(1, n):
        p = parent[b]
        cr = -m[b].real
        ci = -m[b].imag
        ar = cr * ycp[b].real - ci * ycp[b].imag  # (-m) ycp
        ai = cr * ycp[b].imag + ci * ycp[b].real
        for w in range(W):
            vr[b, w] = ar * vr[p, w] - ai * vi[p, w]
            vi[b, w] = ar * vi[p, w] + ai * vr[p, w]
    vmin2 = _V_COLLAPSE * _V_COLLAPSE
    it = 0
    n_active = wn
    while it < max_iter and n_active > 0:
        it += 1
        # load currents conj(S / V) = conj(S) V / |V|^2 (buses without load: 0)
        jr[:, :] = 0.0
        ji[:, :] = 0.0
        for j in range(nl):
            b = loaded[j]
            for w in range(W):
                x = vr[b, w]
                y = vi[b, w]
                a = sr[b, w]
                c = si[b, w]
                inv = 1.0 / (x * x + y * y)
                jr[b, w] = (a * x + c * y) * inv
                ji[b, w] = (a * y - c * x) * inv
        if reduced:
            for j in range(nl):
                b = loaded[j]
                for w in range(W):
                    act = active[w]
                    lr[b, w] = jr[b, w] if act else lr[b, w]
                    li[b, w] = ji[b, w] if act else li[b, w]
        # backward sweep: subtree Norton currents
        for b in range(n - 1, 0, -1):
            p = parent[b]
            a = kup[b].real
            c = kup[b].imag
            for w in range(W):
                jr[p, w] += a * jr[b, w] - c * ji[b, w]
                ji[p, w] += a * ji[b, w] + c * jr[b, w]
        # forward sweep: V_b = -m_b (Ycp_b V_parent + Jn_b)
        for w in range(W):
            dv2[w] = 0.0
            dsum[w] = 0.0
            vmin[w] = np.inf
        for b in range(1, n):
            p = parent[b]
            yr = ycp[b].real
            yi = ycp[b].imag
            cr = -m[b].real
            ci = -m[b].imag
            for w in range(W):
                tr = yr * vr[p, w] - yi * vi[p, w] + jr[b, w]
                ti = yr * vi[p, w] + yi * vr[p, w] + ji[b, w]
                nr = cr * tr - ci * ti
                ni = cr * ti + ci * tr
                dr = nr - vr[b, w]
                di = ni - vi[b, w]
                d2 = dr * dr + di * di
                dv2[w] = dv2[w] if d2 <= dv2[w] else d2
                dsum[w] += d2
                vm2 = nr * nr + ni * ni
                vmin[w] = vmin[w] if vmin[w] <= vm2 else vm2
                act = active[w]
                vr[b, w] = nr if act else vr[b, w]
                vi[b, w] = ni if act else vi[b, w]
        for w in range(wn):
            if active[w]:
                its[w] = it
                if not dsum[w] < np.inf or vmin[w] < vmin2:
                    st[w] = STATUS_DIVERGED
                elif dv2[w] <= tol2:
                    st[w] = STATUS_CONVERGED
                if st[w] != STATUS_MAX_ITER:
                    active[w] = False
                    n_active -= 1
    if reduced:
        # all buses: one sweep of the full network with the kept load currents
        fjr = np.zeros((nf, W))
        fji = np.zeros((nf, W))
        for j in range(nl):
            b = loaded[j]
            f = rbus[b]
            for w in range(W):
                fjr[f, w] = lr[b, w]
                fji[f, w] = li[b, w]
        for b in range(nf - 1, 0, -1):
            p = fparent[b]
            a = fkup[b].real
            c = fkup[b].imag
            for w in range(W):
                fjr[p, w] += a * fjr[b, w] - c * fji[b, w]
                fji[p, w] += a * fji[b, w] + c * fjr[b, w]
        fvr = np.empty((nf, W))
        fvi = np.empty((nf, W))
        for w in range(W):
            fvr[0, w] = vr[0, w]
            fvi[0, w] = vi[0, w]
        for b in range(1, nf):
            p = fparent[b]
            yr = fycp[b].real
            yi = fycp[b].imag
            cr = -fm[b].real
            ci = -fm[b].imag
            for w in range(W):
                tr = yr * fvr[p, w] - yi * fvi[p, w] + fjr[b, w]
                ti = yr * fvi[p, w] + yi * fvr[p, w] + fji[b, w]
                fvr[b, w] = cr * tr - ci * ti
                fvi[b, w] = cr * ti + ci * tr
        vr = fvr
        vi = fvi
    if branch_out[6].shape[0]:
        _balanced_block_branches(vr, vi, i0, wn, st, s_elem, branch, branch_out)
    nan = complex(np.nan, 0.0)
    for w in range(wn):
        i = i0 + w
        n_iter[i] = its[w]
        status[i] = st[w]
        if st[w] == STATUS_CONVERGED:
            for j in range(bus_pos.shape[0]):
                b = bus_pos[j]
                v_out[i, j] = complex(vr[b, w], vi[b, w]) if b >= 0 else nan
        else:
            for j in range(bus_pos.shape[0]):
                v_out[i, j] = nan


@njit_numpy_errors
def _balanced_block_branches(vr, vi, i0, wn, st, s_elem, branch, out):
    """Branch results and slack power of the block's items from their voltages ``vr, vi [bus, W]`` (internal
    order), with the arithmetic of :func:`_balanced_summary_rows` (same values bit for bit): the lines vectorized
    over the items (the complex products written out as NumPy computes them), transformers (few) and the slack
    power per item with the same complex expressions. The items that did not converge get NaN results: their
    voltages in ``vr, vi`` are overwritten with NaN first. ``branch`` and ``out`` as in :func:`solve_balanced`."""
    (f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv, trafo_sn,
     trafo_rating, root_children, ypp_root, ypc_root, ysh_root, root_elems, sn) = branch  # fmt: skip
    line_i_from, line_i_to, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading, eg_p, eg_q = out
    W = vr.shape[1]
    nan = np.nan
    # the items that did not converge get NaN voltages, hence NaN results (as the summary of their NaN voltages)
    ok = np.empty(W, dtype=np.bool_)
    for w in range(W):
        ok[w] = w < wn and st[w] == STATUS_CONVERGED
    for b in range(vr.shape[0]):
        for w in range(W):
            vr[b, w] = vr[b, w] if ok[w] else nan
            vi[b, w] = vi[b, w] if ok[w] else nan
    r = np.empty((3, W))  # one line's from and to current and loading
    for k in range(f_pos.shape[0]):
        f = f_pos[k]
        t = t_pos[k]
        bf = ibase_f[k]
        bt = ibase_t[k]
        if k < n_line:
            ar, ai, br, bi = yff[k].real, yff[k].imag, yft[k].real, yft[k].imag
            cr, ci, dr, di = ytf[k].real, ytf[k].imag, ytt[k].real, ytt[k].imag
            imax = line_imax[k]
            for w in range(W):
                xr, xi = _mul_add(ar, ai, vr[f, w], vi[f, w], br, bi, vr[t, w], vi[t, w])
                a_f = np.sqrt(xr * xr + xi * xi) * bf
                xr, xi = _mul_add(cr, ci, vr[f, w], vi[f, w], dr, di, vr[t, w], vi[t, w])
                a_t = np.sqrt(xr * xr + xi * xi) * bt
                r[0, w] = a_f
                r[1, w] = a_t
                r[2, w] = _nan_max_sel(a_f, a_t) / imax * 100.0  # IEEE division: _ratio's inf and NaN for imax = 0
            for w in range(wn):
                i = i0 + w
                line_i_from[i, k] = r[0, w]
                line_i_to[i, k] = r[1, w]
                line_loading[i, k] = r[2, w]
        else:
            j = k - n_line
            for w in range(wn):
                i = i0 + w
                a_f, a_t = _terminal_currents(
                    complex(vr[f, w], vi[f, w]), complex(vr[t, w], vi[t, w]), yff[k], yft[k], ytf[k], ytt[k], bf, bt
                )
                trafo_i_hv[i, j] = a_f
                trafo_i_lv[i, j] = a_t
                trafo_loading[i, j] = _trafo_loading(
                    a_f, a_t, trafo_vn_hv[j], trafo_vn_lv[j], trafo_sn[j], trafo_rating[j]
                )
    for w in range(wn):
        i = i0 + w
        v0 = complex(vr[0, w], vi[0, w])
        i_children = 0j
        for c in range(root_children.shape[0]):
            rc = root_children[c]
            i_children += ypp_root[c] * v0 + ypc_root[c] * complex(vr[rc, w], vi[rc, w])
        eg_p[i], eg_q[i] = _slack_power(v0, i_children, ysh_root, root_elems, s_elem, i, sn)


@njit_parallel
def solve_balanced(
    parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, elem_pos, s_elem, v_slack, bus_pos, tol, max_iter,
    v_out, n_iter, status, branch, branch_out,
):  # fmt: skip
    """Balanced (positive-sequence) power flow for a batch of load cases, parallel over blocks of the batch.

    Parameters
    ----------
    parent : int64[n]
        Parent bus in topological order.
    m, kup : complex128[n]
        Factors from :func:`sweep_factors` (positive sequence).
    ycp : complex128[n]
        Child-row, parent-column two-port admittance of the branch above each
        bus [pu].
    full2red, rbus : int64[n], int64[r]
        Reduced network: bus of every bus in it (-1 for a bus reduced away; every PQ element's bus must be kept)
        and, per reduced bus, its bus. The sweeps run on the reduced network, a copy of the network with every
        chain of buses without element and with one child replaced by one equivalent two-port (exact Kron
        reduction, :func:`powercheck.powerflow.solve.chain_reduction`); the voltages of all buses come from one
        sweep of the full network with the last load currents. Identity (``r == n``): no reduction.
    rparent, rm, rkup, rycp : int64[r], complex128[r]
        ``parent, m, kup, ycp`` of the reduced network.
    elem_pos : int64[e]
        Bus of every PQ element; negative = not supplied (ignored).
    s_elem : complex128[batch, e]
        Consumed complex power of every element [pu on ``sn_mva``].
    v_slack : complex128[batch]
        Slack voltage [pu].
    bus_pos : int64[n_net]
        Internal bus of each output bus (the net's bus order); negative = not supplied (NaN).
    tol : float
        Convergence tolerance on the largest voltage change between two
        iterations [pu].
    max_iter : int
        Iteration limit.
    v_out : complex128[batch, n_net]
        Output: bus voltages [pu] in the net's bus order. NaN where the item did not converge.
    n_iter : int64[batch]
        Output: iterations used.
    status : int64[batch]
        Output: :data:`STATUS_CONVERGED`, :data:`STATUS_MAX_ITER` or
        :data:`STATUS_DIVERGED`.
    branch : tuple
        Branches and slack of the results, as :func:`balanced_summary` takes them: ``f_pos, t_pos, yff, yft, ytf,
        ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv, trafo_sn, trafo_rating, root_children,
        ypp_root, ypc_root, ysh_root, root_elems, sn`` (``root_elems``: columns of ``s_elem`` injected at the slack
        bus).
    branch_out : tuple
        Output, as :func:`balanced_summary`'s: ``line_i_from, line_i_to, line_loading, trafo_i_hv, trafo_i_lv,
        trafo_loading, eg_p, eg_q`` -- the same numbers it gives for these voltages (bit for bit), NaN for the items
        that did not converge; arrays with no rows: no branch results.
    """
    nb = s_elem.shape[0]
    tol2 = tol * tol
    width = np.int64(_BLOCK)  # a run-time value: a literal width would unroll the item loops unvectorized
    for k in prange((nb + _BLOCK - 1) // _BLOCK):
        _balanced_block(
            parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, elem_pos, s_elem, v_slack, tol2, max_iter,
            k * _BLOCK, bus_pos, v_out, n_iter, status, width, branch, branch_out,
        )  # fmt: skip


@njit
def solve_balanced_serial(
    parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, elem_pos, s_elem, v_slack, bus_pos, tol, max_iter,
    v_out, n_iter, status, branch, branch_out,
):  # fmt: skip
    """Single-threaded :func:`solve_balanced` (same arguments, identical results)."""
    nb = s_elem.shape[0]
    tol2 = tol * tol
    width = np.int64(_BLOCK)  # a run-time value: a literal width would unroll the item loops unvectorized
    for i0 in range(0, nb, _BLOCK):
        _balanced_block(
            parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, elem_pos, s_elem, v_slack, tol2, max_iter,
            i0, bus_pos, v_out, n_iter, status, width, branch, branch_out,
        )  # fmt: skip


@njit_numpy_errors
def _unbalanced_block_branches(vr, vi, i0, wn, st, branch, out):
    """Branch results of the block's items from their sequence voltages ``vr, vi [3, bus, W]`` (internal order),
    with the arithmetic of :func:`_unbalanced_summary_rows` on the phase voltages the solver writes (same values
    bit for bit), but vectorized over the items for the lines; transformers (few) per item with the same helpers.
    NaN for the items that did not converge. ``branch`` and ``out`` as in :func:`solve_unbalanced`."""
    (f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv, trafo_sn,
     trafo_rating) = branch  # fmt: skip
    line_i, line_i_n, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading = out
    W = vr.shape[2]
    nk = f_pos.shape[0]
    sqrt3 = np.sqrt(3.0)
    nan = np.nan
    ok = np.empty(W, dtype=np.bool_)
    for w in range(W):
        ok[w] = w < wn and st[w] == STATUS_CONVERGED
    r = np.empty((5, W))  # one line's results: phase currents a, b, c, neutral current, largest phase current
    for k in range(nk):
        f = f_pos[k]
        t = t_pos[k]
        bf = ibase_f[k]
        bt = ibase_t[k]
        if k < n_line:
            f0r, f0i, f1r, f1i, f2r, f2i = _split3(yff, k)
            g0r, g0i, g1r, g1i, g2r, g2i = _split3(yft, k)
            h0r, h0i, h1r, h1i, h2r, h2i = _split3(ytf, k)
            e0r, e0i, e1r, e1i, e2r, e2i = _split3(ytt, k)
            imax = line_imax[k]
            for w in range(W):
                # phase voltages of both ends (as written to v_out), back to sequence values (as the summary)
                far, fai, fbr, fbi, fcr, fci = _to_phases(
                    vr[0, f, w], vi[0, f, w], vr[1, f, w], vi[1, f, w], vr[2, f, w], vi[2, f, w]
                )
                tar, tai, tbr, tbi, tcr, tci = _to_phases(
                    vr[0, t, w], vi[0, t, w], vr[1, t, w], vi[1, t, w], vr[2, t, w], vi[2, t, w]
                )
                s0r, s0i, s1r, s1i, s2r, s2i = _to_sequences(far, fai, fbr, fbi, fcr, fci)
                u0r, u0i, u1r, u1i, u2r, u2i = _to_sequences(tar, tai, tbr, tbi, tcr, tci)
                # sequence currents into the branch at both ends: yff s + yft u, ytf s + ytt u
                x0r, x0i = _mul_add(f0r, f0i, s0r, s0i, g0r, g0i, u0r, u0i)
                x1r, x1i = _mul_add(f1r, f1i, s1r, s1i, g1r, g1i, u1r, u1i)
                x2r, x2i = _mul_add(f2r, f2i, s2r, s2i, g2r, g2i, u2r, u2i)
                af_r, af_i, bf_r, bf_i, cf_r, cf_i = _to_phases(x0r, x0i, x1r, x1i, x2r, x2i)
                x0r, x0i = _mul_add(h0r, h0i, s0r, s0i, e0r, e0i, u0r, u0i)
                x1r, x1i = _mul_add(h1r, h1i, s1r, s1i, e1r, e1i, u1r, u1i)
                x2r, x2i = _mul_add(h2r, h2i, s2r, s2i, e2r, e2i, u2r, u2i)
                at_r, at_i, bt_r, bt_i, ct_r, ct_i = _to_phases(x0r, x0i, x1r, x1i, x2r, x2i)
                m0 = _nan_max_sel(np.sqrt(af_r * af_r + af_i * af_i) * bf, np.sqrt(at_r * at_r + at_i * at_i) * bt)
                m1 = _nan_max_sel(np.sqrt(bf_r * bf_r + bf_i * bf_i) * bf, np.sqrt(bt_r * bt_r + bt_i * bt_i) * bt)
                m2 = _nan_max_sel(np.sqrt(cf_r * cf_r + cf_i * cf_i) * bf, np.sqrt(ct_r * ct_r + ct_i * ct_i) * bt)
                nfr = af_r + bf_r + cf_r
                nfi = af_i + bf_i + cf_i
                ntr = at_r + bt_r + ct_r
                nti = at_i + bt_i + ct_i
                r[0, w] = m0
                r[1, w] = m1
                r[2, w] = m2
                r[3, w] = _nan_max_sel(np.sqrt(nfr * nfr + nfi * nfi) * bf, np.sqrt(ntr * ntr + nti * nti) * bt)
                r[4, w] = _nan_max_sel(_nan_max_sel(m0, m1), m2)
            for w in range(wn):
                i = i0 + w
                if ok[w]:
                    line_i[i, k, 0] = r[0, w]
                    line_i[i, k, 1] = r[1, w]
                    line_i[i, k, 2] = r[2, w]
                    line_i_n[i, k] = r[3, w]
                    line_loading[i, k] = _ratio(r[4, w], imax) * 100.0
                else:
                    line_i[i, k, 0] = nan
                    line_i[i, k, 1] = nan
                    line_i[i, k, 2] = nan
                    line_i_n[i, k] = nan
                    line_loading[i, k] = nan
        else:
            j = k - n_line
            hv, lv, sn = trafo_vn_hv[j], trafo_vn_lv[j], trafo_sn[j]
            for w in range(wn):
                i = i0 + w
                if not ok[w]:
                    for ph in range(3):
                        trafo_i_hv[i, j, ph] = nan
                        trafo_i_lv[i, j, ph] = nan
                    trafo_loading[i, j] = nan
                    continue
                fa, fb, fc = _phases_c(vr, vi, f, w)
                ta, tb, tc = _phases_c(vr, vi, t, w)
                s0, s1, s2 = _sequences_c(fa, fb, fc)
                u0, u1, u2 = _sequences_c(ta, tb, tc)
                ifa, ifb, ifc = _phases_of_seq_c(yff[0, k] * s0 + yft[0, k] * u0, yff[1, k] * s1 + yft[1, k] * u1,
                                                 yff[2, k] * s2 + yft[2, k] * u2)  # fmt: skip
                ita, itb, itc = _phases_of_seq_c(ytf[0, k] * s0 + ytt[0, k] * u0, ytf[1, k] * s1 + ytt[1, k] * u1,
                                                 ytf[2, k] * s2 + ytt[2, k] * u2)  # fmt: skip
                af0, af1, af2 = _cabs(ifa) * bf, _cabs(ifb) * bf, _cabs(ifc) * bf
                at0, at1, at2 = _cabs(ita) * bt, _cabs(itb) * bt, _cabs(itc) * bt
                trafo_i_hv[i, j, 0] = af0
                trafo_i_hv[i, j, 1] = af1
                trafo_i_hv[i, j, 2] = af2
                trafo_i_lv[i, j, 0] = at0
                trafo_i_lv[i, j, 1] = at1
                trafo_i_lv[i, j, 2] = at2
                l0 = _ratio(_nan_max(af0 * hv, at0 * lv) * sqrt3, sn) * 100.0
                l1 = _ratio(_nan_max(af1 * hv, at1 * lv) * sqrt3, sn) * 100.0
                l2 = _ratio(_nan_max(af2 * hv, at2 * lv) * sqrt3, sn) * 100.0
                trafo_loading[i, j] = _ratio(_nan_max(_nan_max(l0, l1), l2), trafo_rating[j])


@njit
def _split3(y, k):
    """Real and imaginary parts of ``y[0, k], y[1, k], y[2, k]``."""
    return y[0, k].real, y[0, k].imag, y[1, k].real, y[1, k].imag, y[2, k].real, y[2, k].imag


@njit_numpy_errors
def _mul_add(ar, ai, xr, xi, br, bi, yr, yi):
    """``a x + b y`` of complex numbers in real and imaginary parts (rounded as the complex expression)."""
    return (ar * xr - ai * xi) + (br * yr - bi * yi), (ar * xi + ai * xr) + (br * yi + bi * yr)


@njit_numpy_errors
def _nan_max_sel(a, b):
    """:func:`_nan_max` with selects instead of branches (vectorizable)."""
    x = a if a >= b else b
    return x if a == a and b == b else np.nan


@njit
def _phases_c(vr, vi, b, w):
    """Complex phase voltages a, b, c of bus ``b``, item ``w`` from the split sequence voltages (as ``v_out``)."""
    v0 = complex(vr[0, b, w], vi[0, b, w])
    v1 = complex(vr[1, b, w], vi[1, b, w])
    v2 = complex(vr[2, b, w], vi[2, b, w])
    return v0 + v1 + v2, v0 + _A2 * v1 + _A * v2, v0 + _A * v1 + _A2 * v2


@njit
def _sequences_c(xa, xb, xc):
    """Complex sequence values 0, 1, 2 of phase values (as :func:`_branch_phase_currents`)."""
    third = 1.0 / 3.0
    return third * (xa + xb + xc), third * (xa + _A * xb + _A2 * xc), third * (xa + _A2 * xb + _A * xc)


@njit
def _phases_of_seq_c(x0, x1, x2):
    """Complex phase values a, b, c of sequence values (as :func:`_branch_phase_currents`)."""
    return x0 + x1 + x2, x0 + _A2 * x1 + _A * x2, x0 + _A * x1 + _A2 * x2


@njit
def _add_loads(pos, kind, s_elem, full2red, i0, wn, sr, si, loaded):
    """Add the powers of the elements (bus ``pos``, phase or phase pair ``kind``; negative bus: not supplied) of
    items ``i0 .. i0 + wn - 1`` to ``sr, si [kind, reduced bus, item]``, in element order, and mark ``loaded`` the
    buses where any of them is not zero."""
    for e in range(pos.shape[0]):
        if pos[e] >= 0:
            b = full2red[pos[e]]
            k = kind[e]
            nz = False
            for w in range(wn):
                x = s_elem[i0 + w, e]
                sr[k, b, w] += x.real
                si[k, b, w] += x.imag
                nz = nz or x != 0.0
            loaded[b] = loaded[b] or nz


@njit_numpy_errors
def _unbalanced_block(
    fparent, fm, fkup, fycp, full2red, rbus, parent, m, kup, ycp, wye_pos, wye_phase, s_wye, delta_pos, delta_pair,
    s_delta, v_slack, tol2, max_iter, i0, bus_pos, v_out, n_iter, status, W, branch, branch_out,
):  # fmt: skip
    """Unbalanced items ``i0 .. i0 + W - 1`` swept together, as :func:`_balanced_block`: every item does the
    arithmetic of a lone sweep (results do not depend on the block), in real arithmetic (real and imaginary parts
    in separate arrays, the complex products written out as NumPy computes them) with the block's items as the
    innermost axis and no per-item branch in the item loops (selects instead), so that they are vectorized (SIMD
    over the items). Per sweep: phase voltages from the sequence voltages, phase load currents (wye:
    phase-to-neutral, delta: phase-to-phase; zero where the item has no such load) back to sequence currents,
    then the three sequence networks swept as the balanced one. Writes the phase voltages in the net's bus order
    (``v_out[i, j, phase]`` of internal bus ``bus_pos[j]``). Sweeps the reduced network and ends with one sweep
    of the full network, as :func:`_balanced_block`. With branches in ``branch`` (see :func:`solve_unbalanced`)
    also their results (:func:`_unbalanced_block_branches`)."""
    nb = v_slack.shape[0]
    n = parent.shape[0]
    nf = fparent.shape[0]
    reduced = n < nf
    wn = min(W, nb - i0)
    # per-bus constants of the sweeps: -m, kup, ycp per sequence, real and imaginary parts
    nmr = np.empty((3, n))
    nmi = np.empty((3, n))
    kr = np.empty((3, n))
    ki = np.empty((3, n))
    yr = np.empty((3, n))
    yi = np.empty((3, n))
    for k in range(3):
        for b in range(n):
            nmr[k, b] = -m[k, b].real
            nmi[k, b] = -m[k, b].imag
            kr[k, b] = kup[k, b].real
            ki[k, b] = kup[k, b].imag
            yr[k, b] = ycp[k, b].real
            yi[k, b] = ycp[k, b].imag
    vr = np.zeros((3, n, W))
    vi = np.zeros((3, n, W))
    jr = np.empty((3, n, W))
    ji = np.empty((3, n, W))
    ljr = np.zeros((3, n if reduced else 0, W))  # sequence load currents of the last sweep (kept when an item stops)
    lji = np.zeros((3, n if reduced else 0, W))
    nd = n if delta_pos.shape[0] else 0
    swr = np.zeros((3, n, W))  # wye load per phase
    swi = np.zeros((3, n, W))
    sdr = np.zeros((3, nd, W))  # delta load per phase pair
    sdi = np.zeros((3, nd, W))
    is_loaded = np.zeros(n, dtype=np.bool_)  # a load in any item of the block
    is_delta = np.zeros(n, dtype=np.bool_)  # a delta load in any item of the block
    dv2 = np.empty(W)  # largest squared voltage change of the sweep (convergence)
    dsum = np.empty(W)  # their sum: NaN or inf if any change is (a maximum would lose a NaN to a later bus)
    vmin = np.empty(W)  # smallest squared positive-sequence voltage of the sweep
    active = np.zeros(W, dtype=np.bool_)
    its = np.zeros(W, dtype=np.int64)
    st = np.full(W, STATUS_MAX_ITER, dtype=np.int64)
    for w in range(wn):
        active[w] = True
    # loads per bus and phase (pair): elements added in their order (every item as a lone sweep would)
    _add_loads(wye_pos, wye_phase, s_wye, full2red, i0, wn, swr, swi, is_loaded)
    _add_loads(delta_pos, delta_pair, s_delta, full2red, i0, wn, sdr, sdi, is_delta)
    # buses with a load in any item of the block (the others' load currents are 0 in every item; a bus whose
    # elements' powers add up to 0 is listed too: its currents are computed as 0 all the same)
    loaded = np.empty(n, dtype=np.int64)
    has_delta = np.zeros(n, dtype=np.bool_)
    unloaded = np.empty(n, dtype=np.int64)
    nl = 0
    nu = 0
    for b in range(n):
        if is_loaded[b] or is_delta[b]:
            loaded[nl] = b
            has_delta[nl] = is_delta[b]
            nl += 1
        else:
            unloaded[nu] = b
            nu += 1
    # no-load start: the exact solution for zero load currents (positive sequence only)
    for w in range(W):
        vs = v_slack[i0 + min(w, wn - 1)]
        vr[1, 0, w] = vs.real
        vi[1, 0, w] = vs.imag
    for b in range(1, n):
        p = parent[b]
        cr = nmr[1, b] * yr[1, b] - nmi[1, b] * yi[1, b]  # (-m) ycp
        ci = nmr[1, b] * yi[1, b] + nmi[1, b] * yr[1, b]
        for w in range(W):
            vr[1, b, w] = cr * vr[1, p, w] - ci * vi[1, p, w]
            vi[1, b, w] = cr * vi[1, p, w] + ci * vr[1, p, w]
    vmin2 = _V_COLLAPSE * _V_COLLAPSE
    it = 0
    n_active = wn
    while it < max_iter and n_active > 0:
        it += 1
        for j in range(nu):
            b = unloaded[j]
            for w in range(W):
                jr[0, b, w] = 0.0
                ji[0, b, w] = 0.0
                jr[1, b, w] = 0.0
                ji[1, b, w] = 0.0
                jr[2, b, w] = 0.0
                ji[2, b, w] = 0.0
        # phase load currents (0 where the item has no load) -> sequence currents; delta loads only at the buses
        # where an item of the block has one
        for j in range(nl):
            b = loaded[j]
            if has_delta[j]:
                for w in range(W):
                    var, vai, vbr, vbi, vcr, vci = _to_phases(
                        vr[0, b, w], vi[0, b, w], vr[1, b, w], vi[1, b, w], vr[2, b, w], vi[2, b, w]
                    )
                    iar, iai = _load_current(swr[0, b, w], swi[0, b, w], var, vai)
                    ibr, ibi = _load_current(swr[1, b, w], swi[1, b, w], vbr, vbi)
                    icr, ici = _load_current(swr[2, b, w], swi[2, b, w], vcr, vci)
                    dabr, dabi = _load_current(sdr[0, b, w], sdi[0, b, w], var - vbr, vai - vbi)
                    dbcr, dbci = _load_current(sdr[1, b, w], sdi[1, b, w], vbr - vcr, vbi - vci)
                    dcar, dcai = _load_current(sdr[2, b, w], sdi[2, b, w], vcr - var, vci - vai)
                    jr[0, b, w], ji[0, b, w], jr[1, b, w], ji[1, b, w], jr[2, b, w], ji[2, b, w] = _to_sequences(
                        iar + dabr - dcar, iai + dabi - dcai, ibr - dabr + dbcr, ibi - dabi + dbci,
                        icr - dbcr + dcar, ici - dbci + dcai,
                    )  # fmt: skip
            else:
                for w in range(W):
                    var, vai, vbr, vbi, vcr, vci = _to_phases(
                        vr[0, b, w], vi[0, b, w], vr[1, b, w], vi[1, b, w], vr[2, b, w], vi[2, b, w]
                    )
                    iar, iai = _load_current(swr[0, b, w], swi[0, b, w], var, vai)
                    ibr, ibi = _load_current(swr[1, b, w], swi[1, b, w], vbr, vbi)
                    icr, ici = _load_current(swr[2, b, w], swi[2, b, w], vcr, vci)
                    jr[0, b, w], ji[0, b, w], jr[1, b, w], ji[1, b, w], jr[2, b, w], ji[2, b, w] = _to_sequences(
                        iar, iai, ibr, ibi, icr, ici
                    )
        if reduced:
            for j in range(nl):
                b = loaded[j]
                for w in range(W):
                    act = active[w]
                    ljr[0, b, w] = jr[0, b, w] if act else ljr[0, b, w]
                    lji[0, b, w] = ji[0, b, w] if act else lji[0, b, w]
                    ljr[1, b, w] = jr[1, b, w] if act else ljr[1, b, w]
                    lji[1, b, w] = ji[1, b, w] if act else lji[1, b, w]
                    ljr[2, b, w] = jr[2, b, w] if act else ljr[2, b, w]
                    lji[2, b, w] = ji[2, b, w] if act else lji[2, b, w]
        # backward sweep of the three sequence networks: subtree Norton currents
        for b in range(n - 1, 0, -1):
            p = parent[b]
            c0r, c0i, c1r, c1i, c2r, c2i = kr[0, b], ki[0, b], kr[1, b], ki[1, b], kr[2, b], ki[2, b]
            for w in range(W):
                jr[0, p, w] += c0r * jr[0, b, w] - c0i * ji[0, b, w]
                ji[0, p, w] += c0r * ji[0, b, w] + c0i * jr[0, b, w]
                jr[1, p, w] += c1r * jr[1, b, w] - c1i * ji[1, b, w]
                ji[1, p, w] += c1r * ji[1, b, w] + c1i * jr[1, b, w]
                jr[2, p, w] += c2r * jr[2, b, w] - c2i * ji[2, b, w]
                ji[2, p, w] += c2r * ji[2, b, w] + c2i * jr[2, b, w]
        # slack bus in the zero and negative sequence: V_0 = -m_0 Jn_0 (the positive sequence's is imposed)
        c0r, c0i, c2r, c2i = nmr[0, 0], nmi[0, 0], nmr[2, 0], nmi[2, 0]
        for w in range(W):
            act = active[w]
            n0r = c0r * jr[0, 0, w] - c0i * ji[0, 0, w]
            n0i = c0r * ji[0, 0, w] + c0i * jr[0, 0, w]
            d0r = n0r - vr[0, 0, w]
            d0i = n0i - vi[0, 0, w]
            n2r = c2r * jr[2, 0, w] - c2i * ji[2, 0, w]
            n2i = c2r * ji[2, 0, w] + c2i * jr[2, 0, w]
            d2r = n2r - vr[2, 0, w]
            d2i = n2i - vi[2, 0, w]
            e0 = d0r * d0r + d0i * d0i
            e2 = d2r * d2r + d2i * d2i
            dv2[w] = e0 if e0 > e2 else e2  # starts the sweep's maximum (all changes are >= 0)
            dsum[w] = e0 + e2
            vmin[w] = np.inf
            vr[0, 0, w] = n0r if act else vr[0, 0, w]
            vi[0, 0, w] = n0i if act else vi[0, 0, w]
            vr[2, 0, w] = n2r if act else vr[2, 0, w]
            vi[2, 0, w] = n2i if act else vi[2, 0, w]
        # forward sweep of the three sequence networks: V_b = -m_b (Ycp_b V_parent + Jn_b) (one item loop per
        # sequence: a loop over all three has too many arrays for the vectorizer's overlap checks)
        for b in range(1, n):
            p = parent[b]
            for k in range(3):
                cr = nmr[k, b]
                ci = nmi[k, b]
                gr = yr[k, b]
                gi = yi[k, b]
                pos = k == 1
                for w in range(W):
                    tr = gr * vr[k, p, w] - gi * vi[k, p, w] + jr[k, b, w]
                    ti = gr * vi[k, p, w] + gi * vr[k, p, w] + ji[k, b, w]
                    nr = cr * tr - ci * ti
                    ni = cr * ti + ci * tr
                    dr = nr - vr[k, b, w]
                    di = ni - vi[k, b, w]
                    d2 = dr * dr + di * di
                    dv2[w] = dv2[w] if d2 <= dv2[w] else d2
                    dsum[w] += d2
                    vm2 = nr * nr + ni * ni if pos else np.inf  # collapse test: positive sequence
                    vmin[w] = vmin[w] if vmin[w] <= vm2 else vm2
                    act = active[w]
                    vr[k, b, w] = nr if act else vr[k, b, w]
                    vi[k, b, w] = ni if act else vi[k, b, w]
        for w in range(wn):
            if active[w]:
                its[w] = it
                if not dsum[w] < np.inf or vmin[w] < vmin2:
                    st[w] = STATUS_DIVERGED
                elif dv2[w] <= tol2:
                    st[w] = STATUS_CONVERGED
                if st[w] != STATUS_MAX_ITER:
                    active[w] = False
                    n_active -= 1
    if reduced:
        # all buses: one sweep of the full network (three sequences) with the kept load currents
        fvr = np.empty((3, nf, W))
        fvi = np.empty((3, nf, W))
        fjr = np.zeros((3, nf, W))
        fji = np.zeros((3, nf, W))
        for j in range(nl):
            b = loaded[j]
            f = rbus[b]
            for w in range(W):
                fjr[0, f, w] = ljr[0, b, w]
                fji[0, f, w] = lji[0, b, w]
                fjr[1, f, w] = ljr[1, b, w]
                fji[1, f, w] = lji[1, b, w]
                fjr[2, f, w] = ljr[2, b, w]
                fji[2, f, w] = lji[2, b, w]
        for b in range(nf - 1, 0, -1):
            p = fparent[b]
            c0r, c0i, c1r, c1i = fkup[0, b].real, fkup[0, b].imag, fkup[1, b].real, fkup[1, b].imag
            c2r, c2i = fkup[2, b].real, fkup[2, b].imag
            for w in range(W):
                fjr[0, p, w] += c0r * fjr[0, b, w] - c0i * fji[0, b, w]
                fji[0, p, w] += c0r * fji[0, b, w] + c0i * fjr[0, b, w]
                fjr[1, p, w] += c1r * fjr[1, b, w] - c1i * fji[1, b, w]
                fji[1, p, w] += c1r * fji[1, b, w] + c1i * fjr[1, b, w]
                fjr[2, p, w] += c2r * fjr[2, b, w] - c2i * fji[2, b, w]
                fji[2, p, w] += c2r * fji[2, b, w] + c2i * fjr[2, b, w]
        c0r, c0i, c2r, c2i = -fm[0, 0].real, -fm[0, 0].imag, -fm[2, 0].real, -fm[2, 0].imag
        for w in range(W):
            fvr[0, 0, w] = c0r * fjr[0, 0, w] - c0i * fji[0, 0, w]
            fvi[0, 0, w] = c0r * fji[0, 0, w] + c0i * fjr[0, 0, w]
            fvr[1, 0, w] = vr[1, 0, w]
            fvi[1, 0, w] = vi[1, 0, w]
            fvr[2, 0, w] = c2r * fjr[2, 0, w] - c2i * fji[2, 0, w]
            fvi[2, 0, w] = c2r * fji[2, 0, w] + c2i * fjr[2, 0, w]
        for b in range(1, nf):
            p = fparent[b]
            for k in range(3):
                gr = fycp[k, b].real
                gi = fycp[k, b].imag
                cr = -fm[k, b].real
                ci = -fm[k, b].imag
                for w in range(W):
                    tr = gr * fvr[k, p, w] - gi * fvi[k, p, w] + fjr[k, b, w]
                    ti = gr * fvi[k, p, w] + gi * fvr[k, p, w] + fji[k, b, w]
                    fvr[k, b, w] = cr * tr - ci * ti
                    fvi[k, b, w] = cr * ti + ci * tr
        vr = fvr
        vi = fvi
    if branch[0].shape[0]:
        _unbalanced_block_branches(vr, vi, i0, wn, st, branch, branch_out)
    nan = complex(np.nan, 0.0)
    for w in range(wn):
        n_iter[i0 + w] = its[w]
        status[i0 + w] = st[w]
    ph = np.empty((6, W))  # phase voltages of one bus, real and imaginary parts
    for j in range(bus_pos.shape[0]):
        b = bus_pos[j]
        if b >= 0:
            for w in range(W):
                ph[0, w], ph[1, w], ph[2, w], ph[3, w], ph[4, w], ph[5, w] = _to_phases(
                    vr[0, b, w], vi[0, b, w], vr[1, b, w], vi[1, b, w], vr[2, b, w], vi[2, b, w]
                )
        for w in range(wn):
            i = i0 + w
            if st[w] == STATUS_CONVERGED and b >= 0:
                v_out[i, j, 0] = complex(ph[0, w], ph[1, w])
                v_out[i, j, 1] = complex(ph[2, w], ph[3, w])
                v_out[i, j, 2] = complex(ph[4, w], ph[5, w])
            else:
                v_out[i, j, 0] = nan
                v_out[i, j, 1] = nan
                v_out[i, j, 2] = nan


@njit_parallel
def solve_unbalanced(
    parent,
    m,
    kup,
    ycp,
    full2red,
    rbus,
    rparent,
    rm,
    rkup,
    rycp,
    wye_pos,
    wye_phase,
    s_wye,
    delta_pos,
    delta_pair,
    s_delta,
    v_slack,
    bus_pos,
    tol,
    max_iter,
    v_out,
    n_iter,
    status,
    branch,
    branch_out,
):
    """Unbalanced power flow in symmetrical components for a batch of cases, parallel over blocks of the batch.

    The network is sequence-decoupled (symmetric lines, transformers with
    sequence-dependent models); only the loads couple the sequences. Every
    iteration computes the phase load currents from the phase voltages, turns
    them into sequence currents and solves the three sequence networks.

    Parameters
    ----------
    parent : int64[n]
        Parent bus in topological order.
    m, kup, ycp : complex128[3, n]
        Sweep factors and two-port admittance per sequence (0, 1, 2).
        ``m[s, 0]`` (s = 0, 2) includes the slack's earthing admittance.
    full2red, rbus, rparent, rm, rkup, rycp
        The reduced network, as in :func:`solve_balanced` (``rm, rkup, rycp`` per sequence, ``[3, r]``).
    wye_pos, wye_phase : int64[w]
        Bus (negative = not supplied) and phase (0=a, 1=b, 2=c) of every
        phase-to-neutral load.
    s_wye : complex128[batch, w]
        Consumed power of each wye load [pu on ``sn_mva/3``].
    delta_pos, delta_pair : int64[d]
        Bus and phase pair (0=ab, 1=bc, 2=ca) of every phase-to-phase load.
    s_delta : complex128[batch, d]
        Consumed power of each delta load [pu on ``sn_mva/3``].
    v_slack : complex128[batch]
        Positive-sequence slack voltage [pu].
    bus_pos : int64[n_net]
        Internal bus of each output bus (the net's bus order); negative = not supplied (NaN).
    tol : float
        Convergence tolerance on the largest change of any sequence voltage
        [pu].
    max_iter : int
        Iteration limit.
    v_out : complex128[batch, n_net, 3]
        Output: phase voltages a, b, c to neutral [pu]; NaN if not converged.
    n_iter, status : int64[batch]
        Output, as in :func:`solve_balanced`.
    branch : tuple
        Branches whose results to compute from the solution, as :func:`unbalanced_branch_summary` takes them
        (``f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
        trafo_sn, trafo_rating``) but with ``f_pos``/``t_pos`` internal buses; none (empty ``f_pos``): no branch
        results.
    branch_out : tuple
        Output, as :func:`unbalanced_branch_summary`'s (``line_i, line_i_n, line_loading, trafo_i_hv,
        trafo_i_lv, trafo_loading``): the same numbers it gives for ``v_out`` (bit for bit), NaN for the items
        that did not converge.
    """
    nb = v_slack.shape[0]
    tol2 = tol * tol
    width = np.int64(_BLOCK)  # a run-time value: a literal width would unroll the item loops unvectorized
    for k in prange((nb + _BLOCK - 1) // _BLOCK):
        _unbalanced_block(
            parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, wye_pos, wye_phase, s_wye, delta_pos,
            delta_pair, s_delta, v_slack, tol2, max_iter, k * _BLOCK, bus_pos, v_out, n_iter, status, width, branch,
            branch_out,
        )  # fmt: skip


@njit
def solve_unbalanced_serial(
    parent,
    m,
    kup,
    ycp,
    full2red,
    rbus,
    rparent,
    rm,
    rkup,
    rycp,
    wye_pos,
    wye_phase,
    s_wye,
    delta_pos,
    delta_pair,
    s_delta,
    v_slack,
    bus_pos,
    tol,
    max_iter,
    v_out,
    n_iter,
    status,
    branch,
    branch_out,
):
    """Single-threaded :func:`solve_unbalanced` (same arguments, identical results)."""
    nb = v_slack.shape[0]
    tol2 = tol * tol
    width = np.int64(_BLOCK)  # a run-time value: a literal width would unroll the item loops unvectorized
    for i0 in range(0, nb, _BLOCK):
        _unbalanced_block(
            parent, m, kup, ycp, full2red, rbus, rparent, rm, rkup, rycp, wye_pos, wye_phase, s_wye, delta_pos,
            delta_pair, s_delta, v_slack, tol2, max_iter, i0, bus_pos, v_out, n_iter, status, width, branch,
            branch_out,
        )  # fmt: skip


@njit
def branch_currents(v, f_pos, t_pos, yff, yft, ytf, ytt, i_f, i_t):
    """Terminal currents of all branches for a batch of voltage solutions.

    Parameters
    ----------
    v : complex128[batch, n]
        Bus voltages [pu].
    f_pos, t_pos : int64[k]
        Buses of the two ends (any valid bus where the end's admittances are 0).
    yff, yft, ytf, ytt : complex128[k]
        Branch admittances in from/to orientation [pu].
    i_f, i_t : complex128[batch, k]
        Output: currents into the branch at the from and to end [pu].
    """
    nb = v.shape[0]
    nk = f_pos.shape[0]
    for i in range(nb):
        for k in range(nk):
            vf = v[i, f_pos[k]]
            vt = v[i, t_pos[k]]
            i_f[i, k] = yff[k] * vf + yft[k] * vt
            i_t[i, k] = ytf[k] * vf + ytt[k] * vt


@njit
def branch_currents_unbalanced(v_abc, f_pos, t_pos, yff, yft, ytf, ytt, i_f, i_t):
    """Phase terminal currents of all branches, computed per sequence.

    Parameters
    ----------
    v_abc : complex128[batch, 3, n]
        Phase voltages [pu].
    f_pos, t_pos : int64[k]
        Buses of the two ends.
    yff, yft, ytf, ytt : complex128[3, k]
        Branch admittances per sequence (0, 1, 2), from/to orientation [pu].
    i_f, i_t : complex128[batch, 3, k]
        Output: phase currents a, b, c into the branch at each end [pu].
    """
    nb = v_abc.shape[0]
    nk = f_pos.shape[0]
    for i in range(nb):
        for k in range(nk):
            ifa, ifb, ifc, ita, itb, itc = _branch_phase_currents(v_abc, i, f_pos[k], t_pos[k], yff, yft, ytf, ytt, k)
            i_f[i, 0, k] = ifa
            i_f[i, 1, k] = ifb
            i_f[i, 2, k] = ifc
            i_t[i, 0, k] = ita
            i_t[i, 1, k] = itb
            i_t[i, 2, k] = itc


@njit
def _branch_phase_currents(v_abc, i, f, t, yff, yft, ytf, ytt, k, phase_last=False):
    """Phase currents a, b, c into branch ``k`` at its from and to end for batch item ``i``: the phase voltages
    of its end buses ``f``, ``t`` to sequence components, times the branch's sequence admittances, back to
    phases. ``v_abc`` is ``[batch, 3, bus]``, or ``[batch, bus, 3]`` with ``phase_last``. Returns
    ``(i_fa, i_fb, i_fc, i_ta, i_tb, i_tc)`` [pu]."""
    third = 1.0 / 3.0
    if phase_last:
        fa = v_abc[i, f, 0]
        fb = v_abc[i, f, 1]
        fc = v_abc[i, f, 2]
        ta = v_abc[i, t, 0]
        tb = v_abc[i, t, 1]
        tc = v_abc[i, t, 2]
    else:
        fa = v_abc[i, 0, f]
        fb = v_abc[i, 1, f]
        fc = v_abc[i, 2, f]
        ta = v_abc[i, 0, t]
        tb = v_abc[i, 1, t]
        tc = v_abc[i, 2, t]
    f0 = third * (fa + fb + fc)
    f1 = third * (fa + _A * fb + _A2 * fc)
    f2 = third * (fa + _A2 * fb + _A * fc)
    t0 = third * (ta + tb + tc)
    t1 = third * (ta + _A * tb + _A2 * tc)
    t2 = third * (ta + _A2 * tb + _A * tc)
    if0 = yff[0, k] * f0 + yft[0, k] * t0
    if1 = yff[1, k] * f1 + yft[1, k] * t1
    if2 = yff[2, k] * f2 + yft[2, k] * t2
    it0 = ytf[0, k] * f0 + ytt[0, k] * t0
    it1 = ytf[1, k] * f1 + ytt[1, k] * t1
    it2 = ytf[2, k] * f2 + ytt[2, k] * t2
    return (
        if0 + if1 + if2,
        if0 + _A2 * if1 + _A * if2,
        if0 + _A * if1 + _A2 * if2,
        it0 + it1 + it2,
        it0 + _A2 * it1 + _A * it2,
        it0 + _A * it1 + _A2 * it2,
    )


@njit
def _chunk(nb):
    """Batch items per parallel task: at least 8, at most 256 tasks (a task per item would pass every array
    argument per item)."""
    return max(8, -(-nb // 256))


@njit
def _cabs(z):
    """``|z|`` as ``sqrt(re^2 + im^2)``: a few times faster than ``abs`` (``hypot``, which guards against
    overflow of the squares, impossible for currents in pu); equal to it within 1 ulp."""
    return np.sqrt(z.real * z.real + z.imag * z.imag)


@njit
def _nan_max(a, b):
    """``np.maximum``: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@njit
def _ratio(x, y):
    """``x / y`` as NumPy divides (inf or NaN for y == 0, no exception)."""
    if y == 0.0:
        if x == 0.0 or x != x:
            return np.nan
        return np.inf if x > 0 else -np.inf
    return x / y


@njit
def _terminal_currents(vf, vt, yff, yft, ytf, ytt, ibase_f, ibase_t):
    """Current magnitudes at both ends of a balanced branch: ``|yff vf + yft vt| * ibase_f``, ``|ytf vf + ytt vt| *
    ibase_t`` [kA]."""
    return _cabs(yff * vf + yft * vt) * ibase_f, _cabs(ytf * vf + ytt * vt) * ibase_t


@njit
def _trafo_loading(i_hv, i_lv, vn_hv, vn_lv, sn, rating):
    """Current-based loading of a balanced transformer, as pandapower's ``trafo_loading="current"``, divided by its
    rating factor [%]."""
    return _ratio(_ratio(_nan_max(i_hv * vn_hv, i_lv * vn_lv) * np.sqrt(3.0), sn) * 100.0, rating)


@njit
def _slack_power(v0, i_children, ysh_root, root_elems, s_elem, i, sn):
    """Power the slack supplies to item ``i`` [MW, Mvar]: ``v0 conj(I_root) sn`` with ``I_root`` the current into
    the branches below the root (``i_children``), its shunt and the injections ``root_elems`` (columns of
    ``s_elem``) at the root."""
    i_root = i_children + ysh_root * v0
    if root_elems.shape[0]:
        s0 = 0j
        for e in range(root_elems.shape[0]):
            s0 += s_elem[i, root_elems[e]]
        i_root += np.conj(s0 / v0)
    s_root = v0 * np.conj(i_root) * sn
    return s_root.real, s_root.imag


@njit
def _unbalanced_summary_rows(
    i0, i1, phase_last, v_abc, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv,
    trafo_vn_lv, trafo_sn, trafo_rating, line_i, line_i_n, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading,
):  # fmt: skip
    """Branch results of unbalanced batch items ``i0 .. i1-1`` (see :func:`unbalanced_branch_summary`)."""
    nk = f_pos.shape[0]
    sqrt3 = np.sqrt(3.0)
    for i in range(i0, i1):
        for k in range(nk):
            ifa, ifb, ifc, ita, itb, itc = _branch_phase_currents(
                v_abc, i, f_pos[k], t_pos[k], yff, yft, ytf, ytt, k, phase_last
            )
            bf = ibase_f[k]
            bt = ibase_t[k]
            af0, af1, af2 = _cabs(ifa) * bf, _cabs(ifb) * bf, _cabs(ifc) * bf
            at0, at1, at2 = _cabs(ita) * bt, _cabs(itb) * bt, _cabs(itc) * bt
            if k < n_line:
                m0 = _nan_max(af0, at0)
                m1 = _nan_max(af1, at1)
                m2 = _nan_max(af2, at2)
                line_i[i, k, 0] = m0
                line_i[i, k, 1] = m1
                line_i[i, k, 2] = m2
                line_i_n[i, k] = _nan_max(_cabs(ifa + ifb + ifc) * bf, _cabs(ita + itb + itc) * bt)
                line_loading[i, k] = _ratio(_nan_max(_nan_max(m0, m1), m2), line_imax[k]) * 100.0
            else:
                j = k - n_line
                trafo_i_hv[i, j, 0] = af0
                trafo_i_hv[i, j, 1] = af1
                trafo_i_hv[i, j, 2] = af2
                trafo_i_lv[i, j, 0] = at0
                trafo_i_lv[i, j, 1] = at1
                trafo_i_lv[i, j, 2] = at2
                hv, lv, sn = trafo_vn_hv[j], trafo_vn_lv[j], trafo_sn[j]
                l0 = _ratio(_nan_max(af0 * hv, at0 * lv) * sqrt3, sn) * 100.0
                l1 = _ratio(_nan_max(af1 * hv, at1 * lv) * sqrt3, sn) * 100.0
                l2 = _ratio(_nan_max(af2 * hv, at2 * lv) * sqrt3, sn) * 100.0
                trafo_loading[i, j] = _ratio(_nan_max(_nan_max(l0, l1), l2), trafo_rating[j])


@njit_parallel
def unbalanced_branch_summary(
    phase_last, v_abc, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
    trafo_sn, trafo_rating, line_i, line_i_n, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading,
):  # fmt: skip
    """Phase and neutral currents and loadings of lines and transformers, straight from the phase voltages.

    The branch currents of :func:`branch_currents_unbalanced` and the results
    :func:`powercheck.powerflow.results.unbalanced_branch_results` makes of them, in one pass over the batch
    (parallel over batch items) without the intermediate current arrays.

    ``v_abc`` is ``[batch, 3, bus]`` (internal bus order, phase first), or ``[batch, bus, 3]`` with
    ``phase_last`` (``f_pos``/``t_pos`` then index its bus axis, e.g. the net's bus order).

    Outputs: ``line_i [batch, n_line, 3]``, ``line_i_n [batch, n_line]``, ``line_loading [batch, n_line]`` (%),
    ``trafo_i_hv``/``trafo_i_lv [batch, n_trafo, 3]``, ``trafo_loading [batch, n_trafo]`` (%, before the rating
    factor is divided out: divided here).
    """
    nb = v_abc.shape[0]
    step = _chunk(nb)
    for c in prange((nb + step - 1) // step):
        _unbalanced_summary_rows(
            c * step, min(nb, (c + 1) * step), phase_last, v_abc, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t,
            n_line, line_imax, trafo_vn_hv, trafo_vn_lv, trafo_sn, trafo_rating, line_i, line_i_n, line_loading,
            trafo_i_hv, trafo_i_lv, trafo_loading,
        )  # fmt: skip


@njit
def unbalanced_branch_summary_serial(
    phase_last, v_abc, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
    trafo_sn, trafo_rating, line_i, line_i_n, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading,
):  # fmt: skip
    """Single-threaded :func:`unbalanced_branch_summary` (same arguments, identical results)."""
    _unbalanced_summary_rows(
        0, v_abc.shape[0], phase_last, v_abc, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax,
        trafo_vn_hv, trafo_vn_lv, trafo_sn, trafo_rating, line_i, line_i_n, line_loading, trafo_i_hv, trafo_i_lv,
        trafo_loading,
    )  # fmt: skip


@njit
def _balanced_summary_rows(
    i0, i1, v, bus_pos, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
    trafo_sn, trafo_rating, root_children, ypp_root, ypc_root, ysh_root, root_elems, s_elem, sn, v_net,
    line_i_from, line_i_to, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading, eg_p, eg_q,
):  # fmt: skip
    """Results of balanced batch items ``i0 .. i1-1`` (see :func:`balanced_summary`)."""
    nan = complex(np.nan, 0.0)
    for i in range(i0, i1):
        for j in range(bus_pos.shape[0]):
            b = bus_pos[j]
            v_net[i, j] = v[i, b] if b >= 0 else nan
        for k in range(f_pos.shape[0]):
            af, at = _terminal_currents(
                v[i, f_pos[k]], v[i, t_pos[k]], yff[k], yft[k], ytf[k], ytt[k], ibase_f[k], ibase_t[k]
            )
            if k < n_line:
                line_i_from[i, k] = af
                line_i_to[i, k] = at
                line_loading[i, k] = _ratio(_nan_max(af, at), line_imax[k]) * 100.0
            else:
                j = k - n_line
                trafo_i_hv[i, j] = af
                trafo_i_lv[i, j] = at
                trafo_loading[i, j] = _trafo_loading(
                    af, at, trafo_vn_hv[j], trafo_vn_lv[j], trafo_sn[j], trafo_rating[j]
                )
        v0 = v[i, 0]
        i_children = 0j
        for c in range(root_children.shape[0]):
            i_children += ypp_root[c] * v0 + ypc_root[c] * v[i, root_children[c]]
        eg_p[i], eg_q[i] = _slack_power(v0, i_children, ysh_root, root_elems, s_elem, i, sn)


@njit_parallel
def balanced_summary(
    v, bus_pos, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
    trafo_sn, trafo_rating, root_children, ypp_root, ypc_root, ysh_root, root_elems, s_elem, sn, v_net,
    line_i_from, line_i_to, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading, eg_p, eg_q,
):  # fmt: skip
    """Everything :class:`~powercheck.powerflow.results.BatchResult` holds, from the balanced voltages, in one pass
    (parallel over the batch items; :func:`balanced_summary_serial` is the same on one thread).

    ``v [batch, n]`` internal-order voltages -> ``v_net [batch, n_net_bus]`` (net bus order, NaN where
    ``bus_pos < 0``); branch terminal currents ``|yff vf + yft vt| * ibase`` etc. as lines (``k < n_line``: from/to
    current [kA], loading ``max / line_imax * 100`` [%]) and transformers (hv/lv current [kA], current-based loading
    divided by the rating factor [%]); slack power ``v0 conj(I_root) sn`` [MW, Mvar], ``I_root`` the current into
    the branches below the root (``ypp_root``, ``ypc_root`` of ``root_children``), its shunt and the injections
    ``root_elems`` (columns of ``s_elem``) at the root. NaN voltages give NaN results.
    """
    nb = v.shape[0]
    step = _chunk(nb)
    for c in prange((nb + step - 1) // step):
        _balanced_summary_rows(
            c * step,
            min(nb, (c + 1) * step),
            v,
            bus_pos,
            f_pos,
            t_pos,
            yff,
            yft,
            ytf,
            ytt,
            ibase_f,
            ibase_t,
            n_line,
            line_imax,
            trafo_vn_hv,
            trafo_vn_lv,
            trafo_sn,
            trafo_rating,
            root_children,
            ypp_root,
            ypc_root,
            ysh_root,
            root_elems,
            s_elem,
            sn,
            v_net,
            line_i_from,
            line_i_to,
            line_loading,
            trafo_i_hv,
            trafo_i_lv,
            trafo_loading,
            eg_p,
            eg_q,
        )


@njit
def balanced_summary_serial(
    v, bus_pos, f_pos, t_pos, yff, yft, ytf, ytt, ibase_f, ibase_t, n_line, line_imax, trafo_vn_hv, trafo_vn_lv,
    trafo_sn, trafo_rating, root_children, ypp_root, ypc_root, ysh_root, root_elems, s_elem, sn, v_net,
    line_i_from, line_i_to, line_loading, trafo_i_hv, trafo_i_lv, trafo_loading, eg_p, eg_q,
):  # fmt: skip
    """Single-threaded :func:`balanced_summary` (same arguments, identical results)."""
    _balanced_summary_rows(
        0,
        v.shape[0],
        v,
        bus_pos,
        f_pos,
        t_pos,
        yff,
        yft,
        ytf,
        ytt,
        ibase_f,
        ibase_t,
        n_line,
        line_imax,
        trafo_vn_hv,
        trafo_vn_lv,
        trafo_sn,
        trafo_rating,
        root_children,
        ypp_root,
        ypc_root,
        ysh_root,
        root_elems,
        s_elem,
        sn,
        v_net,
        line_i_from,
        line_i_to,
        line_loading,
        trafo_i_hv,
        trafo_i_lv,
        trafo_loading,
        eg_p,
        eg_q,
    )
