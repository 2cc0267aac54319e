"""Rule cases as data: every folder of ``tests/data/rules/`` is one notification and its expected decision.

``notification.json`` is the record as an installer would send it; ``expected.json`` holds the
outcome, the rule ids that fail or cannot be evaluated, every check that must appear with its
value and limit, reasons that must be given and checks that must not appear. The numbers come
from the hand calculations in ``tests/rules/cases_*.py`` (named under "source", explained under
"derivation"), which use pandapower results of the case region and never the rule engine.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from powercheck.io import parse_record
from powercheck.models import Outcome
from powercheck.rules.engine import Assessor
from powercheck.rules.rule_ids import RuleId
from tests.helpers.case_region import case_ledger_state
from tests.helpers.compare import differences
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, without_measures
from tests.helpers.rule_cases import CASE_NAMES
from tests.rules.case_derivations import CASES, CASES_DIR, render


@pytest.fixture(scope="session")
def case_assessor(case_region, policy):
    """Decides without the installer's measures: the checks as the derivations compute them (appliance jobs
    auto-approvable, see :func:`tests.helpers.mini.appliance_jobs_auto_approvable`)."""
    return Assessor(case_region, without_measures(appliance_jobs_auto_approvable(policy)), clock=lambda: FIXED_TIME)


@pytest.fixture(scope="session")
def measures_assessor(case_region, policy):
    return Assessor(case_region, appliance_jobs_auto_approvable(policy), clock=lambda: FIXED_TIME)


def _decide(assessor: Assessor, notification: dict, ledger: list[dict]):
    """Decide on a fresh capacity ledger holding the case's earlier requests."""
    record = parse_record(1, notification)
    if record.notification is None:
        return assessor.invalid_decision(record.errors, notification_id=record.raw_id, revision=record.raw_revision)
    state = case_ledger_state(assessor.region, ledger)
    with_ledger = Assessor(assessor.region, assessor.policy, clock=assessor.clock, ledger=state)
    return with_ledger.assess(record.notification)


def _keyed(checks) -> dict:
    """Checks keyed 'RULE', 'RULE#2', ... in decision order."""
    seen: Counter = Counter()
    out = {}
    for c in checks:
        seen[c.rule_id] += 1
        out[c.rule_id if seen[c.rule_id] == 1 else f"{c.rule_id}#{seen[c.rule_id]}"] = c
    return out


@pytest.mark.parametrize("name", CASE_NAMES)
def test_rule_case_with_measures(name, measures_assessor):
    """With the policy's measures: an escalation either becomes approved with the named conditions or lists
    at least one measure with its effect."""
    folder = CASES_DIR / name
    notification = json.loads((folder / "notification.json").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    d = _decide(measures_assessor, notification, expected.get("ledger", []))
    if expected.get("conditional"):
        assert d.outcome == Outcome.APPROVED_WITH_CONDITIONS, d.reasons
        sufficient = [m for m in d.measures if m.sufficient]
        assert sufficient and sufficient[0].id == "+".join(expected["conditional"])
        assert all(c.status == "pass" for c in d.checks)
        assert len(d.conditions) == len(expected["conditional"])
        got = _keyed(d.checks)
        for key, spec in expected.get("conditional_checks", {}).items():  # the conditioned job, by hand
            assert got[key].value == pytest.approx(spec["value"], rel=spec["rel"]), key
            assert got[key].limit == pytest.approx(spec["limit"], rel=1e-12), key
    else:
        assert d.outcome == Outcome(expected["outcome"]), d.reasons
        if d.outcome == Outcome.ESCALATE:
            assert d.measures, "an escalation lists at least one measure"
            assert all(m.effect for m in d.measures)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_rule_case(name, case_assessor):
    folder = CASES_DIR / name
    notification = json.loads((folder / "notification.json").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    d = _decide(case_assessor, notification, expected.get("ledger", []))

    assert d.outcome == Outcome(expected["outcome"]), d.reasons
    got = _keyed(d.checks)
    assert sorted(got) == sorted(expected["checks"]), "the set of checks differs"
    assert sorted({c.rule_id for c in d.checks if c.status == "fail"}) == expected["failing"]
    assert sorted({c.rule_id for c in d.checks if c.status == "not_evaluated"}) == expected["not_evaluated"]
    for key, spec in expected["checks"].items():
        c = got[key]
        assert c.status == spec["status"], key
        if spec["value"] is not None:
            assert c.value == pytest.approx(spec["value"], rel=spec["rel"]), key
        if spec["limit"] is None:
            assert c.limit is None, key
        else:
            assert c.limit == pytest.approx(spec["limit"], rel=1e-12), key
    for reason in expected["reasons"]:
        assert any(r.startswith(reason) or reason in r for r in d.reasons), (reason, d.reasons)
    for rule in expected["absent"]:
        assert rule not in {c.rule_id for c in d.checks}, rule
    for assumption in expected.get("assumptions", []):  # assumptions the decision must name
        assert assumption in d.assumptions, (assumption, d.assumptions)


def test_case_files_are_current():
    """The data files are what the derivations give (regenerate: python -m tests.rules.case_derivations)."""
    assert sorted(CASES) == CASE_NAMES
    for name in CASES:
        notification, expected = render(name)
        folder = CASES_DIR / name
        assert json.loads((folder / "notification.json").read_text(encoding="utf-8")) == notification, name
        # floats to 1e-9 relative or 1e-7 absolute: the last digits depend on the CPU the numba kernels were compiled for
        diff = differences(expected, json.loads((folder / "expected.json").read_text(encoding="utf-8")))
        assert not diff, f"{name}: {diff[:5]}"


def test_cases_cover_every_rule_id_and_outcome():
    assert len(CASE_NAMES) >= 30
    rules, outcomes = set(), set()
    for name in CASE_NAMES:
        expected = json.loads((CASES_DIR / name / "expected.json").read_text(encoding="utf-8"))
        outcomes.add(expected["outcome"])
        rules |= {key.split("#")[0] for key in expected["checks"]}
        rules |= {reason.split(":")[0] for reason in expected["reasons"] if reason.startswith("POLICY.")}
    # ENGINE.ERROR is no rule of a case: it marks an assessment that raised (tests/grid/test_grid_problems.py)
    every = {r.value for r in RuleId if r is not RuleId.ENGINE_ERROR}
    assert every <= rules, every - rules
    assert {"auto_approve", "escalate", "request_info", "reject_incomplete"} <= outcomes
    failing = set()
    for name in CASE_NAMES:
        failing |= set(json.loads((CASES_DIR / name / "expected.json").read_text(encoding="utf-8"))["failing"])
    grid_rules = {r.value for r in RuleId if r.group in ("LOAD", "PROT", "THERMAL", "VOLT", "PQ")}
    assert grid_rules <= failing, grid_rules - failing
