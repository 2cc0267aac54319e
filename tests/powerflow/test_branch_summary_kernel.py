"""The fused result kernels give the NumPy references' numbers, on one thread and on all (issue 13).

:func:`powercheck.powerflow.results.unbalanced_branch_results` (internal-order voltages) and
:func:`~powercheck.powerflow.results.unbalanced_summary` (net-order voltages, the solver's output) compute the phase
and neutral currents and the loadings in one kernel; :func:`unbalanced_branch_results_numpy` is
the former NumPy code (per-sequence branch currents, then ``abs``/``maximum``/``max`` over arrays).
:func:`~powercheck.powerflow.results.balanced_summary` computes the net-order voltages, branch currents, loadings
and the slack power of balanced solutions in one kernel; :func:`to_net_buses` and :func:`balanced_branch_results`
are the former NumPy code. All run on solutions of the IEEE European LV feeder with a 24-step load profile, with a
NaN row (an item that did not converge) mixed in; the kernels' ``abs`` is ``sqrt(re^2 + im^2)`` (``hypot`` in
NumPy), hence 1e-13 relative instead of bit equality.
"""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.powerflow import build_radial_model, run_batch, run_batch_3ph
from powercheck.powerflow.results import (
    balanced_branch_results,
    balanced_summary,
    to_net_buses,
    unbalanced_branch_results,
    unbalanced_branch_results_numpy,
    unbalanced_summary,
)
from powercheck.powerflow.solve import _balanced_injections, _plan, _prepare
from tests.helpers.pgm import ieee_feeder_case


@pytest.fixture(scope="module")
def feeder():
    net, p, q = ieee_feeder_case(24)
    return build_radial_model(net, three_phase=True), p, q


def _internal(model, v_net):
    """Internal-order voltages from the net's buses, back through the model's bus positions (phase axis 1)."""
    sup = model.bus_pos >= 0
    if v_net.ndim == 3:  # [steps, buses, 3]
        v = np.full((v_net.shape[0], 3, model.n_bus), np.nan + 0j)
        v[:, :, model.bus_pos[sup]] = np.moveaxis(v_net, -1, 1)[:, :, sup]
    else:
        v = np.full((v_net.shape[0], model.n_bus), np.nan + 0j)
        v[:, model.bus_pos[sup]] = v_net[:, sup]
    return v


def _same(got, want):
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].shape == want[key].shape, key
        # the slack power is a small sum of large branch terms (order of summation: 3e-15 MW of 2e-3 MW)
        atol = 1e-13 if key.startswith("ext_grid") else 0.0
        np.testing.assert_allclose(got[key], want[key], rtol=1e-13, atol=atol, equal_nan=True, err_msg=key)


def test_unbalanced_kernel_equals_numpy_reference(feeder):
    model, p, q = feeder
    res = run_batch_3ph(model, asym_load_p_mw=p, asym_load_q_mvar=q)
    assert np.isfinite(res.line_loading_percent).all() and res.line_loading_percent.max() > 1.0
    v = _internal(model, res.v_pu)
    v[3] = np.nan  # a non-converged item
    want = unbalanced_branch_results_numpy(model, v, (p.shape[0],))
    got = unbalanced_branch_results(model, v, (p.shape[0],))
    _same(got, want)
    v_net = res.v_pu.copy()  # the solver's layout: net bus order, phase last
    v_net[3] = np.nan
    for threads in (False, True):
        _same(unbalanced_summary(_plan(model), v_net, (p.shape[0],), threads), want)
    assert np.isnan(got["line_i_ka"][3]).all() and np.isfinite(got["line_i_ka"][0]).all()


def test_balanced_kernel_equals_numpy_reference(feeder):
    model, p, q = feeder
    # a bus injection at the slack bus too, so that the slack power includes injections at the root
    bus_p = np.zeros((p.shape[0], len(model.bus_index)))
    bus_p[:, np.flatnonzero(model.bus_pos == 0)[0]] = 0.01
    args = {"asym_load_p_mw": p, "asym_load_q_mvar": q, "bus_p_mw": bus_p}
    res = run_batch(model, **args)
    plan = _plan(model)
    batch = _prepare(model, plan, args, three_phase=False, tol=1e-10, max_iter=100, errors="mask")
    elem_pos, s_elem, root_elems = _balanced_injections(plan, batch)
    assert root_elems.size == 1
    v = _internal(model, res.v_pu)
    v[5] = np.nan
    shape = (p.shape[0],)
    want = balanced_branch_results(model, v, shape, elem_pos, s_elem)
    want_v = to_net_buses(model, v, 1)
    for threads in (False, True):
        v_net, got = balanced_summary(plan, v, shape, root_elems, s_elem, threads)
        np.testing.assert_array_equal(v_net, want_v)
        _same(got, want)
    assert np.isnan(got["ext_grid_p_mw"][5]) and np.isfinite(got["ext_grid_p_mw"][0])
    assert float(np.nanmax(got["line_loading_percent"])) > 1.0


