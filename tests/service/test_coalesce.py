"""Issue 13: concurrent single requests are decided together as one engine batch (powercheck/service/coalesce.py).

A coalesced group must decide exactly as the same notifications decided one after the other in the group's order
(submitted order, then arrival) on the capacity ledger; one id+revision is never decided twice; one notification that
makes the engine raise gets its ENGINE.ERROR escalation without failing the others.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from fastapi.testclient import TestClient

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.ledger.store import LedgerStore
from powercheck.models import Notification, Stage
from powercheck.rules.context import GridView
from powercheck.rules.engine import Assessor
from powercheck.rules.sequence import order_key
from powercheck.service.app import ServiceConfig, create_app
from powercheck.service.testing import start_server
from tests.helpers.compare import differences

TOKEN = "coalesce-token-0123456789"
CLIENTS = 8
VOLATILE = {"decided_at"}
"""Decision fields that depend on the moment of deciding, not on the notification and the ledger."""


@pytest.fixture(scope="module")
def valid_notifications() -> list[Notification]:
    return [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]


def _payload(n: Notification) -> dict:
    return n.model_dump(mode="json", exclude_none=True)


def _comparable(decision: dict) -> dict:
    return {k: v for k, v in decision.items() if k not in VOLATILE}


def _one_network(region, notifications: list[Notification], prefix: str) -> list[Notification]:
    """The pre-notifications of the demo network with the most of them, under new ids (one per id+revision)."""
    grid = GridView.of(region)
    rows = region.locate([n.metering_point_id for n in notifications])
    nets = [str(grid.customers.network_id[r]) if r >= 0 else None for r in rows]
    counts: dict[str, int] = {}
    for net in nets:
        if net is not None:
            counts[net] = counts.get(net, 0) + 1
    busiest = max(counts, key=lambda k: counts[k])
    out, seen = [], set()
    for n, net in zip(notifications, nets):
        if net == busiest and n.stage is Stage.PRE_NOTIFICATION and (n.notification_id, n.revision) not in seen:
            seen.add((n.notification_id, n.revision))
            out.append(n.model_copy(update={"notification_id": f"{prefix}{n.notification_id}"[:64]}))
    return out


def _stored_in_order(db) -> list[tuple[str, dict]]:
    """The stored decisions in the order they were written (the order they were decided)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT notification_id, decision_json FROM decisions ORDER BY rowid").fetchall()
    finally:
        con.close()
    return [(nid, json.loads(js)) for nid, js in rows]


def _ledger_rows(requests) -> dict[str, tuple]:
    return {
        r.notification_id: (
            r.revision,
            r.status.value,
            r.network_id,
            r.bus,
            r.fuse_after_a,
            r.reservation.to_json(),
            tuple(r.conditions),
            r.metering_point_id,
        )
        for r in requests
    }


