"""Rule engine decisions on the mini region, with expected numbers computed independently in the test."""

import math
import warnings
from importlib import resources

import pandapower as pp
import pandapower.shortcircuit as sc
import pytest

from powercheck.models import CheckStatus, Notification, Outcome
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import parse_policy
from tests.helpers.grids import bus_named, feeder
from tests.helpers.mini import FIXED_TIME, mini_mp

SQ3 = math.sqrt(3)


def note(**kw):
    data = {"notification_id": "T-1", "network_system": "TN_400"}
    data.update(kw)
    return Notification.model_validate(data)


def motor_note(point, rated_kw, cos_phi_start, start_current_ratio, starts_per_hour):
    """A motor notification with every field the policy requires (cos phi 0.85, three-phase)."""
    return note(
        job_type="motor",
        metering_point_id=mini_mp(point),
        appliances=[
            {
                "kind": "motor",
                "rated_kw": rated_kw,
                "connection": "3ph",
                "cos_phi": 0.85,
                "start_current_ratio": start_current_ratio,
                "cos_phi_start": cos_phi_start,
                "starts_per_hour": starts_per_hour,
            }
        ],
    )


def reference(vn_kv, bus_name):
    """Impedances (min case, 3ph and 1ph) and base-case voltages/currents straight from pandapower."""
    net = feeder(vn_kv, s_sc_mva=1e6, load_kw=5.0)
    bus = bus_named(net, bus_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="min", fault="3ph")
        r1, x1 = net.res_bus_sc.rk_ohm[bus], net.res_bus_sc.xk_ohm[bus]
        r0 = x0 = float("nan")
        if vn_kv == 0.4:
            sc.calc_sc(net, case="min", fault="1ph")
            r0, x0 = net.res_bus_sc.rk0_ohm[bus], net.res_bus_sc.xk0_ohm[bus]
        pp.runpp(net)
        v_peak = net.res_bus.vm_pu[bus]
        i_peak = {n: 1000 * net.res_line.i_ka[i] for i, n in net.line.name.items()}
        t_peak = 1000 * net.res_trafo.i_lv_ka[0]
        net.load["scaling"] = 0.1
        pp.runpp(net)
        v_low = net.res_bus.vm_pu[bus]
    return dict(r1=r1, x1=x1, r0=r0, x0=x0, v_peak=v_peak, v_low=v_low, i_peak=i_peak, t_peak=t_peak)


def const_power(v_base, d0_percent):
    d0 = d0_percent / 100
    return (v_base + math.sqrt(v_base**2 - 4 * d0)) / 2