def test_threads_and_blocks_do_not_change_results(feeder):
    """The balanced kernel sweeps blocks of items together and the threaded kernels split the batch in chunks:
    every item's numbers are the same whatever the batch around it (a single item, 24 items, one or all
    threads)."""
    model, p, q = feeder
    for solver in (run_batch, run_batch_3ph):
        ref = solver(model, asym_load_p_mw=p, asym_load_q_mvar=q, parallel=False)
        par = solver(model, asym_load_p_mw=p, asym_load_q_mvar=q, parallel=True)
        for field in ("v_pu", "n_iter", "line_loading_percent", "trafo_loading_percent"):
            np.testing.assert_array_equal(getattr(par, field), getattr(ref, field), err_msg=field)
        for k in (0, 9, 23):
            one = solver(model, asym_load_p_mw=p[k], asym_load_q_mvar=q[k])
            np.testing.assert_array_equal(one.v_pu, ref.v_pu[k])
            np.testing.assert_array_equal(one.line_loading_percent, ref.line_loading_percent[k])


def test_solver_branch_results_equal_the_summary_kernel(feeder):
    """``run_batch_3ph`` computes the branch results inside the solver's item blocks (vectorized over the items);
    they are the numbers :func:`unbalanced_summary` (tested above against NumPy) gives for the solver's phase
    voltages, bit for bit, NaN for an item that did not converge, on one thread and on all."""
    model, p, q = feeder
    p = p.copy()
    p[7] *= 400.0  # far beyond the voltage collapse: does not converge
    for parallel in (False, True):
        res = run_batch_3ph(model, asym_load_p_mw=p, asym_load_q_mvar=q, parallel=parallel)
        assert not res.converged[7] and res.converged[[0, 6, 8, 23]].all()
        want = unbalanced_summary(_plan(model), res.v_pu, (p.shape[0],), False)
        assert np.isnan(want["line_i_ka"][7]).all() and np.isfinite(want["line_i_ka"][0]).all()
        for key, value in want.items():
            np.testing.assert_array_equal(getattr(res, key), value, err_msg=key)
    no = run_batch_3ph(model, asym_load_p_mw=p, asym_load_q_mvar=q, branch_results=False)
    assert no.line_i_ka is None and np.array_equal(no.v_pu, res.v_pu, equal_nan=True)


def test_balanced_solver_results_equal_the_summary_kernel(feeder):
    """``run_batch`` writes the net-order voltages and computes the branch results and the slack power inside the
    solver's item blocks (lines vectorized over the items); they are the numbers :func:`balanced_summary` (tested
    above against NumPy) gives for the solver's voltages, bit for bit, NaN for an item that did not converge, on
    one thread and on all, with and without a bus injection at the slack bus (the slack power's injections)."""
    model, p, q = feeder
    p = p.copy()
    p[7] *= 400.0  # far beyond the voltage collapse: does not converge
    bus_p = np.zeros((p.shape[0], len(model.bus_index)))
    bus_p[:, np.flatnonzero(model.bus_pos == 0)[0]] = 0.01
    plan = _plan(model)
    for extra in ({}, {"bus_p_mw": bus_p}):
        args = {"asym_load_p_mw": p, "asym_load_q_mvar": q, **extra}
        batch = _prepare(model, plan, args, three_phase=False, tol=1e-10, max_iter=100, errors="mask")
        _, s_elem, root_elems = _balanced_injections(plan, batch)
        assert root_elems.size == len(extra)
        for parallel in (False, True):
            res = run_batch(model, **args, parallel=parallel)
            assert not res.converged[7] and res.converged[[0, 6, 8, 23]].all()
            v_net, want = balanced_summary(plan, _internal(model, res.v_pu), (p.shape[0],), root_elems, s_elem, False)
            np.testing.assert_array_equal(res.v_pu, v_net)
            assert np.isnan(want["line_i_from_ka"][7]).all() and np.isfinite(want["line_i_from_ka"][0]).all()
            assert np.isfinite(want["ext_grid_p_mw"][0]) and float(np.max(want["line_loading_percent"][0])) > 1.0
            for key, value in want.items():
                np.testing.assert_array_equal(getattr(res, key), value, err_msg=key)
    no = run_batch(model, asym_load_p_mw=p, asym_load_q_mvar=q, branch_results=False)
    assert no.line_i_from_ka is None and no.ext_grid_p_mw is None
    np.testing.assert_array_equal(no.v_pu, run_batch(model, asym_load_p_mw=p, asym_load_q_mvar=q).v_pu)
