"""What-if device assumptions: the TOML file, its validation, and what each assumption does to a study."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from powercheck.whatif.assumptions import (
    AssumptionsError,
    cos_phi_p,
    default_text,
    heat_pump_duty,
    load_assumptions,
    parse_assumptions,
    q_of_u,
)
from powercheck.whatif.feeders import load_feeder, parse_feeders
from powercheck.whatif.study import (
    Scenario,
    StudyConfig,
    apply_profiles,
    battery_self_consumption,
    place,
    solve_scenarios,
    study_steps,
)

SQRT3 = math.sqrt(3.0)


@pytest.fixture(scope="module")
def it_feeder(cache_dir):
    return load_feeder(parse_feeders(["demo:it-landnetz-luft"])[0], cache_dir)


@pytest.fixture(scope="module")
def tn_feeder(cache_dir):
    return load_feeder(parse_feeders(["demo:tn-vorstadt"])[0], cache_dir)


def _config(**changes):
    return StudyConfig(
        ev_shares=(0.0,),
        pv_shares=(0.0,),
        samples=1,
        days=2,
        assumptions=dataclasses.replace(load_assumptions(), **changes),
    )


def test_defaults_are_the_packaged_file():
    a = load_assumptions()
    assert a.source == "packaged defaults" and "[ev.smart_charging]" in a.text and a.text == default_text()
    labels = {(c.current_a, c.phases): c.probability for c in a.ev_chargers}
    assert labels[(32.0, 3)] == 0.15 and sum(labels.values()) == pytest.approx(1.0)
    assert a.pv_single_phase_share == 0.3 and a.pv_single_phase_kwp == (1.5, 3.6) and a.pv_control == "cosphi_p"


@pytest.mark.parametrize(
    "text, key",
    [
        ("[pv]\nsingle_phase_share = 1.5\n", "pv.single_phase_share: 1.5 outside the allowed range [0, 1]"),
        ("[ev]\nfoo = 1\n", "ev.foo: unknown key"),
        ("[heatpump]\nshare = 0.1\n", "heatpump: unknown table"),
        ("[battery]\nshare = 'a lot'\n", "battery.share: expected a number"),
        ("[ev]\nenergy_kwh = [10.0, 5.0]\n", "ev.energy_kwh: low 10 above high 5"),
        ("[ev]\nenergy_kwh = [1.0, 500.0]\n", "ev.energy_kwh: 500.0 outside"),
        ("[[ev.chargers]]\ncurrent_a = 16.0\nphases = 2\nprobability = 1.0\n", "ev.chargers[0].phases: 1 or 3"),
        ("[[ev.chargers]]\ncurrent_a = 80.0\nphases = 3\nprobability = 1.0\n", "ev.chargers[0].current_a: 80.0"),
        ("[[ev.chargers]]\ncurrent_a = 16.0\nphases = 3\n", "ev.chargers[0].probability: missing"),
        ("[[ev.chargers]]\ncurrent_a = 16.0\nphases = 3\nprobability = 0.5\n", "add up to 0.5, not 1"),
        ("[ev.smart_charging]\ncurrent_limit_a = 3.0\n", "ev.smart_charging.current_limit_a: 3.0 outside"),
        ("[pv]\ncontrol = 'droop'\n", "pv.control: 'droop' is not one of none, cosphi_p, q_u"),
        ("[pv.q_u]\nv2 = 1.05\n", "pv.q_u: expected v1 < v2 <= v3 < v4"),
        ("[profiles]\nfile = '../elsewhere.parquet'\n", "profiles.file: ../elsewhere.parquet is outside the directory"),
        ("[pv\n", "not valid TOML"),
    ],
)
def test_bad_assumptions_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AssumptionsError) as err:
        load_assumptions(path)
    assert str(err.value).startswith(f"{path}: ") and key in str(err.value)


def test_characteristics_by_hand():
    # cos phi(P): 1 up to 0.5 x rated, then linear to 0.9 at rated: at 0.75 -> 0.95
    np.testing.assert_allclose(cos_phi_p(np.array([0.2, 0.5, 0.75, 1.0]), 0.5, 0.9), [1.0, 1.0, 0.95, 0.9])
    # Q(U) 0.93/0.97/1.03/1.07, q_max 0.436: +0.436 at 0.90, +0.218 at 0.95, 0 at 1.0, -0.218 at 1.05, -0.436 at 1.1
    np.testing.assert_allclose(
        q_of_u(np.array([0.90, 0.95, 1.0, 1.05, 1.10]), (0.93, 0.97, 1.03, 1.07), 0.436),
        [0.436, 0.218, 0.0, -0.218, -0.436],
    )
    # heat pump duty: 0.8 on 15 January (day 15), 0.05 half a year later, the mean between at a quarter year
    np.testing.assert_allclose(
        heat_pump_duty(np.array([15.0, 15.0 + 365 / 2, 15.0 + 365 / 4]), 0.8, 0.05), [0.8, 0.05, 0.425]
    )


def test_battery_self_consumption_by_hand():
    # 1 kWh, 2 kW (0.002 MW); 15-min steps: surplus 3 kW, 3 kW, then deficit 1 kW, 4 kW
    net = np.array([[-0.003], [-0.003], [0.001], [0.004]])
    got = battery_self_consumption(net, np.array([0.001]), 2.0, np.zeros(4, dtype=int))
    # step 0: charge min(3, 2) = 2 kW -> 0.5 kWh; step 1: 2 kW -> 1.0 kWh (full);
    # step 2: discharge 1 kW -> 0.75 kWh; step 3: discharge min(4, 2) = 2 kW -> 0.25 kWh
    np.testing.assert_allclose(got[:, 0] * 1000, [2.0, 2.0, -1.0, -2.0])
    # a new day starts empty: nothing to discharge
    got = battery_self_consumption(net, np.array([0.001]), 2.0, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(got[:, 0] * 1000, [2.0, 2.0, 0.0, 0.0])


def test_single_phase_pv_and_base_unbalance_make_unbalance(tn_feeder):
    def unbalance(pv_share, **changes):
        cfg = dataclasses.replace(_config(**changes), pv_shares=(pv_share,))
        return solve_scenarios(tn_feeder, [Scenario(tn_feeder.spec.name, 0.0, pv_share, 0)], cfg).iloc[0]

    balanced = unbalance(1.0, pv_single_phase_share=0.0, pv_control="none")
    single = unbalance(1.0, pv_single_phase_share=1.0, pv_control="none")
    assert balanced.unbalance_max_percent < 1e-6  # balanced base loads and three-phase PV only
    assert single.unbalance_max_percent > 0.2
    assert unbalance(0.0).unbalance_max_percent < 1e-6
    assert unbalance(0.0, base_unbalance=0.5).unbalance_max_percent > 0.2


def test_smart_charging_and_heat_pumps_by_hand(tn_feeder):
    cfg = dataclasses.replace(_config(smart_share=1.0, smart_current_limit_a=10.0), ev_shares=(1.0,))
    steps = study_steps(tn_feeder, cfg)
    pl = place(tn_feeder, Scenario(tn_feeder.spec.name, 1.0, 0.0, 0), cfg, steps)
    # every charger at 10 A: 1-phase 400/sqrt(3) x 10 = 2.3094 kW, 3-phase sqrt(3) x 400 x 10 = 6.9282 kW
    assert tn_feeder.u_ll_v == 400.0
    expected = pl.detail["ev_1ph"] * 2.309401 + pl.detail["ev_3ph"] * 6.928203
    assert pl.ev_kw == pytest.approx(expected, rel=1e-6) and pl.detail["ev_smart"] == pl.n_ev
    assert pl.wye_p.max() * 1000 <= 6.928203 / 3 * pl.n_ev  # no charger above its limited power

    cfg = _config(hp_share=1.0, hp_kw=(4.0, 4.0), hp_winter_duty=0.8, hp_summer_duty=0.8)
    pl = place(tn_feeder, Scenario(tn_feeder.spec.name, 0.0, 0.0, 0), cfg, steps)
    # every customer point gets a 4 kW heat pump at duty 0.8: 3.2 kW each, at every step
    assert pl.detail["n_heat_pump"] == tn_feeder.n_customers
    np.testing.assert_allclose(pl.wye_p.sum(axis=(1, 2)) * 1000, 3.2 * tn_feeder.n_customers)


def test_pv_reactive_power_cos_phi_p_and_q_u(tn_feeder):
    scen = Scenario(tn_feeder.spec.name, 0.0, 1.0, 0)
    cfg = dataclasses.replace(_config(pv_control="cosphi_p", pv_single_phase_share=0.0), pv_shares=(1.0,))
    steps = study_steps(tn_feeder, cfg)
    pl = place(tn_feeder, scen, cfg, steps)
    t = int(np.argmax(tn_feeder.pv_norm[steps]))
    x = tn_feeder.pv_norm[steps[t]]
    assert x > 0.5
    cos = 1.0 - (x - 0.5) / 0.5 * 0.1  # the characteristic by hand
    assert pl.wye_q[t].sum() == pytest.approx(pl.pv_p[t].sum() * math.sqrt(1 - cos**2) / cos, rel=1e-9)

    def vmax(control):
        c = dataclasses.replace(_config(pv_control=control, pv_single_phase_share=0.0), pv_shares=(1.0,))
        return solve_scenarios(tn_feeder, [scen], c).iloc[0].v_max_pu

    none, cosphi, qu = vmax("none"), vmax("cosphi_p"), vmax("q_u")
    assert cosphi < none - 1e-4 and qu < none - 1e-4, (none, cosphi, qu)


def test_q_u_reaches_its_characteristic(tn_feeder):
    """After the Q(U) iteration every PV system's reactive power is on the characteristic at its final voltage."""
    from powercheck.powerflow import run_batch_3ph
    from powercheck.whatif import study

    cfg = dataclasses.replace(
        _config(pv_control="q_u", pv_single_phase_share=0.0, q_u_iterations=60, q_u=(0.93, 0.97, 1.0, 1.02)),
        pv_shares=(1.0,),
    )
    steps = study_steps(tn_feeder, cfg)
    scen = Scenario(tn_feeder.spec.name, 0.0, 1.0, 0)
    pl = place(tn_feeder, scen, cfg, steps)
    captured = {}
    real = study.run_batch_3ph

    def spy(model, **kw):
        captured.update(kw)
        return real(model, **kw)

    study.run_batch_3ph = spy
    try:
        study._solve(tn_feeder, [scen], cfg, steps, [pl])
    finally:
        study.run_batch_3ph = real
    res = run_batch_3ph(tn_feeder.model, **captured)
    base_q = study.base_bus_power(tn_feeder, steps)[1]
    q_applied = captured["bus_q_mvar"][0] - base_q - pl.wye_q  # the Q(U) part per bus and phase
    v = study.pv_voltage(res.v_pu[0], pl.pv_bus, pl.pv_phase, False)
    want = np.zeros_like(q_applied)
    q_target = -q_of_u(v, cfg.assumptions.q_u, cfg.assumptions.q_u_max) * pl.pv_rated * (pl.pv_p > 0)
    for k in range(pl.n_pv):  # three-phase systems: a third per phase
        want[:, pl.pv_bus[k], :] += q_target[:, k, None] / 3.0
    np.testing.assert_allclose(q_applied, want, atol=2e-6)
    assert q_target.max() > 1e-4  # the systems absorb (consumption-positive Q) at the high-voltage steps