def test_ov_change_with_budget_all_numbers(mini_assessor):
    n = note(
        job_type="ov_mv_change",
        metering_point_id=mini_mp("TN_END"),
        main_fuse_before_a=25,
        main_fuse_after_a=63,
        power_budget={"max_demand_kw": 30.0},
    )
    d = mini_assessor.assess(n)
    ref = reference(0.4, "house_3")

    # budget current: 30 kW / 0.95 / (sqrt(3) 400 V) = 45.58 A on a 63 A fuse
    c = d.check("LOAD.MAIN_FUSE")
    assert c.value == pytest.approx(30000 / 0.95 / (SQ3 * 400)) and c.limit == 63 and c.status is CheckStatus.PASS
    # service cable: the 4x50 branch, 142 A rated
    c = d.check("PROT.SERVICE_CABLE")
    assert (c.value, c.limit, c.status) == (63, 142, CheckStatus.PASS)
    # selectivity: largest standard fuse within the 270 A feeder cable = 250 A; 250 / 63
    c = d.check("PROT.SELECTIVITY")
    assert (
        c.value == pytest.approx(250 / 63)
        and c.limit == 1.6
        and "policy:upstream_fuse_from_feeder_cable" in c.assumptions
    )
    # fault current: sqrt(3) c_min U / |2 Z1 + Z0| (c_min 0.90, IEC 60909 LV +/-10 %) against I(5 s) of a
    # 63 A gG fuse = 320 A
    ik = SQ3 * 0.90 * 400 / math.hypot(2 * ref["r1"] + ref["r0"], 2 * ref["x1"] + ref["x0"])
    c = d.check("PROT.FAULT_CURRENT")
    assert c.value == pytest.approx(ik, rel=1e-9) and c.limit == 320 and c.margin == pytest.approx(ik - 320)
    assert "policy:fuse_gg_gates_a" in c.assumptions and "policy:sc_c_min" not in c.assumptions
    # added current: (30 - 5) kW at cos 0.95, three-phase
    d_i = 25000 / 0.95 / (SQ3 * 400)
    c = d.check("THERMAL.LINE_PEAK")
    assert c.value == pytest.approx(ref["i_peak"]["branch_3"] + d_i, rel=1e-9) and c.limit == pytest.approx(142)
    c = d.check("THERMAL.TRAFO_PEAK")
    assert c.value == pytest.approx(ref["t_peak"] + d_i, rel=1e-9)
    assert c.limit == pytest.approx(315e3 / (SQ3 * 400))
    # voltage at peak: d0 = (R cos + X sin) I / U_ph, then the constant-power solution
    sin = math.sqrt(1 - 0.95**2)
    d0 = 100 * (ref["r1"] * 0.95 + ref["x1"] * sin) * d_i / (400 / SQ3)
    c = d.check("VOLT.PEAK_MIN")
    assert c.value == pytest.approx(const_power(ref["v_peak"], d0), rel=1e-9)
    assert c.limit == 0.9 and c.margin_scale == pytest.approx(0.1)
    assert d.outcome is Outcome.AUTO_APPROVE, d.reasons
    assert d.score == pytest.approx(min(ch.relative_margin for ch in d.checks))
    assert d.decided_at == FIXED_TIME and d.input_hash == n.input_hash()
    assert d.policy_version == mini_assessor.policy.version and d.grid_model_version.startswith("grid-")
    assert "policy:customer_coincidence" in d.assumptions


def test_pv_export_voltage_rise_and_rare_rvc(mini_assessor):
    n = note(
        job_type="pv",
        network_system="IT_230",
        metering_point_id=mini_mp("IT_END"),
        appliances=[{"kind": "pv_inverter", "rated_kw": 10.0, "connection": "3ph"}],
    )
    d = mini_assessor.assess(n)
    ref = reference(0.23, "house_3")
    i = 10000 / (SQ3 * 230)  # cos phi 1 (policy default for PV)
    rise = 100 * ref["r1"] * i / (230 / SQ3)
    c = d.check("VOLT.LOW_MAX")
    assert c.value == pytest.approx(const_power(ref["v_low"], -rise), rel=1e-9)
    assert c.limit == 1.1 and "grid:low_load_scaling" in c.assumptions
    # PV default 0.5 switchings/h = 0.0083/min < 0.01/min: the 5 % limit (FoL, recall)
    c = d.check("PQ.RVC_DACH")
    assert c.value == pytest.approx(rise, rel=1e-9)
    assert c.limit == 5.0 and c.limit_key == "rvc_rare_max_percent"
    assert "policy:appliance_defaults.pv_inverter.starts_per_hour" in c.assumptions
    assert "THERMAL.LINE_EXPORT" in [ch.rule_id for ch in d.checks]
    assert not d.checks_for("PQ.UNBALANCE")  # three-phase: no unbalance check
    assert not d.checks_for("VOLT.PEAK_MIN")  # nothing added at peak


