"""The rule cases (tests/data/rules) and the demo file as the tests that compare two paths of the engine read and
decide them."""

from __future__ import annotations

import json

from powercheck.demo import demo_notifications_path
from powercheck.io import parse_record, read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.sequence import DecisionRef
from tests.helpers.case_region import case_ledger_state
from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, without_measures
from tests.rules.case_model import CASES_DIR

CASE_NAMES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expected.json").is_file())


def case_files(name: str) -> tuple[dict, dict]:
    """A case's notification and expected decision, as stored."""
    folder = CASES_DIR / name
    return tuple(json.loads((folder / f).read_text(encoding="utf-8")) for f in ("notification.json", "expected.json"))


def case_notifications() -> list[Notification]:
    """The notifications of the cases that validate, in case-name order."""
    records = [parse_record(1, case_files(name)[0]) for name in CASE_NAMES]
    return [r.notification for r in records if r.notification is not None]


def case_entries(name: str, region, policy, measures: bool) -> tuple[dict, list]:
    """A case decided alone on a fresh ledger holding its earlier requests, appliance jobs auto-approvable, with or
    without the installer's measures: its expected decision and the assessment's entries (an invalid record's
    decision when the notification does not validate)."""
    notification, expected = case_files(name)
    record = parse_record(1, notification)
    case_policy = appliance_jobs_auto_approvable(policy)
    assessor = Assessor(
        region,
        case_policy if measures else without_measures(case_policy),
        clock=lambda: FIXED_TIME,
        ledger=case_ledger_state(region, expected.get("ledger", [])),
    )
    if record.notification is None:
        return expected, [assessor.invalid_decision(record.errors, notification_id=record.raw_id, source="line 1")]
    return expected, assessor.assess_isolated([record.notification]).entries


def demo_entries(region, policy) -> tuple[list, list[int]]:
    """The demo file decided at once on an empty ledger (``assess_isolated``), in line order: each record's entry --
    the assessment's :class:`DecisionRef` of a valid record, the invalid record's decision otherwise -- and each
    record's line."""
    records = sorted(read_notifications(demo_notifications_path()), key=lambda r: r.line)
    assessor = Assessor(region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(region))
    assessed = assessor.assess_isolated([r.notification for r in records if r.ok])
    assert all(isinstance(e, DecisionRef) for e in assessed.entries)
    decided = iter(assessed.entries)
    entries = [
        next(decided)
        if r.ok
        else assessor.invalid_decision(r.errors, notification_id=r.raw_id, source=f"line {r.line}")
        for r in records
    ]
    return entries, [r.line for r in records]
