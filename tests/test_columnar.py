"""The columnar path writes the same decisions as the object path (issue 13).

The object path makes a :class:`Decision` per notification (with a :class:`CheckResult` per check and a
:class:`PathPoint` per bus of its path) and writes ``decision_row`` dicts through ``pyarrow``; the columnar
path (:mod:`powercheck.columnar`) builds the same table from the batch's check table and path columns. Both
are run here on the same decided batches -- the demo notifications screened in submitted order on a ledger
that starts empty, and every rule case of ``tests/data/rules`` on its own ledger -- and must give equal
tables, field for field. The long checks table must hold exactly the decisions' checks, one row each.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from powercheck import arrow
from powercheck.columnar import CHECKS_SCHEMA, decision_tables
from powercheck.demo import demo_notifications_path
from powercheck.io import CHECK_TYPE, DECISION_SCHEMA, decision_row, read_notifications
from powercheck.rules.engine import Assessor
from powercheck.rules.sequence import DecisionRef
from tests.helpers.mini import FIXED_TIME
from tests.helpers.rule_cases import CASE_NAMES, case_entries, demo_entries


def object_table(decisions, lines) -> pa.Table:
    """What the object path writes (``DecisionWriter.write``)."""
    return pa.Table.from_pylist([decision_row(d, line) for d, line in zip(decisions, lines)], schema=DECISION_SCHEMA)


def assert_same(entries, lines, lang="en"):
    decisions, checks = decision_tables(entries, lines, lang)
    objects = [e.decision(lang) if isinstance(e, DecisionRef) else e for e in entries]
    want = object_table(objects, lines)
    assert decisions.schema == want.schema
    got_rows, want_rows = decisions.to_pylist(), want.to_pylist()
    assert len(got_rows) == len(want_rows) == len(entries)
    for got, expected in zip(got_rows, want_rows):
        assert got == expected, f"{expected['notification_id']}: the columnar row differs from the object path"
    # the long table: the decisions' checks, one row each, in order
    assert checks.schema == CHECKS_SCHEMA
    long = checks.to_pylist()
    flat = [
        (row["notification_id"], row["revision"], row["source_line"], i, c)
        for row in want_rows
        for i, c in enumerate(row["checks"])
    ]
    assert len(long) == len(flat) == sum(len(r["checks"]) for r in got_rows)
    for r, (nid, rev, line, pos, check) in zip(long, flat):
        assert (r["notification_id"], r["revision"], r["source_line"], r["position"]) == (nid, rev, line, pos)
        assert {f.name: r[f.name] for f in CHECK_TYPE} == check
    return want_rows


def test_demo_columnar_equals_object_path(demo_region, policy):
    entries, lines = demo_entries(demo_region, policy)
    rows = assert_same(entries, lines)
    outcomes = {row["outcome"] for row in rows}
    assert {"auto_approve", "escalate", "reject_incomplete"} <= outcomes  # the demo mix, not a trivial batch
    assert any(row["path"] for row in rows) and any(row["measures"] for row in rows)
    assert any(row["ledger_status"] == "approved" for row in rows)


def test_demo_columnar_equals_object_path_in_norwegian(demo_region, policy):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:40]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, language="nb")
    assessed = assessor.assess_recorded(valid)
    assert_same(assessed.entries, list(range(1, len(valid) + 1)), lang="nb")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_rule_case_columnar_equals_object_path(name, case_region, policy):
    for measures in (False, True):
        expected, entries = case_entries(name, case_region, policy, measures)
        rows = assert_same(entries, [1])
        if not measures:  # the case's expected outcome (tests/rules/test_cases.py decides the same way)
            assert rows[0]["outcome"] == expected["outcome"]


@pytest.mark.parametrize(
    ("values", "type_"),
    [
        ([1.5, None, -0.0, float("inf")], pa.float64()),
        ([3, None, -7], pa.int64()),
        (["å", None, "", "ab"], pa.string()),
        ([True, None, False], pa.bool_()),
        ([["a"], None, [], ["b", None]], pa.list_(pa.string())),
        ([{"x": 1.0, "y": "z"}, None, {"x": None, "y": None}], pa.struct([("x", pa.float64()), ("y", pa.string())])),
        ([{"x": 2.0, "y": "Ω ø"}, {"y": "a"}], pa.struct([("x", pa.float64()), ("y", pa.string())])),
        (["≤ 1 %", "ab", "", "å"], pa.string()),
        ([datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
    ],
)
def test_arrow_builder_equals_pyarrow(values, type_):
    built = arrow.from_python(values, type_)
    built.validate(full=True)
    assert built.equals(pa.array(values, type=type_))


def test_arrow_numbers_nan_is_null_unless_valid_given():
    assert arrow.numbers(np.array([1.0, np.nan])).to_pylist() == [1.0, None]
    assert arrow.numbers(np.array([1, 2]), pa.int64(), np.array([True, False])).to_pylist() == [1, None]


def test_light_row_parts_equal_pydantic_dumps(demo_region, policy):
    """The columnar rows' measures, limits and network data, made from the models' fields, equal pydantic's dumps
    (``io._measure_row``, ``model_dump``) of every one the demo's decisions hold, key order included; a measure
    option with values that are not their own JSON form goes to ``io._measure_row``."""
    from powercheck.columnar import _measure_row_of, _plain_dump
    from powercheck.io import _measure_row
    from powercheck.models import MeasureOption, Message, Outcome

    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    batch = Assessor(demo_region, policy, clock=lambda: FIXED_TIME).assess_batch(valid)
    measures = [m for row in batch.measures for m in row]
    limits = [limit for row in batch.limits for limit in row]
    data = [d for d in batch.network_data if d is not None]
    assert len(measures) > 100 and len(limits) > 100 and len(data) > 100  # the demo mix, not a trivial batch
    assert {m.by for m in measures} == {"installer", "grid_owner", "case_handler"}
    for m in measures:
        got, want = _measure_row_of(m), _measure_row(m)
        assert got == want and list(got) == list(want)
    for model in limits + data:
        got, want = _plain_dump(model), model.model_dump()
        assert got == want and list(got) == list(want)
    odd = MeasureOption.model_construct(
        id="x", by="installer", text="t", effect="e", sufficient=True, resolves=[Outcome.ESCALATE], remaining=[],
        message=Message(key="k", params={"a": 1}), effect_message=Message(key="k"), source="s",
    )  # fmt: skip
    assert _measure_row_of(odd) == _measure_row(odd) and type(_measure_row_of(odd)["resolves"][0]) is str
