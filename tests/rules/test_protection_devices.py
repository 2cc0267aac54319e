"""Main protection as a gG fuse, an MCB (B/C/D) or an adjustable breaker; the KV; the device's own criteria.

Every expected number is written out from the standards' tables the policy holds (IEC 60898-1 trip ranges
B 3-5, C 5-10, D 10-20 In; IEC 60269-1 gG gates; IEC 60947-2 tolerance 1.2) -- not taken from the code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from powercheck.grid.customers import _row_problems as customer_row_problems
from powercheck.grid.customers import conform_customer_points
from powercheck.models import Notification, describe_validation_error
from powercheck.protection_device import DeviceType, MainDevice, McbCharacteristic, device_from_code
from powercheck.rules.devices import (
    Device,
    disconnection_current,
    fuse_above_device,
    no_trip_current,
    resolve_device,
)
from powercheck.rules.fuse_range import main_fuse_range
from powercheck.rules.policy import PolicyKey


def mcb(ch: str, rating: float, **kw) -> Device:
    return Device(MainDevice(type="mcb", characteristic=ch, **kw), rating, "test")


def adjustable(rating: float, **kw) -> Device:
    return Device(MainDevice(type="adjustable_breaker", **kw), rating, "test")


def gg(rating: float) -> Device:
    return Device(MainDevice(type="gG_fuse"), rating, "test")


# ------------------------------------------------------------------------------------ the notified device
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "mcb"}, "characteristic: required for an mcb"),
        ({"type": "gG_fuse", "characteristic": "C"}, "characteristic: only an mcb has one"),
        ({"type": "adjustable_breaker"}, "isd_multiple or ii_multiple"),
        ({"type": "mcb", "characteristic": "B", "isd_multiple": 5}, "isd_multiple: only an adjustable_breaker"),
        ({"type": "gG_fuse", "let_through_i2t_a2s": 1000}, "let_through_i2t_a2s: a breaker's"),
        ({"type": "mcb", "characteristic": "E"}, "characteristic"),
        ({"type": "adjustable_breaker", "isd_multiple": 0.5}, "isd_multiple"),
        ({"type": "adjustable_breaker", "ii_multiple": 40}, "ii_multiple"),
        ({"type": "adjustable_breaker", "ii_multiple": True}, "expected a number"),
        ({"type": "rcd"}, "type"),
    ],
)
def test_device_fields_are_validated_and_named(data, message):
    with pytest.raises(ValidationError) as exc:
        MainDevice.model_validate(data)
    assert any(message in e for e in describe_validation_error(exc.value)), describe_validation_error(exc.value)


def test_notification_device_needs_its_current():
    base = {
        "notification_id": "D-1",
        "job_type": "ov_mv_change",
        "metering_point_id": "707057500000000018",
        "network_system": "TN_400",
        "main_fuse_before_a": 25,
        "main_device_after": {"type": "mcb", "characteristic": "C"},
    }
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate(base)
    assert any(e.startswith("main_device_after: needs main_fuse_after_a") for e in describe_validation_error(exc.value))
    n = Notification.model_validate({**base, "main_fuse_after_a": 40})
    assert n.main_device_after.characteristic is McbCharacteristic.C and n.main_device_after.code == "mcb_C"


def test_resolve_device_prefers_notification_then_ledger_then_record():
    c40 = MainDevice(type="mcb", characteristic="C")
    assert resolve_device(c40, 40.0, code="mcb_B").origin == "notification"
    assert resolve_device(None, 40.0, ledger=c40, code="mcb_B").spec == c40
    rec = resolve_device(None, 80.0, code="adjustable_breaker", isd_multiple=6.0)
    assert rec.origin == "customer index" and rec.spec.isd_multiple == 6.0 and rec.spec.ii_multiple is None
    assert resolve_device(None, 25.0).is_fuse and resolve_device(None, 25.0).origin == "default"
    assert resolve_device(None, None) is None
    assert device_from_code("mcb_D").characteristic is McbCharacteristic.D
    with pytest.raises(ValueError, match="not a device"):
        device_from_code("mcb_K")


# ------------------------------------------------------------------------------------ criteria
@pytest.mark.parametrize(("ch", "upper"), [("B", 5), ("C", 10), ("D", 20)])
def test_mcb_disconnects_at_the_upper_bound_of_its_characteristic(policy, ch, upper):
    # IEC 60898-1: B 3-5 In, C 5-10 In, D 10-20 In; disconnection needs the upper bound
    crit = disconnection_current(mcb(ch, 40.0), policy)
    assert crit.value == upper * 40.0
    assert crit.key is PolicyKey.MCB_MAGNETIC_TRIP_MULTIPLES and crit.assumptions == ()  # tag S


def test_adjustable_breaker_disconnects_at_tolerance_times_lowest_pickup(policy):
    # Ir 100 A, Isd 6 x Ir, Ii 10 x Ir: 1.2 x 6 x 100 = 720 A; tolerance is [R] and named
    crit = disconnection_current(adjustable(100.0, isd_multiple=6, ii_multiple=10), policy)
    assert crit.value == pytest.approx(720.0)
    assert crit.assumptions == ("policy:breaker_pickup_tolerance",)
    assert disconnection_current(adjustable(100.0, ii_multiple=10), policy).value == pytest.approx(1200.0)


def test_gg_fuse_disconnects_at_its_5s_gate_and_names_missing_data(policy):
    assert disconnection_current(gg(63.0), policy).value == 320  # IEC 60269-1 I_max(5 s)
    assert disconnection_current(gg(35.0), policy).value == 165  # interpolated 32/40 A
    missing = disconnection_current(gg(10.0), policy)
    assert missing.value is None and missing.text.startswith("missing data: no 5-s melting current of a 10 A")


def test_start_current_each_device(policy):
    # gG 25 A: I_min(10 s) = 52 A for a 5 s start, I_min(0.1 s) = 150 A for a 0.05 s one
    assert no_trip_current(gg(25.0), 5.0, policy).value == 52
    assert no_trip_current(gg(25.0), 0.05, policy).value == 150
    # C 32 A: no instantaneous trip below 5 x 32 = 160 A (0.1 s); up to 1 s: 2.55 x 32 = 81.6 A; 5 s: no data
    assert no_trip_current(mcb("C", 32.0), 0.1, policy).value == 160
    assert no_trip_current(mcb("C", 32.0), 1.0, policy).value == pytest.approx(81.6)
    assert no_trip_current(mcb("C", 32.0), 5.0, policy).value is None
    # adjustable Ir 100, Isd 6: 6 x 100 / 1.2 = 500 A for a short start; longer: the long-time delay is unknown
    assert no_trip_current(adjustable(100.0, isd_multiple=6), 0.1, policy).value == pytest.approx(500.0)
    assert no_trip_current(adjustable(100.0, isd_multiple=6), 1.0, policy).value is None


def test_selectivity_of_a_fuse_above_each_device(policy):
    # gG above gG: the rating ratio against 1.6
    (ratio,) = fuse_above_device(100.0, gg(63.0), 3000.0, policy, what="KV")
    assert ratio.value == pytest.approx(100 / 63) and ratio.limit == 1.6 and ratio.unit == "ratio"
    # 100 A gG above C 40 A: I_min(0.1 s) = 820 A >= 10 x 40 = 400 A; pre-arcing 21 200 A^2 s against
    # Ik_max^2 x 0.01 s = 3000^2 x 0.01 = 90 000 A^2 s (no datasheet)
    tc, i2t = fuse_above_device(100.0, mcb("C", 40.0), 3000.0, policy, what="KV")
    assert (tc.value, tc.limit) == (820, 400)
    assert (i2t.value, i2t.limit) == (21200, pytest.approx(90000.0))
    assert "policy:breaker_let_through_time_s" in i2t.assumptions
    # with the datasheet let-through: 15 000 A^2 s, no assumption about it
    _, i2t = fuse_above_device(100.0, mcb("C", 40.0, let_through_i2t_a2s=15000), 3000.0, policy, what="KV")
    assert i2t.limit == 15000 and "policy:breaker_let_through_time_s" not in i2t.assumptions
    # a 224 A fuse has no data: named
    tc, i2t = fuse_above_device(224.0, mcb("B", 40.0), 3000.0, policy, what="KV")
    assert math.isnan(tc.value) and tc.text.startswith("missing data: no I_min(0.1 s) of a 224 A gG fuse (KV)")
    assert math.isnan(i2t.value) and "no pre-arcing I2t of a 224 A" in i2t.text


# ------------------------------------------------------------------------------------ inverse: largest breaker
def test_largest_breaker_of_each_characteristic_by_hand(policy):
    """Ik_min 937.6 A, no cable/upstream/KV limit. Largest standard size s with upper x s <= 937.6:
    B (5): 160 A (800 A; 200 A would need 1000 A); C (10): 80 A (800); D (20): 40 A (800; 50 A: 1000).
    gG: I_max(5 s) <= 937.6: 125 A (715), 160 A needs 950 -> 125. Adjustable Isd 8: 1.2 x 8 x s <= 937.6:
    s <= 97.7 -> 80 A."""
    nan = np.array([np.nan])
    ik = np.array([937.6])

    def largest(device):
        size, rule = main_fuse_range(nan, nan, ik, policy, device=device)
        return float(size[0]), rule[0]

    assert largest(MainDevice(type="mcb", characteristic="B")) == (160.0, "PROT.FAULT_CURRENT")
    assert largest(MainDevice(type="mcb", characteristic="C")) == (80.0, "PROT.FAULT_CURRENT")
    assert largest(MainDevice(type="mcb", characteristic="D")) == (40.0, "PROT.FAULT_CURRENT")
    assert largest(None) == (125.0, "PROT.FAULT_CURRENT")
    assert largest(MainDevice(type="adjustable_breaker", isd_multiple=8)) == (80.0, "PROT.FAULT_CURRENT")


def test_breaker_range_with_kv_and_upstream(policy):
    """Ik_min 5000 A (no fault-current limit below 250 A for B). KV 100 A: its I_min(0.1 s) 820 A must reach
    5 x s: s <= 164 -> 160 A; the KV's pre-arcing 21 200 A^2 s against Ik_max^2 x 0.01 = 1000^2 x 0.01 =
    10 000 A^2 s passes. With Ik_max 2000 A: 40 000 > 21 200 fails at every size: none (KV selectivity).
    A gG OV behind the same KV: 100 / s >= 1.6 -> s <= 62.5: 50 A."""
    nan, ik = np.array([np.nan]), np.array([5000.0])
    b = MainDevice(type="mcb", characteristic="B")
    size, rule = main_fuse_range(nan, nan, ik, policy, device=b, kv_a=np.array([100.0]), ik_max_a=np.array([1000.0]))
    assert (size[0], rule[0]) == (160.0, "PROT.KV_SELECTIVITY")
    size, rule = main_fuse_range(nan, nan, ik, policy, device=b, kv_a=np.array([100.0]), ik_max_a=np.array([2000.0]))
    assert math.isnan(size[0]) and rule[0] == "PROT.KV_SELECTIVITY"
    size, rule = main_fuse_range(nan, nan, ik, policy, kv_a=np.array([100.0]))
    assert (size[0], rule[0]) == (50.0, "PROT.KV_SELECTIVITY")
    # upstream 250 A above B: I_min(0.1 s) 2590 A >= 5 s -> s <= 518: 500 A; fault current 5000 >= 5 x 500
    size, rule = main_fuse_range(nan, np.array([250.0]), ik, policy, device=b)
    assert (size[0], rule[0]) == (500.0, "PROT.SELECTIVITY")


# ------------------------------------------------------------------------------------ customer index
def _index(**cols) -> pd.DataFrame:
    base = {
        "metering_point_id": ["707057500000000018", "707057500000000025"],
        "network_id": ["n", "n"],
        "bus": [1, 2],
        "existing_peak_kw": [5.0, 5.0],
    }
    return conform_customer_points(pd.DataFrame({**base, **cols}), "idx")


def test_customer_index_device_columns_are_validated():
    ok = _index(main_device=["mcb_C", None], kv_fuse_a=[100.0, np.nan])
    assert customer_row_problems(ok) == []
    bad = _index(main_device=["mcb_K", "adjustable_breaker"], main_isd_multiple=[6.0, np.nan])
    problems = customer_row_problems(bad)
    assert any(p.startswith("row 0 main_device: 'mcb_K' is not a device") for p in problems), problems
    assert any("row 1 main_device: an adjustable_breaker needs main_isd_multiple" in p for p in problems)
    assert any("row 0 main_isd_multiple/main_ii_multiple: settings of a mcb_K" in p for p in problems)


def test_device_types_listed():
    assert [t.value for t in DeviceType] == ["gG_fuse", "mcb", "adjustable_breaker"]


# ------------------------------------------------------------------------------------ the ledger stores the device
def test_ledger_stores_the_device_and_migrates_an_old_ledger(tmp_path):
    import sqlite3

    from powercheck.ledger.model import LedgerRequest, RequestStatus
    from powercheck.ledger.store import LedgerStore

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)  # a ledger written before devices were stored: no device_json column
    old.executescript(
        "CREATE TABLE requests (notification_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
        "metering_point_id TEXT NOT NULL, network_id TEXT, bus INTEGER, status TEXT NOT NULL, job_type TEXT, "
        "installer_id TEXT, submitted_at TEXT, decided_at TEXT, fuse_after_a REAL, reservation_json TEXT NOT NULL, "
        "conditions_json TEXT NOT NULL DEFAULT '[]', updated_at TEXT NOT NULL);"
        "INSERT INTO requests VALUES ('OLD', 1, '707057500000000018', NULL, NULL, 'approved', 'ov_mv_change', NULL, "
        "NULL, NULL, 32.0, '{}', '[]', '2026-01-01');"
    )
    old.close()
    store = LedgerStore(path)
    assert store.get("OLD").device_after is None and store.get("OLD").fuse_after_a == 32.0
    device = {"rating_a": 40.0, "type": "mcb", "characteristic": "C"}
    store.put(
        [
            LedgerRequest(
                notification_id="NEW",
                revision=1,
                metering_point_id="707057500000000025",
                network_id=None,
                bus=None,
                status=RequestStatus.APPROVED,
                fuse_after_a=40.0,
                device_after=device,
            )
        ]
    )
    assert store.get("NEW").device_after == device
    store.close()


def test_decision_records_the_device_and_the_next_job_uses_it(case_region, policy):
    """An approved change to a C 40 A MCB (recorded with its type and characteristic), then a heat pump at the same
    point: the fuse stays, so PROT.START_CURRENT holds the heat pump's 1 s start (policy default) against the C
    40 A breaker: 2.55 x 40 = 102 A for up to 1 s (IEC 60898-1 [R]), not a gG fuse's gate."""
    from powercheck.ledger.state import CapacityState
    from powercheck.rules.engine import Assessor
    from tests.helpers.case_region import case_mp
    from tests.helpers.mini import FIXED_TIME, appliance_jobs_auto_approvable, without_measures

    state = CapacityState.empty(case_region)
    assessor = Assessor(
        case_region,
        without_measures(appliance_jobs_auto_approvable(policy)),
        clock=lambda: FIXED_TIME,
        ledger=state,
    )
    mp = case_mp("TN_END")
    first = Notification.model_validate(
        {
            "notification_id": "BRK-1",
            "job_type": "ov_mv_change",
            "metering_point_id": mp,
            "network_system": "TN_400",
            "main_fuse_before_a": 25,
            "main_fuse_after_a": 40,
            "power_budget": {"max_demand_kw": 20},
            "main_device_after": {"type": "mcb", "characteristic": "C"},
        }  # fmt: skip
    )
    d1 = assessor.assess(first)
    assert d1.outcome == "auto_approve", d1.reasons
    assert state.requests["BRK-1"].device_after == {"rating_a": 40.0, "type": "mcb", "characteristic": "C"}
    second = Notification.model_validate(
        {
            "notification_id": "HP-1",
            "job_type": "heat_pump",
            "metering_point_id": mp,
            "network_system": "TN_400",
            # with the datasheet values a heat pump needs (else request_info); its start lasts the policy's 1 s
            "appliances": [
                {
                    "kind": "heat_pump",
                    "rated_kw": 6.0,
                    "connection": "3ph",
                    "start_current_ratio": 3.0,
                    "starts_per_hour": 3,
                }
            ],
        }  # fmt: skip
    )
    d2 = assessor.assess(second)
    start = d2.check("PROT.START_CURRENT")
    assert start.limit == pytest.approx(2.55 * 40) and "C 40 A MCB" in start.detail
    assert start.limit_key == "mcb_thermal_no_trip" and "policy:mcb_thermal_no_trip" in start.assumptions


