"""The rule engine: notifications + grid region + policy -> decisions, one stage after the other.

::

    notifications --demand--> DemandCase[] --evaluate--> Evaluation --checks--> CheckTable --decide--> decisions
                                                      \\--inverse--> SizeLimit[] ------------------^

* :mod:`~powercheck.rules.demand`: what each job adds, where, on which connection (Python, per notification);
* :mod:`~powercheck.rules.evaluate`: the numba kernels of :mod:`powercheck.quality` over the batch;
* :mod:`~powercheck.rules.checks`: every check of the check table, as columns;
* :mod:`~powercheck.rules.inverse`: how large the job may be (closed forms on the evaluation);
* :mod:`~powercheck.rules.decide`: outcome, score, reasons;
* :mod:`~powercheck.rules.measures`: for escalations, the measures that would help; an installer's
  measure that makes every check pass gives ``approved_with_conditions``.

With a capacity ledger (:class:`~powercheck.ledger.state.CapacityState`) the stages read the
grid as it will be -- every approved-but-not-built request applied -- and
:mod:`~powercheck.rules.sequence` decides a batch in submitted order, each decision recorded
in the ledger before the next record is assessed. Without one, every notification is judged
alone against the static grid (studies, tests of single rules).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

from powercheck.gcpause import gc_paused
from powercheck.grid.region import GridRegion
from powercheck.ledger.state import CapacityState
from powercheck.models import Decision, Notification, Outcome
from powercheck.rules.checks import run_checks
from powercheck.rules.connection import network_data
from powercheck.rules.context import GridView
from powercheck.rules.decide import DecisionBatch, decide, error_decision, invalid_decision
from powercheck.rules.demand import demand_cases
from powercheck.rules.evaluate import Evaluation, evaluate
from powercheck.rules.inverse import size_limits
from powercheck.rules.measures import apply_measures
from powercheck.rules.path import voltage_paths
from powercheck.rules.policy import Policy
from powercheck.rules.sequence import Assessment, DecisionRef, assess_in_order, order_key

log = logging.getLogger("powercheck.engine")


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
    ledger : CapacityState, optional
        The capacity ledger's state; every decision is recorded in it (see the module docstring).
    language : str
        Language of reasons, conditions and measures: "en" or "nb" (decisions keep the messages).
    screening : bool
        A screening study: challenging appliances without datasheet values are assessed on the policy's
        appliance defaults (named in the reasons and assumptions) instead of being answered ``request_info``.
    """

    def __init__(
        self,
        region: GridRegion,
        policy: Policy,
        *,
        clock: Callable[[], datetime] | None = None,
        ledger: CapacityState | None = None,
        language: str = "en",
        screening: bool = False,
    ):
        self.region = region
        self.screening = screening
        self.language = language
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.grid = GridView.of(region)
        self.ledger = ledger

    def assess(self, notification: Notification) -> Decision:
        """Decide one notification."""
        return self.assess_many([notification])[0]

    def assess_many(self, notifications: Sequence[Notification]) -> list[Decision]:
        """Decide a batch of notifications (order of the input preserved)."""
        return self.assess_recorded(notifications).decisions

    def assess_recorded(self, notifications: Sequence[Notification]) -> Assessment:
        """Decide a batch; with a ledger in submitted order, returning the requests recorded in it."""
        with gc_paused():  # see powercheck.gcpause: the batch's objects are freed by reference counting
            return self._assess_recorded(notifications)

    def _assess_recorded(self, notifications: Sequence[Notification]) -> Assessment:
        if self.ledger is None:
            batch = self.assess_batch(notifications)
            entries = [DecisionRef(batch, k) for k in range(len(notifications))]
            return Assessment(entries=entries, language=self.language)
        rows = self.region.locate([n.metering_point_id for n in notifications])
        networks = [str(self.grid.customers.network_id[r]) if r >= 0 else None for r in rows]
        return assess_in_order(notifications, networks, self.ledger, self.assess_batch, self.language)

    def assess_isolated(self, notifications: Sequence[Notification]) -> Assessment:
        """:meth:`assess_recorded`, but one notification whose assessment raises never stops the others.

        When the batch raises, the ledger state is put back as it was and the notifications are
        decided one at a time (in submitted order); one that still raises gets an ``ENGINE.ERROR``
        escalation naming the error (logged with its traceback under an error id) and records
        nothing in the ledger.
        """
        journal = self.ledger.begin() if self.ledger is not None else None
        try:
            assessed = self.assess_recorded(notifications)
        except Exception:
            if journal is not None:
                self.ledger.rollback(journal)  # undoes this batch's changes only (not a copy of the whole ledger)
            if len(notifications) <= 1:
                return self._error_assessment(notifications)
            log.warning("a batch of %d failed; deciding its notifications one at a time", len(notifications))
        else:
            if journal is not None:
                self.ledger.commit(journal)
            return assessed
        entries: list = [None] * len(notifications)
        requests: list = [None] * len(notifications)
        for i in sorted(range(len(notifications)), key=lambda i: order_key(notifications[i], i)):
            one = self.assess_isolated([notifications[i]])
            entries[i], requests[i] = one.entries[0], one.requests[0]
        return Assessment(entries=entries, requests=requests, language=self.language)

    def _error_assessment(self, notifications: Sequence[Notification]) -> Assessment:
        kind = type(sys.exc_info()[1]).__name__
        out = []
        for n in notifications:
            error_id = uuid.uuid4().hex[:12]
            log.exception("assessment of %s revision %s failed (error %s)", n.notification_id, n.revision, error_id)
            out.append(self.error_decision(n, f"internal error {error_id}, {kind}"))
        return Assessment(decisions=out, requests=[None] * len(out))

    def error_decision(self, notification: Notification, error: str) -> Decision:
        """The decision for a notification whose assessment failed: escalate, ENGINE.ERROR not evaluated."""
        return error_decision(
            notification,
            error,
            policy=self.policy,
            grid_model_version=self.region.version,
            now=self.clock(),
            lang=self.language,
        )

    def assess_batch(
        self,
        notifications: Sequence[Notification],
        preceding=None,
        doomed: Callable[[DecisionBatch], Collection[int]] | None = None,
    ) -> DecisionBatch:
        """Decide a batch on the ledger's current state (nothing recorded), with the measures that would help.

        ``preceding[k]``: requests earlier records of the batch make at record k's metering point.
        ``doomed(batch)``: rows of the batch (decided without measures) whose decisions will be thrown away whatever
        their measures (:func:`~powercheck.rules.sequence.assess_in_order` decides them again in its next wave);
        their measures are not worked out.
        """
        batch, skip = self._answered(notifications, preceding, doomed)

        def assess_variants(variants: list[Notification], origins: list[int]):
            before = [preceding[o] for o in origins] if preceding else None
            return self._variants(variants, before, bases=[batch.cases[o] for o in origins])

        return apply_measures(batch, assess_variants, self.policy, self.grid, skip)

    def _decided(
        self, notifications: Sequence[Notification], preceding=None, bases=None, lean: bool = False
    ) -> tuple[list, Evaluation, DecisionBatch]:
        """demand -> evaluate -> checks -> decide: the cases, their evaluation and the batch (without answers).
        ``bases[k]``: the demand case notification k is a measure's variant of. ``lean``: the checks without their
        texts and assumptions (:func:`~powercheck.rules.checks.run_checks`): outcome, score and failing rules are the
        same, the checks' names and details, the reasons' texts and the assumptions are not."""
        cases = demand_cases(notifications, self.grid, self.policy, self.ledger, preceding, self.screening, bases=bases)
        evaluation = evaluate(cases, self.grid, self.policy, self.ledger)
        checks = run_checks(cases, evaluation, self.grid, self.policy, lean=lean)
        return cases, evaluation, decide(cases, checks, self.grid, self.policy, self.clock())

    def _answered(
        self, notifications: Sequence[Notification], preceding=None, doomed=None
    ) -> tuple[DecisionBatch, Collection[int]]:
        """The decided batch with the voltage paths, inverse answers and network data of its rows, and the rows
        ``doomed(batch)`` gives (they get no path and no inverse answers)."""
        cases, evaluation, batch = self._decided(notifications, preceding)
        skip = doomed(batch) if doomed is not None else ()
        kept = set(range(len(cases))).difference(skip) if skip else None
        paths = voltage_paths(cases, evaluation, self.grid, self.ledger, only=kept)
        limits = size_limits(cases, evaluation, self.grid, self.policy, self.ledger, skip=skip)
        data = network_data(cases, evaluation, self.grid, self.policy)
        return dataclasses.replace(batch, limits=limits, network_data=data, paths=paths), skip

    def _variants(
        self, notifications: Sequence[Notification], preceding=None, bases=None
    ) -> tuple[DecisionBatch, dict[int, tuple[DecisionBatch, int]]]:
        """A batch of variants (:mod:`powercheck.rules.measures`) of the demand cases ``bases``, decided lean (what
        :func:`~powercheck.rules.measures.apply_measures` reads of a variant that does not approve: outcome, failing
        rules, reasons' keys, demand case), and ``full``: per variant that auto-approves, ``(batch, row)`` of it decided
        again in full -- checks with their texts, assumptions, score and path -- as it approves its notification with
        conditions."""
        cases, evaluation, batch = self._decided(notifications, preceding, bases, lean=True)
        approved = [k for k, outcome in enumerate(batch.outcome) if outcome is Outcome.AUTO_APPROVE]
        if not approved:
            return batch, {}
        before = [preceding[k] for k in approved] if preceding else None
        base = [bases[k] for k in approved] if bases else None
        full_cases, full_evaluation, full = self._decided([notifications[k] for k in approved], before, base)
        full = dataclasses.replace(full, paths=voltage_paths(full_cases, full_evaluation, self.grid, self.ledger))
        if any(full.outcome[row] is not Outcome.AUTO_APPROVE for row in range(len(approved))):
            # the lean checks decided otherwise than the full ones (tests/rules/test_lean_variants.py holds them
            # equal): decide every variant in full rather than fail the batch or keep a lean outcome
            cases, evaluation, batch = self._decided(notifications, preceding, bases)
            approved = [k for k, outcome in enumerate(batch.outcome) if outcome is Outcome.AUTO_APPROVE]
            batch = dataclasses.replace(batch, paths=voltage_paths(cases, evaluation, self.grid, self.ledger,
                                                                   only=set(approved)))  # fmt: skip
            return batch, {k: (batch, k) for k in approved}
        return batch, {k: (full, row) for row, k in enumerate(approved)}

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
            lang=self.language,
        )
