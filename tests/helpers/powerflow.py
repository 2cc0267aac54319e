"""pandapower references for the batched radial power flow tests (tests/powerflow), computed here.

Reference results
-----------------
* Balanced: ``pp.runpp(net, tolerance_mva=1e-11)`` (tighter than the default 1e-8 so the
  reference's own error does not blur the comparison).
* Unbalanced: ``pp.runpp_3ph``. Its outer loop stops at a hard-coded power mismatch of
  3e-8 MVA, which leaves errors of up to ~2e-6 pu on the 906-bus IEEE network; the reference is
  therefore re-run with ``init="results"`` until it changes by less than 1e-10 pu. runpp_3ph can
  also report NaN voltages with ``converged=True`` on divergence, so every reference is checked
  for finite values before it is used.

SimBench grids are loaded once per code and cached (pandapower JSON without profiles plus the
selected profile rows) in pytest's cache directory, because ``simbench.get_simbench_net`` takes
5-8 s per grid.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from powercheck.grid.networks import load_source

# The requirement is 1e-6 pu. The solver agrees to ~1e-10 pu, and the checks use 1e-8 pu so that
# model details smaller than 1e-6 are still covered (e.g. the T instead of the pi transformer model
# moves kerber_dorfnetz voltages by 7e-7 pu; line capacitance and magnetising current by ~1.5e-5 pu).
VM_TOL = 1e-8  # [pu] voltage magnitudes
VA_TOL = 1e-6  # [degree]
LOADING_TOL = 1e-5  # [%] line / trafo loading
I_TOL = 1e-8  # [kA]


def pp_balanced(net, **kwargs):
    """``runpp`` with a tight tolerance (see module doc); asserts convergence."""
    pp.runpp(net, tolerance_mva=1e-11, max_iteration=50, **kwargs)
    assert net.converged
    return net


def pp_3ph(net, supplied=None):
    """runpp_3ph re-run from its own results until it is converged to 1e-10 pu (see module doc)."""
    cols = ["vm_a_pu", "vm_b_pu", "vm_c_pu"]
    pp.runpp_3ph(net, tolerance_mva=1e-12)
    prev = net.res_bus_3ph[cols].to_numpy().copy()
    for _ in range(10):
        pp.runpp_3ph(net, tolerance_mva=1e-12, init="results")
        cur = net.res_bus_3ph[cols].to_numpy().copy()
        change = np.nanmax(np.abs(cur - prev))
        prev = cur
        if change < 1e-10:
            break
    assert net.converged
    mask = np.ones(len(net.bus), bool) if supplied is None else supplied
    assert np.isfinite(cur[mask]).all(), "runpp_3ph returned NaN voltages (diverged although converged=True)"
    return net


def assert_balanced(res, k, net, label=""):
    """Compare batch item ``k`` of a BatchResult with net.res_*; returns the max deviations."""
    rb = net.res_bus
    vm, va = res.vm_pu[k], res.va_degree[k]
    ok = np.isfinite(rb.vm_pu.to_numpy())
    np.testing.assert_array_equal(np.isfinite(vm), ok, err_msg=f"{label}: supplied buses differ")
    dvm = np.max(np.abs(vm[ok] - rb.vm_pu.to_numpy()[ok]))
    dva = np.max(np.abs(va[ok] - rb.va_degree.to_numpy()[ok]))
    assert dvm < VM_TOL, f"{label}: max |dvm| = {dvm:.3e} pu"
    assert dva < VA_TOL, f"{label}: max |dva| = {dva:.3e} deg"
    dev = {"vm": dvm, "va": dva}
    if len(net.line):
        rl = net.res_line
        on = net.line.in_service.to_numpy() & np.isfinite(rl.i_ka.to_numpy())
        dl = np.max(np.abs(res.line_loading_percent[k][on] - rl.loading_percent.to_numpy()[on]), initial=0)
        di = np.max(np.abs(res.line_i_from_ka[k][on] - rl.i_from_ka.to_numpy()[on]), initial=0)
        di = max(di, np.max(np.abs(res.line_i_to_ka[k][on] - rl.i_to_ka.to_numpy()[on]), initial=0))
        assert dl < LOADING_TOL, f"{label}: line loading differs by {dl:.3e} %"
        assert di < I_TOL, f"{label}: line current differs by {di:.3e} kA"
        dev["line_loading"] = dl
    if len(net.trafo):
        rt = net.res_trafo
        on = net.trafo.in_service.to_numpy()
        dt = np.max(np.abs(res.trafo_loading_percent[k][on] - rt.loading_percent.to_numpy()[on]))
        assert dt < LOADING_TOL, f"{label}: trafo loading differs by {dt:.3e} %"
        dev["trafo_loading"] = dt
    dp = abs(res.ext_grid_p_mw[k] - net.res_ext_grid.p_mw.iat[0])
    dq = abs(res.ext_grid_q_mvar[k] - net.res_ext_grid.q_mvar.iat[0])
    assert dp < 1e-8 and dq < 1e-8, f"{label}: ext_grid power differs by {dp:.2e} MW / {dq:.2e} Mvar"
    return dev


def assert_3ph(res, k, net, label=""):
    rb = net.res_bus_3ph
    ok = np.isfinite(rb.vm_a_pu.to_numpy())
    np.testing.assert_array_equal(np.isfinite(res.vm_pu[k][:, 0]), ok, err_msg=f"{label}: supplied buses differ")
    dvm = dva = 0.0
    for p, ph in enumerate("abc"):
        dvm = max(dvm, np.max(np.abs(res.vm_pu[k][ok, p] - rb[f"vm_{ph}_pu"].to_numpy()[ok])))
        dva = max(dva, np.max(np.abs(res.va_degree[k][ok, p] - rb[f"va_{ph}_degree"].to_numpy()[ok])))
    assert dvm < VM_TOL, f"{label}: max |dvm| = {dvm:.3e} pu"
    assert dva < VA_TOL, f"{label}: max |dva| = {dva:.3e} deg"
    du = np.max(np.abs(res.unbalance_percent[k][ok] - rb.unbalance_percent.to_numpy()[ok]))
    assert du < 1e-6, f"{label}: unbalance differs by {du:.3e} %"
    rl = net.res_line_3ph
    on = net.line.in_service.to_numpy()
    di = max(np.max(np.abs(res.line_i_ka[k][on, p] - rl[f"i_{ph}_ka"].to_numpy()[on])) for p, ph in enumerate("abc"))
    din = np.max(np.abs(res.line_i_n_ka[k][on] - rl.i_n_ka.to_numpy()[on]))
    dl = np.max(np.abs(res.line_loading_percent[k][on] - rl.loading_percent.to_numpy()[on]))
    assert di < I_TOL and din < I_TOL, f"{label}: line currents differ by {di:.3e} / neutral {din:.3e} kA"
    assert dl < LOADING_TOL, f"{label}: line loading differs by {dl:.3e} %"
    rt = net.res_trafo_3ph
    dt = np.max(np.abs(res.trafo_loading_percent[k] - rt.loading_percent.to_numpy()))
    assert dt < LOADING_TOL, f"{label}: trafo loading differs by {dt:.3e} %"
    return {"vm": dvm, "va": dva, "line_loading": dl, "trafo_loading": dt}


def add_zero_sequence(net, *, vector_group="Dyn", s_sc_mva=100.0):
    """Zero-sequence and source data runpp_3ph needs: 4-core cable with full neutral (R0 = 4 R1)."""
    net.line["r0_ohm_per_km"] = 4.0 * net.line.r_ohm_per_km
    net.line["x0_ohm_per_km"] = 4.0 * net.line.x_ohm_per_km
    net.line["c0_nf_per_km"] = net.line.c_nf_per_km
    net.trafo["vector_group"] = vector_group
    net.trafo["vk0_percent"] = net.trafo.vk_percent
    net.trafo["vkr0_percent"] = net.trafo.vkr_percent
    net.trafo["mag0_percent"] = 100.0
    net.trafo["mag0_rx"] = 0.0
    net.trafo["si0_hv_partial"] = 0.9
    net.ext_grid["s_sc_max_mva"] = s_sc_mva
    net.ext_grid["rx_max"] = 0.1
    net.ext_grid["x0x_max"] = 1.0
    net.ext_grid["r0x0_max"] = 0.1
    return net


def add_asymmetric_loads(net, rng, n, *, delta_share=0.3, kw=5.0):
    """n single- and three-phase asymmetric loads at random load buses, some connected delta."""
    buses = net.load.bus.to_numpy() if len(net.load) else net.bus.index.to_numpy()[1:]
    for i in range(n):
        p = np.zeros(3)
        k = rng.integers(0, 3)
        p[k] = rng.uniform(0.3, 1.0) * kw * 1e-3
        if i % 4 == 0:
            p += rng.uniform(0.0, 0.5, 3) * kw * 1e-3
        typ = "delta" if rng.uniform() < delta_share else "wye"
        pp.create_asymmetric_load(
            net,
            int(rng.choice(buses)),
            p_a_mw=p[0],
            p_b_mw=p[1],
            p_c_mw=p[2],
            q_a_mvar=0.3 * p[0],
            q_b_mvar=0.2 * p[1],
            q_c_mvar=-0.1 * p[2],
            type=typ,
        )
    return net


SB_CODES_0 = [
    f"1-LV-{g}--0-{sw}"
    for g in ("rural1", "rural2", "rural3", "semiurb4", "semiurb5", "urban6")
    for sw in ("sw", "no_sw")
]
SB_CODES_12 = ["1-LV-rural1--1-sw", "1-LV-semiurb4--2-no_sw", "1-LV-urban6--2-sw"]


@dataclass
class SimbenchCase:
    net: pp.pandapowerNet
    steps: np.ndarray
    load_p: np.ndarray  # [steps, n_load] MW
    load_q: np.ndarray
    sgen_p: np.ndarray
    storage_p: np.ndarray


_SB_MEMO: dict[str, SimbenchCase] = {}


def _cache_root(request) -> Path:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("powercheck-simbench"))
    return Path(request.getfixturevalue("tmp_path_factory").mktemp("powercheck-simbench"))


def _select_steps(load_p: np.ndarray, sgen_p: np.ndarray) -> np.ndarray:
    """Peak load, peak feed-in, minimum net load and three fixed pseudo-random 15-min steps."""
    net_load = load_p.sum(axis=1) - (sgen_p.sum(axis=1) if sgen_p.shape[1] else 0.0)
    rnd = np.random.default_rng(2024).choice(load_p.shape[0], 3, replace=False)
    steps = [int(np.argmax(load_p.sum(axis=1))), int(np.argmin(net_load)), int(np.argmax(net_load)), *map(int, rnd)]
    return np.array(sorted(set(steps)))


def simbench_case(code: str, request) -> SimbenchCase:
    sb = pytest.importorskip("simbench")
    if code.endswith("-no_sw") and code not in _SB_MEMO:
        # get_simbench_net builds "no_sw" as the "sw" grid passed through generate_no_sw_variant; doing the
        # same here halves the (slow) grid loading
        base = simbench_case(code[: -len("no_sw")] + "sw", request)
        sb.generate_no_sw_variant(base.net)
        _SB_MEMO[code] = base
    if code not in _SB_MEMO:
        d = _cache_root(request) / f"{code}-sb{sb.__version__}-pp{pp.__version__}"
        if (d / "arrays.npz").is_file():
            net = pp.from_json(str(d / "net.json"))
            arr = dict(np.load(d / "arrays.npz"))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = sb.get_simbench_net(code)
                prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
            lp = prof[("load", "p_mw")].to_numpy()
            lq = prof[("load", "q_mvar")].to_numpy()
            sp = prof[("sgen", "p_mw")].to_numpy()
            stp = prof[("storage", "p_mw")].to_numpy()
            steps = _select_steps(lp, sp)
            arr = {
                "steps": steps,
                "load_p": lp[steps],
                "load_q": lq[steps],
                "sgen_p": sp[steps] if sp.shape[1] else np.zeros((len(steps), len(net.sgen))),
                "storage_p": stp[steps] if stp.shape[1] else np.zeros((len(steps), len(net.storage))),
            }
            net.profiles = {}
            d.mkdir(parents=True, exist_ok=True)
            pp.to_json(net, str(d / "net.json"))
            np.savez(d / "arrays.npz", **arr)
        _SB_MEMO[code] = SimbenchCase(net, arr["steps"], arr["load_p"], arr["load_q"], arr["sgen_p"], arr["storage_p"])
    case = _SB_MEMO[code]
    return SimbenchCase(copy.deepcopy(case.net), case.steps, case.load_p, case.load_q, case.sgen_p, case.storage_p)


def set_step(net, case: SimbenchCase, k: int) -> None:
    net.load["p_mw"] = case.load_p[k]
    net.load["q_mvar"] = case.load_q[k]
    if len(net.sgen):
        net.sgen["p_mw"] = case.sgen_p[k]
    if len(net.storage):
        net.storage["p_mw"] = case.storage_p[k]
    for t in ("load", "sgen", "storage"):
        if len(net[t]):
            net[t]["scaling"] = 1.0


def record_deviations(record_property, devs):
    """Largest deviations over the compared cases, kept in the junit report (``--junitxml``)."""
    for key in devs[0]:
        record_property(f"max_d{key}", float(max(d[key] for d in devs)))


KERBER = [
    "kerber_landnetz_freileitung_1",
    "kerber_landnetz_freileitung_2",
    "kerber_landnetz_kabel_1",
    "kerber_landnetz_kabel_2",
    "kerber_dorfnetz",
    "kerber_vorstadtnetz_kabel_1",
    "kerber_vorstadtnetz_kabel_2",
]


def kerber(name):
    """A pandapower Kerber network (seeded, as the ``pandapower:`` sources)."""
    return load_source(f"pandapower:{name}")
