"""Solving batches (powercheck.powerflow.solve) against pandapower runpp / runpp_3ph, batching, inputs, convergence.

References and tolerances: tests/helpers/powerflow.py.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from powercheck.powerflow import (
    BatchPowerFlow,
    PowerFlowNotConverged,
    RadialModelError,
    build_radial_model,
    run_batch,
    run_batch_3ph,
)
from tests.helpers.powerflow import (
    KERBER,
    SB_CODES_0,
    SB_CODES_12,
    add_asymmetric_loads,
    add_zero_sequence,
    assert_3ph,
    assert_balanced,
    kerber,
    pp_3ph,
    pp_balanced,
    record_deviations,
    set_step,
    simbench_case,
)

# --------------------------------------------------------------------------------------------
# balanced
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", SB_CODES_0 + SB_CODES_12)
def test_simbench_profiles_match_runpp(code, request, record_property):
    case = simbench_case(code, request)
    net = case.net
    model = build_radial_model(net, three_phase=False)
    res = run_batch(
        model,
        p_mw=case.load_p,
        q_mvar=case.load_q,
        sgen_p_mw=case.sgen_p,
        storage_p_mw=case.storage_p,
        sgen_q_mvar=np.broadcast_to(net.sgen.q_mvar.to_numpy() * net.sgen.scaling.to_numpy(), case.sgen_p.shape),
    )
    assert res.all_converged
    assert res.vm_pu.shape == (len(case.steps), len(net.bus))
    devs = []
    for k in range(len(case.steps)):
        set_step(net, case, k)
        pp_balanced(net)
        devs.append(assert_balanced(res, k, net, f"{code} step {case.steps[k]}"))
    record_deviations(record_property, devs)
    # the profiles must actually load the grid: voltages vary between the steps
    assert np.ptp(np.nanmin(res.vm_pu, axis=1)) > 1e-3


@pytest.mark.parametrize("name", KERBER)
def test_kerber_networks_match_runpp(name, record_property):
    net = kerber(name)
    model = build_radial_model(net)
    rng = np.random.default_rng(7)
    n = len(net.load)
    scale = rng.uniform(0.2, 1.6, size=(4, n))  # 4 load cases around the stored peak
    p = net.load.p_mw.to_numpy() * scale
    q = 0.25 * p
    res = run_batch(model, p_mw=p, q_mvar=q)
    assert res.all_converged
    devs = []
    for k in range(p.shape[0]):
        net.load["p_mw"] = p[k]
        net.load["q_mvar"] = q[k]
        pp_balanced(net)
        devs.append(assert_balanced(res, k, net, f"{name} case {k}"))
    record_deviations(record_property, devs)


@pytest.mark.parametrize("scenario", ["on_peak_566", "off_peak_1"])
def test_ieee_european_lv_balanced_matches_runpp(scenario, record_property):
    net = pn.ieee_european_lv_asymmetric(scenario)
    model = build_radial_model(net)
    scale = np.array([0.5, 1.0, 3.0])
    p = net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy()[None] * scale[:, None, None]
    q = net.asymmetric_load[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy()[None] * scale[:, None, None]
    res = run_batch(model, asym_load_p_mw=p, asym_load_q_mvar=q)
    devs = []
    for k in range(len(scale)):
        net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]] = p[k]
        net.asymmetric_load[["q_a_mvar", "q_b_mvar", "q_c_mvar"]] = q[k]
        pp_balanced(net)
        devs.append(assert_balanced(res, k, net, f"ieee {scenario} x{scale[k]}"))
    record_deviations(record_property, devs)


# --------------------------------------------------------------------------------------------
# unbalanced
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["on_peak_566", "off_peak_1", "off_peak_1440"])
def test_ieee_european_lv_asymmetric_matches_runpp_3ph(scenario, record_property):
    net = pn.ieee_european_lv_asymmetric(scenario)
    model = build_radial_model(net, three_phase=True)
    scale = np.array([1.0, 2.5] if scenario.startswith("on_peak") else [1.0, 10.0])
    cols_p = ["p_a_mw", "p_b_mw", "p_c_mw"]
    cols_q = ["q_a_mvar", "q_b_mvar", "q_c_mvar"]
    p = net.asymmetric_load[cols_p].to_numpy()[None] * scale[:, None, None]
    q = net.asymmetric_load[cols_q].to_numpy()[None] * scale[:, None, None]
    res = run_batch_3ph(model, asym_load_p_mw=p, asym_load_q_mvar=q)
    assert res.all_converged
    devs = []
    for k in range(len(scale)):
        net.asymmetric_load[cols_p] = p[k]
        net.asymmetric_load[cols_q] = q[k]
        pp_3ph(net)
        devs.append(assert_3ph(res, k, net, f"ieee {scenario} x{scale[k]}"))
    record_deviations(record_property, devs)
    assert np.nanmax(res.unbalance_percent[-1]) > 0.1  # the case is really unbalanced


@pytest.mark.parametrize(
    "code", ["1-LV-rural1--0-sw", "1-LV-rural3--0-no_sw", "1-LV-semiurb4--0-sw", "1-LV-urban6--0-sw"]
)
def test_simbench_asymmetric_wye_and_delta_match_runpp_3ph(code, request, record_property):
    case = simbench_case(code, request)
    net = add_zero_sequence(case.net)
    rng = np.random.default_rng(abs(hash(code)) % 2**32)
    net.load["type"] = np.where(rng.uniform(size=len(net.load)) < 0.3, "delta", "wye")
    net.sgen["type"] = "wye"  # runpp_3ph ignores any other type (SimBench: "PV")
    add_asymmetric_loads(net, rng, 12)
    steps = [0, 1, 2]
    fac = np.array([1.0, 2.0, 0.5])[:, None, None]
    pa = net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy()[None] * fac
    qa = net.asymmetric_load[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy()[None] * fac
    model = build_radial_model(net, three_phase=True)
    res = run_batch_3ph(
        model,
        p_mw=case.load_p[steps],
        q_mvar=case.load_q[steps],
        sgen_p_mw=case.sgen_p[steps],
        asym_load_p_mw=pa,
        asym_load_q_mvar=qa,
    )
    assert res.all_converged
    devs = []
    for k, s in enumerate(steps):
        set_step(net, case, s)
        net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]] = pa[k]
        net.asymmetric_load[["q_a_mvar", "q_b_mvar", "q_c_mvar"]] = qa[k]
        pp_3ph(net)
        devs.append(assert_3ph(res, k, net, f"{code} step {case.steps[s]}"))
    record_deviations(record_property, devs)
    assert np.nanmax(res.unbalance_percent) > 0.05


@pytest.mark.parametrize("name", ["kerber_dorfnetz", "kerber_landnetz_freileitung_1"])
def test_kerber_asymmetric_matches_runpp_3ph(name, record_property):
    net = add_zero_sequence(kerber(name), s_sc_mva=50.0)
    rng = np.random.default_rng(3)
    net.load.loc[net.load.index[::3], "type"] = "delta"
    add_asymmetric_loads(net, rng, 20, kw=8.0)
    model = build_radial_model(net, three_phase=True)
    res = run_batch_3ph(model)  # the net's own values
    pp_3ph(net)
    record_deviations(record_property, [assert_3ph(res, (), net, name)])


def test_it_network_delta_loads_match_runpp_3ph(record_property):
    """IT (unearthed) network with phase-to-phase loads only.

    pandapower cannot solve an unearthed LV winding; with delta loads only there is no zero-sequence
    current, so the same network with a Dyn transformer gives the reference.
    """
    net = kerber("kerber_landnetz_kabel_2")
    net.bus.loc[net.bus.vn_kv < 1, "vn_kv"] = 0.23
    net.trafo["vn_lv_kv"] = 0.23
    net.load["type"] = "delta"
    net.load["p_mw"] *= 0.4
    add_zero_sequence(net, vector_group="Dy")
    rng = np.random.default_rng(11)
    add_asymmetric_loads(net, rng, 10, delta_share=1.0, kw=3.0)
    model = build_radial_model(net, three_phase=True)
    assert model.zero_seq_floating
    res = run_batch_3ph(model)
    ref = copy.deepcopy(net)
    ref.trafo["vector_group"] = "Dyn"
    pp_3ph(ref)
    record_deviations(record_property, [assert_3ph(res, (), ref, "IT")])
    # phase-to-neutral loads cannot be connected to the IT network
    with pytest.raises(RadialModelError, match="unearthed"):
        run_batch_3ph(model, bus_p_mw=np.full((len(net.bus), 3), 1e-3))
    net.load.loc[net.load.index[0], "type"] = "wye"
    with pytest.raises(RadialModelError, match=rf"load {net.load.index[0]} is connected phase-to-neutral"):
        build_radial_model(net, three_phase=True)


def test_balanced_case_through_3ph_solver_equals_balanced_solver():
    net = add_zero_sequence(kerber("kerber_dorfnetz"))
    model = build_radial_model(net, three_phase=True)
    r1 = run_batch(model)
    r3 = run_batch_3ph(model)
    np.testing.assert_allclose(r3.vm_pu, np.repeat(r1.vm_pu[:, None], 3, axis=1), atol=1e-10)
    np.testing.assert_allclose(r3.va_degree[:, 0], r1.va_degree, atol=1e-8)
    np.testing.assert_allclose(r3.line_loading_percent, r1.line_loading_percent, atol=1e-7)
    assert np.nanmax(r3.unbalance_percent) < 1e-8


# --------------------------------------------------------------------------------------------
# batching, extra injections, slack voltage
# --------------------------------------------------------------------------------------------


def test_scenario_by_step_batch_equals_single_runs():
    net = add_zero_sequence(kerber("kerber_landnetz_freileitung_1"))
    add_asymmetric_loads(net, np.random.default_rng(5), 6)
    model = build_radial_model(net)
    rng = np.random.default_rng(1)
    n_sc, n_st, nl = 3, 5, len(net.load)
    p = rng.uniform(0.0, 0.012, size=(n_sc, n_st, nl))
    q = 0.3 * p
    pa = rng.uniform(0.0, 0.004, size=(n_sc, n_st, len(net.asymmetric_load), 3))
    vm = rng.uniform(0.97, 1.04, size=(n_sc, n_st))
    qa = np.zeros_like(pa)
    bal = run_batch(model, p, q, asym_load_p_mw=pa, asym_load_q_mvar=qa, vm_pu_slack=vm)
    unb = run_batch_3ph(model, p, q, asym_load_p_mw=pa, asym_load_q_mvar=qa, vm_pu_slack=vm)
    assert bal.vm_pu.shape == (n_sc, n_st, len(net.bus))
    assert unb.vm_pu.shape == (n_sc, n_st, len(net.bus), 3)
    assert unb.line_i_ka.shape == (n_sc, n_st, len(net.line), 3)
    for s in range(n_sc):
        for t in range(n_st):
            one = run_batch(
                model, p[s, t], q[s, t], asym_load_p_mw=pa[s, t], asym_load_q_mvar=qa[s, t], vm_pu_slack=vm[s, t]
            )
            np.testing.assert_array_equal(one.v_pu, bal.v_pu[s, t])
            np.testing.assert_array_equal(one.line_loading_percent, bal.line_loading_percent[s, t])
            one3 = run_batch_3ph(
                model, p[s, t], q[s, t], asym_load_p_mw=pa[s, t], asym_load_q_mvar=qa[s, t], vm_pu_slack=vm[s, t]
            )
            np.testing.assert_array_equal(one3.v_pu, unb.v_pu[s, t])
    # threads or not: bit-identical
    for par in (True, False):
        np.testing.assert_array_equal(
            run_batch(model, p, q, asym_load_p_mw=pa, asym_load_q_mvar=qa, vm_pu_slack=vm, parallel=par).v_pu, bal.v_pu
        )
        np.testing.assert_array_equal(
            run_batch_3ph(model, p, q, asym_load_p_mw=pa, asym_load_q_mvar=qa, vm_pu_slack=vm, parallel=par).v_pu,
            unb.v_pu,
        )
    # and a single case against pandapower, slack voltage included
    net.load["p_mw"], net.load["q_mvar"] = p[1, 2], q[1, 2]
    net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]] = pa[1, 2]
    net.asymmetric_load[["q_a_mvar", "q_b_mvar", "q_c_mvar"]] = 0.0
    net.ext_grid["vm_pu"] = vm[1, 2]
    pp_balanced(net)
    assert_balanced(bal, (1, 2), net, "batch item (1, 2)")
    pp_3ph(net)
    assert_3ph(unb, (1, 2), net, "batch item (1, 2) 3ph")


def test_bus_injections_equal_added_loads():
    net = add_zero_sequence(kerber("kerber_dorfnetz"))
    model = build_radial_model(net)
    bus = net.load.bus.iat[-1]
    j = net.bus.index.get_loc(bus)
    extra = np.zeros(len(net.bus))
    extra[j] = 0.02
    res = run_batch(model, bus_p_mw=extra, bus_q_mvar=0.1 * extra)
    pp.create_load(net, bus, p_mw=0.02, q_mvar=0.002)
    pp_balanced(net)
    assert_balanced(res, (), net, "bus injection")
    # per phase: 6 kW on phase b to neutral plus 4 kW between c and a
    ph = np.zeros((len(net.bus), 3))
    ph[j, 1] = 0.006
    dl = np.zeros((len(net.bus), 3))
    dl[j, 2] = 0.004
    net.load.drop(net.load.index[-1], inplace=True)
    res3 = run_batch_3ph(model, bus_p_mw=ph, bus_delta_p_mw=dl)
    pp.create_asymmetric_load(net, bus, p_b_mw=0.006)
    pp.create_asymmetric_load(net, bus, p_c_mw=0.004, type="delta")
    pp_3ph(net)
    assert_3ph(res3, (), net, "bus injection 3ph")


# --------------------------------------------------------------------------------------------
# inputs, convergence, the class
# --------------------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument():
    net = kerber("kerber_landnetz_kabel_1")
    model = build_radial_model(net)
    nl = len(net.load)
    with pytest.raises(ValueError, match=rf"p_mw: expected shape \(\.\.\., {nl}\)"):
        run_batch(model, p_mw=np.zeros((4, nl + 1)))
    bad = np.full((4, nl), 0.001)
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"q_mvar: contains NaN .*\(2, 3\)"):
        run_batch(model, p_mw=np.zeros((4, nl)), q_mvar=bad)
    with pytest.raises(ValueError, match="q_mvar: batch shape"):
        run_batch(model, p_mw=np.zeros((4, nl)), q_mvar=np.zeros((5, nl)))
    with pytest.raises(ValueError, match="vm_pu_slack"):
        run_batch(model, p_mw=np.zeros((4, nl)), vm_pu_slack=np.ones(3))
    with pytest.raises(ValueError, match="sgen_p_mw: expected shape"):
        run_batch(model, sgen_p_mw=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="tol"):
        run_batch(model, tol=0.0)
    with pytest.raises(ValueError, match="errors"):
        run_batch(model, errors="ignore")
    model3 = build_radial_model(add_zero_sequence(kerber("kerber_landnetz_kabel_1")))
    with pytest.raises(ValueError, match=rf"bus_p_mw: expected shape \(\.\.\., {len(net.bus)}, 3\)"):
        run_batch_3ph(model3, bus_p_mw=np.zeros(len(net.bus)))


def test_non_convergence_is_masked_or_raised():
    net = add_zero_sequence(kerber("kerber_landnetz_freileitung_1"))
    model = build_radial_model(net)
    p0 = net.load.p_mw.to_numpy()
    p = np.stack([p0, 200 * p0, p0 * 0.5])  # the middle case is far beyond the voltage collapse
    res = run_batch(model, p_mw=p, q_mvar=0.3 * p)
    np.testing.assert_array_equal(res.converged, [True, False, True])
    assert np.isnan(res.vm_pu[1]).all() and np.isnan(res.line_loading_percent[1]).all()
    assert np.isfinite(res.vm_pu[[0, 2]]).all()
    with pytest.raises(PowerFlowNotConverged, match=r"1 of 3 batch items .*\(1,\)"):
        run_batch(model, p_mw=p, q_mvar=0.3 * p, errors="raise")
    with pytest.raises(PowerFlowNotConverged):
        res.raise_if_not_converged()
    res3 = run_batch_3ph(model, p_mw=p, q_mvar=0.3 * p)
    np.testing.assert_array_equal(res3.converged, [True, False, True])
    assert np.isnan(res3.vm_pu[1]).all()
    # an iteration limit too low to converge is reported the same way
    few = run_batch(model, p_mw=p[[0]], max_iter=1)
    assert not few.converged[0] and np.isnan(few.vm_pu).all()
    with pytest.raises(PowerFlowNotConverged, match="max_iter=1"):
        run_batch(model, p_mw=p[[0]], max_iter=1, errors="raise")


def test_batch_power_flow_class_and_defaults():
    net = add_zero_sequence(kerber("kerber_landnetz_kabel_2"))
    bpf = BatchPowerFlow(net)
    assert bpf.model.three_phase_error is None
    np.testing.assert_array_equal(bpf.model.load_index, net.load.index.to_numpy())
    res = bpf.run()
    assert res.vm_pu.shape == (len(net.bus),) and res.converged.shape == ()
    pp_balanced(net)
    assert_balanced(res, (), net, "defaults")
    res3 = bpf.run_3ph()
    assert res3.vm_pu.shape == (len(net.bus), 3)


@pytest.mark.parametrize("three_phase", [False, True], ids=["balanced", "unbalanced"])
def test_a_non_finite_value_of_any_argument_is_named_with_its_index(three_phase):
    """The finiteness of the power arguments is checked once, on the injection arrays made from them: every given
    value must reach them (tables with phase-to-neutral and phase-to-phase rows, per-phase tables, bus arguments),
    so a NaN or infinity anywhere is named with its argument and index, and the first argument in the solver's order
    is the one named when several have one."""
    net = add_zero_sequence(kerber("kerber_landnetz_kabel_1"))
    buses = net.load.bus.to_numpy()
    pp.create_sgen(net, buses[0], p_mw=0.003)
    pp.create_storage(net, buses[1], p_mw=0.002, max_e_mwh=0.01)
    pp.create_asymmetric_load(net, buses[2], p_a_mw=0.001)
    pp.create_asymmetric_load(net, buses[3], p_b_mw=0.002, type="delta")
    pp.create_asymmetric_sgen(net, buses[4], p_c_mw=0.001)
    net.load.loc[net.load.index[:2], "type"] = "delta"  # phase-to-phase rows beside phase-to-neutral ones
    model = build_radial_model(net)
    solve = run_batch_3ph if three_phase else run_batch
    shape = (2, 3)
    counts = {"": len(net.load), "sgen_": len(net.sgen), "storage_": len(net.storage)}
    args = {f"{pre}{x}": np.zeros((*shape, n)) for pre, n in counts.items() for x in ("p_mw", "q_mvar")}
    for pre, n in (("asym_load_", len(net.asymmetric_load)), ("asym_sgen_", len(net.asymmetric_sgen))):
        args |= {f"{pre}{x}": np.zeros((*shape, n, 3)) for x in ("p_mw", "q_mvar")}
    nbus = len(net.bus)
    args |= {f"bus_{x}": np.zeros((*shape, nbus, 3) if three_phase else (*shape, nbus)) for x in ("p_mw", "q_mvar")}
    if three_phase:
        args |= {f"bus_delta_{x}": np.zeros((*shape, nbus, 3)) for x in ("p_mw", "q_mvar")}
    assert solve(model, **args).all_converged  # all given, all finite: solved
    for name, arr in args.items():
        for bad in (np.nan, -np.inf):
            where = (1, 2, arr.shape[2] - 1) + ((2,) if arr.ndim == 4 else ())
            given = dict(args, **{name: arr.copy()})
            given[name][where] = bad
            with pytest.raises(ValueError, match=rf"^{name}: contains NaN or infinite values \(first at index "
                               rf"{re.escape(str(where))}\)$"):  # fmt: skip
                solve(model, **given)
            # the same argument alone (the others omitted: the tables' static values)
            with pytest.raises(ValueError, match=rf"^{name}: contains NaN"):
                solve(model, **{name: given[name]})
    # two arguments with a NaN: the first in the solver's argument order is named
    given = dict(args, q_mvar=args["q_mvar"].copy(), sgen_p_mw=args["sgen_p_mw"].copy())
    given["q_mvar"][0, 0, 0] = given["sgen_p_mw"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^q_mvar: contains NaN"):
        solve(model, **given)


@pytest.mark.parametrize("three_phase", [False, True], ids=["balanced", "unbalanced"])
def test_p_or_q_alone_takes_the_other_from_the_network(three_phase):
    """Only P (or only Q) of a table given: the other is the network's static value for every batch item, the same
    as giving it explicitly -- for every table (phase-to-neutral and phase-to-phase rows, per-phase tables) and the
    bus arguments, whose static value is zero (the per-phase solver raised a broadcasting error here before)."""
    net = add_zero_sequence(kerber("kerber_landnetz_kabel_1"))
    buses = net.load.bus.to_numpy()
    net.load["q_mvar"] = 0.3 * net.load.p_mw
    net.load.loc[net.load.index[:2], "type"] = "delta"
    pp.create_sgen(net, buses[0], p_mw=0.003, q_mvar=-0.001)
    pp.create_storage(net, buses[1], p_mw=0.002, q_mvar=0.0005, max_e_mwh=0.01)
    pp.create_asymmetric_load(net, buses[2], p_a_mw=0.001, q_a_mvar=0.0004)
    pp.create_asymmetric_load(net, buses[3], p_b_mw=0.002, q_c_mvar=0.0003, type="delta")
    pp.create_asymmetric_sgen(net, buses[4], p_c_mw=0.001, q_b_mvar=0.0002)
    model = build_radial_model(net)
    solve = run_batch_3ph if three_phase else run_batch
    rng = np.random.default_rng(5)
    shape = (4,)

    def static(table: str, x: str) -> np.ndarray:
        """The table's static P or Q [MW, Mvar] for every batch item (pandapower's values times scaling)."""
        df = getattr(net, table)
        unit = "mw" if x == "p" else "mvar"
        if table.startswith("asym"):
            values = df[[f"{x}_{ph}_{unit}" for ph in "abc"]].to_numpy() * df.scaling.to_numpy()[:, None]
        else:
            values = df[f"{x}_{unit}"].to_numpy() * df.scaling.to_numpy()
        return np.broadcast_to(values, (*shape, *values.shape))

    tables = {"": "load", "sgen_": "sgen", "storage_": "storage", "asym_load_": "asymmetric_load",
              "asym_sgen_": "asymmetric_sgen"}  # fmt: skip
    pairs = []
    for prefix, table in tables.items():
        for given, other in (("p", "q"), ("q", "p")):
            st = static(table, given)
            value = rng.uniform(0.0, 0.003, st.shape)
            names = {x: f"{prefix}{x}_{'mw' if x == 'p' else 'mvar'}" for x in "pq"}
            pairs.append(({names[given]: value}, {names[given]: value, names[other]: static(table, other)}))
    bus_shape = (*shape, len(net.bus), 3) if three_phase else (*shape, len(net.bus))
    for prefix in ("bus_", "bus_delta_") if three_phase else ("bus_",):
        value = rng.uniform(0.0, 0.002, bus_shape)
        pairs.append(({f"{prefix}p_mw": value}, {f"{prefix}p_mw": value, f"{prefix}q_mvar": np.zeros(bus_shape)}))
        pairs.append(({f"{prefix}q_mvar": value}, {f"{prefix}q_mvar": value, f"{prefix}p_mw": np.zeros(bus_shape)}))
    for alone, explicit in pairs:
        got, want = solve(model, **alone), solve(model, **explicit)
        assert got.all_converged and got.v_pu.shape == want.v_pu.shape, alone.keys()
        np.testing.assert_array_equal(got.v_pu, want.v_pu, err_msg=str(alone.keys()))
        assert not np.allclose(got.v_pu[0], got.v_pu[1])  # the given values differ per item
