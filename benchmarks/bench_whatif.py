"""What-if study throughput: scenarios x steps per second, against power-grid-model on the same placements (same
run), and the scaling from 1 to 2 Dask workers.

Run with ``pytest benchmarks/bench_whatif.py --benchmark-only``. Sizes are small by default
(``WHATIF_BENCH_SCENARIOS`` scenarios of one day of 15-min steps); nothing is asserted about
time, only recorded in ``benchmark.extra_info``:

* ``scenario_steps``: scenarios x steps per call; ``scenario_steps_per_s``: ours (best round);
* ``power_grid_model_scenario_steps_per_s`` and ``speedup_vs_power_grid_model``: PGM's
  asymmetric (``symmetric=False``) Newton-Raphson batch, all threads, on exactly the same
  per-bus, per-phase loads (base loads + the drawn EVs and PV), best of its rounds. Ours
  includes the study's own reduction (worst values with element and step, violation counts);
  PGM only solves. ``max_dvm_pu`` is the largest difference of the lowest voltage per scenario
  between the two (bounded: PGM models the Dyn transformer's zero sequence and the source
  slightly differently, see bench_batchpf.py);
* ``workers_1_s``, ``workers_2_s``, ``speedup_2_vs_1_workers``: a whole ``run_study`` on a
  dask LocalCluster of 1 and of 2 single-threaded worker processes (feeders warm on the
  workers), same scenarios; the results are asserted equal.
"""

from __future__ import annotations

import copy
import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from powercheck.whatif.feeders import load_feeder, parse_feeders
from powercheck.whatif.study import (
    Scenario,
    StudyConfig,
    base_bus_power,
    place,
    run_study,
    solve_scenarios,
    study_steps,
)

SCENARIOS = int(os.environ.get("WHATIF_BENCH_SCENARIOS", "4"))
ROUNDS = 3
FEEDER = "demo:tn-ieee-eu"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    cache = os.environ.get("POWERCHECK_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    feeder = load_feeder(parse_feeders([FEEDER])[0], cache)
    config = StudyConfig(ev_shares=(0.5,), pv_shares=(0.5,), samples=SCENARIOS, days=1)
    steps = study_steps(feeder, config)
    scenarios = [Scenario(feeder.spec.name, 0.5, 0.5, s) for s in range(SCENARIOS)]
    placements = [place(feeder, s, config, steps) for s in scenarios]
    solve_scenarios(feeder, scenarios[:1], config, steps=steps, placements=placements[:1])  # JIT
    return feeder, config, steps, scenarios, placements, cache


def _best(fn, rounds):
    best = np.inf
    out = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _pgm_case(pgm, feeder, steps, placements):
    """PGM input (the feeder, one asymmetric load per bus) and the batch update of the same per-phase loads."""
    from bench_batchpf import _pgm_input  # the converter of the IEEE European LV feeder

    net = copy.deepcopy(feeder.net)
    buses = feeder.model.bus_index
    net.asymmetric_load = net.asymmetric_load.iloc[0:0]
    table = pd.DataFrame(
        {
            "bus": buses,
            **{c: 0.0 for c in ("p_a_mw", "p_b_mw", "p_c_mw", "q_a_mvar", "q_b_mvar", "q_c_mvar")},
        }
    )
    net.asymmetric_load = table
    inp = _pgm_input(net, pgm)
    inp["sym_load"]["status"] = 0
    base_p, base_q = base_bus_power(feeder, steps)
    p = np.concatenate([base_p + pl.wye_p for pl in placements])  # (S*T, n_bus, 3), model bus order
    q = np.concatenate([base_q + pl.wye_q for pl in placements])
    upd = pgm.initialize_array("update", "asym_load", p.shape[:2])
    upd["id"] = inp["asym_load"]["id"][None]
    upd["p_specified"] = p * 1e6
    upd["q_specified"] = q * 1e6
    return inp, {"asym_load": upd}


def test_study_vs_power_grid_model_asymmetric_batch(benchmark, case):
    pgm = pytest.importorskip("power_grid_model")
    feeder, config, steps, scenarios, placements, _ = case
    assert feeder.spec.system == "TN_400" and not any(pl.delta_p.any() for pl in placements)
    inp, update = _pgm_case(pgm, feeder, steps, placements)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = pgm.PowerGridModel(inp, system_frequency=float(feeder.net.f_hz))

    def pgm_batch():
        return grid.calculate_power_flow(
            symmetric=False,
            error_tolerance=1e-10,
            max_iterations=30,
            calculation_method=pgm.CalculationMethod.newton_raphson,
            update_data=update,
            threading=0,
            output_component_types={"node": ["u_pu"]},
        )

    pgm_batch()  # warm-up
    pgm_s, out = _best(pgm_batch, ROUNDS)
    rows = benchmark.pedantic(
        solve_scenarios,
        args=(feeder, scenarios, config),
        kwargs=dict(steps=steps, placements=placements),
        rounds=ROUNDS,
        warmup_rounds=1,
    )
    n = len(scenarios) * len(steps)
    # PGM's node order is net.bus order; the lowest LV phase voltage per scenario against the study's v_min
    order = pd.Index(feeder.net.bus.index).get_indexer(feeder.model.bus_index[feeder.lv_bus_mask])
    u = out["node"]["u_pu"].reshape(len(scenarios), len(steps), -1, 3)[:, :, order, :]
    dvm = float(np.max(np.abs(u.min(axis=(1, 2, 3)) - rows.v_min_pu.to_numpy())))
    assert dvm < 5e-3
    ours = benchmark.stats.stats.min
    benchmark.extra_info.update(
        {
            "scenarios": len(scenarios),
            "steps": len(steps),
            "scenario_steps": n,
            "scenario_steps_per_s": n / ours,
            "power_grid_model_scenario_steps_per_s": n / pgm_s,
            "speedup_vs_power_grid_model": pgm_s / ours,
            "max_dvm_pu": dvm,
        }
    )


def test_dask_scaling_1_to_2_workers(benchmark, case):
    pytest.importorskip("distributed")
    from dask.distributed import Client, LocalCluster

    feeder, _, _, _, _, cache = case
    spec = parse_feeders(["demo:it-landnetz-luft"])[0]
    config = StudyConfig(ev_shares=(0.0, 0.5, 1.0), pv_shares=(0.0, 1.0), samples=2, days=1, chunk=2)
    n = 3 * 2 * 2 * 96
    times = {}
    results = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                run_study([spec], config, scheduler=client, cache_dir=cache)  # feeders and kernels warm
                if workers == 2:
                    results[workers] = benchmark.pedantic(
                        run_study,
                        args=([spec], config),
                        kwargs=dict(scheduler=client, cache_dir=cache),
                        rounds=ROUNDS,
                        warmup_rounds=0,
                    )
                    times[workers] = benchmark.stats.stats.min
                else:
                    times[workers], results[workers] = _best(
                        lambda: run_study([spec], config, scheduler=client, cache_dir=cache), ROUNDS
                    )
    pd.testing.assert_frame_equal(results[1], results[2])
    benchmark.extra_info.update(
        {
            "scenario_steps": n,
            "workers_1_s": times[1],
            "workers_2_s": times[2],
            "workers_1_scenario_steps_per_s": n / times[1],
            "workers_2_scenario_steps_per_s": n / times[2],
            "speedup_2_vs_1_workers": times[1] / times[2],
            "cores": os.cpu_count(),
        }
    )