def test_single_phase_ev_in_it_grid_unbalance_and_rvc(mini_assessor):
    n = note(
        job_type="ev_charger",
        network_system="IT_230",
        metering_point_id=mini_mp("IT_END"),
        appliances=[{"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-L", "cos_phi": 0.99}],
    )
    d = mini_assessor.assess(n)
    ref = reference(0.23, "house_3")
    i = 7400 / 0.99 / 230
    sin = math.sqrt(1 - 0.99**2)
    d_step = 100 * (2 * ref["r1"] * 0.99 + 2 * ref["x1"] * sin) * i / 230
    c = d.check("PQ.RVC_DACH")
    # EV default 1 start/h = 0.0167/min: 0.01 <= r < 0.1 -> D-A-CH-CZ 3 %
    assert c.value == pytest.approx(d_step, rel=1e-9) and c.limit == 3.0
    v_after = const_power(ref["v_peak"], d_step)
    # |V2|/|V1|: S |Z1| / U^2 / (v_load v1); v1 = base - Z1 I1 with I1 = I / sqrt3 for an L-L load
    v1 = ref["v_peak"] - (ref["r1"] * 0.99 + ref["x1"] * sin) * i / 230
    vuf = 100 * (7400 / 0.99) * math.hypot(ref["r1"], ref["x1"]) / 230**2 / (v_after * v1)
    c = d.check("PQ.UNBALANCE")
    assert c.value == pytest.approx(0.5 + vuf, rel=1e-9)  # + assumed 0.5 % background
    assert c.limit == 2.0
    assert {"policy:background_unbalance_percent", "policy:unbalance_max_percent"} <= set(c.assumptions)
    expected = Outcome.AUTO_APPROVE if all(ch.relative_margin >= 0.05 for ch in d.checks) else Outcome.ESCALATE
    assert d.outcome is expected


def test_missing_data_never_approves(mini_assessor, mini_region, policy):
    d = mini_assessor.assess(note(job_type="ov_mv_change", metering_point_id=mini_mp("TN_END"), main_fuse_after_a=50))
    assert d.outcome is Outcome.REJECT_INCOMPLETE
    assert any("main_fuse_before_a" in r for r in d.reasons)
    assert any("power_budget" in r for r in d.reasons)
    # a motor without its datasheet values: the default policy asks for them (request_info), never approves
    d = Assessor(mini_region, policy, clock=lambda: FIXED_TIME).assess(
        note(
            job_type="motor",
            metering_point_id=mini_mp("TN_END"),
            appliances=[{"kind": "motor", "rated_kw": 4, "connection": "3ph"}],
        )
    )
    assert d.outcome is Outcome.REQUEST_INFO
    assert d.check("DATA.INFO").detail.count("appliances[0]") == 2  # the values and the datasheet
    d = mini_assessor.assess(note(job_type="ev_charger", metering_point_id=mini_mp("TN_END")))
    assert d.outcome is Outcome.REJECT_INCOMPLETE and "ev_charger" in d.reasons[0]


def test_unknown_point_and_system_mismatch_escalate(mini_assessor):
    from powercheck.gs1 import make_gsrn

    pv = [{"kind": "pv_inverter", "rated_kw": 5, "connection": "3ph"}]
    d = mini_assessor.assess(note(job_type="pv", metering_point_id=make_gsrn("70705759999999999"), appliances=pv))
    assert d.outcome is Outcome.ESCALATE and d.checks[0].rule_id == "GRID.LOCATED"
    d = mini_assessor.assess(note(job_type="pv", metering_point_id=mini_mp("IT_END"), appliances=pv))
    assert d.outcome is Outcome.ESCALATE and d.checks[0].rule_id == "GRID.SYSTEM"
    assert "IT_230" in d.reasons[0]


def test_selectivity_and_service_cable_failures(mini_assessor):
    # TN_MID: upstream fuse 100 A on record; 100 / 63 = 1.587 < 1.6
    d = mini_assessor.assess(
        note(
            job_type="ov_mv_change",
            metering_point_id=mini_mp("TN_MID"),
            main_fuse_before_a=25,
            main_fuse_after_a=63,
            power_budget={"max_demand_kw": 20},
        )
    )
    c = d.check("PROT.SELECTIVITY")
    assert c.value == pytest.approx(100 / 63) and c.status is CheckStatus.FAIL and c.assumptions == []
    assert d.outcome is Outcome.ESCALATE
    assert any(r.startswith("PROT.SELECTIVITY") for r in d.reasons)
    # TN_NEAR: service cable 63 A on record; an 80 A fuse exceeds it
    d = mini_assessor.assess(
        note(
            job_type="ov_mv_change",
            metering_point_id=mini_mp("TN_NEAR"),
            main_fuse_before_a=25,
            main_fuse_after_a=80,
            power_budget={"max_demand_kw": 20},
        )
    )
    c = d.check("PROT.SERVICE_CABLE")
    assert (c.value, c.limit, c.status) == (80, 63, CheckStatus.FAIL) and c.margin == -17


