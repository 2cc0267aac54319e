"""A decided batch row's JSON without the Decision is the Decision's ``model_dump_json``, byte for byte (issue 13).

The service stores and answers ``Decision.model_dump_json()``; :mod:`powercheck.decision_json` writes the same text
from the batch's fields and columns. Compared here on the demo notifications decided in submitted order on a ledger
that starts empty (so approvals, escalations with ledger statuses, incomplete and request_info rows), on every
rule case of ``tests/data/rules`` with and without measures (approvals with conditions, ledger conflicts, completion
notices, grid-data problems), in Norwegian, and on rows made to carry the values a model formats on its own
(an int in a float field, NaN and infinite floats, a path given as PathPoint objects).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from powercheck.decision_json import DecisionRecord, decision_json, record_of, records
from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.models import Decision, PathPoint, construct
from powercheck.rules.decide import DecisionBatch
from powercheck.rules.engine import Assessor
from powercheck.rules.sequence import DecisionRef
from tests.helpers.mini import FIXED_TIME
from tests.helpers.rule_cases import CASE_NAMES, case_entries, demo_entries


def assert_same_json(entries, lang: str = "en") -> list[dict]:
    """Every entry's record equals its Decision's dump; returns the decisions as parsed JSON."""
    out = []
    for entry, record in zip(entries, records(entries, lang), strict=True):
        decision = entry.decision(lang) if isinstance(entry, DecisionRef) else entry
        want = decision.model_dump_json()
        if isinstance(entry, DecisionRef):
            assert decision_json(entry.batch, entry.k, lang, entry.ledger_status) == want
        assert record.json == want, f"{decision.notification_id}: the JSON differs from the Decision's"
        assert record == DecisionRecord(
            decision.notification_id,
            decision.revision,
            decision.input_hash,
            str(decision.outcome),
            decision.policy_id,
            decision.policy_version,
            decision.policy_hash,
            decision.grid_model_version,
            want,
        )
        out.append(json.loads(want))
    return out


def test_demo_json_equals_decision_dump(demo_region, policy):
    entries, _ = demo_entries(demo_region, policy)
    # the demo has invalid records: their Decision objects are dumped as they are
    assert any(not isinstance(e, DecisionRef) for e in entries)
    rows = assert_same_json(entries)
    outcomes = {row["outcome"] for row in rows}
    assert {"auto_approve", "escalate", "reject_incomplete", "request_info"} <= outcomes
    assert {row["ledger_status"] for row in rows} >= {"approved", "pending", None}
    assert any(row["path"] for row in rows) and any(row["measures"] for row in rows)
    assert any(row["limits"] for row in rows) and any(row["network_data"] for row in rows)
    assert any(c["value"] is None for row in rows for c in row["checks"])  # not-evaluated checks: null values


def test_demo_json_equals_decision_dump_in_norwegian(demo_region, policy):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:40]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, language="nb")
    rows = assert_same_json(assessor.assess_recorded(valid).entries, lang="nb")
    assert {row["language"] for row in rows} == {"nb"}


def test_rule_cases_json_equals_decision_dump(case_region, policy):
    outcomes: set[str] = set()
    failed_rules: set[str] = set()
    for name in CASE_NAMES:
        for measures in (False, True):
            expected, entries = case_entries(name, case_region, policy, measures)
            (row,) = assert_same_json(entries)
            if not measures:
                assert row["outcome"] == expected["outcome"], name
            outcomes.add(row["outcome"])
            failed_rules |= {c["rule_id"] for c in row["checks"] if c["status"] == "fail"}
    # the cases cover every outcome, ledger conflicts and approvals with conditions (their conditioned checks)
    assert outcomes == {"auto_approve", "approved_with_conditions", "escalate", "request_info", "reject_incomplete"}
    assert "LEDGER.CONFLICT" in failed_rules


class _Odd(DecisionBatch):
    """A batch whose rows carry values a Decision formats by its field types: an int fuse (``63.0``), a NumPy int
    bus, a NaN score and an infinite one."""

    def decision_fields(self, k, lang="en", heavy=True, ledger_status=None, input_hash=None):
        fields = super().decision_fields(k, lang, heavy, ledger_status, input_hash)
        fields.update(required_main_fuse_a=63, bus=np.int64(7), score=[math.nan, math.inf, -0.0][k % 3])
        return fields


def test_values_formatted_by_field_type(demo_region, policy):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:30]
    assessed = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_recorded(valid)
    batch = assessed.entries[0].batch
    odd = _Odd(**{f.name: getattr(batch, f.name) for f in dataclasses.fields(DecisionBatch)})
    k = next(i for i in range(len(odd)) if odd.paths and len(odd.paths[i]))
    # a path point with a NaN voltage, and the same path given as PathPoint objects
    columns = {name: np.array(values, copy=True) for name, values in odd.paths[k].columns.items()}
    columns["v_low_pu"][0] = np.nan
    points = [PathPoint.model_construct(**p.model_dump()) for p in type(odd.paths[k])(columns)]
    for paths in (
        [*odd.paths[:k], type(odd.paths[k])(columns), *odd.paths[k + 1 :]],
        [*odd.paths[:k], points, *odd.paths[k + 1 :]],
    ):
        variant = dataclasses.replace(odd, paths=paths)
        for row in range(3):
            want = construct(Decision, variant.decision_fields(row)).model_dump_json()
            got = decision_json(variant, row)
            assert got == want
        text = decision_json(variant, k)
        assert '"required_main_fuse_a":63.0' in text and '"bus":7,' in text
        assert '"v_low_pu":null' in text
    assert '"score":null' in decision_json(odd, 0) and '"score":null' in decision_json(odd, 1)
    assert '"score":-0.0' in decision_json(odd, 2)


def test_record_of_error_decision_and_record(demo_region, policy):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:1]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME)
    error = assessor.error_decision(valid[0], "internal error abc, ValueError")
    record = record_of(error)
    assert record.json == error.model_dump_json() and record.outcome == "escalate"
    assert record.input_hash == valid[0].input_hash()
    assert record_of(record) is record


@pytest.mark.parametrize("lang", ["en", "nb"])
def test_records_keep_entry_order(demo_region, policy, lang):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:12]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, language=lang)
    assessed = assessor.assess_recorded(valid)
    got = [(r.notification_id, r.revision) for r in records(assessed.entries, lang)]
    assert got == [(n.notification_id, n.revision) for n in valid]


def test_records_with_the_callers_input_hashes(demo_region, policy):
    """The service's batch endpoint has each notification's input hash already (to tell replays from conflicts) and
    hands it in: the records are the same as with the hashes computed here, and the hash given is the one written."""
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:12]
    assessed = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_recorded(valid)
    hashes = [n.input_hash() for n in valid]
    assert records(assessed.entries, input_hashes=hashes) == records(assessed.entries)
    given = records(assessed.entries, input_hashes=[f"h{i}" for i in range(len(valid))])
    assert [r.input_hash for r in given] == [f"h{i}" for i in range(len(valid))]
    assert all(f'"input_hash":"h{i}"' in r.json for i, r in enumerate(given))
    with pytest.raises(ValueError):
        records(assessed.entries, input_hashes=hashes[:-1])