def test_own_profiles_replace_the_standard_profile(tmp_path, cache_dir, it_feeder):
    cust = it_feeder.cust_ids[2]
    hours = np.arange(48)
    pd.DataFrame(
        {"feeder": it_feeder.spec.name, "customer": cust, "hour": hours, "p_kw": 1.0 + hours / 10.0}
    ).to_parquet(tmp_path / "meters.parquet")
    (tmp_path / "mine.toml").write_text("[profiles]\nfile = 'meters.parquet'\n", encoding="utf-8")
    a = load_assumptions(tmp_path / "mine.toml")
    assert a.profiles_file == str((tmp_path / "meters.parquet").resolve())
    feeder = load_feeder(it_feeder.spec, cache_dir)
    before = feeder.base_p_mw.copy()
    apply_profiles(feeder, a.profiles_file)
    pos = 2
    # hour h holds for its four 15-min steps: step 4h+k -> (1 + h/10) kW
    np.testing.assert_allclose(feeder.base_p_mw[:192, pos] * 1000, np.repeat(1.0 + hours / 10.0, 4))
    np.testing.assert_array_equal(feeder.base_p_mw[192:, pos], before[192:, pos])
    np.testing.assert_array_equal(np.delete(feeder.base_p_mw, pos, axis=1), np.delete(before, pos, axis=1))
    # bad rows name the file, row and column
    bad = pd.DataFrame({"feeder": [it_feeder.spec.name] * 2, "customer": [cust, "load:999"], "hour": [0, 1]})
    bad.assign(p_kw=[1.0, 2.0]).to_parquet(tmp_path / "b1.parquet")
    with pytest.raises(AssumptionsError, match=r"b1.parquet: row 1, column customer: 'load:999' is not a customer"):
        apply_profiles(load_feeder(it_feeder.spec, cache_dir), str(tmp_path / "b1.parquet"))
    bad.assign(customer=cust, p_kw=[1.0, 5000.0]).to_parquet(tmp_path / "b2.parquet")
    with pytest.raises(AssumptionsError, match=r"b2.parquet: row 1, column p_kw: 5000.0 not in \[-1000, 1000\]"):
        apply_profiles(load_feeder(it_feeder.spec, cache_dir), str(tmp_path / "b2.parquet"))


def test_parse_assumptions_overrides_only_what_it_names():
    a = parse_assumptions("[pv]\nsingle_phase_share = 0.6\n[heat_pump]\nshare = 0.25\n")
    base = load_assumptions()
    assert a.pv_single_phase_share == 0.6 and a.hp_share == 0.25
    assert a.ev_chargers == base.ev_chargers and a.pv_kwp == base.pv_kwp