def test_untabulated_fuse_is_not_evaluated_and_escalates(mini_assessor):
    d = mini_assessor.assess(
        note(job_type="ov_mv_change", metering_point_id=mini_mp("TN_END"), main_fuse_before_a=25, main_fuse_after_a=10)
    )
    c = d.check("PROT.FAULT_CURRENT")
    assert c.status is CheckStatus.NOT_EVALUATED  # the policy has no gG gates for 10 A (35 A has them)
    assert c.detail == "missing data: no 5-s melting current of a 10 A gG fuse in policy fuse_gg_gates_a"
    assert d.outcome is Outcome.ESCALATE
    assert any("missing data: no 5-s melting current of a 10 A gG fuse" in r for r in d.reasons)


def test_policy_gates(mini_assessor):
    # new connections are never auto-approved by the default policy, even when every check passes
    d = mini_assessor.assess(
        note(
            job_type="new_connection",
            metering_point_id=mini_mp("TN_END"),
            main_fuse_after_a=25,
            power_budget={"max_demand_kw": 8},
        )
    )
    assert all(c.status is CheckStatus.PASS for c in d.checks)
    assert d.outcome is Outcome.ESCALATE and d.reasons[0].startswith("POLICY.JOB_TYPE")
    # above the 80 A auto-approval limit
    d = mini_assessor.assess(
        note(
            job_type="ov_mv_change",
            network_system="IT_230",
            metering_point_id=mini_mp("IT_NEAR"),
            main_fuse_before_a=63,
            main_fuse_after_a=100,
            power_budget={"max_demand_kw": 10},
        )
    )
    assert any(r.startswith("POLICY.MAX_FUSE") for r in d.reasons)
    assert d.outcome is Outcome.ESCALATE


def test_default_policy_auto_approves_only_metering_point_work_and_ov_mv_changes(mini_region, policy):
    """What Norwegian grid owners auto-approve today: the default policy escalates a small EV charger whose every
    check passes (POLICY.JOB_TYPE), approves metering-point work and an OV change within the 80 A cap."""
    from powercheck.rules.engine import Assessor
    from tests.helpers.mini import without_measures

    assert policy.value("auto_approve_job_types") == ["meter_work", "ov_mv_change"]
    default = Assessor(mini_region, without_measures(policy), clock=lambda: FIXED_TIME)
    ev = note(job_type="ev_charger", metering_point_id=mini_mp("TN_NEAR"), main_fuse_before_a=63,
              appliances=[{"kind": "ev_charger", "rated_kw": 3.7, "connection": "3ph", "cos_phi": 0.99}])  # fmt: skip
    d = default.assess(ev)
    assert all(c.status is CheckStatus.PASS for c in d.checks)
    assert d.outcome is Outcome.ESCALATE and d.reasons == ["POLICY.JOB_TYPE: ev_charger is not auto-approvable "
                                                           "(policy auto_approve_job_types)"]  # fmt: skip
    meter = default.assess(note(job_type="meter_work", metering_point_id=mini_mp("TN_NEAR")))
    assert meter.outcome is Outcome.AUTO_APPROVE
    ov = default.assess(note(job_type="ov_mv_change", metering_point_id=mini_mp("TN_NEAR"), main_fuse_before_a=25,
                             main_fuse_after_a=32))  # fmt: skip
    assert ov.outcome is Outcome.AUTO_APPROVE, ov.reasons


