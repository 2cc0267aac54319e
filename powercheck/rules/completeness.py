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
from powercheck.rules.accounting import GENERATING
from powercheck.rules.policy import PerPolicy, Policy, PolicyKey
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


@dataclass(frozen=True, slots=True)
class _JobRules:
    """What the completeness rules look up for one job type (made once per policy and job type)."""

    required: tuple[str, ...]
    """The ``job_types`` row's required notification fields."""
    budget_required: bool
    """``power_budget`` is among them."""
    attachments: tuple[str, ...]
    kinds: tuple[ApplianceKind, ...] | None
    """:data:`JOB_APPLIANCE_KINDS` of the job type."""
    ov_mv_change: bool


@dataclass(frozen=True, slots=True)
class _CompletenessTables:
    """The policy's tables the completeness rules use, made once per policy (:func:`_tables`)."""

    budget_above_fuse_a: dict[str, float]
    diagram_above_fuse_a: dict[str, float]
    completion_attachments: tuple[str, ...]
    required_appliance_fields: dict[str, list[str]]
    challenging: dict[str, dict]
    jobs: dict[JobType, _JobRules]
    """Filled per job type on first use (a job type missing from the policy raises where it is used)."""


def _make_tables(policy: Policy) -> _CompletenessTables:
    return _CompletenessTables(
        budget_above_fuse_a=policy.value(PolicyKey.BUDGET_REQUIRED_ABOVE_FUSE_A),
        diagram_above_fuse_a=policy.value(PolicyKey.SINGLE_LINE_DIAGRAM_ABOVE_FUSE_A),
        completion_attachments=tuple(policy.value(PolicyKey.COMPLETION_ATTACHMENTS)),
        required_appliance_fields=policy.value(PolicyKey.REQUIRED_APPLIANCE_FIELDS),
        challenging=policy.value(PolicyKey.CHALLENGING_APPLIANCES),
        jobs={},
    )


_TABLES = PerPolicy("completeness.tables", _make_tables)


def _tables(policy: Policy) -> _CompletenessTables:
    return _TABLES(policy)


def _job_rules(tables: _CompletenessTables, policy: Policy, job_type: JobType) -> _JobRules:
    rules = tables.jobs.get(job_type)
    if rules is None:
        row = policy.job(job_type)  # the policy's job_types table (KeyError for a job type it lacks)
        rules = tables.jobs[job_type] = _JobRules(
            required=tuple(row["required"]),
            budget_required="power_budget" in row["required"],
            attachments=tuple(row["attachments"]),
            kinds=JOB_APPLIANCE_KINDS.get(job_type),
            ov_mv_change=job_type is JobType.OV_MV_CHANGE,
        )
    return rules


def missing_fields(n: Notification, policy: Policy) -> list[Message]:
    """What the notification lacks (field path and a short why, as messages); empty when complete."""
    missing: list[Message] = []
    tables = _tables(policy)
    job = _job_rules(tables, policy, n.job_type)
    for field in job.required:
        value = getattr(n, field)
        if value is None or value is False or value == []:
            missing.append(msg("missing_required_for_job", field=field, job=n.job_type.value))
    if job.ov_mv_change:
        if n.main_fuse_after_a is None and n.meter_fuse_after_a is None:
            missing.append(msg("missing_ov_mv_after"))
        if n.main_fuse_after_a is not None and n.main_fuse_before_a is None:
            missing.append(msg("missing_fuse_before", field="main_fuse_before_a", fuse="main fuse"))
        if n.meter_fuse_after_a is not None and n.main_fuse_after_a is None and n.meter_fuse_before_a is None:
            missing.append(msg("missing_fuse_before", field="meter_fuse_before_a", fuse="meter fuse"))
    appliances = n.appliances
    kinds = job.kinds
    if kinds and not any(a.kind in kinds for a in appliances):
        wanted = " or ".join(k.value for k in kinds)
        missing.append(msg("missing_appliance_kind", job=n.job_type.value, kinds=wanted))

    fuse = new_fuse_a(n)
    budget = n.power_budget
    if fuse is not None and budget is None and n.block is None and not job.budget_required:
        # a block notification's demand comes from the policy's diversity rule; a budget the job type requires
        # is already named as required
        threshold = tables.budget_above_fuse_a.get(n.network_system)  # (a str enum: its value is the key)
        if threshold is not None and fuse > threshold:
            missing.append(msg("missing_budget", threshold=float(threshold), system=n.network_system.value))
    if budget is not None and budget.max_export_kw > 0 and not any(a.kind in GENERATING for a in appliances):
        missing.append(msg("missing_generator"))

    if appliances:
        required = tables.required_appliance_fields
        for i, appliance in enumerate(appliances):
            for field in required.get(appliance.kind, ()):
                if getattr(appliance, field) is None:
                    missing.append(msg("missing_appliance_field", index=i, field=field, kind=appliance.kind.value))
    return missing


def _absent(value: object) -> bool:
    return value is None or value == {} or value == []


def missing_datasheet_values(n: Notification, policy: Policy) -> list[tuple[int, list[str]]]:
    """Challenging appliances (policy ``challenging_appliances``) without all their datasheet values:
    (index, missing field names)."""
    table: dict[str, dict] = _tables(policy).challenging
    out = []
    for i, appliance in enumerate(n.appliances):
        row = table.get(appliance.kind)
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
    tables = _tables(policy)
    attachments = n.attachments
    if not screening:
        lacking_values = missing_datasheet_values(n, policy) if n.appliances else ()
        if lacking_values:
            attached = {(a.kind, a.appliance) for a in attachments}
            for i, lacking in lacking_values:
                kind = n.appliances[i].kind.value
                asked.append(msg("request_values", index=i, kind=kind, fields=", ".join(lacking)))
                if (AttachmentKind.DATASHEET, i) not in attached:
                    asked.append(msg("request_datasheet", index=i, kind=kind))
    needed: dict[str, str] = {}
    job = _job_rules(tables, policy, n.job_type)
    if job.attachments:
        why = f"job type {n.job_type.value}"
        for kind in job.attachments:
            needed.setdefault(kind, why)
    fuse = new_fuse_a(n)
    if fuse is not None:
        limit = tables.diagram_above_fuse_a.get(n.network_system)  # (a str enum: its value is the key)
        if limit is not None and fuse > limit:
            needed.setdefault(_DIAGRAM, f"main fuse {fuse:g} A above {float(limit):g} A")
    if n.stage is Stage.COMPLETION:
        for kind in tables.completion_attachments:
            needed.setdefault(kind, "completion notice")
    if needed:
        attached_kinds = {a.kind for a in attachments}
        for kind, why in needed.items():
            if AttachmentKind(kind) not in attached_kinds:
                asked.append(msg("request_attachment", attachment=kind, why=why))
    return asked


_DIAGRAM = AttachmentKind.SINGLE_LINE_DIAGRAM.value


def installed_appliances(n: Notification) -> tuple[tuple[str, float, str, int], ...]:
    """The appliances of a notification as the ledger records them: (kind, rated kW, connection, quantity)."""
    return tuple(sorted((a.kind.value, float(a.rated_kw), a.connection.value, int(a.quantity)) for a in n.appliances))
