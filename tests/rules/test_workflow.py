"""The notification workflow: pre-notification -> decision -> completion notice (ledger), request_info and the
screening flag for appliance defaults."""

from __future__ import annotations

import math

import pytest

from powercheck.ledger.model import RequestStatus
from powercheck.ledger.state import CapacityState
from powercheck.models import Notification, Outcome
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, mini_mp, without_measures

SQ3 = math.sqrt(3)


def note(**kw) -> Notification:
    data = {"notification_id": "W-1", "network_system": "TN_400", "metering_point_id": mini_mp("TN_NEAR")}
    data.update(kw)
    return Notification.model_validate(data)


EV = {"kind": "ev_charger", "rated_kw": 3.7, "connection": "3ph", "cos_phi": 0.99}
DOC = [{"kind": "declaration_of_conformity"}]


@pytest.fixture()
def ledger_assessor(mini_region, policy):
    return Assessor(
        mini_region,
        without_measures(appliance_jobs_auto_approvable(policy)),
        clock=lambda: FIXED_TIME,
        ledger=CapacityState.empty(mini_region),
    )


def test_completion_notice_marks_the_approved_request_built(ledger_assessor):
    pre = ledger_assessor.assess(note(job_type="ev_charger", appliances=[EV]))
    assert pre.outcome == Outcome.AUTO_APPROVE and pre.ledger_status == "approved"
    reserved = ledger_assessor.ledger.requests["W-1"].reservation
    assert reserved.supply_phases == "3ph" and reserved.appliances == (("ev_charger", 3.7, "3ph", 1),)
    done = ledger_assessor.assess(note(job_type="ev_charger", stage="completion", appliances=[EV], attachments=DOC))
    assert done.outcome == Outcome.AUTO_APPROVE, done.reasons
    assert done.ledger_status == "built"
    built = ledger_assessor.ledger.requests["W-1"]
    assert built.status is RequestStatus.BUILT and built.reservation == reserved  # still reserved until closed
    assert [c.rule_id for c in done.checks] == ["COMPLETION.MATCH"]


def test_a_different_completion_is_escalated_with_the_differences_and_the_request_stays_approved(ledger_assessor):
    ledger_assessor.assess(note(job_type="ev_charger", appliances=[EV]))
    built = dict(EV, rated_kw=7.4, connection="L-N")
    d = ledger_assessor.assess(
        note(job_type="ev_charger", stage="completion", supply_phases="1ph", appliances=[built], attachments=DOC)
    )
    assert d.outcome == Outcome.ESCALATE
    c = d.check("COMPLETION.MATCH")
    assert c.status == "fail" and c.value == 3.0  # phases, approved charger missing, another charger built
    assert "supply phases: approved 3ph, built 1ph" in c.detail
    assert "approved but not built: 1 x ev_charger 3.7 kW 3ph" in c.detail
    assert "built but not approved: 1 x ev_charger 7.4 kW L-N" in c.detail
    assert ledger_assessor.ledger.requests["W-1"].status is RequestStatus.APPROVED
    assert d.measures  # a case handler compares the installation


def test_completion_without_a_ledger_is_not_evaluated(mini_assessor):
    d = mini_assessor.assess(note(job_type="ev_charger", stage="completion", appliances=[EV], attachments=DOC))
    assert d.outcome == Outcome.ESCALATE
    assert d.check("COMPLETION.MATCH").status == "not_evaluated"
    assert "no capacity ledger" in d.reasons[0]


