"""What-if studies: profiles, placement, the batched study against pandapower, Dask, CLI and report."""

from __future__ import annotations

import copy
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

SIMBENCH = "1-LV-rural1--0-sw"


@pytest.fixture(scope="module")
def tn_feeder(cache_dir):
    return load_feeder(parse_feeders([SIMBENCH])[0], cache_dir)


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
    """The feeder at one step in pandapower, the scenario's additions as asymmetric loads."""
    net = copy.deepcopy(feeder.net)
    order = {int(i): k for k, i in enumerate(feeder.load_index)}
    net.load["p_mw"] = [feeder.base_p_mw[step, order[int(i)]] for i in net.load.index]
    net.load["q_mvar"] = [feeder.base_q_mvar[step, order[int(i)]] for i in net.load.index]
    net.load["scaling"] = 1.0
    if len(net.sgen):
        sg_order = {int(i): k for k, i in enumerate(feeder.model.sgen_index)}
        net.sgen["p_mw"] = [feeder.sgen_p_mw[step, sg_order[int(i)]] for i in net.sgen.index]
        net.sgen["q_mvar"] = 0.0
        net.sgen["scaling"] = 1.0
        net.sgen["type"] = "wye"  # runpp_3ph ignores any other type (SimBench has 'PV')
    for pos, bus in enumerate(feeder.model.bus_index):
        for arr, kind in ((placement.wye_p, "wye"), (placement.delta_p, "delta")):
            p = arr[t_index, pos]
            if np.any(p != 0):
                pp.create_asymmetric_load(net, int(bus), p_a_mw=p[0], p_b_mw=p[1], p_c_mw=p[2], type=kind)
    return net


@pytest.mark.parametrize("which", ["tn", "it"])
def test_study_matches_pandapower_runpp_3ph(which, tn_feeder, it_feeder):
    feeder = tn_feeder if which == "tn" else it_feeder
    config = StudyConfig(ev_shares=(1.0,), pv_shares=(0.5,), samples=1, days=2)
    steps = study_steps(feeder, config)
    scenario = Scenario(feeder.spec.name, 1.0, 0.5, 0)
    pl = place(feeder, scenario, config, steps)
    row = solve_scenarios(feeder, [scenario], config).iloc[0]
    # the step with the lowest voltage and the one with the most PV, checked in pandapower
    totals = pl.wye_p.sum(axis=(1, 2)) + pl.delta_p.sum(axis=(1, 2))
    for t in (int(np.argmax(totals)), int(np.argmin(totals))):
        net = _reference_net(feeder, steps[t], pl, t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp_3ph(net)
        res = net.res_bus_3ph.loc[feeder.model.bus_index[feeder.lv_bus_mask]]
        v = np.stack([res[f"vm_{p}_pu"] * np.exp(1j * np.deg2rad(res[f"va_{p}_degree"])) for p in "abc"], axis=1)
        assert np.isfinite(v).all()
        from powercheck.powerflow import run_batch_3ph

        batch = run_batch_3ph(
            feeder.model,
            p_mw=feeder.base_p_mw[steps[t]][None],
            q_mvar=feeder.base_q_mvar[steps[t]][None],
            bus_p_mw=pl.wye_p[t][None],
            bus_delta_p_mw=pl.delta_p[t][None],
            **({"sgen_p_mw": feeder.sgen_p_mw[steps[t]][None]} if feeder.sgen_p_mw.shape[1] else {}),
        )
        np.testing.assert_allclose(np.abs(batch.v_pu[0][feeder.lv_bus_mask]), np.abs(v), atol=1e-6)
        np.testing.assert_allclose(
            batch.unbalance_percent[0][feeder.lv_bus_mask], res.unbalance_percent.to_numpy(), atol=1e-4
        )
        if which == "it":
            v_ll = np.abs(v - np.roll(v, -1, axis=1)) / math.sqrt(3)
            assert row.v_min_pu <= v_ll.min() + 1e-9
        else:
            assert row.v_min_pu <= np.abs(v).min() + 1e-9 and row.v_max_pu >= np.abs(v).max() - 1e-9


def test_chunking_and_dask_give_identical_results(tn_feeder, it_feeder, cache_dir):
    from dask.distributed import Client, LocalCluster

    specs = [tn_feeder.spec, it_feeder.spec]
    config = StudyConfig(ev_shares=(0.0, 0.5, 1.0), pv_shares=(0.0, 1.0), samples=2, days=2, chunk=5)
    sequential = run_study(specs, config, cache_dir=cache_dir)
    assert len(sequential) == 2 * 3 * 2 * 2
    rechunked = run_study(specs, StudyConfig(**{**config.to_dict(), "chunk": 1}), cache_dir=cache_dir)
    pd.testing.assert_frame_equal(sequential, rechunked)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            distributed = run_study(specs, config, scheduler=client, cache_dir=cache_dir)
    pd.testing.assert_frame_equal(sequential, distributed)
    # physics sanity: more EVs never raise the lowest voltage on average, more PV raises the highest
    tn = sequential[sequential.feeder == tn_feeder.spec.name]
    assert tn[tn.ev_share == 1.0].v_min_pu.mean() < tn[tn.ev_share == 0.0].v_min_pu.mean()
    assert tn[tn.pv_share == 1.0].v_max_pu.mean() > tn[tn.pv_share == 0.0].v_max_pu.mean()


def test_hosting_capacity_by_hand():
    rows = []
    # violation probability per EV share: 0 -> 0/4, 0.5 -> 1/4, 1.0 -> 3/4
    for share, n_violating in ((0.0, 0), (0.5, 1), (1.0, 3)):
        for s in range(4):
            rows.append({"feeder": "f", "ev_share": share, "pv_share": 0.0, "sample": s, "violation": s < n_violating})
    df = pd.DataFrame(rows)
    assert hosting_capacity(df, "ev_share", 0.05).hosting_capacity_ev_share.tolist() == [0.0]
    assert hosting_capacity(df, "ev_share", 0.25).hosting_capacity_ev_share.tolist() == [0.5]
    assert hosting_capacity(df, "ev_share", 0.8).hosting_capacity_ev_share.tolist() == [1.0]
    df.loc[df.ev_share == 0.0, "violation"] = True
    assert np.isnan(hosting_capacity(df, "ev_share", 0.5).hosting_capacity_ev_share.iloc[0])


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
    html = (out / "report.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", html)) == 2
    assert "Hosting capacity" in html and SIMBENCH in html
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
