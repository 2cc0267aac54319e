"""Check result blocks (powercheck.rules.checks.base.measured): margins, statuses and missing data by hand."""

import math

import numpy as np
import pytest

from powercheck.models import LimitKind
from powercheck.rules.checks.base import FAIL, MISSING_DETAIL, NOT_EVALUATED, PASS, measured
from powercheck.rules.rule_ids import RuleId

RULE = RuleId.LOAD_MAIN_FUSE


def test_max_limit_margins_and_statuses():
    # limit 63 A: 40 A passes with margin 23, 63 A passes at margin 0, 70 A fails by 7
    b = measured(RULE, [0, 1, 2], [40.0, 63.0, 70.0], 63.0, LimitKind.MAX, "A", name="fuse")
    assert b.status.tolist() == [PASS, PASS, FAIL]
    assert b.margin.tolist() == [23.0, 0.0, -7.0]
    assert b.limit.tolist() == [63.0, 63.0, 63.0]
    assert b.margin_scale.shape == (3,) and np.isnan(b.margin_scale).all()
    assert b.seq.tolist() == [0, 0, 0] and b.name == ["fuse"] * 3


def test_min_limit_margin_is_value_minus_limit():
    # a minimum of 0.93 pu: 0.95 passes by 0.02, 0.90 fails by 0.03
    b = measured(RULE, [4, 5], [0.95, 0.90], [0.93, 0.93], LimitKind.MIN, "pu", name="v", seq=[1, 2])
    assert b.status.tolist() == [PASS, FAIL]
    assert b.margin == pytest.approx([0.02, -0.03])
    assert b.seq.tolist() == [1, 2] and b.row.tolist() == [4, 5]


def test_missing_value_or_limit_is_not_evaluated_and_named():
    b = measured(RULE, [0, 1, 2], [np.nan, 10.0, np.inf], [5.0, np.inf, 5.0], LimitKind.MAX, "A", name="x",
                 detail=["", "given", ""])  # fmt: skip
    assert b.status.tolist() == [NOT_EVALUATED] * 3
    assert np.isnan(b.margin).all()
    assert np.isnan(b.value[0]) and b.value[1] == 10.0 and np.isnan(b.value[2])  # inf is no value
    assert b.limit[0] == 5.0 and np.isnan(b.limit[1]) and b.limit[2] == 5.0
    assert b.detail == [MISSING_DETAIL, "given", MISSING_DETAIL]  # a given detail is kept


def test_one_limit_in_an_array_applies_to_every_row_and_a_wrong_length_is_refused():
    b = measured(RULE, [0, 1], [1.0, 3.0], np.array([2.0]), LimitKind.MAX, "A", name="x", margin_scale=4.0)
    assert b.margin.tolist() == [1.0, -1.0] and b.margin_scale.tolist() == [4.0, 4.0]
    with pytest.raises(ValueError):
        measured(RULE, [0, 1, 2], [1.0, 2.0, 3.0], [1.0, 2.0], LimitKind.MAX, "A", name="x")
    with pytest.raises(ValueError, match="per-row"):
        measured(RULE, [0, 1], [1.0, 2.0], 3.0, LimitKind.MAX, "A", name=["only one"])


def test_the_block_does_not_share_the_callers_arrays():
    value, limit = np.array([1.0, 2.0]), np.array([3.0, 3.0])
    b = measured(RULE, np.array([0, 1]), value, limit, LimitKind.MAX, "A", name="x")
    value[:] = 99.0
    limit[:] = -1.0
    assert b.value.tolist() == [1.0, 2.0] and b.limit.tolist() == [3.0, 3.0]
    assert b.margin.tolist() == [2.0, 1.0]


def test_no_rows_gives_an_empty_block():
    b = measured(RULE, [], [], 1.0, LimitKind.MAX, "A", name=[], detail=[])
    assert len(b) == 0 and b.status.dtype == np.int8
    assert math.isclose(measured(RULE, [0], [0.5], 1.0, LimitKind.MAX, "A", name="x").margin[0], 0.5)


def test_block_columns_have_the_column_dtypes_and_a_block_equals_the_dataclass_made_one():
    """The fast paths (scalar limits and seq, statuses read from the comparison, blocks made without the frozen
    ``__init__``) give the same block as the plain constructor, with int8 statuses, int64 rows and sequence."""
    import dataclasses

    from powercheck.rules.checks.base import CheckBlock, _block

    b = measured(RULE, [0, 1], [10.0, 70.0], 63, LimitKind.MAX, "A", name="fuse", seq=1, margin_scale=63)
    assert b.status.dtype == np.int8 and b.status.tolist() == [PASS, FAIL]
    assert b.seq.dtype == np.int64 and b.seq.tolist() == [1, 1]
    assert b.limit.dtype == float and b.limit.tolist() == [63.0, 63.0]
    assert b.margin_scale.tolist() == [63.0, 63.0]
    fields = {f.name: getattr(b, f.name) for f in dataclasses.fields(CheckBlock)}
    assert _block(**fields) == CheckBlock(**fields)
    assert type(_block(**fields)) is CheckBlock
    with pytest.raises(dataclasses.FrozenInstanceError):
        _block(**fields).unit = "V"
    with pytest.raises(TypeError):  # a field missing: the dataclass constructor refuses it
        _block(**{k: v for k, v in fields.items() if k != "unit"})
