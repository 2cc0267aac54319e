"""Measures on the demo: every escalation and every approval with conditions names at least one measure with
what it achieves, in English and Norwegian; approvals with conditions are feasible as conditioned."""

from __future__ import annotations

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Outcome
from powercheck.rules.engine import Assessor
from powercheck.texts import localize
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable


@pytest.fixture(scope="module")
def demo_decisions(demo_region, policy):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    # a grid owner that auto-approves appliance jobs: measures turn escalations into approvals with conditions
    policy = appliance_jobs_auto_approvable(policy)
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    return assessor.assess_many(notes)


def test_every_escalation_and_conditional_approval_names_a_measure_in_both_languages(demo_decisions):
    conditional = [d for d in demo_decisions if d.outcome is Outcome.APPROVED_WITH_CONDITIONS]
    escalated = [d for d in demo_decisions if d.outcome is Outcome.ESCALATE]
    assert conditional and escalated
    for d in conditional + escalated:
        assert d.measures, d.notification_id
        nb = localize(d, "nb")
        assert nb.language == "nb" and len(nb.measures) == len(d.measures)
        for en_m, nb_m in zip(d.measures, nb.measures):
            assert en_m.text and en_m.effect and nb_m.text and nb_m.effect
            assert en_m.effect != nb_m.effect  # really translated
        assert len(nb.reasons) == len(d.reasons) and nb.reasons != d.reasons or not d.reasons
    for d in conditional:
        sufficient = [m for m in d.measures if m.sufficient and m.by == "installer"]
        assert sufficient and d.conditions
        assert all(c.status == "pass" for c in d.checks)  # the conditioned job passes every check
        assert d.ledger_status == "approved_with_conditions"


def test_norwegian_texts_name_the_same_numbers(demo_decisions):
    d = next(d for d in demo_decisions if any(r.startswith("LOAD.MAIN_FUSE") for r in d.reasons))
    en = next(r for r in d.reasons if r.startswith("LOAD.MAIN_FUSE"))
    nb = next(r for r in localize(d, "nb").reasons if r.startswith("LOAD.MAIN_FUSE"))
    assert "against limit" in en and "mot grensen" in nb
    numbers = [w for w in en.split() if w.replace(".", "").isdigit()]
    assert numbers and all(n in nb for n in numbers)


def test_measure_option_built_directly_equals_the_validated_model(monkeypatch):
    """_option builds the MeasureOption from trusted values without a validation pass: the same model as
    validation gives (field for field, fields set, dump), and never through model_construct's slow path."""
    from powercheck.models import MeasureOption
    from powercheck.rules.measures import _option
    from powercheck.texts import msg, render

    message, effect = msg("measure.main_fuse", fuse=35.0), msg("effect_partial", resolved=["B"], remaining=["A"])
    want = MeasureOption(id="main_fuse", by="installer", text=render(message), effect=render(effect), sufficient=False,
                         resolves=["B"], remaining=["A"], message=message, effect_message=effect, source="policy")  # fmt: skip

    def refuse(cls, **values):
        raise AssertionError("MeasureOption.model_construct called")

    monkeypatch.setattr(MeasureOption, "model_construct", classmethod(refuse))
    got = _option("main_fuse", "installer", message, effect, False, ["B", "B"], ["A"], "policy")
    assert got == want
    assert list(got.__dict__.items()) == list(want.__dict__.items())
    assert got.model_fields_set == want.model_fields_set
    assert got.model_dump(mode="json") == want.model_dump(mode="json")


def test_failing_rules_of_a_batch_equal_each_rows_failing_and_unevaluated_results(demo_region, policy):
    """failing_rules finds, for the whole check table at once, what a row-by-row scan finds: the rule ids of the
    results that fail or are not evaluated, in order, and nothing for rows without results (rejected records)."""
    from powercheck.rules.checks.base import FAIL, NOT_EVALUATED
    from powercheck.rules.measures import failing_rules

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    batch = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_batch(notes)
    checks = batch.checks
    want = [
        [str(checks.rule_id[i]) for i in checks.rows_of(k) if int(checks.status[i]) in (FAIL, NOT_EVALUATED)]
        for k in range(len(notes))
    ]
    got = failing_rules(checks)
    assert got == want
    assert any(not checks.rows_of(k) for k in range(len(notes)))  # rows without results are in the batch
    assert sum(map(len, got)) > 50  # and many failing results (79 on the demo): not a trivial batch
