"""What-if studies: profiles, placement, the batched study against pandapower, Dask, CLI and report."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import warnings

import numpy as np
import pandapower as pp
import pandas as pd
import pyarrow.parquet as pq
import pytest

from powercheck.cli import main
from powercheck.whatif import parse_shares
from powercheck.whatif.feeders import load_feeder, parse_feeders
from powercheck.whatif.profiles import ev_profiles, select_days
from powercheck.whatif.report import hosting_capacity
from powercheck.whatif.study import Scenario, StudyConfig, place, run_study, solve_scenarios, study_steps
from tests.helpers.powerflow import pp_3ph

SIMBENCH = "1-LV-rural1--0-sw"


@pytest.fixture(scope="module")
def tn_feeder(cache_dir):
    return load_feeder(parse_feeders([SIMBENCH])[0], cache_dir)


@pytest.fixture(scope="module")
def ieee_feeder(cache_dir):
    return load_feeder(parse_feeders(["demo:tn-ieee-eu"])[0], cache_dir)


@pytest.fixture(scope="module")
def it_feeder(cache_dir):
    return load_feeder(parse_feeders(["demo:it-landnetz-luft"])[0], cache_dir)


def test_parse_shares():
    assert parse_shares("0:1:0.1") == tuple(round(0.1 * i, 10) for i in range(11))
    assert parse_shares("0,0.5,1") == (0.0, 0.5, 1.0)
    assert parse_shares("0.3") == (0.3,)
    for bad in ("0:1:0.3", "0:2:1", "a", "1:0:0.1", "0:1:0"):
        with pytest.raises(ValueError, match="--ev-share"):
            parse_shares(bad, "--ev-share")


def test_ev_profile_by_hand():
    rated = np.array([7.4, 11.0])
    steps = np.arange(96 * 2)
    prof = ev_profiles(rated, steps % 96, steps // 96, np.random.default_rng(5))
    # the same draws, in the same order: per day normal arrivals, then uniform energies
    rng = np.random.default_rng(5)
    for day in range(2):
        arrival = np.clip(rng.normal(18.0, 2.0, 2), 14.0, 23.75)
        energy = rng.uniform(4.0, 16.0, 2)
        for e in range(2):
            expected = np.zeros(96)
            start = int(arrival[e] // 0.25)
            full = int(energy[e] // (rated[e] * 0.25))
            expected[(start + np.arange(full)) % 96] = rated[e]
            expected[(start + full) % 96] = (energy[e] - full * rated[e] * 0.25) / 0.25
            got = prof[day * 96 : (day + 1) * 96, e]
            np.testing.assert_allclose(got, expected, atol=1e-12)
            assert got.sum() * 0.25 == pytest.approx(energy[e])  # the day's energy, exactly


def test_select_days_by_hand():
    load = np.zeros(96 * 6)
    pv = np.zeros(96 * 6)
    load[96 * 4 + 70] = 5.0  # day 4 has the highest peak
    load[96 * 1 + 70] = 3.0  # day 1 the second highest
    pv[96 * 2 : 96 * 3] = 1.0  # day 2 the most PV
    steps = select_days(load, pv, 3)
    assert sorted(set(steps // 96)) == [1, 2, 4]
    assert len(steps) == 3 * 96
    assert len(select_days(load, pv, "all")) == 96 * 6
    with pytest.raises(ValueError, match="days"):
        select_days(load, pv, 0)


def test_placement_counts_and_energy(tn_feeder):
    config = StudyConfig(ev_shares=(0.5,), pv_shares=(0.5,), samples=1, days=2)
    steps = study_steps(tn_feeder, config)
    pl = place(tn_feeder, Scenario(tn_feeder.spec.name, 0.5, 0.5, 0), config, steps)
    n = tn_feeder.n_customers
    assert pl.n_ev == round(0.5 * n) and pl.n_pv == round(0.5 * n)
    assert pl.detail["ev_1ph"] + pl.detail["ev_3ph"] == pl.n_ev
    # TN: everything is phase-to-neutral; EV energy per day within the drawn range, PV negative
    assert not pl.delta_p.any()
    ev = np.clip(pl.wye_p, 0, None).sum(axis=(1, 2)) * 1000 * 0.25
    per_day = ev.reshape(2, 96).sum(axis=1)
    assert (per_day >= 4.0 * pl.n_ev - 1e-9).all() and (per_day <= 16.0 * pl.n_ev + 1e-9).all()
    # the same scenario always draws the same placement
    again = place(tn_feeder, Scenario(tn_feeder.spec.name, 0.5, 0.5, 0), config, steps)
    np.testing.assert_array_equal(pl.wye_p, again.wye_p)


def _reference_net(feeder, step, placement, t_index):
    """The feeder at one step in pandapower: its own load and generator tables emptied, every customer point's base
    load, existing generation and the scenario's additions written as one asymmetric load per bus."""
    net = copy.deepcopy(feeder.net)
    for table in ("load", "sgen", "asymmetric_load", "asymmetric_sgen", "storage"):
        if table in net and len(net[table]):
            net[table] = net[table].iloc[0:0]
    it = feeder.spec.system == "IT_230"
    per_bus = {}
    for c, bus in enumerate(feeder.cust_bus):  # customer by customer, its base load on its phases
        acc = per_bus.setdefault(int(bus), np.zeros(3, dtype=complex))
        acc += (feeder.base_p_mw[step, c] + 1j * feeder.base_q_mvar[step, c]) * feeder.base_split[c]
    for g, pos in enumerate(feeder.gen_bus_pos):
        bus = int(feeder.model.bus_index[pos])
        acc = per_bus.setdefault(bus, np.zeros(3, dtype=complex))
        acc -= feeder.gen_p_mw[step, g] * feeder.gen_split[g]
    for bus, s in per_bus.items():
        pp.create_asymmetric_load(
            net, bus, p_a_mw=s[0].real, p_b_mw=s[1].real, p_c_mw=s[2].real,
            q_a_mvar=s[0].imag, q_b_mvar=s[1].imag, q_c_mvar=s[2].imag, type="delta" if it else "wye",
        )  # fmt: skip
    for pos, bus in enumerate(feeder.model.bus_index):
        for arr, arr_q, kind in (
            (placement.wye_p, placement.wye_q, "wye"),
            (placement.delta_p, placement.delta_q, "delta"),
        ):
            p, q = arr[t_index, pos], arr_q[t_index, pos]
            if np.any(p != 0) or np.any(q != 0):
                pp.create_asymmetric_load(
                    net, int(bus), p_a_mw=p[0], p_b_mw=p[1], p_c_mw=p[2],
                    q_a_mvar=q[0], q_b_mvar=q[1], q_c_mvar=q[2], type=kind,
                )  # fmt: skip
    return net