def test_cli_policy_lists_the_protection_data_with_sources(capsys):
    from powercheck.cli import main

    assert main(["policy"]) == 0
    out = capsys.readouterr().out
    protection = out[out.index("Protection:") : out.index("Model constants")]
    assert "[S] selectivity_ratio_min = 1.6" in protection and "IEC 60269" in protection
    assert "[S] mcb_magnetic_trip_multiples =" in protection
    for row in ("B = [3, 5]", "C = [5, 10]", "D = [10, 20]"):
        assert row in protection
    assert "ti-soft.com" in protection and "IEC 60898-1" in protection
    assert "35 = [82, 165, 222, 388]" in protection  # the 35 A gates, every row of the table shown
    assert "[R] breaker_pickup_tolerance = 1.2 -  ASSUMPTION" in protection
    assert "[R] upstream_fuse_from_feeder_cable = 1.0" in protection


def test_input_hash_of_a_record_without_a_device_is_unchanged():
    """Records stored before the device field existed keep their input hash (the key is left out when None)."""
    import hashlib
    import json

    data = {"notification_id": "H-1", "job_type": "ov_mv_change", "metering_point_id": "707057500000000018",
            "network_system": "TN_400", "main_fuse_before_a": 25, "main_fuse_after_a": 32}  # fmt: skip
    n = Notification.model_validate(data)
    dumped = n.model_dump(mode="json")
    assert dumped.pop("main_device_after") is None
    old = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert n.input_hash() == old
    with_device = Notification.model_validate({**data, "main_device_after": {"type": "mcb", "characteristic": "B"}})
    assert with_device.input_hash() != old