def test_frequent_switching_needs_flicker_and_stationary_check(mini_assessor):
    n = motor_note("TN_NEAR", 4.0, cos_phi_start=0.4, start_current_ratio=5, starts_per_hour=12)
    d = mini_assessor.assess(n)
    ref = reference(0.4, "house_1")
    assert d.check("PQ.RVC_DACH").limit == 3.0
    st = d.check("PQ.RVC_FOL_STATIONARY")  # 12/h * 24 h = 288 events a day > 24
    assert st.limit == 3.0 and "288" in st.detail
    # flicker by the analytical method: 12 starts/h = 2 starts per 10 min; each start is a change of
    # d_start and each stop one of d_rated; t_f = 2.3 d^3.2; Pst = (sum t_f / 600)^(1/3.2)
    i_r = 4000 / 0.85 / (SQ3 * 400)
    d_start = 100 * (ref["r1"] * 0.4 + ref["x1"] * math.sqrt(1 - 0.16)) * 5 * i_r / (400 / SQ3)
    d_rated = 100 * (ref["r1"] * 0.85 + ref["x1"] * math.sqrt(1 - 0.85**2)) * i_r / (400 / SQ3)
    pst_motor = (2 * 2.3 * (d_start**3.2 + d_rated**3.2) / 600) ** (1 / 3.2)
    pst_total = (0.3**3 + pst_motor**3) ** (1 / 3)  # background 0.3, cubic summation
    c = d.check("PQ.FLICKER_PST")
    assert c.value == pytest.approx(pst_total, rel=1e-9) and c.limit == 1.2  # FoL total, background included
    assert {"policy:flicker_tf_coeff", "policy:flicker_background_pst"} <= set(c.assumptions)
    assert "policy:flicker_grid_pst_max" in c.assumptions  # the FoL total is recall [R]: named
    c = d.check("PQ.FLICKER_PLT")
    # no operating pattern declared: the policy's worst case, switching in all 12 10-min intervals: Plt = Pst
    assert c.value == pytest.approx(pst_total, rel=1e-9) and c.limit == 1.0
    assert "flicker_active_intervals 12" in c.detail
    share = d.check("PQ.FLICKER_SHARE_PST")  # the customer's own emission, no background, against its share
    assert share.value == pytest.approx(pst_motor, rel=1e-9) and share.limit == 0.8
    assert d.check("PQ.FLICKER_SHARE_PLT").value == pytest.approx(pst_motor, rel=1e-9)
    # the same motor declared to run 15 min of any 2 h: ceil(15/10) = 2 of 12 intervals, Plt = Pst (2/12)^(1/3)
    m = n.appliances[0].model_copy(update={"operating_minutes_per_2h": 15.0})
    d2 = mini_assessor.assess(n.model_copy(update={"appliances": [m]}))
    plt_motor = pst_motor * (2 / 12) ** (1 / 3)
    assert d2.check("PQ.FLICKER_SHARE_PLT").value == pytest.approx(plt_motor, rel=1e-9)
    assert d2.check("PQ.FLICKER_PLT").value == pytest.approx((0.3**3 + plt_motor**3) ** (1 / 3), rel=1e-9)
    assert d2.check("PQ.FLICKER_PST").value == pytest.approx(pst_total, rel=1e-9)  # Pst does not change
    assert "declared 15 min per 2 h" in d2.check("PQ.FLICKER_PLT").detail
    assert not d.checks_for("PQ.THD")  # a direct-on-line motor has no harmonic spectrum


def test_rare_starts_have_no_flicker_check(mini_assessor):
    n = motor_note("TN_NEAR", 4.0, cos_phi_start=0.4, start_current_ratio=5, starts_per_hour=0.5)
    d = mini_assessor.assess(n)
    assert not d.checks_for("PQ.FLICKER_PST")  # fewer than 1 change per hour: IEC 61000-3-3 says n/a


