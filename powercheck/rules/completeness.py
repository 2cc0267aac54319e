"""Does a (schema-valid) notification carry what its job type needs?

Missing data never approves: whatever is listed here makes the decision
``reject_incomplete`` with the missing fields named, before any grid check runs.
"""

from __future__ import annotations

from powercheck.models import ApplianceKind, JobType, Notification
from powercheck.rules.policy import Policy

FUSE_JOBS = (JobType.NEW_CONNECTION, JobType.TEMPORARY_SUPPLY, JobType.RECONNECTION)

JOB_APPLIANCE_KINDS: dict[JobType, tuple[ApplianceKind, ...]] = {
    JobType.EV_CHARGER: (ApplianceKind.EV_CHARGER,),
    JobType.PV: (ApplianceKind.PV_INVERTER,),
    JobType.BATTERY: (ApplianceKind.BATTERY_INVERTER,),
    JobType.HEAT_PUMP: (ApplianceKind.HEAT_PUMP,),
    JobType.MOTOR: (ApplianceKind.MOTOR, ApplianceKind.WELDER, ApplianceKind.WATER_HEATER, ApplianceKind.OTHER),
}


def new_fuse_a(n: Notification) -> float | None:
    """The fuse that limits the installation after the work: OV if given, else MV."""
    if n.main_fuse_after_a is not None:
        return n.main_fuse_after_a
    return n.meter_fuse_after_a


def missing_fields(n: Notification, policy: Policy) -> list[str]:
    """Field paths (with a short why) that the notification lacks; empty when complete."""
    missing: list[str] = []
    if n.job_type in FUSE_JOBS and n.main_fuse_after_a is None:
        missing.append(f"main_fuse_after_a: required for {n.job_type.value}")
    if n.job_type is JobType.OV_MV_CHANGE:
        if n.main_fuse_after_a is None and n.meter_fuse_after_a is None:
            missing.append("main_fuse_after_a: required for ov_mv_change (or meter_fuse_after_a)")
        if n.main_fuse_after_a is not None and n.main_fuse_before_a is None:
            missing.append("main_fuse_before_a: required when the main fuse changes")
        if n.meter_fuse_after_a is not None and n.main_fuse_after_a is None and n.meter_fuse_before_a is None:
            missing.append("meter_fuse_before_a: required when the meter fuse changes")
    kinds = JOB_APPLIANCE_KINDS.get(n.job_type)
    if kinds and not any(a.kind in kinds for a in n.appliances):
        wanted = " or ".join(k.value for k in kinds)
        missing.append(f"appliances: a {n.job_type.value} notification needs an appliance of kind {wanted}")

    fuse = new_fuse_a(n)
    thresholds: dict[str, float] = policy.value("budget_required_above_fuse_a")
    threshold = thresholds.get(n.network_system.value)
    if fuse is not None and threshold is not None and fuse > threshold and n.power_budget is None:
        missing.append(
            f"power_budget: required when the main fuse after the work exceeds {threshold:g} A "
            f"in {n.network_system.value} (policy budget_required_above_fuse_a)"
        )
    if (
        n.power_budget is not None
        and n.power_budget.max_export_kw > 0
        and not any(a.kind.generates for a in n.appliances)
    ):
        missing.append("appliances: the power budget declares export but no generating appliance is listed")

    required: dict[str, list[str]] = policy.value("required_appliance_fields")
    for i, appliance in enumerate(n.appliances):
        for field in required.get(appliance.kind.value, []):
            if getattr(appliance, field) is None:
                missing.append(f"appliances[{i}].{field}: required for a {appliance.kind.value}")
    return missing
