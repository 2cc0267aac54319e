"""The measures' variants are decided lean (:meth:`powercheck.rules.engine.Assessor._variants`): checks without their
texts and assumptions, and only the variants that auto-approve decided again in full. What
:func:`powercheck.rules.measures.apply_measures` reads must equal a full pass of every variant: outcome, failing rule
ids, reasons' keys, demand case, score -- and for an approving variant its checks (every field), assumptions and path.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Outcome
from powercheck.rules.engine import Assessor
from powercheck.rules.measures import failing_rules
from powercheck.rules.path import voltage_paths
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable
from tests.helpers.rule_cases import CASE_NAMES, case_files
from tests.rules.test_cases import _decide


def _same_path(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(a.columns[c], b.columns[c], equal_nan=True) for c in a.columns)


def _compared(monkeypatch) -> dict:
    """Make every variant pass also run in full (the engine's own stages, not lean) and compare the two."""
    seen = {"variants": 0, "approving": 0, "lean_texts": 0}
    lean_pass = Assessor._variants

    def both(self, notifications, preceding=None, bases=None):
        decided, full_of = lean_pass(self, notifications, preceding, bases)
        cases, evaluation, full = self._decided(notifications, preceding, bases)
        approved = {k for k, o in enumerate(full.outcome) if o is Outcome.AUTO_APPROVE}
        paths = voltage_paths(cases, evaluation, self.grid, self.ledger, only=approved)
        assert decided.outcome == full.outcome
        assert failing_rules(decided.checks) == failing_rules(full.checks)
        assert [[m.key for m in r] for r in decided.reasons] == [[m.key for m in r] for r in full.reasons]
        assert list(decided.cases) == list(full.cases)
        assert np.array_equal(decided.score, full.score, equal_nan=True)
        assert sorted(full_of) == sorted(approved)
        for pos in approved:
            of, row = full_of[pos]
            got = [of.checks.result(i) for i in of.checks.rows_of(row)]
            want = [full.checks.result(i) for i in full.checks.rows_of(pos)]
            assert [c.model_dump() for c in got] == [c.model_dump() for c in want]
            assert of.assumptions[row] == full.assumptions[pos]
            assert (math.isnan(of.score[row]) and math.isnan(full.score[pos])) or of.score[row] == full.score[pos]
            assert of.cases[row] == full.cases[pos]
            assert _same_path(of.paths[row], paths[pos])
            assert len(paths[pos]) > 0
        seen["variants"] += len(notifications)
        seen["approving"] += len(approved)
        seen["lean_texts"] += sum(a != b for a, b in zip(decided.checks.detail, full.checks.detail))
        return decided, full_of

    monkeypatch.setattr(Assessor, "_variants", both)
    return seen


@pytest.mark.parametrize("ledger", [False, True])
def test_lean_variants_equal_a_full_pass_on_the_demo(demo_region, policy, monkeypatch, ledger):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    seen = _compared(monkeypatch)
    state = CapacityState.empty(demo_region) if ledger else None
    Assessor(demo_region, policy, ledger=state, clock=lambda: FIXED_TIME).assess_many(notes)
    assert seen["variants"] > 100 and seen["approving"] > 0
    assert seen["lean_texts"] > 0  # the lean pass really leaves texts out


def test_lean_variants_equal_a_full_pass_on_every_rule_case(case_region, policy, monkeypatch):
    seen = _compared(monkeypatch)
    assessor = Assessor(case_region, appliance_jobs_auto_approvable(policy), clock=lambda: FIXED_TIME)
    for name in CASE_NAMES:
        notification, expected = case_files(name)
        _decide(assessor, notification, expected.get("ledger", []))
    assert seen["variants"] > 0 and seen["approving"] > 0


def test_a_lean_pass_the_full_pass_contradicts_is_replaced_by_a_full_pass(demo_region, policy, monkeypatch):
    """Should the lean checks ever approve a variant the full ones do not, the variants are decided in full (as
    before the lean pass) rather than failing the batch: the demo's decisions stay those of an assessor without the
    fault."""
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    want = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_many(notes)
    decided = Assessor._decided
    faults = {"made": 0}

    def contradicting(self, notifications, preceding=None, bases=None, lean=False):
        cases, evaluation, batch = decided(self, notifications, preceding, bases, lean=lean)
        approving = [k for k, o in enumerate(batch.outcome) if o is Outcome.AUTO_APPROVE]
        if not lean and bases is not None and approving and len(notifications) == len(approving):
            faults["made"] += 1  # the full re-run of the approving variants: say the first one escalates
            outcome = list(batch.outcome)
            outcome[0] = Outcome.ESCALATE
            batch = dataclasses.replace(batch, outcome=outcome)
        return cases, evaluation, batch

    monkeypatch.setattr(Assessor, "_decided", contradicting)
    got = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_many(notes)
    assert faults["made"] > 0
    assert [d.model_dump_json() for d in got] == [d.model_dump_json() for d in want]
