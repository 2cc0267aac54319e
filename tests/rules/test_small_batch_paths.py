"""The small-batch fast paths of the checks table and the voltage path give the same objects as the plain ones.

* :meth:`PathRows.__iter__` (columns read once, points made without ``model_construct``) equals reading the points
  one by one (``__getitem__``) and the validated :class:`PathPoint` of the same numbers;
* :meth:`CheckTable.result` (Python columns read once, :func:`powercheck.models.construct`) equals the validated
  :class:`CheckResult`, NaN read as None;
* :meth:`CheckTable.concat` orders results by notification, check function, sequence and block, whatever the order
  the blocks come in, and keeps each result's columns together.
"""

import math

import numpy as np
import pytest

from powercheck.models import CheckResult, CheckStatus, LimitKind, PathPoint
from powercheck.rules.checks.base import CheckTable, measured, not_evaluated
from powercheck.rules.path import EMPTY_PATH, PATH_COLUMNS, PathRows
from powercheck.rules.rule_ids import RuleId


def _path() -> PathRows:
    return PathRows(
        {
            "bus": np.array([3, 7, 11], dtype=np.int64),
            "distance_km": np.array([0.0, 0.12, 0.31]),
            "v_peak_base_pu": np.array([1.0, 0.99, 0.975]),
            "v_peak_ledger_pu": np.array([1.0, 0.988, 0.97]),
            "v_peak_pu": np.array([1.0, 0.985, 0.96]),
            "v_low_base_pu": np.array([1.02, 1.021, 1.023]),
            "v_low_ledger_pu": np.array([1.02, 1.022, 1.025]),
            "v_low_pu": np.array([1.02, 1.024, 1.031]),
        }
    )


def test_path_iteration_equals_the_validated_points_and_indexing():
    path = _path()
    points = list(path)
    assert points == [path[i] for i in range(len(path))]
    assert points[2] == PathPoint(bus=11, distance_km=0.31, v_peak_base_pu=0.975, v_peak_ledger_pu=0.97,
                                  v_peak_pu=0.96, v_low_base_pu=1.023, v_low_ledger_pu=1.025, v_low_pu=1.031)  # fmt: skip
    assert type(points[0].bus) is int and type(points[0].distance_km) is float
    assert points[1].model_dump() == PathPoint(**points[1].model_dump()).model_dump()
    assert points[1].model_fields_set == set(PATH_COLUMNS)
    assert list(EMPTY_PATH) == [] and path == points


def test_check_result_equals_the_validated_model_with_nan_as_none():
    a = measured(RuleId.LOAD_MAIN_FUSE, [0, 1], [40.0, 70.0], 63.0, LimitKind.MAX, "A", name="fuse",
                 assumptions=[("policy:b", "policy:a"), ()], detail=["ok", "over"])  # fmt: skip
    b = not_evaluated(RuleId.GRID_DATA, [1], name="grid", detail="no grid data")
    table = CheckTable.concat(2, [[a], [b]])
    results = [table.result(i) for i in range(len(table))]
    assert [r.rule_id for r in results] == ["LOAD.MAIN_FUSE", "LOAD.MAIN_FUSE", "GRID.DATA"]
    # 40 A on 63 A passes by 23 A; 70 A fails by 7 A; the not-evaluated result has no numbers
    assert results[0] == CheckResult(rule_id="LOAD.MAIN_FUSE", name="fuse", status=CheckStatus.PASS, value=40.0,
                                     limit=63.0, limit_kind=LimitKind.MAX, margin=23.0, unit="A", margin_scale=None,
                                     limit_key=None, assumptions=["policy:a", "policy:b"], detail="ok")  # fmt: skip
    assert results[1].status is CheckStatus.FAIL and results[1].margin == -7.0
    assert results[2].status is CheckStatus.NOT_EVALUATED
    assert results[2].value is None and results[2].limit is None and results[2].margin is None
    for r in results:
        assert r == CheckResult.model_validate(r.model_dump())
        assert r.model_fields_set == set(CheckResult.model_fields)
        assert r.value is None or type(r.value) is float


