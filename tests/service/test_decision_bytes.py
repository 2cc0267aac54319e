"""The service answers and stores each decision as its Decision's ``model_dump_json``, byte for byte (issue 13).

The service makes the stored JSON from the decided batch's columns (:mod:`powercheck.decision_json`), without a
Decision object. Here the demo notifications are sent to it (the first half as single requests, one at a time, the
rest as one batch) with the engine's clock fixed, and the same notifications are decided by an assessor of their own
on an empty ledger in the same order, as :class:`Decision` objects: every answer, stored row and ``GET`` of the
service must be exactly the text of the Decision's ``model_dump_json()``; a replay returns the stored bytes.
"""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.rules.engine import Assessor
from powercheck.rules.sequence import order_key
from powercheck.service.app import ServiceConfig, create_app
from tests.helpers.mini import FIXED_TIME

TOKEN = "bytes-token-0123456789abcdef"


@pytest.fixture(scope="module")
def notes():
    """The valid demo notifications, one per id+revision, in submitted order."""
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    seen, out = set(), []
    for i in sorted(range(len(valid)), key=lambda i: order_key(valid[i], i)):
        n = valid[i]
        if n.key not in seen:
            seen.add(n.key)
            out.append(n)
    return out


def test_answers_and_stored_rows_are_the_decision_dump(tmp_path, cache_dir, demo_region, policy, notes):
    db = tmp_path / "d.sqlite"
    app = create_app(ServiceConfig(grid=demo_region_dir(), db=db, tokens={TOKEN: "tester"}, cache_dir=cache_dir))
    half = len(notes) // 2
    reference = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.of(demo_region, []))
    want = {n.key: reference.assess_recorded([n]).decisions[0].model_dump_json() for n in notes[:half]}
    rest = reference.assess_recorded(notes[half:]).decisions
    want |= {(d.notification_id, d.revision): d.model_dump_json() for d in rest}
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        app.state.service.assessor.clock = lambda: FIXED_TIME
        for n in notes[:half]:
            r = c.post("/v1/assess", json=n.model_dump(mode="json", exclude_none=True))
            assert r.status_code == 200 and r.headers["x-powercheck-replay"] == "false"
            assert r.content == want[n.key].encode(), n.notification_id
        r = c.post(
            "/v1/assess/batch",
            json={"notifications": [n.model_dump(mode="json", exclude_none=True) for n in notes[half:]]},
        )
        assert r.status_code == 200
        body = r.content
        assert r.json()["counts"] == {"decided": len(notes) - half}
        for n in notes[half:]:  # the batch answer carries each stored decision as it is
            assert b'"decision":' + want[n.key].encode() + b',"errors":[]}' in body, n.notification_id
        assert app.state.service.fast_answers == half  # the single requests took the service's fast path
        # replays answer the stored bytes
        for n in (notes[0], notes[-1]):
            r = c.post("/v1/assess", json=n.model_dump(mode="json", exclude_none=True))
            assert r.headers["x-powercheck-replay"] == "true" and r.content == want[n.key].encode()
            r = c.get(f"/v1/decisions/{n.notification_id}", params={"revision": n.revision})
            assert r.content == want[n.key].encode()
    con = sqlite3.connect(db)
    try:
        stored = {(nid, rev): (text, outcome, h) for nid, rev, text, outcome, h in con.execute(
            "SELECT notification_id, revision, decision_json, outcome, input_hash FROM decisions")}  # fmt: skip
    finally:
        con.close()
    assert stored.keys() == want.keys()
    outcomes = set()
    for n in notes:
        text, outcome, input_hash = stored[n.key]
        assert text == want[n.key], n.notification_id
        assert input_hash == n.input_hash()
        assert f'"outcome":"{outcome}"' in text
        outcomes.add(outcome)
    assert {"auto_approve", "escalate", "request_info", "reject_incomplete"} <= outcomes