def test_request_info_names_values_and_datasheet_and_screening_uses_named_defaults(mini_region, policy):
    """A 4 kW motor without datasheet values: request_info by default; in a screening study the policy's
    motor defaults (cos 0.85, 5 x I_r at cos 0.4, 1 start/h, recall) are used and named."""
    pol = without_measures(appliance_jobs_auto_approvable(policy))
    motor = {"kind": "motor", "rated_kw": 4.0, "connection": "3ph"}
    n = note(job_type="motor", appliances=[motor])
    d = Assessor(mini_region, pol, clock=lambda: FIXED_TIME).assess(n)
    assert d.outcome == Outcome.REQUEST_INFO
    assert d.reasons == [
        "appliances[0] (motor): datasheet values needed: cos_phi, start_current_ratio, cos_phi_start, starts_per_hour",
        "attachments: the datasheet of appliances[0] (motor) (kind datasheet, appliance 0)",
    ]
    assert [c.rule_id for c in d.checks] == ["DATA.INFO"] and d.check("DATA.INFO").value == 2.0
    # with the datasheet attached but the values still missing, only the values are asked for
    attached = note(job_type="motor", appliances=[motor], attachments=[{"kind": "datasheet", "appliance": 0}])
    d2 = Assessor(mini_region, pol, clock=lambda: FIXED_TIME).assess(attached)
    assert d2.outcome == Outcome.REQUEST_INFO and len(d2.reasons) == 1
    screening = Assessor(mini_region, pol, clock=lambda: FIXED_TIME, screening=True).assess(n)
    assert screening.outcome != Outcome.REQUEST_INFO
    assert any(r.startswith("SCREENING: appliance defaults used for appliances[0] (motor)") for r in screening.reasons)
    assert "policy:appliance_defaults.motor.start_current_ratio" in screening.assumptions
    # the start step on the policy default: 5 x I_r at cos phi 0.4 -- the RVC check uses it
    assert "I_start = 5 x I_rated at cos phi 0.4" in screening.check("PQ.RVC_DACH").detail


def test_nb_texts_of_the_workflow(mini_region, policy):
    pol = without_measures(appliance_jobs_auto_approvable(policy))
    n = note(job_type="heat_pump", appliances=[{"kind": "heat_pump", "rated_kw": 3.0, "connection": "3ph"}])
    d = Assessor(mini_region, pol, clock=lambda: FIXED_TIME, language="nb").assess(n)
    assert d.outcome == Outcome.REQUEST_INFO
    assert (
        d.reasons[0] == "appliances[0] (heat_pump): verdier fra databladet trengs: start_current_ratio, starts_per_hour"
    )


def test_inverse_answer_stops_at_the_planning_voltage_limit(mini_assessor):
    """OV 25 -> 160 A at the end of the TN mini feeder with a 60 kW budget: the largest budget is bound by the
    planning limit (VOLT.PEAK_PLANNING, 0.93 pu), not the legal 0.90 pu: with that budget the peak voltage is
    0.93 pu and the legal check still passes."""

    def ov(budget: float) -> Notification:
        return note(job_type="ov_mv_change", metering_point_id=mini_mp("TN_END"), main_fuse_before_a=25,
                    main_fuse_after_a=160, power_budget={"max_demand_kw": budget})  # fmt: skip

    size = mini_assessor.assess(ov(60.0)).limits[0]
    assert size.quantity == "power_budget.max_demand_kw" and size.binding_rule == "VOLT.PEAK_PLANNING"
    at = mini_assessor.assess(ov(size.largest))
    assert at.check("VOLT.PEAK_PLANNING").value == pytest.approx(0.93, abs=1e-6)
    assert at.check("VOLT.PEAK_MIN").status == "pass" and at.check("VOLT.PEAK_MIN").limit == 0.90


def test_cli_screening_flag_uses_named_appliance_defaults(tmp_path, cache_dir, capsys):
    """`powercheck screen` answers a motor without datasheet values with request_info; with --appliance-defaults
    it decides on the policy's motor defaults and names them."""
    import json as _json

    import pyarrow.parquet as pq

    from powercheck.cli import main
    from powercheck.demo import demo_notifications_path

    line = next(x for x in demo_notifications_path().read_text(encoding="utf-8").splitlines() if "BAD-06" in x)
    src = tmp_path / "motor.jsonl"
    record = dict(_json.loads(line), network_system="IT_230")  # its point is on an IT network
    src.write_text(_json.dumps(record) + "\n", encoding="utf-8")
    outcomes = {}
    for flag in ([], ["--appliance-defaults"]):
        out = tmp_path / f"d{len(flag)}.parquet"
        args = ["screen", str(src), "--out", str(out), "--cache-dir", str(cache_dir), "--no-progress", *flag]
        assert main(args) == 0
        row = pq.read_table(out).to_pylist()[0]
        outcomes[bool(flag)] = (row["outcome"], row["reasons"])
    capsys.readouterr()
    assert outcomes[False][0] == "request_info"
    assert outcomes[True][0] != "request_info"
    assert any(r.startswith("SCREENING: appliance defaults used for appliances[0] (motor)") for r in outcomes[True][1])
    assert _json.loads(line)["notification_id"] == "ELS-2026-BAD-06"
