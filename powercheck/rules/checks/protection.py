"""Protection checks of a new fuse: service cable, selectivity, minimum fault current."""

from __future__ import annotations

import math

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, measured, policy_limited
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId


def _fuse_rows(c: CheckInput) -> list[int]:
    """Notifications whose job sets a (new) fuse."""
    return [int(k) for k in c.rows if c.cases[k].fuse_changed and c.cases[k].fuse_after_a is not None]


def service_cable(c: CheckInput) -> list[CheckBlock]:
    """PROT.SERVICE_CABLE: the service cable carries the new fuse's rated current."""
    arr = c.grid.arrays
    rows = _fuse_rows(c)
    value, limit, detail = [], [], []
    for k in rows:
        case = c.cases[k]
        new_cable = case.notification.service_cable_ampacity_a
        ampacity = float(c.grid.customers.service_cable_ampacity_a[case.location.cp_row])
        text = "service cable ampacity from the customer index"
        if new_cable is not None:
            ampacity, text = float(new_cable), "ampacity of the new service cable in the notification"
        if not math.isfinite(ampacity):
            line_row = arr.service_line_row[case.location.bus_row]
            if line_row >= 0:
                ampacity = float(arr.line_i_max_a[line_row])
                text = f"service line {int(arr.line_ids[line_row])} of the grid model ({ampacity:.0f} A rated)"
            else:
                ampacity = math.nan
                text = "no service line between the bus and the transformer and none in the customer index"
        value.append(case.fuse_after_a)
        limit.append(ampacity)
        detail.append(text)
    return [
        measured(
            RuleId.PROT_SERVICE_CABLE,
            rows,
            value,
            limit,
            LimitKind.MAX,
            "A",
            name="Service cable ampacity at least the new main fuse",
            detail=detail,
        )
    ]


def selectivity(c: CheckInput) -> list[CheckBlock]:
    """PROT.SELECTIVITY: the upstream fuse discriminates with the new fuse."""
    arr = c.grid.arrays
    sizes_all = c.policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)
    rows = _fuse_rows(c)
    value, assumptions, detail = [], [], []
    for k in rows:
        case = c.cases[k]
        upstream = float(c.grid.customers.upstream_fuse_a[case.location.cp_row])
        used: tuple[str, ...] = ()
        if math.isfinite(upstream):
            text = f"upstream fuse {upstream:g} A from the customer index"
        else:
            feeder_row = arr.feeder_line_row[case.location.bus_row]
            upstream = math.nan
            text = "no upstream fuse in the customer index and no feeder cable in the grid model"
            if feeder_row >= 0:
                rated = float(arr.line_i_max_a[feeder_row])
                sizes = [s for s in sizes_all if s <= rated + 1e-9]
                if sizes:
                    upstream = float(max(sizes))
                    text = (
                        f"upstream fuse {upstream:g} A assumed: largest standard size within the "
                        f"{rated:.0f} A rating of feeder cable {int(arr.line_ids[feeder_row])}"
                    )
                    used = ("grid:upstream_fuse_from_feeder_cable",)
        value.append(upstream / case.fuse_after_a)
        assumptions.append(used)
        detail.append(text)
    return [
        policy_limited(
            c.policy,
            RuleId.PROT_SELECTIVITY,
            rows,
            value,
            PolicyKey.SELECTIVITY_RATIO_MIN,
            LimitKind.MIN,
            "ratio",
            name="Upstream fuse discriminates with the new main fuse",
            assumptions=assumptions,
            detail=detail,
        )
    ]


def fault_current(c: CheckInput) -> list[CheckBlock]:
    """PROT.FAULT_CURRENT: the minimum fault current melts the new fuse within 5 s."""
    arr = c.grid.arrays
    rows = _fuse_rows(c)
    limit, detail = [], []
    for k in rows:
        case = c.cases[k]
        i5 = c.policy.fuse_melting_5s(case.fuse_after_a)
        kind = "line-to-neutral (TN)" if arr.system_tn[case.location.bus_row] else "line-to-line (IT)"
        limit.append(math.nan if i5 is None else i5)
        detail.append(
            f"minimum {kind} fault current at bus {case.location.bus}"
            if i5 is not None
            else f"no 5-s melting current tabulated for a {case.fuse_after_a:g} A fuse "
            f"(policy {PolicyKey.FUSE_GG_GATES_A})"
        )
    return [
        measured(
            RuleId.PROT_FAULT_CURRENT,
            rows,
            c.evaluation.ik_min_a[rows],
            limit,
            LimitKind.MIN,
            "A",
            name="Minimum fault current melts the new main fuse within 5 s",
            limit_key=str(PolicyKey.FUSE_GG_GATES_A),
            assumptions=tuple(c.policy.assumption_keys(PolicyKey.SC_C_MIN, PolicyKey.FUSE_GG_GATES_A)),
            detail=detail,
        )
    ]
