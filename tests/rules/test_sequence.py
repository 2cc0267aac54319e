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


def _point_pile(region, policy) -> list:
    """Forty records at one located metering point, submitted one after the other: copies of demo records that
    are answered request_info and reject_incomplete (they record nothing) between ones that escalate or are
    auto-approved (they record a request), from two installers -- a point where most of a wave's records rested
    their conflicts on earlier records that record nothing."""
    from datetime import timedelta

    from powercheck.models import Outcome, replaced

    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    decided = Assessor(region, policy, clock=lambda: FIXED_TIME).assess_many(valid)
    first = {}
    for n, d in zip(valid, decided):
        if d.network_id is not None:
            first.setdefault(d.outcome, n)
    kinds = [Outcome.REQUEST_INFO, Outcome.REJECT_INCOMPLETE, Outcome.ESCALATE, Outcome.REQUEST_INFO,
             Outcome.REJECT_INCOMPLETE, Outcome.AUTO_APPROVE, Outcome.REQUEST_INFO, Outcome.ESCALATE]  # fmt: skip
    point = first[Outcome.REQUEST_INFO].metering_point_id
    return [
        replaced(first[kinds[k % len(kinds)]], {
            "notification_id": f"PILE-{k:02d}", "revision": 1, "metering_point_id": point,
            "installer_id": "I-1" if k % 3 else "I-2", "submitted_at": FIXED_TIME + timedelta(minutes=k),
        })
        for k in range(40)
    ]  # fmt: skip


def _in_waves(region, policy, notes) -> tuple[dict, int]:
    """Every record's decision (JSON) decided in waves on a new ledger, and the number of waves."""
    assessor = Assessor(region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(region))
    waves = []
    assess_batch = assessor.assess_batch

    def counted(notes_, preceding=None, doomed=None):
        waves.append(len(notes_))
        return assess_batch(notes_, preceding, doomed)

    assessor.assess_batch = counted
    decisions = assessor.assess_isolated(notes).decisions
    return {d.notification_id: d.model_dump(mode="json") for d in decisions}, len(waves)


def test_records_that_record_nothing_leave_the_next_waves_free_and_change_no_decision(demo_region, policy, monkeypatch):
    """A wave's records at a point rest their conflicts on the earlier ones being open requests; one answered
    request_info or reject_incomplete records nothing, so every record after it at the point is decided again. The
    next wave takes such records as recording nothing (they did last time): the pile is decided in a few waves
    instead of about one per such record, with the decisions of deciding the records one after the other -- also
    when that guess is wrong (forced here for every outcome), which decides the records after it again."""
    from powercheck.rules import sequence

    notes = _point_pile(demo_region, policy)
    one_by_one = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    want = {n.notification_id: one_by_one.assess_recorded([n]).decisions[0].model_dump(mode="json") for n in notes}
    outcomes = {d["outcome"] for d in want.values()}
    assert {"request_info", "reject_incomplete", "escalate"} <= outcomes
    assert sum("LEDGER.CONFLICT" in str(d["checks"]) for d in want.values()) >= 5  # conflicts at the point
    got, waves = _in_waves(demo_region, policy, notes)
    assert got == want
    monkeypatch.setattr(sequence, "_NO_REQUEST", frozenset())  # no guess: a wave per record that records nothing
    got_before, waves_before = _in_waves(demo_region, policy, notes)
    assert got_before == want
    assert waves <= 4 and waves_before >= 15, (waves, waves_before)
    monkeypatch.setattr(sequence, "_NO_REQUEST", frozenset(sequence.Outcome))  # every guess that a record records
    got_wrong, _ = _in_waves(demo_region, policy, notes)  # nothing, wrong for the escalations and approvals
    assert got_wrong == want