def test_concurrent_requests_decide_as_one_after_the_other(tmp_path, cache_dir, demo_region, policy,
                                                          valid_notifications):  # fmt: skip
    notes = _one_network(demo_region, valid_notifications, "CO-")
    assert len(notes) >= 100  # one network: approvals reserve capacity the later ones are decided on
    db = tmp_path / "coalesce.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir)
    answers: dict[str, dict] = {}
    errors: list[str] = []
    start = threading.Barrier(CLIENTS)

    def client(share: list[Notification]) -> None:
        with srv.client() as c:
            start.wait()
            for n in share:
                r = c.post("/v1/assess", json=_payload(n))
                if r.status_code != 200 or r.headers["x-powercheck-replay"] != "false":
                    errors.append(f"{n.notification_id}: {r.status_code} {r.text[:200]}")
                answers[n.notification_id] = r.json()

    try:
        threads = [threading.Thread(target=client, args=(notes[i::CLIENTS],)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert errors == []
    stored = _stored_in_order(db)
    assert sorted(nid for nid, _ in stored) == sorted(n.notification_id for n in notes)
    # several requests were decided in one engine batch: a batch's decisions share its decision time
    times = [d["decided_at"] for _, d in stored]
    assert len(set(times)) < len(times), "no two requests were decided together"

    # the same notifications decided one at a time, in the order the service decided them, on an empty ledger
    by_id = {n.notification_id: n for n in notes}
    sequential = Assessor(demo_region, policy, ledger=CapacityState.of(demo_region, []))
    for nid, got in stored:
        want = sequential.assess_recorded([by_id[nid]]).decisions[0].model_dump(mode="json")
        assert differences(_comparable(got), _comparable(want)) == [], nid
        assert answers[nid] == got  # each client was answered with the stored decision
    outcomes = {d["outcome"] for _, d in stored}
    assert {"auto_approve", "escalate"} <= outcomes  # approvals that reserve capacity, and escalations
    ledger = LedgerStore(db)
    try:
        assert _ledger_rows(ledger.list()) == _ledger_rows(sequential.ledger.requests.values())
    finally:
        ledger.close()


def test_one_id_sent_concurrently_is_decided_once(tmp_path, cache_dir, demo_region, valid_notifications):
    db = tmp_path / "same-key.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir)
    pairs = []
    for i in range(6):
        n = valid_notifications[i * 7].model_copy(update={"notification_id": f"PAIR-{i}"})
        other = n.model_copy(update={"comment": "changed"}) if i % 2 else n
        pairs.append((n, other))
    bodies = [_payload(x) for pair in pairs for x in pair]
    results: list = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(k: int) -> None:
        with srv.client() as c:
            start.wait()
            results[k] = c.post("/v1/assess", json=bodies[k])

    try:
        threads = [threading.Thread(target=send, args=(k,)) for k in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
    rows = {nid: js for nid, js in _stored_in_order(db)}
    assert sorted(rows) == sorted(f"PAIR-{i}" for i in range(6))
    for i in range(6):
        a, b = results[2 * i], results[2 * i + 1]
        if i % 2 == 0:  # equal content: one decided, the other a replay of it, byte for byte
            assert (a.status_code, b.status_code) == (200, 200)
            assert sorted([a.headers["x-powercheck-replay"], b.headers["x-powercheck-replay"]]) == ["false", "true"]
            assert a.content == b.content and json.loads(a.content) == rows[f"PAIR-{i}"]
        else:  # other content: one decided, the other refused with 409
            assert sorted([a.status_code, b.status_code]) == [200, 409]
            winner = a if a.status_code == 200 else b
            assert winner.headers["x-powercheck-replay"] == "false" and winner.json() == rows[f"PAIR-{i}"]


# ------------------------------------------------------------------ in process: groups formed on purpose


@pytest.fixture()
def app_client(tmp_path, cache_dir, demo_region):
    app = create_app(
        ServiceConfig(grid=demo_region_dir(), db=tmp_path / "d.sqlite", tokens={TOKEN: "tester"}, cache_dir=cache_dir)
    )
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c, app.state.service


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _one_group(client, st, bodies: list[dict]) -> list:
    """POST every body while the engine is held, so that all of them are decided as one group (in this order)."""
    co = st.coalescer
    results: list = [None] * (len(bodies) + 1)

    def send(k: int, body: dict) -> None:
        results[k] = client.post("/v1/assess", json=body)

    threads = []
    with st.lock:  # the engine thread takes the first request and waits for the lock; the rest queue behind it
        groups = co.groups
        first = dict(bodies[0], notification_id="HOLD-" + bodies[0]["notification_id"])
        threads.append(threading.Thread(target=send, args=(len(bodies), first)))
        threads[-1].start()
        _wait(lambda: co.groups == groups + 1, "the engine did not take the first request")
        for k, body in enumerate(bodies):
            threads.append(threading.Thread(target=send, args=(k, body)))
            threads[-1].start()
            _wait(lambda k=k: len(co._queue) == k + 1, "a request did not reach the queue")
    for t in threads:
        t.join()
    assert co.groups == groups + 2  # the held request, then all the others together
    return results[:-1]


def test_a_group_with_repeated_keys_decides_each_key_once(app_client, valid_notifications):
    client, st = app_client
    a = valid_notifications[3].model_copy(update={"notification_id": "G-A"})
    b = valid_notifications[9].model_copy(update={"notification_id": "G-B"})
    b_changed = b.model_copy(update={"comment": "changed"})
    c = valid_notifications[12].model_copy(update={"notification_id": "G-C"})
    r = _one_group(client, st, [_payload(a), _payload(a), _payload(b), _payload(b_changed), _payload(c)])
    assert [x.status_code for x in r] == [200, 200, 200, 409, 200]
    assert [x.headers.get("x-powercheck-replay") for x in r[:3]] == ["false", "true", "false"]
    assert r[0].content == r[1].content  # the repeat is answered with the first one's stored decision
    assert "already decided with other content" in r[3].json()["detail"]
    assert r[4].headers["x-powercheck-replay"] == "false"
    assert st.store.count() == 4  # HOLD-G-A, G-A, G-B, G-C


def test_an_engine_error_in_a_group_fails_only_its_own_request(app_client, valid_notifications, monkeypatch,
                                                              demo_region, policy):  # fmt: skip
    import powercheck.rules.engine as engine

    client, st = app_client
    real = engine.demand_cases

    def demand_cases(notifications, *args, **kwargs):
        if any(n.notification_id == "G-BOOM" for n in notifications):
            raise RuntimeError("injected")
        return real(notifications, *args, **kwargs)

    monkeypatch.setattr(engine, "demand_cases", demand_cases)
    ok1 = valid_notifications[3].model_copy(update={"notification_id": "G-OK1"})
    boom = valid_notifications[5].model_copy(update={"notification_id": "G-BOOM"})
    ok2 = valid_notifications[12].model_copy(update={"notification_id": "G-OK2"})
    group = [ok1, boom, ok2]
    r = _one_group(client, st, [_payload(n) for n in group])
    assert [x.status_code for x in r] == [200, 200, 200]
    got = {x.json()["notification_id"]: x.json() for x in r}
    assert got["G-BOOM"]["outcome"] == "escalate"
    assert [c["rule_id"] for c in got["G-BOOM"]["checks"]] == ["ENGINE.ERROR"]
    assert "injected" not in json.dumps(got["G-BOOM"])  # the client sees an error id, not the exception text
    monkeypatch.setattr(engine, "demand_cases", real)
    # the others are decided as one after the other in the group's order, after the held request
    held = valid_notifications[3].model_copy(update={"notification_id": "HOLD-G-OK1"})
    sequential = Assessor(demo_region, policy, ledger=CapacityState.of(demo_region, []))
    sequential.assess_recorded([held])
    for i in sorted(range(len(group)), key=lambda i: order_key(group[i], i)):
        if group[i] is boom:
            continue
        want = sequential.assess_recorded([group[i]]).decisions[0].model_dump(mode="json")
        assert differences(_comparable(got[group[i].notification_id]), _comparable(want)) == []
        assert want["checks"] and "ENGINE.ERROR" not in [c["rule_id"] for c in want["checks"]]
    assert st.assessor.ledger.requests.get("G-BOOM") is None  # the failed one records nothing


def test_batch_items_carry_the_stored_decisions_in_english_and_localised(app_client, valid_notifications):
    """The batch response sends each decision as stored (no re-serialisation); Accept-Language nb localises it."""
    client, _ = app_client
    notes = [n.model_copy(update={"notification_id": f"BL-{i}"}) for i, n in enumerate(valid_notifications[20:26])]
    body = {"notifications": [_payload(n) for n in notes] + [{"notification_id": "BL-BAD"}]}
    first = client.post("/v1/assess/batch", json=body)
    assert first.status_code == 200 and first.json()["counts"] == {"decided": 6, "invalid": 1}
    again = client.post("/v1/assess/batch", json=body).json()
    assert again["counts"] == {"replayed": 6, "invalid": 1}
    bad = again["results"][-1]
    assert bad["decision"] is None and bad["errors"] and bad["errors"][0].startswith("notifications[6].")
    for item, replayed, n in zip(first.json()["results"], again["results"], notes):
        stored = client.get(f"/v1/decisions/{n.notification_id}").json()
        assert item["decision"] == replayed["decision"] == stored and item["index"] == replayed["index"]
        assert (item["notification_id"], item["revision"], item["errors"]) == (n.notification_id, 1, [])
    nb = client.post("/v1/assess/batch", json=body, headers={"Accept-Language": "nb"}).json()
    assert nb["counts"] == again["counts"]
    assert any(x["decision"]["messages"] for x in again["results"][:6])
    for en, local in zip(again["results"][:6], nb["results"][:6]):
        assert en["decision"]["language"] == "en"
        assert local["decision"]["language"] == ("nb" if en["decision"]["messages"] else "en")  # none: as stored
        if en["decision"]["messages"]:
            assert local["decision"]["reasons"] != en["decision"]["reasons"]
        assert local["decision"]["outcome"] == en["decision"]["outcome"]
        assert local["decision"]["checks"] == en["decision"]["checks"]