def test_fuse_tables_cover_every_rating_in_use(policy, demo_region):
    """Every standard size from 16 A up, every KV and upstream fuse of the demo index and the NH sizes the
    assumed upstream fuse takes have gG gates and a pre-arcing I2t; 10 A (below the IEC table) and a 224 A KV are
    the ratings without data, which the checks name as missing data."""
    from powercheck.rules.devices import fuse_rating_value

    cust = demo_region.customers
    used = {float(s) for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A) if s >= 16}
    used |= set(cust.kv_fuse_a.dropna()) | set(cust.upstream_fuse_a.dropna()) | set(cust.main_fuse_a.dropna())
    for rating in sorted(used):
        assert policy.fuse_melting_5s(rating) is not None, rating
        assert fuse_rating_value(policy, PolicyKey.FUSE_GG_PREARC_I2T_A2S, rating) is not None, rating
    assert policy.fuse_melting_5s(10) is None and policy.fuse_melting_5s(224) is None
    # the 35 A values, log-log between 32 A and 40 A: I_min rounded down, I_max up, I2t down
    e = math.log(35 / 32) / math.log(40 / 32)
    assert [policy.fuse_gate(35, g) for g in ("no_melt_10s", "melt_5s", "no_melt_0_1s", "melt_0_1s")] == [
        math.floor(75 * (95 / 75) ** e),
        math.ceil(150 * (190 / 150) ** e),
        math.floor(200 * (260 / 200) ** e),
        math.ceil(350 * (450 / 350) ** e),
    ]
    assert fuse_rating_value(policy, PolicyKey.FUSE_GG_PREARC_I2T_A2S, 35) == 1000 * math.floor(2.5 * 1.6**e)


