"""The block sweeps of the solver kernels equal a plain one-item-at-a-time sweep within 1e-12 pu (issue 13).

``solve_balanced*`` and ``solve_unbalanced*`` sweep blocks of batch items together, in real arithmetic
(balanced) and with the load currents as ``conj(S) V / |V|^2``. The references below are the sweeps as
they were written before (one item at a time, complex arithmetic, ``conj(S / V)``), in plain Python: the
same fixed point, the same start and stopping rule, so the voltages must agree to rounding and the
iteration counts exactly. Grid: SimBench rural1 with asymmetric wye and delta loads added (tests/helpers),
12 load cases (some above the rated load). The last test checks the reduction of load-free chains on the IEEE LV
feeder.
"""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.grid.networks import complete_network, load_grid_defaults
from powercheck.powerflow import build_radial_model, run_batch, run_batch_3ph
from powercheck.powerflow.solve import _balanced_injections, _plan, _prepare, _unbalanced_injections
from tests.helpers.pgm import ieee_feeder_case
from tests.helpers.powerflow import add_asymmetric_loads
from tests.helpers.simbench_pf import simbench_case

A = complex(-0.5, np.sqrt(3.0) / 2.0)
A2 = A.conjugate()


def _balanced_reference(parent, m, kup, ycp, elem_pos, s_row, v_slack, tol, max_iter):
    n = len(parent)
    s = np.zeros(n, complex)
    for e, p in enumerate(elem_pos):
        if p >= 0:
            s[p] += s_row[e]
    v = np.zeros(n, complex)
    v[0] = v_slack
    for b in range(1, n):
        v[b] = -m[b] * ycp[b] * v[parent[b]]
    for it in range(1, max_iter + 1):
        jn = np.where(s != 0, np.conj(s / np.where(s != 0, v, 1.0)), 0.0)
        for b in range(n - 1, 0, -1):
            jn[parent[b]] += kup[b] * jn[b]
        dv = 0.0
        for b in range(1, n):
            vb = -m[b] * (ycp[b] * v[parent[b]] + jn[b])
            dv = max(dv, abs(vb - v[b]))
            v[b] = vb
        if dv <= tol:
            return v, it
    raise AssertionError("reference did not converge")


def _unbalanced_reference(parent, m, kup, ycp, wye, delta, v_slack, tol, max_iter):
    """``wye``, ``delta``: per-phase (pair) power [3, n]."""
    n = len(parent)
    v = np.zeros((3, n), complex)
    v[1, 0] = v_slack
    for b in range(1, n):
        v[1, b] = -m[1, b] * ycp[1, b] * v[1, parent[b]]
    t = np.array([[1, 1, 1], [1, A2, A], [1, A, A2]])  # sequence -> phase
    for it in range(1, max_iter + 1):
        jn = np.zeros((3, n), complex)
        for b in range(n):
            if not (wye[:, b].any() or delta[:, b].any()):
                continue
            va, vb, vc = t @ v[:, b]
            i = np.zeros(3, complex)
            for ph, vp in enumerate((va, vb, vc)):
                if wye[ph, b] != 0:
                    i[ph] += np.conj(wye[ph, b] / vp)
            for k, (x, y, vx, vy) in enumerate(((0, 1, va, vb), (1, 2, vb, vc), (2, 0, vc, va))):
                if delta[k, b] != 0:
                    ixy = np.conj(delta[k, b] / (vx - vy))
                    i[x] += ixy
                    i[y] -= ixy
            jn[0, b] = (i[0] + i[1] + i[2]) / 3
            jn[1, b] = (i[0] + A * i[1] + A2 * i[2]) / 3
            jn[2, b] = (i[0] + A2 * i[1] + A * i[2]) / 3
        dv = 0.0
        for k in range(3):
            for b in range(n - 1, 0, -1):
                jn[k, parent[b]] += kup[k, b] * jn[k, b]
            if k != 1:
                v0 = -m[k, 0] * jn[k, 0]
                dv = max(dv, abs(v0 - v[k, 0]))
                v[k, 0] = v0
            for b in range(1, n):
                vb_ = -m[k, b] * (ycp[k, b] * v[k, parent[b]] + jn[k, b])
                dv = max(dv, abs(vb_ - v[k, b]))
                v[k, b] = vb_
        if dv <= tol:
            return t @ v, it
    raise AssertionError("reference did not converge")