def test_harmonics_of_a_single_phase_ev_charger(mini_assessor):
    n = note(
        job_type="ev_charger",
        metering_point_id=mini_mp("TN_END"),
        appliances=[{"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-N", "cos_phi": 0.99}],
    )
    d = mini_assessor.assess(n)
    ref = reference(0.4, "house_3")
    i1 = 7400 / 0.99 / (400 / SQ3)
    spectrum = {3: 4.0, 5: 3.0, 7: 2.0, 9: 1.5, 11: 1.0, 13: 0.8}  # policy ev_charger class [R]
    background = {3: 0.8, 5: 2.0, 7: 1.2, 9: 0.3, 11: 0.6, 13: 0.5}  # policy background [R]

    def alpha(h):
        return 1.0 if h < 5 else (1.4 if h <= 10 else 2.0)

    total = {}
    for h in range(2, 26):
        s = spectrum.get(h, 0.0)
        # L-N loop at order h: (2 Z1_h + Z0_h) / 3 with R_h = R sqrt(h), X_h = h X
        zr = (2 * ref["r1"] + ref["r0"]) * math.sqrt(h) / 3
        zx = (2 * ref["x1"] + ref["x0"]) * h / 3
        v = 100 * math.hypot(zr, zx) * s / 100 * i1 / (400 / SQ3)
        a = alpha(h)
        total[h] = (v**a + background.get(h, 0.0) ** a) ** (1 / a)
    thd = math.sqrt(sum(v * v for v in total.values()))
    c = d.check("PQ.THD")
    assert c.value == pytest.approx(thd, rel=1e-9) and c.limit == 8.0
    en50160 = {3: 5.0, 5: 6.0, 7: 5.0, 9: 1.5, 11: 3.5, 13: 3.0}
    worst = max(en50160, key=lambda h: total[h] / en50160[h])
    c = d.check("PQ.HARMONIC")
    assert c.value == pytest.approx(total[worst], rel=1e-9) and c.limit == en50160[worst]
    assert f"order {worst}" in c.name
    assert "policy:harmonic_spectra" in c.assumptions


def test_installer_spectrum_replaces_the_policy_class(mini_assessor):
    base = {"kind": "heat_pump", "rated_kw": 5.0, "connection": "3ph", "start_current_ratio": 1.5, "starts_per_hour": 2}
    d_policy = mini_assessor.assess(note(job_type="heat_pump", metering_point_id=mini_mp("TN_END"), appliances=[base]))
    d_clean = mini_assessor.assess(
        note(
            job_type="heat_pump",
            metering_point_id=mini_mp("TN_END"),
            appliances=[{**base, "harmonic_current_percent": {"5": 0.0}}],
        )
    )
    assert "policy:harmonic_spectra" in d_policy.check("PQ.THD").assumptions
    # the installer says: no harmonic current -> no harmonic checks at all
    assert not d_clean.checks_for("PQ.THD")
    assert d_policy.check("PQ.THD").value > math.sqrt(sum(v * v for v in (0.8, 2.0, 1.2, 0.3, 0.6, 0.5)))


def test_motor_start_rvc_by_hand(mini_assessor):
    n = motor_note("TN_END", 7.5, cos_phi_start=0.35, start_current_ratio=6, starts_per_hour=0.5)
    d = mini_assessor.assess(n)
    ref = reference(0.4, "house_3")
    i_start = 6 * 7500 / 0.85 / (SQ3 * 400)
    step = 100 * (ref["r1"] * 0.35 + ref["x1"] * math.sqrt(1 - 0.35**2)) * i_start / (400 / SQ3)
    c = d.check("PQ.RVC_DACH")
    assert c.value == pytest.approx(step, rel=1e-9)
    assert c.limit == 5.0  # 0.5/h < 0.6/h
    assert not d.checks_for("PQ.RVC_FOL_STATIONARY")  # 12 events a day


