"""Reserved capacity by superposition on the radial tree, against hand calculations and pandapower runpp."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import replace

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pytest

from powercheck.ledger import CapacityState, LedgerRequest, RequestStatus, Reservation, ReservedComponent
from powercheck.quality.codes import CONN_3PH, CONN_LL
from tests.helpers.case_region import case_network
from tests.helpers.grids import bus_named

SQ3 = math.sqrt(3)


def _row(region, network_id, bus_name):
    net = case_network(network_id)
    bus = bus_named(net, bus_name)
    return region.arrays, int(np.flatnonzero(
        (region.arrays.bus_ids == bus) & (region.arrays.network_index == region.network_order.index(network_id))
    )[0])  # fmt: skip


def _line_rows(region, network_id, names):
    net = case_network(network_id)
    ids = [int(net.line.index[net.line.name == n][0]) for n in names]
    k = region.network_order.index(network_id)
    return [int(np.flatnonzero((region.arrays.line_ids == i) & (region.arrays.line_network == k))[0]) for i in ids]


def _request(nid, network_id, bus_name, load=(), export=(), s1_load=0.0, status=RequestStatus.APPROVED):
    net = case_network(network_id)
    return LedgerRequest(
        notification_id=nid,
        revision=1,
        metering_point_id=f"MP-{nid}",
        network_id=network_id,
        bus=bus_named(net, bus_name),
        status=status,
        reservation=Reservation(load=tuple(load), export=tuple(export), s1_load_kva=s1_load),
    )


def _thevenin_min(network_id, bus_name):
    net = case_network(network_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.calc_sc(net, case="min", fault="3ph")
    bus = bus_named(net, bus_name)
    return float(net.res_bus_sc.rk_ohm[bus]), float(net.res_bus_sc.xk_ohm[bus])


def test_three_phase_load_reserves_its_path_and_the_shared_impedance(case_region):
    state = CapacityState.empty(case_region)
    p_kw, cos = 20.0, 0.95
    i = p_kw * 1000 / cos / (SQ3 * 400)
    state.put(_request("A", "tn", "house_3", load=[ReservedComponent(CONN_3PH, p_kw, cos)]))
    # thermal: every line from house_3 to the transformer carries I, no other line does
    path = _line_rows(case_region, "tn", ["branch_3", "main_3", "main_2", "main_1"])
    assert state.line_peak_a[path] == pytest.approx([i] * 4, rel=1e-12)
    assert np.delete(state.line_peak_a, path).max() == 0.0
    assert state.trafo_peak_a.max() == pytest.approx(i, rel=1e-12)
    # voltage at house_1: the two paths share busbar -> cabinet_1, so the drop is Z_th(cabinet_1) I
    sin = math.sqrt(1 - cos**2)
    r, x = _thevenin_min("tn", "cabinet_1")
    _, h1 = _row(case_region, "tn", "house_1")
    assert state.bus_drop_percent[h1] == pytest.approx(100 * (r * cos + x * sin) * i / (400 / SQ3), rel=1e-9)
    r3, x3 = _thevenin_min("tn", "house_3")
    _, h3 = _row(case_region, "tn", "house_3")
    assert state.bus_drop_percent[h3] == pytest.approx(100 * (r3 * cos + x3 * sin) * i / (400 / SQ3), rel=1e-9)
    # other networks are untouched
    k = case_region.network_order.index("tn")
    assert np.abs(state.bus_drop_percent[case_region.arrays.network_index != k]).max() == 0.0
    # removing the request restores the empty grid
    state.drop("A")
    for arr in (state.line_peak_a, state.trafo_peak_a, state.bus_drop_percent):
        assert np.abs(arr).max() < 1e-9


def test_superposed_drops_are_conservative_against_runpp(case_region):
    """Two reserved loads; the predicted drop at every house against runpp (same loads, nominal impedances).

    The state uses the minimum-case Thevenin impedances (conductors at 80 degC) and currents at
    nominal voltage: it must not underestimate runpp's drop, and stays within 35 % above it.
    """
    loads = {"house_3": 30.0, "house_2": 15.0}
    state = CapacityState.empty(case_region)
    for name, kw in loads.items():
        state.put(_request(name, "tn", name, load=[ReservedComponent(CONN_3PH, kw, 0.95)]))
    net = case_network("tn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net)
        before = net.res_bus.vm_pu.copy()
        after_net = copy.deepcopy(net)
        for name, kw in loads.items():
            q = kw / 1000 * math.tan(math.acos(0.95))
            pp.create_load(after_net, bus_named(net, name), p_mw=kw / 1000, q_mvar=q)
        pp.runpp(after_net)
    for name in ("house_1", "house_2", "house_3", "cabinet_1"):
        _, row = _row(case_region, "tn", name)
        actual = 100 * (before[bus_named(net, name)] - after_net.res_bus.vm_pu[bus_named(net, name)])
        predicted = state.bus_drop_percent[row]
        assert actual <= predicted <= 1.35 * actual, (name, actual, predicted)


def test_single_phase_unbalance_and_export_rise(case_region):
    state = CapacityState.empty(case_region)
    s = 7.4 / 0.99
    state.put(_request("EV", "it", "house_3", load=[ReservedComponent(CONN_LL, 7.4, 0.99)], s1_load=s))
    state.put(_request("PV", "it", "house_2", export=[ReservedComponent(CONN_3PH, 10.0, 1.0)]))
    r, x = _thevenin_min("it", "cabinet_2")  # lca of house_3 and house_2
    _, h2 = _row(case_region, "it", "house_2")
    assert state.bus_vuf_peak_percent[h2] == pytest.approx(100 * 1000 * s * math.hypot(r, x) / 230**2, rel=1e-9)
    # L-L drop on the shared part: 2 Z1 I / U_LL
    i = 7400 / 0.99 / 230
    sin = math.sqrt(1 - 0.99**2)
    assert state.bus_drop_percent[h2] == pytest.approx(100 * 2 * (r * 0.99 + x * sin) * i / 230, rel=1e-9)
    # export of 10 kW at cos 1 at house_2: rise R I / U_ph at house_2 itself
    r2, _ = _thevenin_min("it", "house_2")
    assert state.bus_rise_percent[h2] == pytest.approx(100 * r2 * (10000 / (SQ3 * 230)) / (230 / SQ3), rel=1e-9)
    # a pending request reserves nothing
    state.put(_request("PEND", "it", "house_1", load=[ReservedComponent(CONN_3PH, 50.0, 0.95)],
                       status=RequestStatus.PENDING))  # fmt: skip
    assert "PEND" not in state.applied


def test_requests_at_a_metering_point_follow_put_replace_and_drop(case_region):
    """The metering-point index (a tuple of ids per point) lists every request there, by id, after puts, a
    replacing revision and drops; a point without requests leaves the index, and reservations are summed and
    taken off again with the requests."""
    state = CapacityState.empty(case_region)
    load = [ReservedComponent(CONN_3PH, 10.0, 1.0)]
    b = _request("B", "tn", "house_3", load=load)
    a = _request("A", "tn", "house_3", load=load, status=RequestStatus.PENDING)
    c = _request("C", "tn", "house_3", load=load)
    for r in (b, a, c):
        state.put(replace(r, metering_point_id="MP-1"))
    state.put(_request("D", "tn", "house_1", load=load))
    assert [r.notification_id for r in state.at("MP-1")] == ["A", "B", "C"]
    assert [r.notification_id for r in state.at("MP-1", excluding="B")] == ["A", "C"]
    # two active 10 kW three-phase requests (B, C; A is pending) and D elsewhere on the same path
    i = 10_000 / (SQ3 * 400)
    assert state.trafo_peak_a.max() == pytest.approx(3 * i, rel=1e-12)
    # a new revision of B replaces it (one entry, the new revision's status)
    state.put(replace(b, metering_point_id="MP-1", revision=2, status=RequestStatus.PENDING))
    at = state.at("MP-1")
    assert [(r.notification_id, r.revision) for r in at] == [("A", 1), ("B", 2), ("C", 1)]
    assert state.trafo_peak_a.max() == pytest.approx(2 * i, rel=1e-12)
    for nid in ("A", "B", "C"):
        assert state.drop(nid).notification_id == nid
    assert "MP-1" not in state.by_mp and state.at("MP-1") == []
    assert list(state.by_mp) == ["MP-D"]
    assert state.drop("A") is None
    assert state.trafo_peak_a.max() == pytest.approx(i, rel=1e-12)


def _arrays(state):
    return {k: getattr(state, k).copy() for k in ("line_peak_a", "line_low_a", "trafo_peak_a", "trafo_low_a",
                                                  "bus_drop_percent", "bus_rise_percent", "bus_vuf_peak_percent",
                                                  "bus_vuf_low_percent")}  # fmt: skip


def _index(state):
    return (
        {k: (r.revision, r.status) for k, r in state.requests.items()},
        {k: sorted(v) for k, v in state.by_mp.items()},
        dict(state.applied),
    )


def test_rollback_undoes_a_journal_of_puts_replacements_and_drops(case_region, monkeypatch):
    """A journal undoes exactly its own changes (newest first); a reservation that raised part-way through the
    arrays is repaired by rebuilding them from the restored requests. Compared with a state that never saw
    the undone changes."""
    import powercheck.ledger.state as state_mod

    three = [ReservedComponent(CONN_3PH, 12.0, 0.95)]
    one = [ReservedComponent(CONN_LL, 4.0, 1.0)]
    a = _request("A", "tn", "house_3", load=three)
    b = _request("B", "tn", "house_1", export=one, s1_load=4.0)
    state = CapacityState.empty(case_region)
    state.put(a)
    state.put(b)
    reference = (_arrays(state), _index(state))
    journal = state.begin()
    state.put(replace(a, revision=2, reservation=Reservation(load=tuple(three * 2))))  # replaces A
    state.drop("B")
    state.put(_request("C", "tn", "house_3", load=one, s1_load=4.0))
    inner = state.begin()  # a nested journal records too, and closes with the outer rollback's undo untouched
    state.put(_request("D", "tn", "house_1", load=three))
    state.commit(inner)
    assert state.trafo_peak_a.max() > reference[0]["trafo_peak_a"].max()
    state.rollback(journal)
    assert _index(state) == reference[1]
    for name, before in reference[0].items():
        assert getattr(state, name) == pytest.approx(before, rel=1e-12, abs=1e-12), name
    assert state._journals == []

    # an application that raises after writing part of its arrays (the line currents, not the voltages)
    journal = state.begin()
    real = state_mod.add_injection

    def torn(*args):
        args[-4][:] += 1.0  # the lines' current array: written, then the kernel fails
        raise FloatingPointError("injected")

    monkeypatch.setattr(state_mod, "add_injection", torn)
    with pytest.raises(FloatingPointError):
        state.put(_request("E", "tn", "house_3", load=three))
    monkeypatch.setattr(state_mod, "add_injection", real)
    state.rollback(journal)
    assert _index(state) == reference[1]
    for name, before in reference[0].items():
        assert getattr(state, name) == pytest.approx(before, rel=1e-12, abs=1e-12), name


def test_requests_share_equal_components_and_appliance_lists(demo_region, policy):
    """The in-memory ledger of a run keeps one object per distinct load component and appliance list (equal
    values, first one kept; the bounded tables and the rest of what is shared: tests/ledger/test_share.py)."""
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications
    from powercheck.ledger import share
    from powercheck.rules.engine import Assessor

    share.clear()
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    state = CapacityState.empty(demo_region)
    Assessor(demo_region, policy, ledger=state).assess_recorded(notes)
    by_value: dict = {}
    for r in state.requests.values():
        for value in (r.reservation.appliances, *r.reservation.load, *r.reservation.export):
            by_value.setdefault(value, set()).add(id(value))
    shared = [v for v in by_value if v]
    assert len(shared) > 10
    assert all(len(by_value[v]) == 1 for v in shared)  # equal values: one object


def test_a_nested_journal_opened_empty_closes_itself_not_the_outer_one(case_region):
    """Journals are closed by identity: an inner journal committed while the outer one is still empty (two
    equal lists) must leave the outer one recording, so its rollback undoes what followed."""
    state = CapacityState.empty(case_region)
    outer = state.begin()
    inner = state.begin()  # both empty: equal lists
    state.commit(inner)
    state.put(_request("A", "tn", "house_3", load=[ReservedComponent(CONN_3PH, 10.0, 1.0)]))
    assert outer == [("A", None)] and inner == []
    state.rollback(outer)
    assert state.requests == {} and state.by_mp == {} and state.applied == {}
    assert np.abs(state.trafo_peak_a).max() < 1e-12
    assert state._journals == []


def _point_indexes_by_walking(state):
    """The point indexes as they follow from the requests alone (the reference for the maintained ones)."""
    by_mp: dict = {}
    active: dict = {}
    open_: dict = {}
    for nid, r in state.requests.items():
        mp = r.metering_point_id
        by_mp.setdefault(mp, []).append(nid)
        if r.active:
            active.setdefault(mp, []).append(nid)
        if r.open:
            open_.setdefault(mp, {}).setdefault(r.installer_id, []).append(nid)
    return ({mp: tuple(sorted(ids)) for mp, ids in by_mp.items()},
            {mp: tuple(sorted(ids)) for mp, ids in active.items()},
            {mp: {who: tuple(sorted(ids)) for who, ids in of.items()} for mp, of in open_.items()})  # fmt: skip


def test_point_indexes_follow_puts_replacements_drops_and_rollbacks(case_region):
    """The per-point indexes the rules read (ids in id order, the active ones, the open ones per installer) stay
    what the requests give, whatever the sequence of puts, replacements (another point, status or installer), drops
    and rolled-back journals; ``at``, ``active_at``, ``open_count`` and ``open_ids`` answer as a walk over every
    request at the point would."""
    rng = np.random.default_rng(20261208)
    statuses = list(RequestStatus)
    points, installers, ids = ["MP-1", "MP-2", "MP-3"], [None, "I-1", "I-2"], [f"N{k:02d}" for k in range(14)]
    load = (ReservedComponent(CONN_3PH, 3.0, 1.0),)
    base = _request("N", "tn", "house_3", load=load)
    state = CapacityState.empty(case_region)
    journals: list = []
    for step in range(600):
        op = rng.random()
        nid = str(rng.choice(ids))
        if op < 0.6:
            request = replace(
                base,
                notification_id=nid,
                status=statuses[int(rng.integers(len(statuses)))],
                metering_point_id=str(rng.choice(points)),
                installer_id=installers[int(rng.integers(len(installers)))],
                revision=int(rng.integers(1, 4)),
            )
            state.put(request)
        elif op < 0.8:
            state.drop(nid)
        elif op < 0.9 or not journals:
            journals.append(state.begin())
        else:
            state.rollback(journals.pop()) if rng.random() < 0.6 else state.commit(journals.pop())
        by_mp, active, open_ = _point_indexes_by_walking(state)
        assert (state.by_mp, state.active_by_mp, state.open_by_mp) == (by_mp, active, open_), step
        for mp in [*points, "MP-none"]:
            for excluding in (None, nid):
                walked = sorted((r for r in state.requests.values() if r.metering_point_id == mp
                                 and r.notification_id != excluding), key=lambda r: r.notification_id)  # fmt: skip
                assert state.at(mp, excluding=excluding) == walked
                assert state.active_at(mp, excluding=excluding) == [r for r in walked if r.active]
                for installer in installers:
                    want = [r.notification_id for r in walked
                            if r.open and (r.installer_id is None or r.installer_id != installer)]  # fmt: skip
                    assert state.open_count(mp, excluding=excluding, installer=installer) == len(want), (step, mp)
                    assert list(state.open_ids(mp, excluding=excluding, installer=installer)) == want, (step, mp)
    assert len(state.requests) > 3 and state.active_by_mp and state.open_by_mp  # the sequence left something