@pytest.fixture(scope="module")
def grid():
    net, _, lp, lq, gp, gq = simbench_case("1-LV-rural1--0-sw")
    complete_network(net, load_grid_defaults())
    add_asymmetric_loads(net, np.random.default_rng(13), 6, delta_share=0.5, kw=8.0)
    model = build_radial_model(net, three_phase=True)
    steps = np.linspace(0, len(lp) - 1, 12).astype(int)
    scale = np.linspace(0.5, 3.0, 12)[:, None]  # up to 3x the day's load: voltages drop by several percent
    pa = net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy()[None] * scale[:, :, None]
    kw = dict(p_mw=lp[steps] * scale, q_mvar=lq[steps] * scale, sgen_p_mw=gp[steps], sgen_q_mvar=gq[steps])
    kw.update(asym_load_p_mw=pa, asym_load_q_mvar=0.3 * pa)
    return model, kw


def test_balanced_block_sweep_equals_lone_sweep(grid):
    model, kw = grid
    res = run_batch(model, **kw)
    assert res.all_converged and float(np.nanmin(res.vm_pu)) < 0.97
    plan = _plan(model)
    batch = _prepare(model, plan, kw, three_phase=False, tol=1e-10, max_iter=100, errors="mask")
    elem_pos, s_elem, _ = _balanced_injections(plan, batch)
    for i in range(batch.nb):
        v, it = _balanced_reference(
            model.parent, model.m[1], model.kup[1], model.ycp[1], elem_pos, s_elem[i], model.v_slack, 1e-10, 100
        )
        assert res.n_iter[i] == it
        np.testing.assert_allclose(res.v_pu[i], v[model.bus_pos], rtol=0, atol=1e-12)


def test_unbalanced_block_sweep_equals_lone_sweep(grid):
    model, kw = grid
    res = run_batch_3ph(model, **kw)
    assert res.all_converged and float(np.nanmax(res.unbalance_percent)) > 0.2
    plan = _plan(model)
    batch = _prepare(model, plan, kw, three_phase=True, tol=1e-10, max_iter=100, errors="mask")
    s_wye, wye_pos, wye_phase, s_del, del_pos, del_pair = _unbalanced_injections(model, plan, batch)
    assert del_pos.size and wye_pos.size
    n = model.n_bus
    for i in range(batch.nb):
        wye = np.zeros((3, n), complex)
        delta = np.zeros((3, n), complex)
        np.add.at(wye, (wye_phase[wye_pos >= 0], wye_pos[wye_pos >= 0]), s_wye[i][wye_pos >= 0])
        np.add.at(delta, (del_pair[del_pos >= 0], del_pos[del_pos >= 0]), s_del[i][del_pos >= 0])
        v, it = _unbalanced_reference(
            model.parent, model.m, model.kup, model.ycp, wye, delta, model.v_slack, 1e-10, 100
        )
        assert res.n_iter[i] == it
        np.testing.assert_allclose(res.v_pu[i], v[:, model.bus_pos].T, rtol=0, atol=1e-12)


def test_chain_reduction_equals_full_network_sweeps():
    """The sweeps run on the network with the load-free chains reduced away (exact Kron reduction, then one
    sweep of the full network for all bus voltages). On the IEEE LV feeder (907 internal buses, 205 after the
    reduction) they equal the sweeps of the full network -- forced by a zero bus injection, which may load any
    bus and so disables the reduction -- within 1e-12 pu with the same iteration counts, balanced and
    unbalanced."""
    net, p, q = ieee_feeder_case(12)
    model = build_radial_model(net, three_phase=True)
    plan = _plan(model)
    assert plan.reduced_args[1].size < model.n_bus // 4  # chains were reduced
    kw = dict(asym_load_p_mw=p, asym_load_q_mvar=q)
    for solver, zero in ((run_batch, np.zeros((12, plan.nbus))), (run_batch_3ph, np.zeros((12, plan.nbus, 3)))):
        red = solver(model, **kw)
        full = solver(model, **kw, bus_p_mw=zero)
        assert red.all_converged and float(np.nanmin(red.vm_pu)) < 1.03  # slack 1.05 pu: loaded
        np.testing.assert_array_equal(red.n_iter, full.n_iter)
        np.testing.assert_allclose(red.v_pu, full.v_pu, rtol=0, atol=1e-12)
