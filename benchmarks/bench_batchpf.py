"""Batched radial power flow: steps per second against pandapower and power-grid-model, same grid, same run.

Run with ``pytest benchmarks/bench_batchpf.py --benchmark-only``. Four grids, each with 96 load cases (one day of
15-min values):

* ``ieee``: pandapower's IEEE European LV test feeder (906 LV buses, 55 single-phase loads), every load scaled by
  its own random daily curve (``tests/helpers/pgm.py``);
* ``rural1``, ``semiurb4``, ``urban6``: the SimBench LV grids ``1-LV-rural1--0-sw`` (15 buses, 13 loads, 4 PV),
  ``1-LV-semiurb4--0-sw`` (44 buses, 41 loads, 1 PV) and ``1-LV-urban6--0-sw`` (59 buses, 111 loads, 5 PV) with
  their MV/LV transformer, in their normal switching state (all switches closed, radial as stored), one day of
  their own SimBench load and PV profiles (``tests/helpers/simbench_pf.py``), and the zero-sequence data the
  unbalanced calculations need from powercheck's grid defaults (``complete_network``).

Every model uses the pi transformer equivalent (``trafo_model="pi"``), which is power-grid-model's; pandapower's
``runpp`` is run with the same option, ``runpp_3ph`` (T model only) against a model built with the T equivalent.
(The IEEE feeder's transformer has no magnetising branch: T and pi are equal there.)

No absolute timings are asserted. Every benchmark times the batch solver with the ``benchmark`` fixture (best
round) and the competitor in the same process, and records in ``benchmark.extra_info``:

* ``grid``, ``steps``: grid and load cases solved per call,
* ``steps_per_s``: batch solver throughput (best round),
* ``<competitor>_steps_per_s``: the competitor's throughput (best of its rounds),
* ``speedup_vs_<competitor>``: ratio of the two,
* ``max_dvm_pu``: largest voltage difference between the two on the compared steps
  (asserted below a tolerance, so the comparison is between equal results).

Competitors: ``pp.runpp`` / ``pp.runpp_3ph`` in a loop (one call per step; runpp_3ph only on ``PP_3PH_STEPS``
steps because it takes ~70 ms each on the IEEE feeder) and a power-grid-model batch
(``PowerGridModel.calculate_power_flow(update_data=...)``) with each of its exact methods for these radial grids --
Newton-Raphson and ``iterative_current`` -- at the same tolerance (1e-10), on 1 thread (``threading=-1``) and on
all threads (``threading=0``), built from the same pandapower net by ``tests/helpers/pgm.py``. PGM's source gets a
very large short-circuit power to act as pandapower's ideal slack. The balanced results agree to < 1e-8 pu
(``tests/powerflow/test_vs_power_grid_model.py``). Ours: ``run_batch`` / ``run_batch_3ph`` with their defaults
(branch currents and loadings included; threads only for large batches -- none of these), timed by the fixture,
and with ``parallel=True`` (all numba threads; identical voltages, asserted): ``threads_steps_per_s``,
``best_steps_per_s`` (the faster of the two) and ``speedup_best_vs_power_grid_model`` (against the PGM run of the
same row; PGM's best is the faster of its 1-thread and all-threads rows).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import pandapower as pp
import pytest

from powercheck.grid.networks import complete_network, load_grid_defaults
from powercheck.powerflow import build_radial_model, run_batch, run_batch_3ph
from tests.helpers.pgm import P_COLS, Q_COLS, ieee_feeder_case, pgm_input, pgm_sym_update, pgm_update
from tests.helpers.simbench_pf import SIMBENCH_LV, simbench_case

STEPS = 96
PP_STEPS = 96
PP_3PH_STEPS = 24
ROUNDS = 5
GRIDS = {"ieee": None, **{code.split("-")[2]: code for code in SIMBENCH_LV}}


class _Case:
    """A grid, its model and its 96 load cases, with the per-step pandapower update and the PGM input."""

    def __init__(self, name: str, code: str | None) -> None:
        self.name = name
        if code is None:
            self.net, p, q = ieee_feeder_case(STEPS)
            self.kwargs = dict(asym_load_p_mw=p, asym_load_q_mvar=q)
        else:
            self.net, _, lp, lq, gp, gq = simbench_case(code, STEPS)
            complete_network(self.net, load_grid_defaults())
            # runpp_3ph ignores load/sgen rows of any type but "wye"/"delta" (SimBench: NaN, "PV"); ours takes them
            # as wye
            self.net.load["type"] = "wye"
            self.net.sgen["type"] = "wye"
            self.kwargs = dict(p_mw=lp, q_mvar=lq, sgen_p_mw=gp, sgen_q_mvar=gq)
        self.model = build_radial_model(self.net, trafo_model="pi", three_phase=True)
        # runpp_3ph has the T model only: its comparison uses a T model (same solver, same timing)
        self.model_t = build_radial_model(self.net, trafo_model="t", three_phase=True)
        first = {k: v[:2] for k, v in self.kwargs.items()}
        run_batch(self.model, **first)  # compile / load the kernels
        run_batch_3ph(self.model, **first)

    def set_step(self, net, k: int) -> None:
        kw = self.kwargs
        if "asym_load_p_mw" in kw:
            net.asymmetric_load[P_COLS] = kw["asym_load_p_mw"][k]
            net.asymmetric_load[Q_COLS] = kw["asym_load_q_mvar"][k]
            return
        net.load["p_mw"], net.load["q_mvar"], net.load["scaling"] = kw["p_mw"][k], kw["q_mvar"][k], 1.0
        net.sgen["p_mw"], net.sgen["q_mvar"], net.sgen["scaling"] = kw["sgen_p_mw"][k], kw["sgen_q_mvar"][k], 1.0

    def pgm_grid_and_update(self, pgm, symmetric: bool):
        inp = pgm_input(self.net, pgm)
        kw = self.kwargs
        if "asym_load_p_mw" in kw:
            inp["asym_load" if symmetric else "sym_load"]["status"] = 0
            update = pgm_update(pgm, inp, kw["asym_load_p_mw"], kw["asym_load_q_mvar"], symmetric)
        else:
            update = pgm_sym_update(pgm, inp, kw["p_mw"], kw["q_mvar"], kw["sgen_p_mw"], kw["sgen_q_mvar"])
        return pgm.PowerGridModel(inp, system_frequency=float(self.net.f_hz)), update


@pytest.fixture(scope="module", params=list(GRIDS), ids=list(GRIDS))
def case(request):
    return _Case(request.param, GRIDS[request.param])


def _best(fn, rounds: int) -> float:
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _record(benchmark, case: _Case, name: str, competitor_s_per_step: float, dvm: float) -> None:
    ours = benchmark.stats.stats.min / STEPS
    benchmark.extra_info["grid"] = case.name
    benchmark.extra_info["steps"] = STEPS
    benchmark.extra_info["steps_per_s"] = 1.0 / ours
    benchmark.extra_info[f"{name}_steps_per_s"] = 1.0 / competitor_s_per_step
    benchmark.extra_info[f"speedup_vs_{name}"] = competitor_s_per_step / ours
    benchmark.extra_info["max_dvm_pu"] = dvm


# --------------------------------------------------------------------------------------------
# pandapower
# --------------------------------------------------------------------------------------------


def test_balanced_vs_pandapower_loop(benchmark, case):
    res = benchmark.pedantic(run_batch, args=(case.model,), kwargs=case.kwargs, rounds=ROUNDS, warmup_rounds=1)
    assert res.all_converged
    net = copy.deepcopy(case.net)
    pp.runpp(net, trafo_model="pi")  # numba JIT of pandapower outside the timing
    dvm = 0.0
    t0 = time.perf_counter()
    for k in range(PP_STEPS):
        case.set_step(net, k)
        pp.runpp(net, trafo_model="pi")
        dvm = max(dvm, float(np.max(np.abs(net.res_bus.vm_pu.to_numpy() - res.vm_pu[k]))))
    per_step = (time.perf_counter() - t0) / PP_STEPS
    assert dvm < 1e-5  # runpp's default tolerance_mva=1e-8 (as timed) leaves ~1e-6 pu at peak load
    _record(benchmark, case, "pandapower_runpp", per_step, dvm)


def test_unbalanced_vs_pandapower_3ph_loop(benchmark, case):
    res = benchmark.pedantic(run_batch_3ph, args=(case.model_t,), kwargs=case.kwargs, rounds=ROUNDS, warmup_rounds=1)
    assert res.all_converged
    net = copy.deepcopy(case.net)
    pp.runpp_3ph(net)
    dvm = 0.0
    steps = np.linspace(0, STEPS - 1, PP_3PH_STEPS).astype(int)
    t0 = time.perf_counter()
    for k in steps:
        case.set_step(net, k)
        pp.runpp_3ph(net)
        vm = net.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy()
        dvm = max(dvm, float(np.max(np.abs(vm - res.vm_pu[k]))))
    per_step = (time.perf_counter() - t0) / len(steps)
    # runpp_3ph (default settings, as timed) stops at a hard-coded 3e-8 MVA mismatch, which leaves up to
    # ~2e-5 pu on the IEEE feeder at peak load; tests/powerflow/test_solve.py checks 1e-8 against a converged
    # reference
    assert dvm < 1e-4
    _record(benchmark, case, "pandapower_runpp_3ph", per_step, dvm)


# --------------------------------------------------------------------------------------------
# power-grid-model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threading", [-1, 0], ids=["pgm_1_thread", "pgm_all_threads"])
@pytest.mark.parametrize("method", ["newton_raphson", "iterative_current"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["balanced", "unbalanced"])
def test_vs_power_grid_model_batch(benchmark, case, symmetric, method, threading):
    pgm = pytest.importorskip("power_grid_model")
    grid, update = case.pgm_grid_and_update(pgm, symmetric)

    def pgm_batch():
        return grid.calculate_power_flow(
            symmetric=symmetric,
            error_tolerance=1e-10,
            max_iterations=30,
            calculation_method=getattr(pgm.CalculationMethod, method),
            update_data=update,
            threading=threading,
            output_component_types={"node": ["u_pu"]},
        )

    out = pgm_batch()  # warm-up (topology/factorisation caches)
    pgm_s = _best(pgm_batch, ROUNDS)
    solver = run_batch if symmetric else run_batch_3ph
    res = benchmark.pedantic(solver, args=(case.model,), kwargs=case.kwargs, rounds=ROUNDS, warmup_rounds=1)
    u = out["node"]["u_pu"]  # [steps, nodes] or [steps, nodes, 3], node order = net.bus order
    dvm = float(np.max(np.abs(u - res.vm_pu)))
    # balanced: the same model (pandapower's ext_grid ~ PGM's source with sk=1e15). Unbalanced: PGM
    # models the Dyn zero sequence as the plain short-circuit impedance (pandapower: T circuit with
    # si0_hv_partial and mag0) and the source as ideal in all sequences (pandapower: s_sc_max_mva in
    # the negative sequence), which moves phase voltages by ~1e-3 pu on the IEEE feeder.
    assert dvm < (1e-8 if symmetric else 5e-3)
    _record(benchmark, case, "power_grid_model", pgm_s / STEPS, dvm)
    benchmark.extra_info.update(pgm_method=method, pgm_threads="1" if threading == -1 else "all")
    # ours on all numba threads too (the default runs these small batches on one): the same numbers, and the faster
    # of the two against PGM, as PGM's figures are given for 1 thread and for all
    threaded = solver(case.model, **case.kwargs, parallel=True)
    np.testing.assert_array_equal(threaded.v_pu, res.v_pu)
    threads_s = _best(lambda: solver(case.model, **case.kwargs, parallel=True), ROUNDS)
    best_s = min(benchmark.stats.stats.min, threads_s)
    benchmark.extra_info.update(
        threads_steps_per_s=STEPS / threads_s,
        best_steps_per_s=STEPS / best_s,
        speedup_best_vs_power_grid_model=pgm_s / best_s,
    )