# ------------------------------------------------------------------------------------ kv_change in the ledger
def test_kv_change_is_recorded_and_the_next_job_uses_the_new_kv(case_region, policy):
    """A kv_change sets a 63 A KV at the TN feeder end (no KV in the customer index; a grid owner that
    auto-approves kv_change): KV/OV 63/25 = 2.52, upstream 250 A assumed / 63 = 3.97, Ik_min 937.6 A >= 320 A --
    approved, and the ledger records the 63 A KV. A later OV change to 50 A gG there is held against that KV:
    KV/OV = 63/50 = 1.26 < 1.6 fails (it would not be checked at all against the customer index alone)."""
    from powercheck.ledger.state import CapacityState
    from powercheck.rules.engine import Assessor
    from tests.helpers.case_region import case_mp
    from tests.helpers.mini import FIXED_TIME, without_measures

    params = dict(policy.params)
    params["auto_approve_job_types"] = policy.param("auto_approve_job_types").model_copy(
        update={"value": ["ov_mv_change", "kv_change"]}
    )
    state = CapacityState.empty(case_region)
    assessor = Assessor(
        case_region,
        without_measures(policy.model_copy(update={"params": params})),
        clock=lambda: FIXED_TIME,
        ledger=state,
    )
    mp = case_mp("TN_END")
    base = {"metering_point_id": mp, "network_system": "TN_400", "installer_id": "INST-1"}
    kv = Notification.model_validate(
        {
            **base,
            "notification_id": "KV-1",
            "job_type": "kv_change",
            "kv_fuse_after_a": 63,
            "attachments": [{"kind": "single_line_diagram"}],
        }  # fmt: skip
    )
    d1 = assessor.assess(kv)
    assert d1.outcome == "auto_approve", d1.reasons
    assert d1.check("PROT.KV_SELECTIVITY").value == pytest.approx(63 / 25)
    assert d1.check("PROT.KV_UPSTREAM_SELECTIVITY").value == pytest.approx(250 / 63)
    assert "policy:upstream_fuse_from_feeder_cable" in d1.check("PROT.KV_UPSTREAM_SELECTIVITY").assumptions
    assert d1.check("PROT.KV_FAULT_CURRENT").limit == 320
    assert state.requests["KV-1"].kv_after_a == 63.0
    ov = Notification.model_validate(
        {
            **base,
            "notification_id": "OV-1",
            "job_type": "ov_mv_change",
            "main_fuse_before_a": 25,
            "main_fuse_after_a": 50,
            "power_budget": {"max_demand_kw": 25},
        }  # fmt: skip
    )
    d2 = assessor.assess(ov)
    sel = d2.check("PROT.KV_SELECTIVITY")
    assert sel.status == "fail" and sel.value == pytest.approx(63 / 50) and "ledger request KV-1" in sel.detail
    assert not d2.checks_for("PROT.KV_UPSTREAM_SELECTIVITY")  # the OV job does not change the KV


