"""power-grid-model and powercheck's batched radial power flow agree on the IEEE European LV feeder (issue 13).

Both solve the same 96 load cases of the balanced (positive-sequence) model: the same lines, the same
transformer parameters (pandapower's ``trafo`` row as PGM's ``transformer``: uk, pk, i0, p0, Dyn clock 11),
the same ideal slack (PGM source with sk = 1e15 VA). PGM is an independent implementation (C++, its own
transformer and line models): agreement to 1e-8 pu on every bus and step means the two solve the same
equations to their tolerance, for each of PGM's exact methods.
"""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.powerflow import build_radial_model, run_batch
from tests.helpers.pgm import ieee_feeder_case, pgm_input, pgm_update

pgm = pytest.importorskip("power_grid_model")


@pytest.fixture(scope="module")
def solved():
    net, p, q = ieee_feeder_case(96)
    model = build_radial_model(net, three_phase=True)
    ours = run_batch(model, asym_load_p_mw=p, asym_load_q_mvar=q, tol=1e-10)
    inp = pgm_input(net, pgm)
    inp["asym_load"]["status"] = 0
    grid = pgm.PowerGridModel(inp, system_frequency=float(net.f_hz))
    return grid, pgm_update(pgm, inp, p, q, True), ours


@pytest.mark.parametrize("method", ["newton_raphson", "iterative_current"])
def test_balanced_batch_agrees_with_power_grid_model_to_1e_8_pu(solved, method):
    grid, update, ours = solved
    out = grid.calculate_power_flow(
        symmetric=True,
        error_tolerance=1e-10,  # the same tolerance (PGM's Newton-Raphson does not reach 1e-12 here)
        max_iterations=100,
        calculation_method=getattr(pgm.CalculationMethod, method),
        update_data=update,
        threading=-1,
        output_component_types={"node": ["u_pu"]},
    )
    u = out["node"]["u_pu"]
    assert u.shape == ours.vm_pu.shape
    # loads move the feeder end by several percent, so the agreement is not the flat start
    assert float(np.ptp(ours.vm_pu)) > 0.01
    assert float(np.max(np.abs(u - ours.vm_pu))) < 1e-8