def test_batch_equals_one_by_one(mini_assessor):
    items = [
        note(
            notification_id=f"B-{i}",
            job_type="heat_pump",
            metering_point_id=mini_mp(key),
            network_system=sys_,
            appliances=[{"kind": "heat_pump", "rated_kw": kw, "connection": conn}],
        )
        for i, (key, sys_, kw, conn) in enumerate(
            [
                ("TN_END", "TN_400", 3.0, "L-N"),
                ("IT_END", "IT_230", 5.0, "3ph"),
                ("TN_MID", "TN_400", 9.0, "3ph"),
                ("IT_NEAR", "IT_230", 2.0, "L-L"),
            ]
        )
    ]
    batch = mini_assessor.assess_many(items)
    single = [mini_assessor.assess(n) for n in items]
    assert [b.model_dump() for b in batch] == [s.model_dump() for s in single]
    assert [b.notification_id for b in batch] == ["B-0", "B-1", "B-2", "B-3"]


def test_ev_charger_ramps_up_so_its_start_is_no_direct_on_line_step(mini_region, policy, mini_assessor):
    """An EV charger ramps its current up (policy start_behaviour: ramped): its rapid voltage change is the
    stop at rated current and its flicker comes from the stops only. Held against a policy that calls the
    charger direct-on-line, the start adds a second change of the same size per switching: Pst grows by
    2^(1/3.2) (Pst = (n 2.3 d^3.2 / 600)^(1/3.2) with twice the changes)."""
    ev = {"kind": "ev_charger", "rated_kw": 11.0, "connection": "3ph", "cos_phi": 0.99, "starts_per_hour": 6.0}
    n = note(job_type="ev_charger", metering_point_id=mini_mp("TN_END"), appliances=[ev])
    d = mini_assessor.assess(n)
    ref = reference(0.4, "house_3")
    i = 11000 / 0.99 / (SQ3 * 400)
    step = 100 * (ref["r1"] * 0.99 + ref["x1"] * math.sqrt(1 - 0.99**2)) * i / (400 / SQ3)
    rvc = d.check("PQ.RVC_DACH")
    assert rvc.value == pytest.approx(step, rel=1e-9) and "ramped start" in rvc.detail
    assert rvc.limit == 3.0  # 6/h = 0.1/min >= 0.01/min: the D-A-CH-CZ frequent-start limit (planning)
    assert "policy:start_behaviour" in rvc.assumptions  # the ramp is recall [R]: named
    pst_stops = (1.0 * 2.3 * step**3.2 / 600) ** (1 / 3.2)  # 6/h = 1 stop per 10 min
    assert d.check("PQ.FLICKER_SHARE_PST").value == pytest.approx(pst_stops, rel=1e-9)
    text = resources.files("powercheck.rules").joinpath("policy_default.toml").read_text(encoding="utf-8")
    dol = parse_policy(text.replace('ev_charger = "ramped"', 'ev_charger = "direct_on_line"', 1))
    assert not dol.ramped("ev_charger") and policy.ramped("ev_charger")
    d_dol = Assessor(mini_region, dol, clock=lambda: FIXED_TIME).assess(n)
    assert d_dol.check("PQ.FLICKER_SHARE_PST").value == pytest.approx(pst_stops * 2 ** (1 / 3.2), rel=1e-9)
    assert "direct-on-line start" in d_dol.check("PQ.RVC_DACH").detail


def test_block_notification_demand_is_velanders_rule_and_named(mini_assessor):
    """12 flats of 4000 kWh/year as one connection: W = 48000 kWh/year, P = 0.00025 W + 0.03 sqrt(W) =
    12.0 + 6.573 = 18.57 kW; at cos 0.95 on 3 x 400 V: P / (0.95 sqrt3 400) per phase. The recall constants are
    named in the decision."""
    n = note(
        job_type="block_notification",
        metering_point_id=mini_mp("TN_END"),
        main_fuse_after_a=40,
        block={"units": 12, "annual_kwh_per_unit": 4000},
    )
    d = mini_assessor.assess(n)
    p_kw = 0.00025 * 48000 + 0.03 * math.sqrt(48000)
    assert d.check("LOAD.MAIN_FUSE").value == pytest.approx(p_kw * 1000 / (0.95 * SQ3 * 400), rel=1e-9)
    assert {"policy:velander_k1", "policy:velander_k2"} <= set(d.assumptions)
    assert d.job_type == "block_notification" and d.input_hash == n.input_hash()
