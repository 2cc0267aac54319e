"""Issue 12: the service against hostile input -- a real server process on loopback, SQLite underneath."""

from __future__ import annotations

import sqlite3

import pytest

from powercheck.service.testing import start_server
from tests.helpers.bad_region import ev_notification

TOKEN = "hardening-token-0123456789"


@pytest.fixture(scope="module")
def bad_server(tmp_path_factory, bad_region_dir, cache_dir):
    db = tmp_path_factory.mktemp("svc-bad") / "decisions.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir, grid=bad_region_dir)
    yield srv, db
    srv.stop()


def _stored(db) -> set[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {nid for (nid,) in con.execute("SELECT notification_id FROM decisions")}
    finally:
        con.close()


def test_a_notification_at_an_islanded_bus_is_escalated_not_a_500(bad_server):
    srv, db = bad_server
    with srv.client() as c:
        for network, bus in (("isl", "island"), ("notr", "house_1"), ("oos", "house_2"), ("zero", "house_3")):
            r = c.post("/v1/assess", json=ev_notification(network, bus, f"ONE-{network}"))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["outcome"] == "escalate" and body["checks"][0]["rule_id"] == "GRID.DATA"
            assert f"network {network}" in body["reasons"][0]
    assert {"ONE-isl", "ONE-notr", "ONE-oos", "ONE-zero"} <= _stored(db)


def test_a_batch_with_one_bad_bus_decides_and_stores_the_other_fifty(bad_server):
    srv, db = bad_server
    items = [ev_notification("good", f"house_{1 + i % 3}", f"B51-{i}", kw=0.5 + i / 100) for i in range(50)]
    items.insert(17, ev_notification("isl", "island", "B51-ISLAND"))
    with srv.client() as c:
        r = c.post("/v1/assess/batch", json={"notifications": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"decided": 51}
    island = body["results"][17]
    assert island["notification_id"] == "B51-ISLAND" and island["decision"]["outcome"] == "escalate"
    assert island["decision"]["checks"][0]["rule_id"] == "GRID.DATA"
    assert all(x["decision"]["checks"][0]["rule_id"] != "GRID.DATA" for i, x in enumerate(body["results"]) if i != 17)
    assert {x["notification_id"] for x in body["results"]} <= _stored(db)