def test_ledger_stores_the_kv_and_migrates_an_old_ledger(tmp_path):
    import sqlite3

    from powercheck.cli import _request_from_json
    from powercheck.ledger.model import LedgerRequest, RequestStatus
    from powercheck.ledger.store import LedgerStore

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)  # a ledger written before KV changes were stored: no kv_after_a column
    old.executescript(
        "CREATE TABLE requests (notification_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
        "metering_point_id TEXT NOT NULL, network_id TEXT, bus INTEGER, status TEXT NOT NULL, job_type TEXT, "
        "installer_id TEXT, submitted_at TEXT, decided_at TEXT, fuse_after_a REAL, reservation_json TEXT NOT NULL, "
        "conditions_json TEXT NOT NULL DEFAULT '[]', device_json TEXT, updated_at TEXT NOT NULL);"
        "INSERT INTO requests VALUES ('OLD', 1, '707057500000000018', NULL, NULL, 'approved', 'ov_mv_change', NULL, "
        "NULL, NULL, 32.0, '{}', '[]', NULL, '2026-01-01');"
    )
    old.close()
    store = LedgerStore(path)
    assert store.get("OLD").kv_after_a is None
    new = LedgerRequest(
        notification_id="KV",
        revision=1,
        metering_point_id="707057500000000025",
        network_id=None,
        bus=None,
        status=RequestStatus.APPROVED,
        job_type="kv_change",
        kv_after_a=80.0,
    )
    store.put([new])
    assert store.get("KV").kv_after_a == 80.0
    store.close()
    row = {"notification_id": "KV", "revision": 1, "metering_point_id": "707057500000000025", "status": "approved"}
    assert _request_from_json({**row, "kv_after_a": 80}).kv_after_a == 80.0
    for bad in (-5, True, "80", 5000):
        with pytest.raises(ValueError, match="kv_after_a"):
            _request_from_json({**row, "kv_after_a": bad})


