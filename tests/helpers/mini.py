"""The mini test region's metering points and the fixed decision clock, shared by tests."""

from __future__ import annotations

from datetime import UTC, datetime

from powercheck.gs1 import make_gsrn

FIXED_TIME = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# Metering points of the mini region: (network, bus name, existing kW, main fuse, service ampacity, upstream fuse)
MINI_POINTS = {
    "TN_END": ("tn", "house_3", 5.0, 25.0, None, None),
    "TN_MID": ("tn", "house_2", 5.0, 25.0, None, 100.0),
    "TN_NEAR": ("tn", "house_1", 5.0, 25.0, 63.0, 160.0),
    "IT_END": ("it", "house_3", 5.0, 40.0, None, None),
    "IT_NEAR": ("it", "house_1", 5.0, 40.0, None, 160.0),
}


def mini_mp(key: str) -> str:
    """The GS1 id of a mini-region metering point."""
    return make_gsrn(f"7070575000{list(MINI_POINTS).index(key) + 1:07d}")


def without_measures(policy):
    """The policy with no installer measures: decisions show the checks of the job as notified."""
    params = dict(policy.params)
    params["measures"] = policy.param("measures").model_copy(update={"value": []})
    return policy.model_copy(update={"params": params})


APPLIANCE_JOBS = ["meter_work", "ov_mv_change", "ev_charger", "pv", "battery", "heat_pump", "motor", "reconnection"]


def appliance_jobs_auto_approvable(policy):
    """The policy of a grid owner that also auto-approves appliance jobs (EV, PV, battery, heat pump, motor,
    reconnection) when every check passes -- the rule cases test the checks and outcomes that way; the
    default policy (metering-point work and OV/MV changes only) is tested in tests/rules/test_engine.py."""
    params = dict(policy.params)
    params["auto_approve_job_types"] = policy.param("auto_approve_job_types").model_copy(
        update={"value": APPLIANCE_JOBS}
    )
    return policy.model_copy(update={"params": params})


def without_paperwork(policy):
    """The policy without the workflow's paperwork: no required attachments, no datasheet requests (the
    appliance defaults are used, named) -- for tests of the grid checks; the paperwork itself is tested in
    tests/rules/test_workflow.py and the rule cases."""
    params = dict(policy.params)
    jobs = {job: dict(row, attachments=[]) for job, row in policy.value("job_types").items()}
    params["job_types"] = policy.param("job_types").model_copy(update={"value": jobs})
    params["challenging_appliances"] = policy.param("challenging_appliances").model_copy(update={"value": {}})
    params["completion_attachments"] = policy.param("completion_attachments").model_copy(update={"value": []})
    never = {system: 10_000 for system in policy.value("single_line_diagram_above_fuse_a")}
    params["single_line_diagram_above_fuse_a"] = policy.param("single_line_diagram_above_fuse_a").model_copy(
        update={"value": never}
    )
    return policy.model_copy(update={"params": params})
