"""Rule cases: the job types of the policy's ``job_types`` table (checks that apply, required fields, the block
notification's diversity rule)."""

from __future__ import annotations

import math

from tests.helpers.case_region import case_mp
from tests.rules.case_model import DEMAND_COS, I5S, SQ3, at_least, at_most, case, expect, ik_min, note, point
from tests.rules.cases_fuse import ASSUMED_UPSTREAM_A, fuse_change

# Velander's rule of the default policy (velander_k1, velander_k2, both [R]): P = k1 W + k2 sqrt(W) [kW], W [kWh/year]
VELANDER_K1, VELANDER_K2 = 0.00025, 0.03


def velander_kw(units: int, kwh_per_unit: float) -> float:
    w = units * kwh_per_unit
    return VELANDER_K1 * w + VELANDER_K2 * math.sqrt(w)


@case
def block_notification_velander_demand():
    """A block notification (blokkmelding): 24 flats of 6000 kWh/year each behind one 125 A connection at
    the TN busbar, on a new 250 A service cable. The units are assessed as one connection with Velander's rule:
    W = 24 x 6000 = 144000 kWh/year, P = 0.00025 x 144000 + 0.03 x sqrt(144000) = 36.0 + 11.38 = 47.38 kW,
    the demand of the connection (no power budget needed). P / 0.95 / (sqrt3 400 V) = 72.0 A <= 125 A.
    The connection is new, so the protection checks run; every check passes, but the default policy does not
    auto-approve block notifications (POLICY.JOB_TYPE).
    """
    p_kw = velander_kw(24, 6000.0)
    assert abs(p_kw - (36.0 + 0.03 * math.sqrt(144000))) < 1e-12
    checks = fuse_change("TN_BUSBAR", 125.0, p_kw)
    checks["PROT.SERVICE_CABLE"] = at_most(125.0, 250.0)  # the new cable of the notification
    assert checks["LOAD.MAIN_FUSE"]["value"] == p_kw * 1000 / (DEMAND_COS * SQ3 * 400)
    return {
        "notification": note(
            "TN_BUSBAR",
            "block_notification",
            main_fuse_after_a=125,
            service_cable_ampacity_a=250,
            block={"units": 24, "annual_kwh_per_unit": 6000},
            attachments=[{"kind": "single_line_diagram"}],
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.JOB_TYPE"]),
    }


@case
def interconnection_with_budget():
    """Sammenkobling: the installation at TN_MID joined with the one at TN_END into one 40 A connection at
    TN_MID, with the joined installation's budget of 20 kW (the job type requires a budget and the joined
    metering points). 20 kW / 0.95 / (sqrt3 400 V) = 30.4 A <= 40 A; the protection, thermal and voltage
    checks of a new 40 A fuse. Not auto-approvable by default (POLICY.JOB_TYPE).
    """
    checks = fuse_change("TN_MID", 40.0, 20.0)
    return {
        "notification": note(
            "TN_MID",
            "interconnection",
            main_fuse_before_a=25,
            main_fuse_after_a=40,
            power_budget={"max_demand_kw": 20},
            merged_metering_point_ids=[case_mp("TN_END")],
            attachments=[{"kind": "single_line_diagram"}, {"kind": "owner_consent"}],
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.JOB_TYPE"]),
    }


@case
def interconnection_without_budget_or_joined_points():
    """An interconnection without the joined installation's power budget and without the metering points it
    joins: reject_incomplete, both fields named as required for the job type (2 missing).
    """
    return {
        "notification": note("TN_MID", "interconnection", main_fuse_before_a=25, main_fuse_after_a=40),
        "expected": expect(
            "reject_incomplete",
            {"DATA.COMPLETE": at_most(2.0, 0.0)},
            reasons=[
                "power_budget: required for interconnection",
                "merged_metering_point_ids: required for interconnection",
            ],
        ),
    }


@case
def new_metering_point_with_its_fuses():
    """A new metering point with a 25 A main fuse and a 25 A meter fuse at the TN feeder end. Without a
    budget the new demand is the full new fuse: sqrt3 400 V 25 A 0.95 = 16.45 kW (the existing 5 kW
    counted once). A new point sets its fuses, so the protection checks run. The power accounting holds the
    existing 5 kW at cos 0.95 on the main fuse: 7.60 A <= 25 A (the meter fuse has the same rating: no
    separate check). Not auto-approvable by default.
    """
    checks = fuse_change("TN_END", 25.0, None)
    return {
        "notification": note(
            "TN_END",
            "new_metering_point",
            main_fuse_after_a=25,
            meter_fuse_after_a=25,
            attachments=[{"kind": "single_line_diagram"}],
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.JOB_TYPE"]),
    }


@case
def service_cable_move_cable_smaller_than_the_fuse():
    """Flytting av stikkledning at the TN feeder end: the new service cable carries 20 A, the 25 A main fuse
    on record stays. Only the protection checks apply (job_types): the cable against the fuse fails
    (25 A > 20 A); selectivity 250 A assumed upstream / 25 A = 10 >= 1.6; the minimum fault current
    sqrt3 c U / |2 Z1 + Z0| against the 110 A 5-s melting current of a 25 A gG fuse. No load, thermal or
    voltage check.
    """
    p = point("TN_END")
    checks = {
        "PROT.SERVICE_CABLE": at_most(25.0, 20.0),
        "PROT.SELECTIVITY": at_least(ASSUMED_UPSTREAM_A / 25.0, 1.6),
        "PROT.FAULT_CURRENT": at_least(ik_min(p), I5S[25]),
    }
    assert checks["PROT.SERVICE_CABLE"]["status"] == "fail"
    return {
        "notification": note(
            "TN_END", "service_cable_move", service_cable_ampacity_a=20, attachments=[{"kind": "site_plan"}]
        ),
        "expected": expect(
            "escalate",
            checks,
            reasons=["PROT.SERVICE_CABLE"],
            absent=["LOAD.MAIN_FUSE", "THERMAL.LINE_PEAK", "VOLT.PEAK_MIN"],
        ),
    }


@case
def disconnection_has_no_grid_checks():
    """Riving/frakobling at the TN feeder end: nothing is added, no check group applies (job_types); the
    default policy does not auto-approve it (POLICY.JOB_TYPE): a case handler releases the capacity.
    """
    return {
        "notification": note("TN_END", "disconnection"),
        "expected": expect("escalate", {}, reasons=["POLICY.JOB_TYPE"], absent=["LOAD.MAIN_FUSE"]),
    }


@case
def backup_supply_only_the_fuse_accounting():
    """Reservestrøm at the TN feeder end (a changeover switch, no parallel operation): only the load checks
    apply. The existing 5 kW at cos 0.95 on the 25 A main fuse on record: 7.60 A <= 25 A. Not
    auto-approvable by default.
    """
    checks = {"LOAD.MAIN_FUSE": at_most(5000 / (DEMAND_COS * SQ3 * 400), 25.0)}
    return {
        "notification": note(
            "TN_END",
            "backup_supply",
            attachments=[{"kind": "single_line_diagram"}, {"kind": "changeover_description"}],
        ),
        "expected": expect("escalate", checks, reasons=["POLICY.JOB_TYPE"]),
    }


@case
def kv_change_without_the_new_kv():
    """A change of the short-circuit protection (KV) that does not say the KV after the job:
    reject_incomplete naming kv_fuse_after_a (required for kv_change by the policy's job_types).
    """
    return {
        "notification": note("TN_END", "kv_change", attachments=[{"kind": "single_line_diagram"}]),
        "expected": expect(
            "reject_incomplete",
            {"DATA.COMPLETE": at_most(1.0, 0.0)},
            reasons=["kv_fuse_after_a: required for kv_change"],
        ),
    }


@case
def reconnection_without_the_installers_confirmation():
    """Reconnection of an installation disconnected for more than 3 years, with its 25 A main fuse but
    without the installer's confirmation of the installation's condition: reject_incomplete naming
    installation_condition_confirmed.
    """
    return {
        "notification": note("TN_END", "reconnection", main_fuse_after_a=25),
        "expected": expect(
            "reject_incomplete",
            {"DATA.COMPLETE": at_most(1.0, 0.0)},
            reasons=["installation_condition_confirmed: required for reconnection"],
        ),
    }


# ------------------------------------------------------------------------------------ request_info
@case
def heat_pump_without_soft_start_data():
    """A 5 kW heat pump notified without its start data (start current ratio, starts per hour) and
    without its datasheet: a heat pump without soft-start data is a challenging appliance, so the
    answer is request_info naming both values and the datasheet (2 items) -- not a decision on the
    policy's heat-pump defaults.
    """
    hp = [{"kind": "heat_pump", "rated_kw": 5.0, "connection": "3ph"}]
    return {
        "notification": note("TN_END", "heat_pump", appliances=hp),
        "expected": expect(
            "request_info",
            {"DATA.INFO": at_most(2.0, 0.0)},
            reasons=[
                "appliances[0] (heat_pump): datasheet values needed: start_current_ratio, starts_per_hour",
                "attachments: the datasheet of appliances[0] (heat_pump) (kind datasheet, appliance 0)",
            ],
            absent=["PQ.RVC_DACH", "PQ.THD"],
        ),
    }


@case
def ov_change_above_the_single_line_threshold_without_diagram():
    """OV 25 -> 80 A in TN with a 20 kW budget but no single-line diagram: the policy wants one above
    63 A (single_line_diagram_above_fuse_a): request_info naming the attachment (1 item).
    """
    return {
        "notification": note(
            "TN_NEAR",
            "ov_mv_change",
            attach_single_line=False,
            main_fuse_before_a=25,
            main_fuse_after_a=80,
            power_budget={"max_demand_kw": 20},
        ),
        "expected": expect(
            "request_info",
            {"DATA.INFO": at_most(1.0, 0.0)},
            reasons=["attachments: single_line_diagram required (main fuse 80 A above 63 A)"],
        ),
    }


@case
def backup_supply_without_changeover_description():
    """A backup supply with its single-line diagram but without the description of how it is kept from
    feeding the grid (job_types: backup_supply requires changeover_description): request_info (1 item).
    """
    return {
        "notification": note("TN_END", "backup_supply", attachments=[{"kind": "single_line_diagram"}]),
        "expected": expect(
            "request_info",
            {"DATA.INFO": at_most(1.0, 0.0)},
            reasons=["attachments: changeover_description required (job type backup_supply)"],
        ),
    }


# ------------------------------------------------------------------------------------ completion notices
EV_APPROVED = {"kind": "ev_charger", "rated_kw": 7.4, "connection": "3ph", "cos_phi": 0.99}
APPROVED_EV_REQUEST = {
    "notification_id": "CASE-ev_charger",
    "revision": 1,
    "point": "TN_END",
    "status": "approved",
    "job_type": "ev_charger",
    "installer_id": "INST-1",
    "fuse_after_a": 25.0,
    "supply_phases": "3ph",
    "appliances": [["ev_charger", 7.4, "3ph", 1]],
}
DOC = [{"kind": "declaration_of_conformity"}]


@case
def completion_matches_the_approval():
    """A completion notice (ferdigmelding) for the approved EV-charger request at the TN feeder end:
    the same charger (1 x 7.4 kW three-phase), the same phases and the 25 A main fuse on record as
    approved, with the declaration of conformity. 0 differences: auto_approve, the request is marked
    built in the ledger. No grid check runs again.
    """
    return {
        "notification": note(
            "TN_END",
            "ev_charger",
            stage="completion",
            installer_id="INST-1",
            appliances=[EV_APPROVED],
            attachments=DOC,
        ),  # fmt: skip
        "ledger": [APPROVED_EV_REQUEST],
        "expected": expect(
            "auto_approve",
            {"COMPLETION.MATCH": at_most(0.0, 0.0)},
            reasons=["the completion notice matches request CASE-ev_charger (revision 1, approved)"],
            absent=["LOAD.MAIN_FUSE", "PQ.RVC_DACH"],
        ),
    }


@case
def completion_differs_from_the_approval():
    """The completion notice of the approved 7.4 kW EV charger reports an 11 kW charger on a 32 A main
    fuse: 3 differences -- the main fuse (approved 25 A, built 32 A), the approved charger not built,
    the 11 kW charger built but not approved -- escalated with the differences listed; the request
    stays approved.
    """
    built = dict(EV_APPROVED, rated_kw=11.0)
    return {
        "notification": note(
            "TN_END",
            "ev_charger",
            stage="completion",
            installer_id="INST-1",
            main_fuse_before_a=25,
            main_fuse_after_a=32,
            appliances=[built],
            attachments=DOC,
        ),  # fmt: skip
        "ledger": [APPROVED_EV_REQUEST],
        "expected": expect(
            "escalate",
            {"COMPLETION.MATCH": at_most(3.0, 0.0)},
            reasons=[
                "main fuse after: approved 25 A, built 32 A",
                "approved but not built: 1 x ev_charger 7.4 kW 3ph",
                "built but not approved: 1 x ev_charger 11 kW 3ph",
            ],
        ),
    }


@case
def completion_without_declaration_of_conformity():
    """A completion notice without the declaration of conformity (policy completion_attachments):
    request_info naming it (1 item); the approved request is not touched.
    """
    return {
        "notification": note(
            "TN_END", "ev_charger", stage="completion", installer_id="INST-1", appliances=[EV_APPROVED]
        ),  # fmt: skip
        "ledger": [APPROVED_EV_REQUEST],
        "expected": expect(
            "request_info",
            {"DATA.INFO": at_most(1.0, 0.0)},
            reasons=["attachments: declaration_of_conformity required (completion notice)"],
        ),
    }


@case
def completion_without_an_approved_request():
    """A completion notice whose notification id has no request in the ledger: nothing to compare
    with -- COMPLETION.MATCH not evaluated, escalated to a case handler.
    """
    return {
        "notification": note(
            "TN_END", "ev_charger", stage="completion", appliances=[EV_APPROVED], attachments=DOC
        ),  # fmt: skip
        "expected": expect(
            "escalate",
            {"COMPLETION.MATCH": {"value": None, "limit": None, "status": "not_evaluated", "rel": 1e-9}},
            reasons=["no request CASE-ev_charger in the ledger"],
        ),
    }


@case
def completion_of_a_kv_change_with_another_kv():
    """The completion notice of an approved kv_change (63 A KV approved at TN_MID_KV) reports an 80 A KV built:
    1 difference, escalated with it listed; the request stays approved (the 80 A KV was never checked).
    """
    return {
        "notification": note(
            "TN_MID_KV",
            "kv_change",
            stage="completion",
            installer_id="INST-1",
            kv_fuse_after_a=80,
            attachments=[{"kind": "single_line_diagram"}, *DOC],
        ),  # fmt: skip
        "ledger": [
            {
                "notification_id": "CASE-kv_change",
                "revision": 1,
                "point": "TN_MID_KV",
                "status": "approved",
                "job_type": "kv_change",
                "installer_id": "INST-1",
                "kv_after_a": 63.0,
            }
        ],
        "expected": expect(
            "escalate",
            {"COMPLETION.MATCH": at_most(1.0, 0.0)},
            reasons=["KV after: approved 63 A, built 80 A"],
        ),
    }
