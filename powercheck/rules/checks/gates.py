"""Gates before the grid checks: complete data, a known metering point, the notified system, usable grid data."""

from __future__ import annotations

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, failed_gate, measured, not_evaluated
from powercheck.rules.rule_ids import RuleId
from powercheck.texts import render


def gates(c: CheckInput) -> list[CheckBlock]:
    """DATA.COMPLETE (fail), else GRID.LOCATED, GRID.SYSTEM or GRID.DATA (not evaluated), for the rows that stop
    here."""
    incomplete, info, unknown, mismatch, no_grid = [], [], [], [], []
    completed, differs, no_approval = [], [], []
    for k, case in enumerate(c.cases):
        if case.missing:
            incomplete.append(k)
        elif case.requested:
            info.append(k)
        elif case.completion is not None:
            if case.completion.approved is None:
                no_approval.append(k)
            elif case.completion.differences:
                differs.append(k)
            else:
                completed.append(k)
        elif case.location is None:
            unknown.append(k)
        elif case.system_mismatch is not None:
            mismatch.append(k)
        elif case.grid_problem is not None:
            no_grid.append(k)
    region = c.grid.region.name
    return [
        failed_gate(
            RuleId.DATA_COMPLETE,
            incomplete,
            name="Notification carries the data its job type needs",
            counts=[len(c.cases[k].missing) for k in incomplete],
            unit="missing fields",
            detail=["; ".join(render(m) for m in c.cases[k].missing) for k in incomplete],
        ),
        failed_gate(
            RuleId.DATA_INFO,
            info,
            name="Datasheet values and attachments the grid owner needs",
            counts=[len(c.cases[k].requested) for k in info],
            unit="items requested",
            detail=["; ".join(render(m) for m in c.cases[k].requested) for k in info],
        ),
        measured(
            RuleId.COMPLETION_MATCH,
            completed + differs,
            [float(len(c.cases[k].completion.differences)) for k in completed + differs],
            0.0,
            LimitKind.MAX,
            "differences",
            name="The completion notice matches the approved request",
            detail=[
                "; ".join(c.cases[k].completion.differences)
                or f"matches request {k_req.notification_id} (revision {k_req.revision}, {k_req.status.value})"
                for k in completed + differs
                for k_req in [c.cases[k].completion.approved]
            ],
        ),
        not_evaluated(
            RuleId.COMPLETION_MATCH,
            no_approval,
            name="The completion notice matches the approved request",
            detail=[c.cases[k].completion.why or "" for k in no_approval],
        ),
        not_evaluated(
            RuleId.GRID_LOCATED,
            unknown,
            name="Metering point is in the customer index",
            detail=[
                f"metering point {c.cases[k].notification.metering_point_id} is not in the customer index "
                f"of region {region}"
                for k in unknown
            ],
        ),
        not_evaluated(
            RuleId.GRID_SYSTEM,
            mismatch,
            name="Network system matches the grid model",
            detail=[render(c.cases[k].system_mismatch) for k in mismatch],
        ),
        not_evaluated(
            RuleId.GRID_DATA,
            no_grid,
            name="Grid model can be computed at the connection point",
            detail=[render(c.cases[k].grid_problem) for k in no_grid],
        ),
    ]
