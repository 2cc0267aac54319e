"""The fused unbalanced branch-results kernel gives the NumPy reference's numbers (issue 13).

:func:`powercheck.powerflow.results.unbalanced_branch_results` now computes the phase and neutral currents
and the loadings in one parallel kernel; :func:`unbalanced_branch_results_numpy` is the former NumPy code
(per-sequence branch currents, then ``abs``/``maximum``/``max`` over arrays). Both run on the 3-phase
solutions of the IEEE European LV feeder with a 96-step load profile, with a few NaN rows (items that did not
converge) mixed in.
"""

from __future__ import annotations

import numpy as np

from powercheck.powerflow import build_radial_model, run_batch_3ph
from powercheck.powerflow.results import unbalanced_branch_results, unbalanced_branch_results_numpy
from tests.helpers.pgm import ieee_feeder_case


def test_kernel_equals_numpy_reference():
    net, p, q = ieee_feeder_case(24)
    model = build_radial_model(net, three_phase=True)
    res = run_batch_3ph(model, asym_load_p_mw=p, asym_load_q_mvar=q)
    assert np.isfinite(res.line_loading_percent).all() and res.line_loading_percent.max() > 1.0
    # internal-order voltages: the net's buses back through the model's bus positions
    sup = model.bus_pos >= 0
    v = np.full((p.shape[0], 3, int(model.bus_pos.max()) + 1), np.nan + 0j)
    v[:, :, model.bus_pos[sup]] = np.moveaxis(res.v_pu, -1, 1)[:, :, sup]  # v_pu: [steps, buses, 3]
    v[3] = np.nan  # a non-converged item
    got = unbalanced_branch_results(model, v, (p.shape[0],))
    want = unbalanced_branch_results_numpy(model, v, (p.shape[0],))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], rtol=1e-13, atol=0, equal_nan=True, err_msg=key)
    assert np.isnan(got["line_i_ka"][3]).all() and np.isfinite(got["line_i_ka"][0]).all()