# ------------------------------------------------------------------------------------ sizing against a breaker
def test_required_size_uses_the_breakers_own_criterion(policy):
    """30.4 A running, a 132.4 A start of 0.1 s. gG: 32 A carries 30.4 A and does not melt within 0.1 s below
    I_min(0.1 s) = 200 A >= 132.4 -> 32 A. MCB (no instantaneous trip below the lower bound x In): B 3 x s >= 132.4
    -> s >= 44.1 -> 50 A; C 5 x 32 = 160 -> 32 A; D 10 x 32 -> 32 A. Adjustable Isd 2 x Ir: 2 x s / 1.2 >= 132.4
    -> s >= 79.4 -> 80 A. A 5 s start: an MCB's thermal no-trip data covers 1 s only -> none (missing data)."""
    from powercheck.rules.accounting import Accounting, required_fuse_a

    acc = Accounting(20.0, 30.4, 0.0, 0.0, 132.4, 0.1, "compressor", ())
    assert required_fuse_a(acc, policy) == 32.0
    assert required_fuse_a(acc, policy, MainDevice(type="gG_fuse")) == 32.0
    assert required_fuse_a(acc, policy, MainDevice(type="mcb", characteristic="B")) == 50.0
    assert required_fuse_a(acc, policy, MainDevice(type="mcb", characteristic="C")) == 32.0
    assert required_fuse_a(acc, policy, MainDevice(type="mcb", characteristic="D")) == 32.0
    assert required_fuse_a(acc, policy, MainDevice(type="adjustable_breaker", isd_multiple=2)) == 80.0
    long_start = Accounting(20.0, 30.4, 0.0, 0.0, 132.4, 5.0, "compressor", ())
    assert required_fuse_a(long_start, policy, MainDevice(type="mcb", characteristic="B")) is None


