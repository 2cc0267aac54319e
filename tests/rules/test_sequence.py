"""Deciding in waves skips the measures and answers of records a wave will not keep, and that changes no decision
(issue 13).

:func:`~powercheck.rules.sequence.assess_in_order` decides the records of a wave together and keeps those
that no earlier record of the wave changed (capacity reserved on their network, or a conflict resting on a
record that records nothing); the others are decided again in the next wave. Before working out measures,
inverse answers and paths it asks which rows are certainly not kept (``doomed``) and skips them. The reference
is the same run with nothing skipped: every decision of the demo mix (all columns of the decisions table) must be
equal, and the skip must have skipped rows, or the comparison would prove nothing.
"""

from __future__ import annotations

import pyarrow as pa

from powercheck.columnar import decision_tables
from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME


def _decide(region, policy, doomed_seen: list | None = None) -> pa.Table:
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    assessor = Assessor(region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(region))
    assess_batch = assessor.assess_batch

    def wave(notes, preceding=None, doomed=None):
        if doomed_seen is None:  # the reference: nothing skipped
            return assess_batch(notes, preceding)

        def counted(batch):
            rows = doomed(batch)
            doomed_seen.append(len(rows))
            return rows

        return assess_batch(notes, preceding, counted)

    assessor.assess_batch = wave
    assessed = assessor.assess_isolated(valid)
    decisions, _ = decision_tables(assessed.entries, list(range(len(valid))))
    return decisions


def test_skipping_rows_a_wave_does_not_keep_changes_no_decision(demo_region, policy):
    doomed_seen: list[int] = []
    skipping = _decide(demo_region, policy, doomed_seen)
    reference = _decide(demo_region, policy)
    assert sum(doomed_seen) > 0  # the demo mix has waves with rows decided again: the skip did skip
    assert len(doomed_seen) > 1
    assert skipping.num_rows == reference.num_rows > 200
    assert skipping.equals(reference)  # every column: outcomes, checks, measures, limits, paths, ledger status


def test_doomed_rows_get_no_measures_or_answers_and_keep_their_outcome_before_measures(demo_region, policy):
    """Without the callback every row gets its measures and answers (the service and single requests); rows it
    names get none, and keep the outcome they had before measures (an approval with conditions stays an
    escalation)."""
    from powercheck.models import Outcome

    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:30]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME)
    full = assessor.assess_batch(valid)
    skipped = assessor.assess_batch(valid, None, lambda batch: set(range(len(batch))))
    assert sum(map(len, full.limits)) > 0 and sum(map(len, full.measures)) > 0
    assert sum(map(len, skipped.limits)) == 0 and sum(map(len, skipped.measures)) == 0
    assert Outcome.APPROVED_WITH_CONDITIONS in full.outcome
    before = [Outcome.ESCALATE if o is Outcome.APPROVED_WITH_CONDITIONS else o for o in full.outcome]
    assert skipped.outcome == before
