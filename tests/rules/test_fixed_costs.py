"""Per-call costs moved out of the hot path give what the per-call code gave (issue 13).

* :func:`powercheck.rules.fuse_range.main_fuse_range` reads its size table's arrays made once per policy and
  device: equal to the arrays made from the table's sizes, shared, read-only;
* :func:`powercheck.rules.evaluate.appliance_table` reads every numeric column in one array: each column equals the
  per-column list it was made of before (the reference below), on the demo, the rule cases and by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.models import Notification
from powercheck.protection_device import DeviceType, MainDevice
from powercheck.quality.codes import CONN_3PH, CONN_LN
from powercheck.rules.context import GridView
from powercheck.rules.demand import demand_cases
from powercheck.rules.evaluate import appliance_table
from powercheck.rules.fuse_range import _size_trips, main_fuse_range
from powercheck.rules.policy import PolicyKey
from tests.helpers.rule_cases import case_notifications

NUMERIC = ("conn", "unit_kw", "quantity", "cos_phi", "cos_phi_start", "start_ratio", "q_sign", "starts_per_hour",
           "active_intervals")  # fmt: skip


def _reference_columns(cases) -> dict[str, np.ndarray]:
    """The numeric columns as appliance_table made them before: one list per column."""
    apps = [a for c in cases if c.evaluable for a in c.appliances]
    return {
        "conn": np.array([r.conn for r in apps], dtype=np.int64),
        "unit_kw": np.array([r.appliance.rated_kw for r in apps], dtype=float),
        "quantity": np.array([r.appliance.quantity for r in apps], dtype=float),
        "cos_phi": np.array([r.cos_phi for r in apps], dtype=float),
        "cos_phi_start": np.array([r.cos_phi_start for r in apps], dtype=float),
        "start_ratio": np.array([r.start_current_ratio for r in apps], dtype=float),
        "q_sign": np.array([1.0 if r.appliance.kind.consumes else -1.0 for r in apps], dtype=float),
        "starts_per_hour": np.array([r.starts_per_hour for r in apps], dtype=float),
        "active_intervals": np.array([r.active_intervals for r in apps], dtype=float),
    }


def _assert_columns_as_before(cases, policy) -> int:
    from powercheck.rules.evaluate import _spectrum, harmonic_orders

    table = appliance_table(cases, policy)
    expected = _reference_columns(cases)
    # the spectra, their origins, kinds and orders above as each row's _spectrum and expressions gave them
    apps = [a for c in cases if c.evaluable for a in c.appliances]
    orders = harmonic_orders(policy)
    rows = [_spectrum(r, orders, policy) for r in apps]
    assert table.spectra.shape == (len(apps), len(orders))
    assert np.array_equal(table.spectra, np.array([s for s, _ in rows]).reshape(len(apps), len(orders)))
    assert table.origin == tuple(o for _, o in rows)
    assert table.kind == tuple(r.appliance.kind.value for r in apps)
    assert all(type(k) is str for k in table.kind)
    assert table.orders_above == tuple(
        tuple(sorted(int(h) for h, v in (r.appliance.harmonic_current_percent or {}).items() if int(h) > orders[-1]
                     and v > 0))
        for r in apps
    )  # fmt: skip
    for name in NUMERIC:
        got = getattr(table, name)
        assert got.dtype == expected[name].dtype, name
        assert got.shape == expected[name].shape, name
        assert np.array_equal(got, expected[name], equal_nan=True), name
        assert got.flags.c_contiguous, name
    return len(table.cases)


def test_appliance_columns_equal_the_per_column_lists_on_the_demo(demo_region, policy):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    cases = demand_cases(notes, GridView.of(demo_region), policy)
    assert _assert_columns_as_before(cases, policy) > 100
    # a small batch (the service's groups) too, and one with no evaluable case
    assert _assert_columns_as_before(cases[:7], policy) > 0
    assert _assert_columns_as_before([c for c in cases if not c.evaluable][:3], policy) == 0


def test_appliance_columns_equal_the_per_column_lists_on_the_rule_cases(case_region, policy):
    notes = case_notifications()
    cases = demand_cases(notes, GridView.of(case_region), policy)
    assert _assert_columns_as_before(cases, policy) >= 15


def test_appliance_columns_by_hand(demo_region, policy):
    """A 3-phase 11 kW heat pump with its own spectrum (consumes: q_sign +1) and two 1-phase 3.68 kW PV inverters (generate: -1)."""
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    grid = GridView.of(demo_region)
    base = next(c for c in demand_cases(notes, grid, policy) if c.evaluable and c.notification.network_system.value
                == "TN_400" and c.notification.power_budget is None)  # fmt: skip
    data = base.notification.model_dump(mode="json")
    data["job_type"] = "heat_pump"
    data["appliances"] = [
        {"kind": "heat_pump", "rated_kw": 11.0, "quantity": 1, "connection": "3ph", "cos_phi": 0.95,
         "start_current_ratio": 2.0, "starts_per_hour": 3, "harmonic_current_percent": {5: 4.0, 3: 2.5, 47: 0.5}},
        {"kind": "pv_inverter", "rated_kw": 3.68, "quantity": 2, "connection": "L-N", "cos_phi": 1.0},
    ]  # fmt: skip
    n = Notification.model_validate(data)
    (case,) = demand_cases([n], grid, policy, screening=True)  # datasheet values not asked for
    assert case.evaluable, (case.missing, case.requested, case.grid_problem, case.system_mismatch)
    table = appliance_table([case], policy)
    assert table.owner.tolist() == [0, 0] and table.indptr.tolist() == [0, 2]
    assert table.conn[0] == CONN_3PH and table.conn[1] == CONN_LN
    assert table.unit_kw.tolist() == [11.0, 3.68] and table.quantity.tolist() == [1.0, 2.0]
    assert table.q_sign.tolist() == [1.0, -1.0]
    assert table.cos_phi[0] == 0.95 and table.cos_phi[1] == 1.0
    assert table.start_ratio[0] == 2.0 and table.starts_per_hour[0] == 3.0
    assert table.kind == ("heat_pump", "pv_inverter")
    # the heat pump's own spectrum: 2.5 % at order 3, 4 % at 5, 0 elsewhere up to 40; order 47 is above them
    orders = list(range(2, 41))
    assert table.origin[0] == "installer" and table.orders_above == ((47,), ())
    assert table.spectra[0].tolist() == [{3: 2.5, 5: 4.0}.get(h, 0.0) for h in orders]
    assert table.origin[1].startswith("policy:")


@pytest.mark.parametrize("device", [None, MainDevice(type=DeviceType.GG_FUSE)])
def test_size_table_arrays_are_the_table_made_once_read_only(policy, device):
    spec = device or MainDevice(type=DeviceType.GG_FUSE)
    table = _size_trips(spec, policy)
    assert _size_trips(spec, policy) is table  # made once per policy and device
    sizes = [float(s) for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)]
    assert [size for size, _ in table] == sizes
    assert table.sizes.tolist() == sizes
    assert table.has_trip.tolist() == [trip is not None for _, trip in table]
    assert [None if math.isnan(t) else t for t in table.trips.tolist()] == [trip for _, trip in table]
    for a in (table.sizes, table.has_trip, table.trips):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 1


def test_main_fuse_range_by_hand_and_the_same_on_repeated_calls(policy):
    """gG main fuse: a 50 A service cable allows sizes up to 50 A; a 63 A upstream fuse with the policy's
    selectivity ratio allows sizes up to 63 / ratio; without limits the largest standard size with a known
    disconnection current below the fault current."""
    sizes = sorted(float(s) for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A))
    ratio = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    amp = np.array([50.0, np.nan])
    up = np.array([np.nan, 63.0])
    ik = np.array([1e6, 1e6])  # no fault-current limit within the table
    first = main_fuse_range(amp, up, ik, policy)
    second = main_fuse_range(amp, up, ik, policy)
    assert np.array_equal(first[0], second[0], equal_nan=True) and first[1] == second[1]
    largest, rules = first
    assert largest[0] == max(s for s in sizes if s <= 50.0) and rules[0] == "PROT.SERVICE_CABLE"
    assert largest[1] == max(s for s in sizes if 63.0 / s >= ratio) and rules[1] == "PROT.SELECTIVITY"


def test_decision_assumptions_equal_the_per_case_union_on_the_demo(demo_region, policy):
    """decide finds each network's grid defaults and each point's peak-assumption keys once a batch: every
    decision's assumptions are still the sorted union of its results' assumptions, its network's defaults when a
    grid check ran, and its point's peak keys when any check ran (the per-case sets made here)."""
    from powercheck.rules.checks import run_checks
    from powercheck.rules.decide import _gate_reasons, _gates, decide
    from powercheck.rules.evaluate import evaluate
    from powercheck.rules.rule_ids import GRID_RULE_GROUPS
    from tests.conftest import FIXED_TIME

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    real = GridView.of(demo_region)
    cases = demand_cases(notes, real, policy)
    checks = run_checks(cases, evaluate(cases, real, policy), real, policy)
    # the demo's points name no peak assumptions: give every third point two keys, every third another one
    texts = np.array(["grid:peak_a,grid:peak_b", "grid:peak_c", ""] * len(real.customers.peak_assumptions))
    grid = _Over(real, customers=_Over(real.customers, peak_assumptions=texts[: len(real.customers.peak_assumptions)]))
    batch = decide(cases, checks, grid, policy, FIXED_TIME)
    with_grid = with_peak = 0
    for k, case in enumerate(cases):
        start, stop = int(checks.indptr[k]), int(checks.indptr[k + 1])
        expected = set().union(*checks.assumptions[start:stop])
        if case.location is not None and any(checks.rule_id[i].group in GRID_RULE_GROUPS for i in range(start, stop)):
            expected |= set(grid.grid_assumptions.get(case.location.network_id, ()))
            with_grid += bool(grid.grid_assumptions.get(case.location.network_id))
        if case.location is not None and case.location.cp_row >= 0 and stop > start:
            text = grid.customers.peak_assumptions[case.location.cp_row]
            expected |= set(text.split(",")) if text else set()
            with_peak += bool(text)
        assert batch.assumptions[k] == sorted(expected), k
        if case.evaluable and not any(int(checks.status[i]) != 0 for i in range(start, stop)):
            # the gates read once a batch give the reasons the policy's gates give
            assert _gate_reasons(case, checks, [], checks.relative_margin(), policy, grid) == _gate_reasons(
                case, checks, [], checks.relative_margin(), policy, grid, _gates(policy)
            )
    assert with_peak > 20 and with_grid > 20  # both sets were read, for many notifications
    assert batch.outcome.count(batch.outcome[0]) < len(cases)  # outcomes of more than one kind


