"""The demand stage's batch paths equal its one-by-one paths to the bit.

* :func:`powercheck.rules.accounting.accounts_batch` (the power accountings of many installations as arrays) against
  :func:`powercheck.rules.accounting.accounts` (one installation at a time), on the demo notifications, the rule
  cases' notifications and demo installations changed to reach every branch (budgets with single-phase appliances
  above and below the budget, export budgets with single-phase generators, single-phase supplies, starts).
* :func:`powercheck.rules.demand.demand_cases` -- which takes the batch path from
  :data:`~powercheck.rules.demand.BATCH_ACCOUNTING_MIN` notifications on -- against
  :func:`powercheck.rules.demand.demand_case` for each notification.
* :func:`powercheck.rules.accounting.required_fuse_a`, which starts at the first standard size by bisection,
  against a scan of the sizes from the smallest (the definition: the smallest size not below the current).

Accountings are compared by ``repr``: every float to the last bit, and ``-0.0`` apart from ``0.0``.
"""

from __future__ import annotations

import math

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.models import PowerBudget
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN
from powercheck.rules.accounting import Accounting, AccountingInput, accounts, accounts_batch, required_fuse_a
from powercheck.rules.context import GridView
from powercheck.rules.demand import BATCH_ACCOUNTING_MIN, DemandCase, _job_of, demand_case, demand_cases
from powercheck.rules.policy import PolicyKey
from tests.helpers.rule_cases import case_notifications

SCALES = (1.0, 0.0, 0.5)


def _one_by_one(inputs: list[AccountingInput], policy) -> list[list[Accounting]]:
    return [
        accounts(i.notification, i.appliances, existing_kw=i.existing_kw, existing_export_kw=i.existing_export_kw,
                 same_point_kw=i.same_point_kw, supply=i.supply, u_ll_v=i.u_ll_v, policy=policy, scales=SCALES)
        for i in inputs
    ]  # fmt: skip


def _inputs(notifications, region, policy) -> list[AccountingInput]:
    """The accounting inputs of the notifications whose grid checks run."""
    grid = GridView.of(region)
    rows = region.locate([n.metering_point_id for n in notifications])
    jobs = [_job_of(n, int(row), grid, policy, None, (), False, None) for n, row in zip(notifications, rows)]
    return [job.site for job in jobs if not isinstance(job, DemandCase)]


def _assert_same(inputs, policy):
    batched = accounts_batch(inputs, policy, scales=SCALES)
    single = _one_by_one(inputs, policy)
    assert len(batched) == len(single) == len(inputs)
    for k, (got, want) in enumerate(zip(batched, single)):
        assert repr(got) == repr(want), f"installation {k}: {inputs[k].notification.notification_id}"


def _demo(policy, region) -> list[AccountingInput]:
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    return _inputs(notes, region, policy)


def test_batched_accountings_equal_one_by_one_on_the_demo(demo_region, policy):
    inputs = _demo(policy, demo_region)
    _assert_same(inputs, policy)
    # the demo reaches budgets, exports, single-phase appliances and starts (single-phase supplies: see below)
    assert any(i.notification.power_budget is not None for i in inputs)
    assert any(a.conn != CONN_3PH for i in inputs for a in i.appliances)
    assert any(a.kind.generates for i in inputs for a in i.appliances)
    assert any(a.start_current_ratio > 1.0 for i in inputs for a in i.appliances)


def test_batched_accountings_equal_one_by_one_on_changed_installations(demo_region, policy):
    """Demo installations moved into the branches the demo reaches rarely: every supply, budgets below, between
    and above their single-phase appliances, export budgets above and below the existing export, ledger load at
    the point, no existing peak."""
    base = _demo(policy, demo_region)
    changed = []
    for k, i in enumerate(base):
        listed = sum(a.total_kw for a in i.appliances if a.kind.consumes)
        for supply in (CONN_3PH, CONN_LN, CONN_LL):
            for demand in (0.5 * listed, listed + 3.0, i.existing_kw + 1.0):
                export = (0.0, 2.0, i.existing_export_kw + 5.0)[k % 3]
                cos = (None, 0.9)[k % 2]
                budget = PowerBudget(max_demand_kw=demand, max_export_kw=export, cos_phi=cos)
                n = i.notification.model_copy(update={"power_budget": budget})
                changed.append(i._replace(notification=n, supply=supply, same_point_kw=(0, 4.5)[k % 2]))
            changed.append(i._replace(supply=supply, existing_kw=0.0, existing_export_kw=(0.0, 3.0)[k % 2]))
    _assert_same(changed, policy)
    # the changes reach the budget's single-phase share both below and above the budget, and exports
    got = accounts_batch(changed, policy, scales=(1.0,))
    assert any(a[0].export_phase_current_a > 0 and i.supply == CONN_3PH for a, i in zip(got, changed))
    assert any(a[0].start_current_a is not None and i.supply != CONN_3PH for a, i in zip(got, changed))
    singles = [sum(x.total_kw for x in i.appliances if x.kind.consumes and x.conn != CONN_3PH) for i in changed]
    budgets = [i.notification.power_budget for i in changed]
    assert any(b is not None and 0 < s > b.max_demand_kw for s, b in zip(singles, budgets))
    assert any(b is not None and 0 < s < b.max_demand_kw for s, b in zip(singles, budgets))


