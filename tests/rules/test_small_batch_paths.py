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


def test_groups_a_job_type_does_not_apply_are_the_only_ones_masked():
    """run_checks drops results only of the groups a job type of the batch leaves out (policy job_types: a
    kv_change applies only the protection checks, a backup_supply only the load checks); a batch whose job types
    apply every group gets no mask at all."""
    from types import SimpleNamespace

    from powercheck.rules.checks import _applying
    from powercheck.rules.policy import load_policy

    policy = load_policy()

    def batch(*jobs):
        return [SimpleNamespace(notification=SimpleNamespace(job_type=job)) for job in jobs]

    assert _applying(batch("new_metering_point", "interconnection"), policy) == {}
    assert _applying([], policy) == {}
    got = _applying(batch("new_metering_point", "kv_change", "backup_supply"), policy)
    assert set(got) == {"LOAD", "PROT", "THERMAL", "VOLT", "PQ"}
    assert got["LOAD"].tolist() == [True, False, True]
    assert got["PROT"].tolist() == [True, True, False]
    assert got["THERMAL"].tolist() == got["VOLT"].tolist() == got["PQ"].tolist() == [True, False, False]
    got = _applying(batch("kv_change", "service_cable_move"), policy)  # both apply only the protection checks
    assert set(got) == {"LOAD", "THERMAL", "VOLT", "PQ"} and got["LOAD"].tolist() == [False, False]


def test_policy_limits_are_the_policy_values_and_name_their_assumptions():
    """policy_limited's per-policy lookups: the limit is the policy number, an [R] limit (rvc_rare_max_percent
    5 %, unbalance_max_percent 2 %) adds 'policy:<key>' to the row's assumptions, a sourced one (rvc_frequent 3 %,
    voltage_min_pu 0.9) adds nothing; the same on the second call (the memo) as on the first."""
    from powercheck.rules.checks.base import policy_limited
    from powercheck.rules.policy import PolicyKey, load_policy

    policy = load_policy()
    keys = [PolicyKey.RVC_RARE_MAX_PERCENT, PolicyKey.RVC_FREQUENT_MAX_PERCENT, PolicyKey.RVC_RARE_MAX_PERCENT]
    for _ in range(2):
        b = policy_limited(policy, RuleId.PQ_RVC, [0, 1, 2], [4.0, 4.0, 6.0], keys, LimitKind.MAX, "%", name="rvc",
                           assumptions=[("policy:x",), (), ()])  # fmt: skip
        # 4 % against 5 % passes by 1; 4 % against 3 % fails by 1; 6 % against 5 % fails by 1
        assert b.limit.tolist() == [5.0, 3.0, 5.0] and b.margin.tolist() == [1.0, -1.0, -1.0]
        assert b.limit_key == ["rvc_rare_max_percent", "rvc_frequent_max_percent", "rvc_rare_max_percent"]
        assert b.assumptions == [("policy:rvc_rare_max_percent", "policy:x"), (), ("policy:rvc_rare_max_percent",)]
        one = policy_limited(policy, RuleId.PQ_UNBALANCE, [3, 4], [1.5, 2.5], PolicyKey.UNBALANCE_MAX_PERCENT,
                             LimitKind.MAX, "%", name="u")  # fmt: skip
        assert one.limit.tolist() == [2.0, 2.0] and one.status.tolist() == [0, 1]
        assert one.assumptions == [("policy:unbalance_max_percent",)] * 2
        assert one.limit_key == ["unbalance_max_percent"] * 2
        low = policy_limited(policy, RuleId.VOLT_PEAK_MIN, [0], [0.89], PolicyKey.VOLTAGE_MIN_PU, LimitKind.MIN,
                             "pu", name="v")  # fmt: skip
        assert low.limit.tolist() == [0.9] and low.assumptions == [()] and low.status.tolist() == [1]