def test_decision_sizes_a_notified_breaker_against_the_breaker(case_region, policy):
    """A 15 kW compressor (cos 0.85, start 5 x I_r for 0.1 s) with the OV changed 25 A -> B 40 A MCB at the TN feeder
    end. I_r = 15000 / (sqrt3 x 400 x 0.85) = 25.47 A; running: the existing 5 kW at cos 0.95, 5000 / (sqrt3 x 400
    x 0.95) = 7.60 A, plus the motor at its own cos, 33.07 A; starting 33.07 + 4 x 25.47 = 134.95 A > 3 x 40 = 120 A
    (B: no instantaneous trip below 3 In):
    PROT.START_CURRENT fails, and the reason asks for a B 50 A MCB (3 x 50 = 150 A), not the 40 A a gG fuse would
    need (I_min(0.1 s) 260 A); the inverse range starts at 50 A."""
    from powercheck.rules.engine import Assessor
    from tests.helpers.case_region import case_mp
    from tests.helpers.mini import FIXED_TIME, without_measures

    assessor = Assessor(case_region, without_measures(policy), clock=lambda: FIXED_TIME)
    n = Notification.model_validate(
        {
            "notification_id": "MCB-START",
            "job_type": "motor",
            "metering_point_id": case_mp("TN_END"),
            "network_system": "TN_400",
            "main_fuse_before_a": 25,
            "main_fuse_after_a": 40,
            "main_device_after": {"type": "mcb", "characteristic": "B"},
            "appliances": [
                {
                    "kind": "motor",
                    "rated_kw": 15.0,
                    "connection": "3ph",
                    "cos_phi": 0.85,
                    "start_current_ratio": 5.0,
                    "cos_phi_start": 0.4,
                    "starts_per_hour": 0.5,
                    "start_duration_s": 0.1,
                }
            ],
        }
    )
    d = assessor.assess(n)
    i_r = 15000 / (math.sqrt(3) * 400 * 0.85)
    running = 5000 / (math.sqrt(3) * 400 * 0.95) + i_r
    start = d.check("PROT.START_CURRENT")
    assert start.status == "fail" and start.limit == pytest.approx(3 * 40)
    assert start.value == pytest.approx(running + 4 * i_r, rel=1e-9)
    assert "requires a main protection of at least 50 A: B 50 A MCB" in start.detail
    assert any("requires a main protection of at least 50 A: B 50 A MCB" in r for r in d.reasons), d.reasons
    assert not any("requires a fuse of at least" in r for r in d.reasons)
    fuse_range = [s for s in d.limits if s.quantity == "main_fuse_a"]
    assert fuse_range and fuse_range[0].smallest == 50.0