def test_batched_accountings_equal_one_by_one_on_the_rule_cases(case_region, policy):
    notes = case_notifications()
    inputs = _inputs(notes, case_region, policy)
    assert len(inputs) >= 40  # most rule cases reach the grid checks
    _assert_same(inputs, policy)


def test_a_batch_of_nothing_is_nothing(policy):
    assert accounts_batch([], policy, scales=SCALES) == []


@pytest.mark.parametrize("screening", [False, True])
def test_demand_cases_in_a_batch_equal_each_case_alone(demo_region, policy, screening):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    grid = GridView.of(demo_region)
    batched = demand_cases(notes, grid, policy, screening=screening)
    evaluable = sum(c.evaluable for c in batched)
    assert evaluable >= BATCH_ACCOUNTING_MIN  # the batch path was taken
    rows = demo_region.locate([n.metering_point_id for n in notes])
    alone = [demand_case(n, int(row), grid, policy, screening=screening) for n, row in zip(notes, rows)]
    assert [repr(c) for c in batched] == [repr(c) for c in alone]
    # and a batch below the threshold (one by one inside demand_cases) is the same too
    few = notes[: BATCH_ACCOUNTING_MIN // 2]
    assert demand_cases(few, grid, policy, screening=screening) == alone[: len(few)]


def test_required_fuse_is_the_smallest_standard_size_that_carries_the_current(policy):
    sizes = [float(s) for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)]

    def scan(need: float) -> float | None:  # the definition, size by size from the smallest
        return next((s for s in sizes if not s + 1e-9 < need), None)

    needs = [0.0, 1.0, math.nan, sizes[-1] + 1.0, 1e9]
    for s in sizes:
        needs += [s - 1e-6, s - 1e-9, s, s + 5e-10, s + 1e-9, s + 2e-9, s + 1e-6, s + 0.5]
    for need in needs:
        for demand, export in ((need, 0.0), (0.0, need)):
            acc = Accounting(
                demand_after_kw=0.0,
                phase_current_a=demand,
                export_after_kw=0.0,
                export_phase_current_a=export,
                start_current_a=None,
                start_duration_s=None,
                start_label=None,
                assumptions=(),
            )
            got, want = required_fuse_a(acc, policy), scan(max(demand, export))
            assert got == want or (got is None and want is None), need
    # worked examples: 25.0 A needs the 25 A fuse, 25.1 A the 32 A one (policy sizes 10, 16, 20, 25, 32, ...)
    assert sizes[:5] == [10.0, 16.0, 20.0, 25.0, 32.0]
    one = Accounting(0.0, 25.0, 0.0, 0.0, None, None, None, ())
    assert required_fuse_a(one, policy) == 25.0
    assert required_fuse_a(Accounting(0.0, 25.1, 0.0, 0.0, None, None, None, ()), policy) == 32.0
    assert required_fuse_a(Accounting(0.0, sizes[-1] + 1.0, 0.0, 0.0, None, None, None, ()), policy) is None


def test_a_case_adds_its_appliances_in_order_as_the_batch_does():
    """The lone case's sums add in row order from 0.0, as ``np.bincount`` adds a batch's rows -- not with the
    compensated rounding of Python 3.12's ``sum``, which would let a notification's currents depend on its batch.

    By hand: 1e16 + 1 rounds to 1e16 (the spacing of doubles there is 2), minus 1e16 gives 0.0; a compensated or
    exact sum gives 1.0."""
    import numpy as np

    from powercheck.rules.accounting import _in_order

    values = [1e16, 1.0, -1e16]
    assert _in_order(values) == 0.0
    assert math.fsum(values) == 1.0
    assert _in_order(values) == np.bincount(np.zeros(3, dtype=np.int64), weights=values)[0]
    assert _in_order([]) == 0.0