def test_region_arrays_derived_once_equal_the_per_call_ones(mini_region, policy):
    """The per-region arrays made once (zeros per bus and line, every bus's base unbalance with the background)
    equal what each call made before, by hand on the mini region: the background where the base case is balanced
    (NaN), the load-flow value elsewhere."""
    from powercheck.rules.context import GridView
    from powercheck.rules.evaluate import base_unbalance, bus_unbalance, bus_zeros, line_zeros

    grid = GridView.of(mini_region)
    arr = grid.arrays
    n_bus = arr.bus_ids.shape[0]
    assert bus_zeros(grid).shape == (n_bus,) and not bus_zeros(grid).any()
    assert line_zeros(grid).shape == arr.line_i_max_a.shape and not line_zeros(grid).any()
    for background in (0.5, 1.25):
        got = bus_unbalance(grid, background)
        assert got is bus_unbalance(grid, background)  # made once
        assert np.array_equal(got, base_unbalance(grid, np.arange(n_bus), background))
        base = arr.unbalance_base_percent
        expected = [background if math.isnan(b) else b for b in base.tolist()]
        assert got.tolist() == expected


def test_harmonic_setup_is_the_policy_table(policy):
    """The harmonic setup made once per policy: orders 2..thd_max_order, the individual limits (inf where the
    policy has none), the background per order (0 where not given) and the summation exponent of each order."""
    from powercheck.rules.evaluate import harmonic_setup
    from powercheck.rules.policy import PolicyKey

    setup = harmonic_setup(policy)
    assert harmonic_setup(policy) is setup
    top = int(policy.value(PolicyKey.THD_MAX_ORDER))
    assert setup.orders == tuple(range(2, top + 1)) and setup.order_array.tolist() == list(setup.orders)
    limits = {int(h): float(v) for h, v in policy.value(PolicyKey.HARMONIC_VOLTAGE_MAX_PERCENT).items()}
    background = policy.value(PolicyKey.HARMONIC_BACKGROUND_PERCENT)
    for i, h in enumerate(setup.orders):
        assert setup.limit_percent[i] == limits.get(h, math.inf)
        assert setup.background_percent[i] == float(background.get(str(h), 0.0))
        assert setup.alpha[i] == policy.harmonic_alpha(h)
    assert setup.week_kinds == frozenset(policy.value(PolicyKey.THD_WEEK_KINDS))


def test_flicker_of_starts_and_stops_in_one_kernel_call_equals_two_calls(policy):
    """_flicker evaluates the starts and the stops of every appliance row in one pst_analytic call: the same Pst
    as one call for the starts (shape factor F) and one for the stops (F = 1), a ramped row without its start."""
    from types import SimpleNamespace

    from powercheck.quality.flicker import pst_analytic
    from powercheck.rules.evaluate import _flicker
    from powercheck.rules.policy import PolicyKey

    starts = np.array([6.0, 30.0, 120.0])
    d_start, d_rated = np.array([2.5, 1.1, 4.0]), np.array([0.6, 0.3, 1.2])
    ramped = np.array([False, False, True])
    table = SimpleNamespace(starts_per_hour=starts, active_intervals=np.array([12.0, 6.0, 3.0]))
    steps = SimpleNamespace(table=table, d_start_percent=d_start, d_rated_percent=d_rated, ramped=ramped,
                            owner=np.array([0, 0, 1]))  # fmt: skip
    got = _flicker(2, steps, policy)
    coeff = policy.number(PolicyKey.FLICKER_TF_COEFF)
    expo = policy.number(PolicyKey.FLICKER_TF_EXPONENT)
    shape = policy.number(PolicyKey.FLICKER_SHAPE_FACTOR)
    p_start = pst_analytic(d_start, starts / 6.0, shape, t_f_coeff=coeff, t_f_exponent=expo)
    p_start = np.where(ramped, 0.0, p_start)
    p_stop = pst_analytic(d_rated, starts / 6.0, 1.0, t_f_coeff=coeff, t_f_exponent=expo)
    assert np.array_equal(got.pst_appliance, (p_start**expo + p_stop**expo) ** (1.0 / expo))
    assert got.pst_appliance[2] == p_stop[2]  # the ramped row: its stop only