class _Over:
    """``base`` with some attributes replaced."""

    def __init__(self, base, **replaced):
        self._base, self._replaced = base, replaced

    def __getattr__(self, name):
        replaced = self.__dict__["_replaced"]
        return replaced[name] if name in replaced else getattr(self.__dict__["_base"], name)


def _paths_one_by_one(cases, ev, grid, state, only=None):
    """voltage_paths as it worked path by path before (the reference)."""
    from powercheck.rules.path import EMPTY_PATH, PathRows
    from tests.helpers.paths import path_alone

    arr = grid.arrays
    out = []
    for k, case in enumerate(cases):
        if not case.evaluable or case.location is None or (only is not None and k not in only):
            out.append(EMPTY_PATH)
            continue
        bus_row = int(ev.point.bus_row[k])
        rows, dv_load = path_alone(k, bus_row, ev.load, 1.0, grid)
        _, dv_export = path_alone(k, bus_row, ev.export, -1.0, grid)
        peak_base = arr.vm_peak_pu[rows].astype(float)
        low_base = arr.vm_low_pu[rows].astype(float)
        peak_ledger = peak_base - state.bus_drop_percent[rows] / 100.0
        low_ledger = low_base + state.bus_rise_percent[rows] / 100.0
        peak = peak_ledger - dv_load / 100.0
        low = low_ledger + dv_export / 100.0
        peak[-1] = ev.v_peak_pu[k]
        low[-1] = ev.v_low_pu[k]
        out.append(PathRows({"bus": arr.bus_ids[rows].astype(np.int64), "distance_km": arr.path_length_km[rows],
                             "v_peak_base_pu": peak_base, "v_peak_ledger_pu": peak_ledger, "v_peak_pu": peak,
                             "v_low_base_pu": low_base, "v_low_ledger_pu": low_ledger, "v_low_pu": low}))  # fmt: skip
    return out


