"""Stage 3: demand cases + evaluation -> a :class:`CheckTable` of every check result of the batch.

:data:`CHECKS` is the one table of check functions, in the order their results appear in a
decision. Each function reads the whole batch and returns :class:`CheckBlock` columns; the
gates run first and stop the grid checks for the rows they catch. A job type applies only the check
groups the policy's ``job_types`` table names for it (the gates and the ledger always apply).

==========================  ======================================================
``DATA.COMPLETE``           job-type and policy fields present (else reject_incomplete)
``DATA.INFO``               datasheet values of challenging appliances and attachments (else request_info)
``COMPLETION.MATCH``        a completion notice matches its approved request (else escalate, differences)
``GRID.LOCATED``            metering point in the customer index
``GRID.SYSTEM``             notified IT/TN system matches the grid model
``GRID.DATA``               the grid model can be computed at the bus (fed, finite results)
``LEDGER.CONFLICT``         no other open request at the metering point contradicts this one
``LOAD.MAIN_FUSE``          demand current per phase after the job <= main fuse (OV) after the job
``LOAD.METER_FUSE``         ... <= meter fuse (MV) after the job
``LOAD.EXPORT_FUSE``        export current per phase after the job <= the smaller of OV and MV
``PROT.START_CURRENT``      start current of the largest motor <= what the OV carries without tripping
``PROT.SERVICE_CABLE``      service cable ampacity >= new fuse
``PROT.SELECTIVITY``        upstream fuse / new fuse >= 1.6; above a breaker time-current and I2t
``PROT.FAULT_CURRENT``      minimum fault current disconnects the new OV (gG 5 s, breaker instantaneous)
``PROT.KV_SELECTIVITY``     KV (index, ledger or a kv_change) discriminates with the OV (ratio, or time-current and I2t)
``PROT.KV_FAULT_CURRENT``   minimum fault current >= 5-s melting current of the KV
``PROT.KV_UPSTREAM_SELECTIVITY`` a kv_change: upstream fuse / new KV >= 1.6 (upstream assumed from the cable: named)
``THERMAL.LINE_PEAK``       binding line on the path at peak with the added current
``THERMAL.TRAFO_PEAK``      transformer at peak with the added current
``THERMAL.LINE_EXPORT``     binding line at low load with the added export
``THERMAL.TRAFO_EXPORT``    transformer at low load with the added export
``VOLT.PEAK_PLANNING``      voltage at peak with the added load >= voltage_planning_min_pu (planning)
``VOLT.PEAK_MIN``           voltage at peak with the added load >= voltage_min_pu (legal, FoL)
``VOLT.LOW_PLANNING``       voltage at low load with the added export <= voltage_planning_max_pu (planning)
``VOLT.LOW_MAX``            voltage at low load with the added export <= voltage_max_pu (legal, FoL)
``PQ.RVC_DACH``             rapid voltage change per start, D-A-CH-CZ limit by start rate (planning)
``PQ.RVC_FOL_MAX``          FoL: dU_max of a switching >= 5 % when > 24 events a day (legal)
``PQ.RVC_FOL_STATIONARY``   FoL: stationary step per switching >= 3 % when > 24 events a day (legal)
``PQ.FLICKER_PST``          short-term flicker at the point, background included, FoL total (legal)
``PQ.FLICKER_PLT``          long-term flicker from the declared operating pattern, FoL total (legal)
``PQ.FLICKER_SHARE_PST``    the customer's own Pst emission against its share (emission)
``PQ.FLICKER_SHARE_PLT``    the customer's own Plt emission against its share (emission)
``PQ.THD``                  total harmonic distortion (orders 2-40) with the appliances' harmonic currents
``PQ.THD_WEEK``             THD of continuously running appliances against the 1-week limit
``PQ.HARMONIC``             the individual harmonic voltage closest to its EN 50160 limit
``PQ.UNBALANCE``            negative-sequence unbalance from single-phase load/export
==========================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from powercheck.rules.checks.accounting import fuses, ledger_conflicts, start_current
from powercheck.rules.checks.base import CheckBlock, CheckInput, CheckTable
from powercheck.rules.checks.gates import gates
from powercheck.rules.checks.power_quality import flicker, harmonics, rapid_voltage_change, unbalance
from powercheck.rules.checks.protection import (
    fault_current,
    kv_fault_current,
    kv_selectivity,
    kv_upstream_selectivity,
    selectivity,
    service_cable,
)
from powercheck.rules.checks.thermal import thermal
from powercheck.rules.checks.voltage import voltage_band
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import Evaluation
from powercheck.rules.policy import CHECK_GROUPS, Policy
from powercheck.rules.rule_ids import RuleId

CheckFunction = Callable[[CheckInput], list[CheckBlock]]

CHECKS: tuple[CheckFunction, ...] = (
    gates,
    ledger_conflicts,
    fuses,
    start_current,
    service_cable,
    selectivity,
    fault_current,
    kv_selectivity,
    kv_fault_current,
    kv_upstream_selectivity,
    thermal,
    voltage_band,
    rapid_voltage_change,
    flicker,
    harmonics,
    unbalance,
)
"""Every check function, in decision order."""

__all__ = ["CHECKS", "CheckBlock", "CheckInput", "CheckTable", "run_checks"]


_GROUP_OF: dict[RuleId, str] = {rule: rule.group for rule in RuleId}
"""The check group of every rule id (the ``group`` property splits the id's text at each call)."""


def _applying(cases: Sequence[DemandCase], policy: Policy) -> dict[str, np.ndarray]:
    """Per rule-id group (LOAD, PROT, ...) that some notification's job type does not apply (policy ``job_types``):
    which notifications apply it. A group every notification of the batch applies is left out (nothing to drop)."""
    jobs = [case.notification.job_type for case in cases]
    distinct = set(jobs)
    per_job = {job: [name in policy.job(job)["checks"] for name in CHECK_GROUPS] for job in distinct}
    partial = [i for i in range(len(CHECK_GROUPS)) if not all(per_job[job][i] for job in distinct)]
    if not partial:  # every job type of the batch applies every group (the common case): no table
        return {}
    table = np.array([per_job[job] for job in jobs], dtype=bool).reshape(len(jobs), len(CHECK_GROUPS))
    groups = list(CHECK_GROUPS.values())
    return {groups[i]: np.ascontiguousarray(table[:, i]) for i in partial}


def run_checks(
    cases: Sequence[DemandCase], evaluation: Evaluation, grid: GridView, policy: Policy, lean: bool = False
) -> CheckTable:
    """Every check of :data:`CHECKS` over the batch, those of the groups a job type does not apply dropped.

    ``lean``: the same results with the same status, value, limit and margins, but names, details and assumptions
    may be left empty (:attr:`CheckInput.lean`)."""
    rows = np.array([k for k, case in enumerate(cases) if case.evaluable], dtype=np.int64)
    data = CheckInput(cases=cases, evaluation=evaluation, grid=grid, policy=policy, rows=rows, lean=lean)
    applying = _applying(cases, policy)
    blocks = []
    for check in CHECKS:
        got = check(data)
        if applying:
            kept = []
            for block in got:
                applies = applying.get(_GROUP_OF[block.rule_id])
                kept.append(block if applies is None or not len(block) else block.subset(applies[block.row]))
            got = kept
        blocks.append(got)
    return CheckTable.concat(len(cases), blocks)