def test_kv_change_gets_the_range_of_kv_sizes(case_region, policy):
    """The inverse answer of a kv_change: KV sizes (standard gG) between the smallest that discriminates with the
    25 A gG main fuse on record, s / 25 >= 1.6 -> s >= 40 -> 40 A, and the largest the upstream fuse and the
    minimum fault current allow.
    TN_MID_KV (upstream 250 A on record, Ik_min 1239.0 A): 250 / s >= 1.6 -> s <= 156.25 -> 125 A (160 A fails
    first: 250/160 = 1.5625; its I_max(5 s) 950 A would melt), binding PROT.KV_UPSTREAM_SELECTIVITY.
    WEAK_END (250 A assumed upstream, Ik_min 294.3 A): 50 A melts within 5 s at 250 A <= 294.3 A, 63 A needs
    320 A: largest 50 A, binding PROT.KV_FAULT_CURRENT."""
    from powercheck.rules.engine import Assessor
    from tests.helpers.case_region import case_mp
    from tests.helpers.mini import FIXED_TIME, without_measures

    assessor = Assessor(case_region, without_measures(policy), clock=lambda: FIXED_TIME)

    def kv_range(key: str, system: str, kv: float):
        n = Notification.model_validate(
            {
                "notification_id": f"KV-{key}",
                "job_type": "kv_change",
                "metering_point_id": case_mp(key),
                "network_system": system,
                "kv_fuse_after_a": kv,
                "attachments": [{"kind": "single_line_diagram"}],
            }
        )
        d = assessor.assess(n)
        got = [s for s in d.limits if s.quantity == "kv_fuse_after_a"]
        assert len(got) == 1, d.limits
        return got[0]

    mid = kv_range("TN_MID_KV", "TN_400", 200.0)
    assert (mid.notified, mid.smallest, mid.largest) == (200.0, 40.0, 125.0)
    assert mid.binding_rule == "PROT.KV_UPSTREAM_SELECTIVITY"
    weak = kv_range("WEAK_END", "IT_230", 35.0)
    assert (weak.smallest, weak.largest, weak.binding_rule) == (40.0, 50.0, "PROT.KV_FAULT_CURRENT")


def test_kv_fuse_measure_picks_the_nearest_kv_in_range(case_region, policy):
    """A kv_change to 200 A at TN_MID_KV fails (upstream 250/200 = 1.25 < 1.6; I_max(5 s) 1250 A > Ik_min 1239 A).
    The kv_fuse measure sets the nearest size in the range 40-125 A: 125 A (250/125 = 2.0, 125/25 = 5, 715 A <=
    1239 A, all at least 5 % from their limits). A grid owner that auto-approves kv_change approves it with that
    condition; the default policy (kv_change not auto-approved) names the job type as what remains."""
    from powercheck.rules.engine import Assessor
    from tests.helpers.case_region import case_mp
    from tests.helpers.mini import FIXED_TIME

    n = Notification.model_validate(
        {
            "notification_id": "KV-200",
            "job_type": "kv_change",
            "metering_point_id": case_mp("TN_MID_KV"),
            "network_system": "TN_400",
            "kv_fuse_after_a": 200,
            "attachments": [{"kind": "single_line_diagram"}],
        }
    )
    d = Assessor(case_region, policy, clock=lambda: FIXED_TIME).assess(n)
    m = next(x for x in d.measures if x.id == "kv_fuse")
    assert d.outcome == "escalate" and not m.sufficient and m.message.params["fuse"] == 125.0
    assert "does not auto-approve a kv_change" in m.effect
    params = dict(policy.params)
    params["auto_approve_job_types"] = policy.param("auto_approve_job_types").model_copy(
        update={"value": ["ov_mv_change", "kv_change"]}
    )
    kv_auto = policy.model_copy(update={"params": params})
    d = Assessor(case_region, kv_auto, clock=lambda: FIXED_TIME).assess(n)
    assert d.outcome == "approved_with_conditions", d.reasons
    assert d.conditions == ["Set the new KV (short-circuit protection before the meter) to 125 A"]
    assert d.check("PROT.KV_UPSTREAM_SELECTIVITY").value == pytest.approx(250 / 125)