def test_size_limits_made_without_validation_equal_the_validated_ones():
    """The inverse answers' SizeLimit made from trusted values: numbers as floats (an int or a numpy float read as
    the validated model reads it), None kept; equal to the validated model, its dump too."""
    from powercheck.models import SizeLimit
    from powercheck.rules.inverse import _size_limit

    cases = [
        {"quantity": "main_fuse_a", "notified": 25, "largest": np.float64(63.0), "smallest": 32.0, "unit": "A",
         "binding_rule": "PROT.SELECTIVITY"},
        {"quantity": "appliances[0].rated_kw", "notified": 11.0, "largest": None, "unit": "kW", "scale": None},
        {"quantity": "appliances[1].start_current_ratio", "notified": 6.0, "largest": 2.75, "unit": "-",
         "binding_rule": "PQ.RVC", "scale": np.float64(0.5)},
    ]  # fmt: skip
    for values in cases:
        fast, checked = _size_limit(**values), SizeLimit(**values)
        assert fast == checked and fast.model_dump() == checked.model_dump()
        assert fast.model_dump_json() == checked.model_dump_json()
        assert all(v is None or type(v) is float for v in (fast.notified, fast.largest, fast.smallest, fast.scale))
    assert _size_limit(quantity="main_fuse_a", notified=25).notified == 25.0


def test_default_sequence_and_margin_scale_columns_are_shared_read_only():
    """A small block's default sequence (0) and margin scale (NaN) are shared read-only columns: equal to the
    per-block ones (int64 zeros, float NaN), the same object for blocks of the same size, and never writable; a
    given sequence or scale is the block's own."""
    a = measured(RuleId.LOAD_MAIN_FUSE, [0, 1], [1.0, 2.0], 3.0, LimitKind.MAX, "A", name="a")
    b = measured(RuleId.PQ_THD, [2, 3], [1.0, 2.0], 3.0, LimitKind.MAX, "%", name="b")
    assert a.seq.dtype == np.int64 and a.seq.tolist() == [0, 0] and a.seq is b.seq
    assert a.margin_scale.dtype == float and np.isnan(a.margin_scale).all() and a.margin_scale is b.margin_scale
    with pytest.raises(ValueError):
        a.seq[0] = 5
    with pytest.raises(ValueError):
        a.margin_scale[0] = 1.0
    c = measured(RuleId.PQ_THD, [2, 3], [1.0, 2.0], 3.0, LimitKind.MAX, "%", name="c", seq=[1, 2], margin_scale=0.5)
    assert c.seq.tolist() == [1, 2] and c.margin_scale.tolist() == [0.5, 0.5] and c.seq.flags.writeable
    table = CheckTable.concat(4, [[a], [b, c]])  # the table's columns are its own, writable copies
    assert table.margin_scale.flags.writeable and table.status.flags.writeable


def test_construct_rows_equals_construct_of_each_row_and_falls_back_for_other_names():
    from powercheck.models import construct, construct_rows

    names = tuple(PathPoint.model_fields)
    rows = [(1, 0.0, 1.0, 1.0, 0.99, 1.0, 1.0, 1.01), (2, 0.2, 0.98, 0.97, 0.95, 1.01, 1.02, 1.04)]
    got = construct_rows(PathPoint, names, rows)
    assert got == [construct(PathPoint, dict(zip(names, r))) for r in rows] == [PathPoint(**dict(zip(names, r)))
                                                                               for r in rows]  # fmt: skip
    assert got[0].model_fields_set is not got[1].model_fields_set  # each instance its own set
    backwards = construct_rows(PathPoint, names[::-1], [r[::-1] for r in rows])  # not the model's order
    assert backwards == got


def test_grid_derived_values_are_made_once_per_region_arrays(mini_region):
    from powercheck.rules.context import GridView

    calls = []

    def make(grid):
        calls.append(grid)
        return np.arange(3)

    first, second = GridView.of(mini_region), GridView.of(mini_region)  # two views of one region's arrays
    assert first.derived("test value", make) is second.derived("test value", make)
    assert len(calls) == 1


def test_shared_derived_arrays_are_read_only(mini_region, policy):
    """Arrays every later batch shares (per region, per policy) refuse a write instead of changing those batches'
    inputs."""
    from powercheck.rules.context import GridView
    from powercheck.rules.evaluate import bus_unbalance, bus_zeros, harmonic_setup, line_zeros

    grid = GridView.of(mini_region)
    setup = harmonic_setup(policy)
    shared = [bus_zeros(grid), line_zeros(grid), bus_unbalance(grid, 0.5), setup.limit_percent, setup.alpha]
    for array in shared:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
    assert not bus_zeros(grid).any()
