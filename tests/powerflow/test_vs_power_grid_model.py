"""power-grid-model and powercheck's batched radial power flow agree on the IEEE European LV feeder and on three
SimBench LV grids (issue 13).

Both solve the same 96 load cases of the balanced (positive-sequence) model: the same lines, the same
transformer parameters (pandapower's ``trafo`` row as PGM's ``transformer``: uk, pk, i0, p0, Dyn clock 11),
the same ideal slack (PGM source with sk = 1e15 VA). PGM is an independent implementation (C++, its own
transformer and line models): agreement to 1e-8 pu on every bus and step means the two solve the same
equations to their tolerance, for each of PGM's exact methods.

The SimBench grids (rural1, semiurb4, urban6 with their MV/LV transformer, all switches closed as stored: radial)
run one day of their own load and PV profiles (``tests/helpers/simbench_pf.py``). Their transformers have
magnetising losses, so the transformer model matters: PGM's is the pi equivalent, so the comparison builds the
model with ``trafo_model="pi"``, and the same day is checked against pandapower's ``runpp(trafo_model="pi")``.
"""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.grid.networks import complete_network, load_grid_defaults
from powercheck.powerflow import build_radial_model, run_batch
from tests.helpers.pgm import ieee_feeder_case, pgm_input, pgm_sym_update, pgm_update
from tests.helpers.powerflow import assert_balanced, pp_balanced
from tests.helpers.simbench_pf import SIMBENCH_LV, simbench_case

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


# --------------------------------------------------------------------------------------------
# SimBench LV grids (tests/helpers/simbench_pf.py: the grid's own profiles for one day, 96 steps)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=SIMBENCH_LV)
def simbench_solved(request):
    """One SimBench LV grid solved by ``run_batch`` with PGM's transformer model (pi: PGM puts the magnetising
    branch in a pi equivalent; pandapower's default T circuit differs from it by up to 6.6e-7 pu on these grids)."""
    net, _, lp, lq, gp, gq = simbench_case(request.param)
    complete_network(net, load_grid_defaults())  # zero-sequence data PGM's input requires (unused when balanced)
    model = build_radial_model(net, trafo_model="pi")
    ours = run_batch(model, lp, lq, sgen_p_mw=gp, sgen_q_mvar=gq, tol=1e-10)
    inp = pgm_input(net, pgm)
    grid = pgm.PowerGridModel(inp, system_frequency=float(net.f_hz))
    return request.param, net, (lp, lq, gp, gq), grid, pgm_sym_update(pgm, inp, lp, lq, gp, gq), ours


@pytest.mark.parametrize("method", ["newton_raphson", "iterative_current"])
def test_simbench_balanced_batch_agrees_with_power_grid_model_to_1e_8_pu(simbench_solved, method):
    code, _, _, grid, update, ours = simbench_solved
    out = grid.calculate_power_flow(
        symmetric=True,
        error_tolerance=1e-10,
        max_iterations=100,
        calculation_method=getattr(pgm.CalculationMethod, method),
        update_data=update,
        threading=-1,
        output_component_types={"node": ["u_pu"]},
    )
    u = out["node"]["u_pu"]
    assert ours.all_converged and u.shape == ours.vm_pu.shape == (96, len(ours.bus_index))
    assert float(np.ptp(ours.vm_pu)) > 0.01, code  # the day's loads move the voltages by more than 1 %
    assert float(np.max(np.abs(u - ours.vm_pu))) < 1e-8, code


def test_simbench_day_matches_runpp_with_the_same_transformer_model(simbench_solved):
    """The same 96-step results against pandapower's ``runpp(trafo_model="pi")`` on four steps of the day
    (first, highest and lowest total load, last): the PGM comparison's model is pandapower's."""
    code, net, (lp, lq, gp, gq), _, _, ours = simbench_solved
    total = lp.sum(axis=1) - gp.sum(axis=1)
    for k in sorted({0, int(np.argmax(total)), int(np.argmin(total)), len(total) - 1}):
        net.load["p_mw"], net.load["q_mvar"], net.load["scaling"] = lp[k], lq[k], 1.0
        net.sgen["p_mw"], net.sgen["q_mvar"], net.sgen["scaling"] = gp[k], gq[k], 1.0
        pp_balanced(net, trafo_model="pi")
        assert_balanced(ours, k, net, f"{code} step {k}")