@pytest.mark.parametrize("size", [7, None])
def test_voltage_paths_of_a_batch_equal_the_paths_one_by_one(demo_region, policy, size):
    """voltage_paths works out every path's buses at once: each path's columns equal to the bit the path worked out
    alone (here with a ledger's reserved drop and rise on every bus, and with only some rows wanted), the connection
    point last with the checks' voltages."""
    from types import SimpleNamespace

    from powercheck.rules.evaluate import evaluate
    from powercheck.rules.path import EMPTY_PATH, PATH_COLUMNS, voltage_paths

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:size]
    grid = GridView.of(demo_region)
    cases = demand_cases(notes, grid, policy)
    ev = evaluate(cases, grid, policy)
    n_bus = grid.arrays.bus_ids.shape[0]
    rng = np.random.default_rng(7)
    state = SimpleNamespace(bus_drop_percent=rng.uniform(0, 3, n_bus), bus_rise_percent=rng.uniform(0, 2, n_bus))
    for only in (None, set(range(0, len(cases), 3))):
        got = voltage_paths(cases, ev, grid, state, only=only)
        expected = _paths_one_by_one(cases, ev, grid, state, only=only)
        assert len(got) == len(cases)
        filled = 0
        for k, (a, b) in enumerate(zip(got, expected)):
            if b is EMPTY_PATH:
                assert a is EMPTY_PATH, k
                continue
            filled += 1
            for name in PATH_COLUMNS:
                assert a.columns[name].dtype == b.columns[name].dtype, (k, name)
                assert a.columns[name].tolist() == b.columns[name].tolist(), (k, name)
            assert a.columns["v_peak_pu"][-1] == ev.v_peak_pu[k] and a.columns["v_low_pu"][-1] == ev.v_low_pu[k]
            assert a.columns["bus"][-1] == grid.arrays.bus_ids[int(ev.point.bus_row[k])]
            assert list(a) == list(b)
        assert filled > (1 if size else 50)
