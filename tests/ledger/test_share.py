"""The requests of the in-memory ledger share one object per distinct value (powercheck.ledger.share), and that
changes nothing: the same requests field for field (same types, same digits), the same reserved capacity, the same
decisions, also after replacements, drops and rollbacks."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from powercheck.ledger import CapacityState, LedgerRequest, RequestStatus, Reservation, ReservedComponent, share
from powercheck.ledger.store import LedgerStore
from powercheck.quality.codes import CONN_3PH
from powercheck.rules import sequence
from powercheck.rules.engine import Assessor
from tests.helpers.case_region import case_network
from tests.helpers.grids import bus_named
from tests.helpers.mini import FIXED_TIME

FIELDS = tuple(LedgerRequest.__dataclass_fields__)
ARRAYS = ("line_peak_a", "line_low_a", "trafo_peak_a", "trafo_low_a", "bus_drop_percent", "bus_rise_percent",
          "bus_vuf_peak_percent", "bus_vuf_low_percent")  # fmt: skip

NOT_SHARED = SimpleNamespace(
    exact=share.exact,
    reservation=lambda r: r,
    rating=lambda x: x,
    number=lambda x: x,
    made=lambda key, make: make(),
    shared=lambda v: v,
)
"""powercheck.ledger.share as if it shared nothing (every value its own object)."""


def _two_cycles():
    """The demo's valid notifications and the same a week later under new ids (completion notices and revisions
    keep their relations), so that the second cycle's requests repeat the first's values."""
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    later = [
        n.model_copy(
            update={
                "notification_id": f"{n.notification_id}-w1",
                "submitted_at": n.submitted_at + timedelta(weeks=1) if n.submitted_at is not None else None,
            }
        )
        for n in notes
    ]
    return notes + later


def _decide(region, policy, notes):
    state = CapacityState.empty(region)
    assessed = Assessor(region, policy, clock=lambda: FIXED_TIME, ledger=state).assess_recorded(notes)
    return state, [d.model_dump(mode="json") for d in assessed.decisions]


def _same_request(a: LedgerRequest, b: LedgerRequest) -> None:
    assert a == b
    for name in FIELDS:  # equal and of the same type and digits (an int is not a float, -0.0 is not 0.0)
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, datetime):  # the store reads UTC back as timezone.utc, not pydantic's TzInfo(0)
            x, y = x.isoformat(), y.isoformat()
        assert type(x) is type(y) and repr(x) == repr(y), name
    assert a.reservation.to_json() == b.reservation.to_json()


def _same_arrays(a: CapacityState, b: CapacityState) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name  # bit for bit


def test_the_demo_twice_records_the_same_requests_sharing_their_values(demo_region, policy, monkeypatch):
    notes = _two_cycles()
    share.clear()
    state, decisions = _decide(demo_region, policy, notes)
    with monkeypatch.context() as m:
        m.setattr(sequence, "share", NOT_SHARED)
        m.setattr(sequence, "shared", NOT_SHARED.shared)
        plain, plain_decisions = _decide(demo_region, policy, notes)
    assert decisions == plain_decisions
    assert state.requests.keys() == plain.requests.keys() and len(state.requests) > 300
    for nid, request in state.requests.items():
        _same_request(request, plain.requests[nid])
    assert state.by_mp == plain.by_mp and state.applied == plain.applied
    _same_arrays(state, plain)

    # equal values: one object each among the shared requests; every one its own among the plain ones
    def objects(s, get):
        values = [get(r) for r in s.requests.values() if get(r) is not None]
        by_value: dict = {}
        for v in values:
            by_value.setdefault(repr(v), set()).add(id(v))
        return len(values), len(by_value), sum(len(ids) for ids in by_value.values())

    for get in (
        lambda r: r.reservation,
        lambda r: r.device_after,
        lambda r: r.fuse_after_a,
        lambda r: r.reservation.appliances or None,
        lambda r: r.conditions or None,
    ):
        n, distinct, shared_objects = objects(state, get)
        assert n > 0 and shared_objects == distinct  # one object per distinct value
        n_plain, distinct_plain, plain_objects = objects(plain, get)
        assert (n_plain, distinct_plain) == (n, distinct)
    n, distinct, plain_objects = objects(plain, lambda r: r.reservation)
    assert distinct < 0.6 * n and plain_objects == n  # the demo repeats its reservations; unshared, each a copy


def test_requests_loaded_from_the_store_share_equal_values_and_give_the_same_state(
    demo_region, policy, tmp_path, monkeypatch
):
    from powercheck.ledger import store as store_mod

    share.clear()
    state, _ = _decide(demo_region, policy, _two_cycles())
    store = LedgerStore(tmp_path / "ledger.db")
    store.put(list(state.requests.values()))
    share.clear()  # nothing from the deciding run: the loaded requests share among themselves
    loaded = store.list()
    with monkeypatch.context() as m:
        m.setattr(
            store_mod,
            "share",
            SimpleNamespace(
                reservation_json=Reservation.from_json,
                device_json=lambda text: json.loads(text) if text else None,
                rating=lambda x: x,
                number=lambda x: x,
                shared=lambda v: v,
            ),
        )
        plain = store.list()
    store.close()
    assert [r.notification_id for r in loaded] == [r.notification_id for r in plain] and len(loaded) > 300
    for request, unshared in zip(loaded, plain):
        _same_request(request, unshared)
    reservations: dict = {}
    for r in loaded:
        reservations.setdefault(r.reservation.to_json(), set()).add(id(r.reservation))
    assert len(reservations) < 0.6 * len(loaded) and all(len(ids) == 1 for ids in reservations.values())
    devices: dict = {}
    for r in loaded:
        if r.device_after is not None:
            devices.setdefault(repr(r.device_after), set()).add(id(r.device_after))
    assert devices and all(len(ids) == 1 for ids in devices.values())
    assert len({id(r.reservation) for r in plain}) == len(plain)  # unshared: every one a copy
    _same_arrays(CapacityState.of(demo_region, loaded), CapacityState.of(demo_region, plain))
    again = CapacityState.of(demo_region, loaded)  # the same requests applied in the store's order, not decided order
    for name in ARRAYS:
        assert getattr(again, name) == pytest.approx(getattr(state, name), rel=1e-12, abs=1e-12), name


def _request(nid, reservation, bus_name="house_3", status=RequestStatus.APPROVED):
    return LedgerRequest(
        notification_id=nid,
        revision=1,
        metering_point_id=f"MP-{nid}",
        network_id="tn",
        bus=bus_named(case_network("tn"), bus_name),
        status=status,
        reservation=reservation,
    )


def test_requests_holding_one_reservation_object_are_replaced_dropped_and_rolled_back_alone(case_region):
    """Two requests holding the same reservation object: dropping, replacing or rolling back one leaves the other's
    capacity as if it were alone (the state keeps requests by notification id, never by their reservation)."""
    one = share.reservation(Reservation(load=(ReservedComponent(CONN_3PH, 12.0, 1.0),), s1_load_kva=0.0))
    assert share.reservation(Reservation(load=(ReservedComponent(CONN_3PH, 12.0, 1.0),), s1_load_kva=0.0)) is one
    alone = CapacityState.of(case_region, [_request("B", one)])
    both = CapacityState.of(case_region, [_request("A", one), _request("B", one)])
    assert both.bus_drop_percent.max() > alone.bus_drop_percent.max() > 0.0
    reference = {name: getattr(both, name).copy() for name in ARRAYS}

    journal = both.begin()
    both.drop("A")
    assert both.requests.keys() == {"B"} and both.at("MP-B")[0].reservation is one
    for name in ARRAYS:
        assert getattr(both, name) == pytest.approx(getattr(alone, name), rel=1e-12, abs=1e-12), name
    both.put(_request("B", one, status=RequestStatus.CANCELLED))  # replaced: nothing reserved any more
    assert both.applied == {} and np.abs(both.bus_drop_percent).max() < 1e-12
    both.rollback(journal)
    assert both.requests.keys() == {"A", "B"} and set(both.applied) == {"A", "B"}
    for name in ARRAYS:
        assert getattr(both, name) == pytest.approx(reference[name], rel=1e-12, abs=1e-12), name


def test_a_value_is_shared_only_with_the_same_type_and_digits(monkeypatch):
    share.clear()
    assert share.rating(40.0) is share.rating(float("40"))
    assert share.rating(40) == 40 and type(share.rating(40)) is int  # an int never becomes the equal float
    assert share.rating(-0.0) is not None and math.copysign(1.0, share.rating(-0.0)) < 0
    nan = float("nan")
    assert share.rating(nan) is nan
    big = int("300")
    assert share.number(big) is share.number(int("300")) and share.number(None) is None

    assert share.exact(0.0) and share.exact(2.5) and share.exact(-2.5)
    assert not share.exact(-0.0) and not share.exact(float("nan")) and not share.exact(0) and not share.exact(None)
    plain = Reservation(s1_load_kva=0.0, demand_after_kw=3.5)
    assert share.reservation(plain) is plain
    assert share.reservation(Reservation(s1_load_kva=0.0, demand_after_kw=3.5)) is plain
    negative_zero = Reservation(s1_load_kva=-0.0, demand_after_kw=3.5)
    assert negative_zero == plain and share.reservation(negative_zero) is negative_zero  # -0.0 is kept
    with_int = Reservation(s1_load_kva=0, demand_after_kw=3.5)
    assert share.reservation(with_int) is with_int and with_int.to_json() != plain.to_json()

    text = '{"rating_a":40.0,"type":"mcb","characteristic":"C"}'
    device = share.device_json(text)
    assert device == {"rating_a": 40.0, "type": "mcb", "characteristic": "C"} and share.device_json(text) is device
    assert share.device_json(None) is None and share.device_json("") is None


def test_a_table_at_its_bound_is_emptied_and_sharing_starts_again(monkeypatch):
    share.clear()
    first = ("ev_charger", 11.0, "3ph", 1)
    assert share.shared(tuple(first)) is share.shared(tuple(list(first)))
    monkeypatch.setattr(share, "MAX_ENTRIES", len(share._VALUES))
    new = ("heat_pump", 9.5, "1ph", 2)
    assert share.shared(new) is new and len(share._VALUES) == 1  # a new value at the bound: emptied
    again = tuple(list(first))
    assert share.shared(again) is again  # the earlier object is no longer handed out
