"""The durable ledger: legal transitions only, history, revisions, expiry -- on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from powercheck.ledger import (
    TRANSITIONS,
    IllegalTransition,
    LedgerRequest,
    LedgerStore,
    RequestStatus,
    Reservation,
    ReservedComponent,
    UnknownRequest,
)

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def request(nid="R-1", revision=1, status=RequestStatus.APPROVED, decided_at=T0, **kw) -> LedgerRequest:
    return LedgerRequest(
        notification_id=nid,
        revision=revision,
        metering_point_id="707057500000000018",
        network_id="tn",
        bus=7,
        status=status,
        job_type="ev_charger",
        installer_id="INST-1",
        submitted_at=T0,
        decided_at=decided_at,
        fuse_after_a=25.0,
        reservation=Reservation(load=(ReservedComponent(1, 7.4, 0.99),), s1_load_kva=7.4 / 0.99, demand_after_kw=12.4),
        **kw,
    )


def test_round_trip_keeps_every_field(tmp_path):
    store = LedgerStore(tmp_path / "ledger.sqlite")
    r = request()
    store.put([r])
    assert store.get("R-1") == r
    store.close()
    again = LedgerStore(tmp_path / "ledger.sqlite")  # durable: a new connection reads it back
    assert again.get("R-1") == r
    assert [e["to_status"] for e in again.events("R-1")] == ["approved"]


def test_only_legal_transitions_and_history(tmp_path):
    store = LedgerStore(tmp_path / "ledger.sqlite")
    store.put([request()])
    before, after = store.set_status("R-1", "built", actor="handler", note="completion notice")
    assert (before.status, after.status) == (RequestStatus.APPROVED, RequestStatus.BUILT)
    with pytest.raises(IllegalTransition, match="from built to approved"):
        store.set_status("R-1", "approved")
    assert store.get("R-1").status is RequestStatus.BUILT  # the refused change left no trace
    store.set_status("R-1", "closed")
    for wanted in RequestStatus:
        with pytest.raises(IllegalTransition):
            store.set_status("R-1", wanted)  # closed is final
    history = store.events("R-1")
    assert [(e["from_status"], e["to_status"]) for e in history] == [
        (None, "approved"),
        ("approved", "built"),
        ("built", "closed"),
    ]
    assert history[1]["actor"] == "handler" and history[1]["note"] == "completion notice"
    with pytest.raises(UnknownRequest):
        store.set_status("NOPE", "built")


def test_transition_table_is_closed_and_final_states_are_final():
    assert set(TRANSITIONS) == set(RequestStatus)
    for status in (RequestStatus.CLOSED, RequestStatus.CANCELLED, RequestStatus.EXPIRED):
        assert not TRANSITIONS[status]
    assert RequestStatus.BUILT in TRANSITIONS[RequestStatus.APPROVED_WITH_CONDITIONS]
    assert RequestStatus.APPROVED in TRANSITIONS[RequestStatus.PENDING]


def test_a_later_revision_replaces_and_an_earlier_never(tmp_path):
    store = LedgerStore(tmp_path / "ledger.sqlite")
    store.put([request(revision=2, status=RequestStatus.PENDING)])
    store.put([request(revision=1, status=RequestStatus.APPROVED)])
    assert store.get("R-1").revision == 2 and store.get("R-1").status is RequestStatus.PENDING
    store.put([request(revision=3, status=RequestStatus.APPROVED)])
    assert store.get("R-1").revision == 3 and store.count() == 1


def test_approvals_expire_after_the_validity_period(tmp_path):
    store = LedgerStore(tmp_path / "ledger.sqlite")
    store.put([request("OLD", decided_at=T0), request("NEW", decided_at=T0 + timedelta(days=300))])
    store.put([request("BUILT", decided_at=T0)])
    store.set_status("BUILT", "built")
    expired = store.expire(T0 + timedelta(days=366), valid_days=365)
    assert expired == ["OLD"]  # 366 days old; NEW is 66 days old; BUILT does not expire
    assert store.get("OLD").status is RequestStatus.EXPIRED
    assert store.get("NEW").status is RequestStatus.APPROVED


def test_a_failed_transaction_writes_nothing(tmp_path):
    store = LedgerStore(tmp_path / "ledger.sqlite")
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            store.write(conn, [request()])
            raise RuntimeError("crash between the writes")
    assert store.count() == 0
    con = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM request_events").fetchone()[0] == 0