def _pp_results(feeder, net):
    """pandapower runpp_3ph: customer voltage magnitudes (L-N in TN, L-L/sqrt(3) in IT) of the LV buses [pu]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp_3ph(net)  # re-run until converged to 1e-10 pu (tests/helpers/powerflow.py)
    res = net.res_bus_3ph.loc[feeder.model.bus_index[feeder.lv_bus_mask]]
    v = np.stack([res[f"vm_{p}_pu"] * np.exp(1j * np.deg2rad(res[f"va_{p}_degree"])) for p in "abc"], axis=1)
    assert np.isfinite(v).all()
    mag = np.abs(v - np.roll(v, -1, axis=1)) / math.sqrt(3) if feeder.spec.system == "IT_230" else np.abs(v)
    return v, mag, res


@pytest.mark.parametrize("which", ["tn", "it", "ieee"])
def test_study_matches_pandapower_runpp_3ph(which, tn_feeder, it_feeder, ieee_feeder):
    feeder = {"tn": tn_feeder, "it": it_feeder, "ieee": ieee_feeder}[which]
    config = StudyConfig(ev_shares=(1.0,), pv_shares=(0.5,), samples=1, days=2)
    steps = study_steps(feeder, config)
    scenario = Scenario(feeder.spec.name, 1.0, 0.5, 0)
    pl = place(feeder, scenario, config, steps)
    row = solve_scenarios(feeder, [scenario], config).iloc[0]
    # the step with the most EV charging and the one with the most PV, checked in pandapower
    totals = pl.wye_p.sum(axis=(1, 2)) + pl.delta_p.sum(axis=(1, 2))
    for t in (int(np.argmax(totals)), int(np.argmin(totals))):
        v, mag, res = _pp_results(feeder, _reference_net(feeder, steps[t], pl, t))
        solved = solve_scenarios(feeder, [scenario], config, steps=steps[t : t + 1], placements=[pl.at(t)]).iloc[0]
        assert solved.v_min_pu == pytest.approx(mag.min(), abs=1e-6)
        assert solved.v_max_pu == pytest.approx(mag.max(), abs=1e-6)
        assert solved.unbalance_max_percent == pytest.approx(res.unbalance_percent.max(), abs=1e-4)
        assert row.v_min_pu <= mag.min() + 1e-9 and row.v_max_pu >= mag.max() - 1e-9


@pytest.mark.parametrize("which", ["it", "ieee"])
def test_worst_values_with_element_and_step_match_runpp_3ph(which, it_feeder, ieee_feeder):
    """Per scenario the worst value of each limit, where (bus, line, transformer) and when (step), against pandapower
    runpp_3ph run step by step on the same placement."""
    feeder = {"it": it_feeder, "ieee": ieee_feeder}[which]
    config = StudyConfig(ev_shares=(1.0,), pv_shares=(0.5,), samples=1, days=2)
    all_steps = study_steps(feeder, config)
    scenario = Scenario(feeder.spec.name, 1.0, 0.5, 0)
    pl = place(feeder, scenario, config, all_steps)
    totals = pl.wye_p.sum(axis=(1, 2)) + pl.delta_p.sum(axis=(1, 2))
    order = np.argsort(totals)
    chosen = np.sort(np.concatenate([order[:2], order[-3:]]))  # the most PV export and the most EV charging
    row = solve_scenarios(feeder, [scenario], config, steps=all_steps[chosen], placements=[pl.at(chosen)]).iloc[0]
    ref = {k: [] for k in ("v_min", "v_max", "unbalance", "line", "trafo")}
    for t in chosen:
        net = _reference_net(feeder, all_steps[t], pl, int(t))
        _, mag, res = _pp_results(feeder, net)
        lv_ids = feeder.model.bus_index[feeder.lv_bus_mask]
        step = int(all_steps[t])
        ref["v_min"].append(pd.Series(mag.min(axis=1), index=lv_ids).rename(step))
        ref["v_max"].append(pd.Series(mag.max(axis=1), index=lv_ids).rename(step))
        ref["unbalance"].append(net.res_bus_3ph.unbalance_percent.loc[lv_ids].rename(step))
        ref["line"].append(net.res_line_3ph.loading_percent.loc[feeder.model.line_index].rename(step))
        ref["trafo"].append(net.res_trafo_3ph.loading_percent.loc[feeder.model.trafo_index].rename(step))
    for key, column, kind, tol in (
        ("v_min", "v_min_pu", "min", 1e-6),
        ("v_max", "v_max_pu", "max", 1e-6),
        ("unbalance", "unbalance_max_percent", "max", 1e-4),
        ("line", "line_loading_max_percent", "max", 1e-3),
        ("trafo", "trafo_loading_max_percent", "max", 1e-3),
    ):
        table = pd.concat(ref[key], axis=1)  # elements x steps
        expected = table.min().min() if kind == "min" else table.max().max()
        assert row[column] == pytest.approx(expected, abs=tol), key
        # pandapower's value at the element and step the study names is the worst value
        assert table.loc[row[f"{key}_element"], row[f"{key}_step"]] == pytest.approx(expected, abs=tol), key
    # the binding limit is the one used most, by hand from pandapower's worst values
    util = {
        "v_low": (1 - pd.concat(ref["v_min"], axis=1).min().min()) / (1 - config.v_min_pu),
        "v_high": (pd.concat(ref["v_max"], axis=1).max().max() - 1) / (config.v_max_pu - 1),
        "unbalance": pd.concat(ref["unbalance"], axis=1).max().max() / config.unbalance_max_percent,
        "line": pd.concat(ref["line"], axis=1).max().max() / config.line_loading_max_percent,
        "trafo": pd.concat(ref["trafo"], axis=1).max().max() / config.trafo_loading_max_percent,
    }
    assert row.binding_limit == max(util, key=util.get)
    assert row.binding_utilisation == pytest.approx(max(util.values()), rel=1e-4)


def test_chunking_and_dask_give_identical_results(tn_feeder, it_feeder, cache_dir):
    from dask.distributed import Client, LocalCluster

    specs = [tn_feeder.spec, it_feeder.spec]
    config = StudyConfig(ev_shares=(0.0, 0.5, 1.0), pv_shares=(0.0, 1.0), samples=2, days=2, chunk=5)
    sequential = run_study(specs, config, cache_dir=cache_dir)
    assert len(sequential) == 2 * 3 * 2 * 2
    rechunked = run_study(specs, dataclasses.replace(config, chunk=1), cache_dir=cache_dir)
    pd.testing.assert_frame_equal(sequential, rechunked)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            distributed = run_study(specs, config, scheduler=client, cache_dir=cache_dir)
    pd.testing.assert_frame_equal(sequential, distributed)
    # physics sanity: more EVs never raise the lowest voltage on average, more PV raises the highest
    tn = sequential[sequential.feeder == tn_feeder.spec.name]
    assert tn[tn.ev_share == 1.0].v_min_pu.mean() < tn[tn.ev_share == 0.0].v_min_pu.mean()
    assert tn[tn.pv_share == 1.0].v_max_pu.mean() > tn[tn.pv_share == 0.0].v_max_pu.mean()


def _rows(spec, limit="v_low", n_steps=96):
    """Result rows from ``{share: [steps violating `limit` of each sample]}``."""
    rows = []
    for share, counts in spec.items():
        for s, c in enumerate(counts):
            row = {"feeder": "f", "ev_share": share, "pv_share": 0.0, "sample": s, "n_steps": n_steps}
            row.update({f"steps_{k}": 0 for k in ("v_low", "v_high", "unbalance", "line", "trafo", "not_converged")})
            row[f"steps_{limit}"] = c
            row.update({"n_ev": 0, "ev_kw": 0.0, "n_pv": 0, "pv_kwp": 0.0, "violation": c > 0})
            rows.append(row)
    return pd.DataFrame(rows)


def test_hosting_capacity_by_hand():
    # violation probability per EV share: 0 -> 0/4, 0.5 -> 1/4, 1.0 -> 3/4
    df = _rows({0.0: [0, 0, 0, 0], 0.5: [1, 0, 0, 0], 1.0: [1, 1, 1, 0]})
    assert hosting_capacity(df, "ev_share", 0.05).hosting_capacity_ev_share.tolist() == [0.0]
    assert hosting_capacity(df, "ev_share", 0.25).hosting_capacity_ev_share.tolist() == [0.5]
    hc = hosting_capacity(df, "ev_share", 0.8)
    assert hc.hosting_capacity_ev_share.tolist() == [1.0] and hc.reached.tolist() == [False]
    # per limit: the violations are undervoltage only
    assert hosting_capacity(df, "ev_share", 0.05, limit="v_low").hosting_capacity_ev_share.tolist() == [0.0]
    assert hosting_capacity(df, "ev_share", 0.05, limit="line").hosting_capacity_ev_share.tolist() == [1.0]
    # with 95 % confidence: 0/4 has the Wilson upper bound 3.841459 / 7.841459 = 0.4899; 1/4
    # (0.25 + 3.841459/8 + 1.959964 * sqrt(0.25*0.75/4 + 3.841459/64)) / (1 + 3.841459/4)
    # = (0.25 + 0.480182 + 0.640810) / 1.960365 = 0.6994; 3/4 by the same formula 0.9544
    assert hosting_capacity(df, "ev_share", 0.25, upper_bound=True).hosting_capacity_ev_share.isna().all()
    assert hosting_capacity(df, "ev_share", 0.5, upper_bound=True).hosting_capacity_ev_share.tolist() == [0.0]
    assert hosting_capacity(df, "ev_share", 0.8, upper_bound=True).hosting_capacity_ev_share.tolist() == [0.5]
    df.loc[df.ev_share == 0.0, "steps_v_low"] = 1
    assert np.isnan(hosting_capacity(df, "ev_share", 0.5).hosting_capacity_ev_share.iloc[0])


def test_wilson_interval_by_hand():
    from powercheck.whatif.report import sample_warnings, samples_needed, violation_probability, wilson_interval

    # k = 1 of n = 20, z = 1.959964: p = 0.05, z^2 = 3.841459
    # denominator 1 + 3.841459/20 = 1.1920729; centre (0.05 + 3.841459/40) / 1.1920729 = 0.1225063
    # half width 1.959964 * sqrt(0.05*0.95/20 + 3.841459/1600) / 1.1920729 = 1.959964 * 0.0691080 / 1.1920729
    #            = 0.1136249  ->  [0.0088814, 0.2361312]
    lo, hi = wilson_interval(1, 20)
    assert float(lo) == pytest.approx(0.0088814, abs=3e-7) and float(hi) == pytest.approx(0.2361312, abs=3e-7)
    # k = 0: the lower bound is 0, the upper z^2 / (n + z^2) = 3.841459 / 23.841459 = 0.1611252
    lo, hi = wilson_interval(0, 20)
    assert float(lo) == 0.0 and float(hi) == pytest.approx(0.1611252, abs=3e-7)
    # 0 violations prove p < 0.05 only from n > 3.841459 * 0.95 / 0.05 = 72.99 -> 73 samples
    assert samples_needed(0.05) == 73
    warn = sample_warnings(20, 0.05)
    assert len(warn) == 2 and "1/20 = 0.05" in warn[0] and "73 samples" in warn[1]
    assert "single sample" in sample_warnings(10, 0.05)[0] and len(sample_warnings(21, 0.05)) == 1
    assert sample_warnings(100, 0.05) == []
    prob = violation_probability(_rows({0.5: [1] + [0] * 19}))
    assert prob.violations.tolist() == [1] and prob.samples.tolist() == [20]
    assert prob.ci_high.iloc[0] == pytest.approx(0.2361312, abs=3e-7)


def test_percentile_criterion_next_to_the_strict_rule():
    from powercheck.whatif.report import scenario_violation

    # 96 studied steps: 4 steps out is 4.2 % (within 95 %), 5 steps is 5.2 % (not)
    df = _rows({0.5: [0, 1, 4, 5]})
    assert scenario_violation(df, criterion="any").tolist() == [False, True, True, True]
    assert scenario_violation(df, criterion="p95").tolist() == [False, False, False, True]
    assert hosting_capacity(df, "ev_share", 0.3, criterion="p95").hosting_capacity_ev_share.tolist() == [0.5]
    assert np.isnan(hosting_capacity(df, "ev_share", 0.3, criterion="any").hosting_capacity_ev_share.iloc[0])
    with pytest.raises(ValueError, match="criterion"):
        scenario_violation(df, criterion="p50")


def test_whatif_cli_writes_parquet_and_report(tmp_path, cache_dir, capsys):
    out = tmp_path / "study"
    code = main(
        [
            "whatif",
            "--feeders",
            SIMBENCH,
            "demo:it-landnetz-luft",
            "--ev-share",
            "0:1:0.5",
            "--pv-share",
            "0,1",
            "--samples",
            "2",
            "--days",
            "1",
            "--cache-dir",
            str(cache_dir),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    table = pq.read_table(out / "whatif.parquet")
    df = table.to_pandas()
    assert len(df) == 2 * 3 * 2 * 2
    assert {
        "v_min_pu",
        "v_max_pu",
        "unbalance_max_percent",
        "line_loading_max_percent",
        "trafo_loading_max_percent",
        "violation",
        "steps_v_low",
        "n_ev",
        "n_pv",
    } <= set(df.columns)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert '"samples": 2' in meta["powercheck.config"] and "powercheck-default" in meta["powercheck.policy"]
    assert "[ev.smart_charging]" in meta["powercheck.assumptions"]
    html = (out / "report.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", html)) == 2 * 2 * 3  # 2 feeders x EV, PV x 3 plots
    assert "<h2>Summary</h2>" in html and SIMBENCH in html
    assert "violation probability" in capsys.readouterr().out


def test_feeder_errors():
    with pytest.raises(ValueError, match="feeders"):
        parse_feeders(["not-a-grid"])
    with pytest.raises(ValueError, match="@IT or @TN"):
        parse_feeders(["1-LV-rural1--0-sw@XX"])
    with pytest.raises(ValueError, match="no network 'nope'"):
        parse_feeders(["demo:nope"])
    assert [s.name for s in parse_feeders(["simbench:lv"])][0] == "1-LV-rural1--0-sw"
    with pytest.raises(ValueError, match="samples"):
        StudyConfig(samples=0)
    with pytest.raises(ValueError, match="ev_shares"):
        StudyConfig(ev_shares=(1.5,))


def test_cli_scheduler_local_runs_on_worker_processes(tmp_path, cache_dir):
    out = tmp_path / "dask"
    code = main(
        [
            "whatif",
            "--feeders",
            "demo:it-landnetz-luft",
            "--ev-share",
            "0,1",
            "--samples",
            "2",
            "--days",
            "1",
            "--chunk",
            "1",
            "--scheduler",
            "local",
            "--cache-dir",
            str(cache_dir),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    df = pq.read_table(out / "whatif.parquet").to_pandas()
    assert len(df) == 4 and df.n_ev.tolist() == [0, 0, 13, 13]


def test_large_chunks_are_split_without_changing_results(tn_feeder, monkeypatch):
    from powercheck.whatif import study

    config = StudyConfig(ev_shares=(0.5, 1.0), pv_shares=(0.5,), samples=2, days=2)
    scen = study.scenarios_for(tn_feeder.spec, config)
    whole = solve_scenarios(tn_feeder, scen, config)
    monkeypatch.setattr(study, "MAX_BATCH_VALUES", 1)  # one scenario per solver call
    split = solve_scenarios(tn_feeder, scen, config)
    pd.testing.assert_frame_equal(whole, split)


def test_ieee_european_lv_feeder_has_customers_and_curves(ieee_feeder, cache_dir):
    # the 55 houses of the IEEE European LV test feeder are asymmetric_load rows, each on one phase
    net = ieee_feeder.net
    assert len(net.load) == 0 and ieee_feeder.n_customers == len(net.asymmetric_load) == 55
    single = (net.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]] > 0).sum(axis=1) == 1
    np.testing.assert_array_equal(ieee_feeder.cust_phase[single.to_numpy()] >= 0, True)
    # two days: the one with the highest load peak and the sunniest one
    config = StudyConfig(ev_shares=(0.0, 0.5, 1.0), pv_shares=(0.0, 1.0), samples=2, days=2)
    df = run_study([ieee_feeder.spec], config, cache_dir=cache_dir)
    assert (df.n_customers == 55).all()
    assert df[df.ev_share == 1.0].n_ev.eq(55).all() and df[df.pv_share == 1.0].n_pv.eq(55).all()
    # the curves move: more EVs lower the lowest voltage and load the transformer more, PV raises the highest voltage
    mean = df[df.pv_share == 0.0].groupby("ev_share")[["v_min_pu", "trafo_loading_max_percent"]].mean()
    assert mean.v_min_pu.is_monotonic_decreasing and mean.v_min_pu.iloc[0] - mean.v_min_pu.iloc[-1] > 0.01
    assert mean.trafo_loading_max_percent.is_monotonic_increasing
    vmax = df[df.ev_share == 0.0].groupby("pv_share").v_max_pu.mean()
    assert vmax.loc[1.0] > vmax.loc[0.0] + 0.01
    # every device at a single-phase house is on that house's phase: no 3-phase charger there
    pl = place(ieee_feeder, Scenario(ieee_feeder.spec.name, 1.0, 0.0, 0), config, study_steps(ieee_feeder, config))
    assert pl.detail["ev_3ph"] == 0 and pl.detail["ev_3ph_as_1ph"] > 0


def test_feeder_without_customer_points_is_an_error(tmp_path, cache_dir):
    from powercheck.grid.networks import GridModelError
    from tests.helpers.grids import feeder as small_feeder
    from tests.helpers.grids import to_json

    (tmp_path / "networks").mkdir()
    net = small_feeder(0.4)
    net.load = net.load.iloc[0:0]
    to_json(net, tmp_path / "networks" / "empty.json")
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "x"\n[[network]]\nid = "empty"\nsystem = "TN_400"\nsource = "networks/empty.json"\n',
        encoding="utf-8",
    )
    spec = parse_feeders([f"region:{tmp_path}#empty"])[0]
    with pytest.raises(GridModelError, match=r"feeder region:.*#empty: no customer points"):
        load_feeder(spec, cache_dir)
