"""Does a (schema-valid) notification carry what its job type needs, and which fuse limits it after the job?

Missing data never approves: whatever :func:`missing_fields` lists makes the decision
``reject_incomplete`` with the missing fields named, before any grid check runs.

:func:`fuse_after_job` is the one place that decides which fuse (OV, else MV) limits the
installation after the work and whether the job changes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from powercheck.models import ApplianceKind, AttachmentKind, JobType, Message, Notification, Stage
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.texts import msg

FUSE_JOBS = (
    JobType.NEW_CONNECTION,
    JobType.TEMPORARY_SUPPLY,
    JobType.RECONNECTION,
    JobType.NEW_METERING_POINT,
    JobType.INTERCONNECTION,
    JobType.BLOCK_NOTIFICATION,
)
"""Job types that set a fuse even when it has the same rating as before (the connection is new)."""

CABLE_JOBS = (JobType.SERVICE_CABLE_MOVE,)
"""Job types that lay the service cable anew: the fuse on record is checked again against it."""

JOB_APPLIANCE_KINDS: dict[JobType, tuple[ApplianceKind, ...]] = {
    JobType.EV_CHARGER: (ApplianceKind.EV_CHARGER,),
    JobType.PV: (ApplianceKind.PV_INVERTER,),
    JobType.BATTERY: (ApplianceKind.BATTERY_INVERTER,),
    JobType.HEAT_PUMP: (ApplianceKind.HEAT_PUMP,),
    JobType.MOTOR: (ApplianceKind.MOTOR, ApplianceKind.WELDER, ApplianceKind.WATER_HEATER, ApplianceKind.OTHER),
}


def new_fuse_a(n: Notification) -> float | None:
    """The fuse the notification sets: OV if given, else MV [A] (None when it sets none)."""
    if n.main_fuse_after_a is not None:
        return n.main_fuse_after_a
    return n.meter_fuse_after_a


@dataclass(frozen=True, slots=True)
class FuseAfterJob:
    """The fuse that limits the installation after the job."""

    rating_a: float | None
    """OV (else MV) after the job; the one before (or on record) when the job sets none [A]."""
    changed: bool
    """True when the job sets a new fuse (or any fuse on a new connection/temporary supply/reconnection)."""


def fuse_after_job(n: Notification, record_fuse_a: float | None) -> FuseAfterJob:
    """Which fuse limits the installation after the job, and whether the job changes it.

    Parameters
    ----------
    n : Notification
    record_fuse_a : float or None
        The main fuse on record in the customer index [A] (NaN/None when unknown); used as
        "before" when the notification does not say.
    """
    after = new_fuse_a(n)
    if n.main_fuse_after_a is None and n.meter_fuse_after_a is not None:
        before = n.meter_fuse_before_a  # only the meter fuse changes: compare like with like
    else:
        before = n.main_fuse_before_a  # the OV the notification states; for appliance jobs the one in place
    if before is None and record_fuse_a is not None and not math.isnan(record_fuse_a):
        before = float(record_fuse_a)
    changed = after is not None and (before is None or abs(after - before) > 1e-9 or n.job_type in FUSE_JOBS)
    if after is None and before is not None:
        after = before
        changed = n.job_type in CABLE_JOBS
    return FuseAfterJob(rating_a=after, changed=changed)


def missing_fields(n: Notification, policy: Policy) -> list[Message]:
    """What the notification lacks (field path and a short why, as messages); empty when complete."""
    missing: list[Message] = []
    for field in policy.job(n.job_type)["required"]:  # the policy's job_types table
        value = getattr(n, field)
        if value is None or value is False or value == []:
            missing.append(msg("missing_required_for_job", field=field, job=n.job_type.value))
    if n.job_type is JobType.OV_MV_CHANGE:
        if n.main_fuse_after_a is None and n.meter_fuse_after_a is None:
            missing.append(msg("missing_ov_mv_after"))
        if n.main_fuse_after_a is not None and n.main_fuse_before_a is None:
            missing.append(msg("missing_fuse_before", field="main_fuse_before_a", fuse="main fuse"))
        if n.meter_fuse_after_a is not None and n.main_fuse_after_a is None and n.meter_fuse_before_a is None:
            missing.append(msg("missing_fuse_before", field="meter_fuse_before_a", fuse="meter fuse"))
    kinds = JOB_APPLIANCE_KINDS.get(n.job_type)
    if kinds and not any(a.kind in kinds for a in n.appliances):
        wanted = " or ".join(k.value for k in kinds)
        missing.append(msg("missing_appliance_kind", job=n.job_type.value, kinds=wanted))

    fuse = new_fuse_a(n)
    thresholds: dict[str, float] = policy.value(PolicyKey.BUDGET_REQUIRED_ABOVE_FUSE_A)
    threshold = thresholds.get(n.network_system.value)
    if (
        fuse is not None
        and threshold is not None
        and fuse > threshold
        and n.power_budget is None
        and n.block is None  # a block notification's demand comes from the policy's diversity rule
        and "power_budget" not in policy.job(n.job_type)["required"]  # already named as required for the job
    ):
        missing.append(msg("missing_budget", threshold=float(threshold), system=n.network_system.value))
    if (
        n.power_budget is not None
        and n.power_budget.max_export_kw > 0
        and not any(a.kind.generates for a in n.appliances)
    ):
        missing.append(msg("missing_generator"))

    required: dict[str, list[str]] = policy.value(PolicyKey.REQUIRED_APPLIANCE_FIELDS)
    for i, appliance in enumerate(n.appliances):
        for field in required.get(appliance.kind.value, []):
            if getattr(appliance, field) is None:
                missing.append(msg("missing_appliance_field", index=i, field=field, kind=appliance.kind.value))
    return missing


def _absent(value: object) -> bool:
    return value is None or value == {} or value == []


def missing_datasheet_values(n: Notification, policy: Policy) -> list[tuple[int, list[str]]]:
    """Challenging appliances (policy ``challenging_appliances``) without all their datasheet values:
    (index, missing field names)."""
    table: dict[str, dict] = policy.value(PolicyKey.CHALLENGING_APPLIANCES)
    out = []
    for i, appliance in enumerate(n.appliances):
        row = table.get(appliance.kind.value)
        if row is None or appliance.rated_kw <= float(row["above_kw"]):
            continue
        ratio = appliance.start_current_ratio
        lacking = [
            f
            for f in row["fields"]
            if _absent(getattr(appliance, f))
            and not (f == "cos_phi_start" and ratio is not None and ratio <= 1.0)  # no start current: no start pf
        ]
        if lacking:
            out.append((i, lacking))
    return out


def requested_info(n: Notification, policy: Policy, *, screening: bool = False) -> list[Message]:
    """What the grid owner asks for before it decides (``request_info``), by name: the datasheet values (and the
    datasheet) of challenging appliances -- unless ``screening`` allows the policy's appliance defaults --, the
    attachments the job type, the fuse size and the workflow stage require."""
    asked: list[Message] = []
    attached = {(a.kind, a.appliance) for a in n.attachments}
    attached_kinds = {a.kind for a in n.attachments}
    if not screening:
        for i, lacking in missing_datasheet_values(n, policy):
            kind = n.appliances[i].kind.value
            asked.append(msg("request_values", index=i, kind=kind, fields=", ".join(lacking)))
            if (AttachmentKind.DATASHEET, i) not in attached:
                asked.append(msg("request_datasheet", index=i, kind=kind))
    needed: dict[str, str] = {}
    for kind in policy.job(n.job_type)["attachments"]:
        needed.setdefault(kind, f"job type {n.job_type.value}")
    fuse = new_fuse_a(n)
    limit = policy.value(PolicyKey.SINGLE_LINE_DIAGRAM_ABOVE_FUSE_A).get(n.network_system.value)
    if fuse is not None and limit is not None and fuse > limit:
        needed.setdefault(AttachmentKind.SINGLE_LINE_DIAGRAM.value, f"main fuse {fuse:g} A above {float(limit):g} A")
    if n.stage is Stage.COMPLETION:
        for kind in policy.value(PolicyKey.COMPLETION_ATTACHMENTS):
            needed.setdefault(kind, "completion notice")
    for kind, why in needed.items():
        if AttachmentKind(kind) not in attached_kinds:
            asked.append(msg("request_attachment", attachment=kind, why=why))
    return asked


def installed_appliances(n: Notification) -> tuple[tuple[str, float, str, int], ...]:
    """The appliances of a notification as the ledger records them: (kind, rated kW, connection, quantity)."""
    return tuple(sorted((a.kind.value, float(a.rated_kw), a.connection.value, int(a.quantity)) for a in n.appliances))