def test_concat_orders_by_row_slot_sequence_and_block():
    rule = RuleId.LOAD_MAIN_FUSE
    # slot 0: a block of rows 2, 0 with seq 1, and one of rows 0, 2 with seq 0; slot 1: rows 1 and 0
    late = measured(rule, [2, 0], [1.0, 2.0], 10.0, LimitKind.MAX, "A", name=["s0-late-r2", "s0-late-r0"], seq=1)
    early = measured(rule, [0, 2], [3.0, 4.0], 10.0, LimitKind.MAX, "A", name=["s0-early-r0", "s0-early-r2"])
    second = measured(rule, [1, 0], [5.0, 6.0], [5.5, 5.5], LimitKind.MAX, "A", name=["s1-r1", "s1-r0"])
    table = CheckTable.concat(3, [[late, early], [second]])
    assert table.name == ["s0-early-r0", "s0-late-r0", "s1-r0", "s1-r1", "s0-early-r2", "s0-late-r2"]
    assert table.indptr.tolist() == [0, 3, 4, 6]
    # each result keeps its own value, limit and margin (limit - value), status from the margin
    assert table.value.tolist() == [3.0, 2.0, 6.0, 5.0, 4.0, 1.0]
    assert table.limit.tolist() == [10.0, 10.0, 5.5, 5.5, 10.0, 10.0]
    assert table.margin.tolist() == [7.0, 8.0, -0.5, 0.5, 6.0, 9.0]
    assert table.status.tolist() == [0, 0, 1, 0, 0, 0]
    assert all(math.isnan(x) for x in table.margin_scale.tolist())


def test_rule_scales_combine_their_limits_as_one_at_a_time():
    """RuleScales records its limits and combines them when read: the same as applying each on its own (finite,
    below the cap, floored at 0, where the mask holds; the smallest per rule), by hand and against that reference
    on random limits with NaN, inf, negatives, scalars and masks."""
    from powercheck.rules.inverse import SCALE_CAP, RuleScales

    lim = RuleScales(4)
    lim.add(RuleId.LOAD_MAIN_FUSE, np.array([2.0, np.nan, -1.0, 5000.0]))
    lim.add(RuleId.PQ_THD, 3.0, np.array([True, False, True, False]))
    lim.add(RuleId.LOAD_MAIN_FUSE, np.array([1.5, 4.0, np.inf, 7.0]))
    # main fuse: min(2, 1.5); min(no limit, 4); max(-1, 0) = 0; 5000 is above the cap: 7
    assert lim.by_rule[RuleId.LOAD_MAIN_FUSE].tolist() == [1.5, 4.0, 0.0, 7.0]
    assert lim.by_rule[RuleId.PQ_THD].tolist() == [3.0, np.inf, 3.0, np.inf]
    scales, rules = lim.binding()
    assert scales.tolist() == [1.5, 4.0, 0.0, 7.0] and rules == ["LOAD.MAIN_FUSE"] * 4
    assert lim.of(1) == {"LOAD.MAIN_FUSE": 4.0}

    def one_at_a_time(added, n):
        out = {}
        for rule, s, where in added:
            s = np.broadcast_to(np.asarray(s, dtype=float), (n,))
            s = np.where(np.isfinite(s) & (s < SCALE_CAP), np.maximum(s, 0.0), np.inf)
            if where is not None:
                s = np.where(where, s, np.inf)
            out[rule] = s if rule not in out else np.minimum(out[rule], s)
        return out

    rng = np.random.default_rng(13)
    rules = [RuleId.LOAD_MAIN_FUSE, RuleId.PQ_THD, RuleId.VOLT_PEAK_PLANNING, RuleId.PQ_RVC]
    for n in (1, 7, 40):
        added = []
        for _ in range(25):
            s = rng.choice([np.nan, np.inf, -np.inf, -2.0, 0.0, 0.5, 3.0, 2 * SCALE_CAP], size=n) * rng.random(n)
            s = float(s[0]) if rng.random() < 0.2 else s
            where = rng.random(n) < 0.6 if rng.random() < 0.5 else None
            added.append((rules[int(rng.integers(len(rules)))], s, where))
        lim = RuleScales(n)
        for a in added:
            lim.add(*a)
        expected = one_at_a_time(added, n)
        assert list(lim.by_rule) == list(expected)
        for rule, values in expected.items():
            assert np.array_equal(lim.by_rule[rule], values)
    with pytest.raises(ValueError):
        bad = RuleScales(3)
        bad.add(RuleId.PQ_THD, np.ones(2))
        bad.binding()
