"""The rule engine: notifications + grid region + policy -> decisions, one stage after the other.

::

    notifications --demand--> DemandCase[] --evaluate--> Evaluation --checks--> CheckTable --decide--> decisions

* :mod:`~powercheck.rules.demand`: what each job adds, where, on which connection (Python, per notification);
* :mod:`~powercheck.rules.evaluate`: the numba kernels of :mod:`powercheck.quality` over the batch;
* :mod:`~powercheck.rules.checks`: every check of the check table, as columns;
* :mod:`~powercheck.rules.decide`: outcome, score, reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from powercheck.grid.region import GridRegion
from powercheck.models import Decision, Notification
from powercheck.rules.checks import run_checks
from powercheck.rules.context import GridView
from powercheck.rules.decide import DecisionBatch, decide, invalid_decision
from powercheck.rules.demand import demand_cases
from powercheck.rules.evaluate import evaluate
from powercheck.rules.policy import Policy


class Assessor:
    """Decides notifications against one grid region and one policy.

    Parameters
    ----------
    region : GridRegion
        The grid model with its customer index.
    policy : Policy
        Limits and assumptions.
    clock : callable, optional
        Returns the decision timestamp (injectable for reproducible tests).
    """

    def __init__(self, region: GridRegion, policy: Policy, *, clock: Callable[[], datetime] | None = None):
        self.region = region
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.grid = GridView.of(region)

    def assess(self, notification: Notification) -> Decision:
        """Decide one notification."""
        return self.assess_many([notification])[0]

    def assess_many(self, notifications: Sequence[Notification]) -> list[Decision]:
        """Decide a batch of notifications (vectorised; order preserved)."""
        return self.assess_batch(notifications).decisions()

    def assess_batch(self, notifications: Sequence[Notification]) -> DecisionBatch:
        """Decide a batch, keeping the decisions as columns."""
        cases = demand_cases(notifications, self.grid, self.policy)
        evaluation = evaluate(cases, self.grid, self.policy)
        checks = run_checks(cases, evaluation, self.grid, self.policy)
        return decide(cases, checks, self.grid, self.policy, self.clock())

    def invalid_decision(
        self,
        errors: Sequence[str],
        *,
        notification_id: str | None,
        revision: int | None = None,
        source: str = "",
    ) -> Decision:
        """The decision for input that failed validation: reject_incomplete, errors named by field."""
        return invalid_decision(
            errors,
            notification_id=notification_id,
            revision=revision,
            source=source,
            policy=self.policy,
            grid_model_version=self.region.version,
            now=self.clock(),
        )
