"""The HTTP rule service, started as a real process on loopback and called over HTTP."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.models import Decision, Notification
from powercheck.service import parse_tokens
from powercheck.service.testing import start_server

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def valid_notifications() -> list[Notification]:
    return [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]


@pytest.fixture(scope="module")
def server(tmp_path_factory, cache_dir, demo_region):
    # demo_region warms the grid cache so the server starts from it
    db = tmp_path_factory.mktemp("svc") / "decisions.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir)
    yield srv
    srv.stop()


@pytest.fixture()
def client(server):
    with server.client() as c:
        yield c


def payload(n: Notification, **update) -> dict:
    data = n.model_dump(mode="json", exclude_none=True)
    data.update(update)
    return data


def test_health_and_wal(server):
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}  # liveness only, no token needed
    assert httpx.get(f"{server.url}/v1/status").status_code == 401  # the details are behind the token
    with server.client() as c:
        body = c.get("/v1/status").json()
    assert body["status"] == "ok" and body["store"] == "wal"
    assert body["grid_model_version"].startswith("grid-")
    assert body["limits"]["max_batch"] == 10_000 and body["limits"]["max_body_bytes"] == 16 * 2**20


def test_no_token_no_decision(server, valid_notifications):
    n = payload(valid_notifications[0], notification_id="AUTH-1")
    with server.client() as c:
        before = c.get("/v1/status").json()["decisions_stored"]
    r = httpx.post(f"{server.url}/v1/assess", json=n)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(f"{server.url}/v1/assess", json=n, headers={"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"})
    assert r.status_code == 401
    r = httpx.post(f"{server.url}/v1/assess", json={"garbage": 1})  # auth comes before validation
    assert r.status_code == 401
    for method, path, body in (
        ("GET", "/v1/policy", None),
        ("GET", "/v1/decisions/AUTH-1", None),
        ("POST", "/v1/assess/batch", {"notifications": [n]}),
        ("POST", "/v1/assess", None),
    ):
        r = httpx.request(method, f"{server.url}{path}", json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert r.status_code == 401, (path, r.text)
    with server.client() as c:
        assert c.get("/v1/status").json()["decisions_stored"] == before


def test_assess_matches_the_engine_and_is_stored(client, valid_notifications, demo_assessor):
    n = valid_notifications[5].model_copy(update={"notification_id": "SVC-1"})
    r = client.post("/v1/assess", json=payload(n))
    assert r.status_code == 200, r.text
    assert r.headers["x-powercheck-replay"] == "false"
    got = Decision.model_validate(r.json())
    expected = demo_assessor.assess(n)
    assert got.outcome == expected.outcome
    assert [(c.rule_id, c.status, c.value, c.limit) for c in got.checks] == [
        (c.rule_id, c.status, c.value, c.limit) for c in expected.checks
    ]
    assert got.input_hash == n.input_hash()
    assert got.policy_version == expected.policy_version and got.grid_model_version == expected.grid_model_version
    r = client.get("/v1/decisions/SVC-1")
    assert r.status_code == 200 and r.json() == got.model_dump(mode="json")
    assert client.get("/v1/decisions/NOPE").status_code == 404


def test_resubmission_is_idempotent_and_conflicts_are_refused(client, valid_notifications):
    n = valid_notifications[7].model_copy(update={"notification_id": "SVC-IDEM"})
    first = client.post("/v1/assess", json=payload(n))
    count = client.get("/v1/status").json()["decisions_stored"]
    again = client.post("/v1/assess", json=payload(n))
    assert again.status_code == 200 and again.headers["x-powercheck-replay"] == "true"
    assert again.content == first.content  # byte-identical, same decided_at
    assert client.get("/v1/status").json()["decisions_stored"] == count
    changed = payload(n, comment="changed after the decision")
    r = client.post("/v1/assess", json=changed)
    assert r.status_code == 409 and "new revision" in r.json()["detail"]
    r = client.post("/v1/assess", json=payload(n, comment="changed", revision=2))
    assert r.status_code == 200 and r.json()["revision"] == 2
    assert client.get("/v1/decisions/SVC-IDEM").json()["revision"] == 2
    assert client.get("/v1/decisions/SVC-IDEM", params={"revision": 1}).content == first.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metering_point_id": "707057500050000458"}, "metering_point_id"),
        (
            {"appliances": [{"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-N"}], "network_system": "IT_230"},
            "appliances",
        ),
        ({"appliances": [{"kind": "ev_charger", "rated_kw": "lots", "connection": "3ph"}]}, "appliances[0].rated_kw"),
        ({"main_fuse_after_a": -63}, "main_fuse_after_a"),
        ({"revision": 0}, "revision"),
        ({"job_type": None}, "job_type"),
        ({"unknown_field": True}, "unknown_field"),
        ({"power_budget": {"max_demand_kw": 1e9}}, "power_budget.max_demand_kw"),
    ],
)
def test_bad_fields_give_422_naming_the_field(client, valid_notifications, body, field):
    data = payload(valid_notifications[0], notification_id="SVC-BAD")
    data.update(body)
    r = client.post("/v1/assess", json=data)
    assert r.status_code == 422
    assert any(e.startswith(f"{field}:") for e in r.json()["errors"]), r.json()


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'"text"', b'{"notification_id": NaN}', b"\xff\xfe", b"[" * 5000 + b"]" * 5000],
)
def test_malformed_bodies_are_422_never_500(client, raw):
    r = client.post("/v1/assess", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text


def test_wrong_content_type_is_422(client, valid_notifications):
    r = client.post(
        "/v1/assess", content=json.dumps(payload(valid_notifications[0])), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 422


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(
        [
            "notification_id",
            "revision",
            "job_type",
            "metering_point_id",
            "network_system",
            "supply_phases",
            "main_fuse_after_a",
            "power_budget",
            "appliances",
            "submitted_at",
            "x",
        ]
    ),
    value=JSON_VALUE,
)
def test_fuzzed_fields_never_give_500(server, valid_notifications, key, value):
    data = payload(valid_notifications[3], notification_id="FUZZ-1")
    data[key] = value
    with server.client() as c:
        r = c.post("/v1/assess", json=data)
    assert r.status_code in (200, 409, 422), r.text


def test_batch_statuses(client, valid_notifications):
    ok = [payload(n, notification_id=f"BATCH-{i}") for i, n in enumerate(valid_notifications[10:20])]
    bad = payload(valid_notifications[20], notification_id="BATCH-BAD")
    bad["appliances"] = [{"kind": "pv_inverter", "rated_kw": 0, "connection": "3ph"}]
    existing = payload(valid_notifications[7], notification_id="SVC-IDEM")  # stored by an earlier test as rev 1
    conflict = payload(valid_notifications[8], notification_id="BATCH-0")  # same key as ok[0], other content
    items = ok + [bad, ok[1], existing, conflict]
    r = client.post("/v1/assess/batch", json={"notifications": items})
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [x["status"] for x in body["results"]]
    assert statuses[:10] == ["decided"] * 10
    assert statuses[10] == "invalid" and body["results"][10]["errors"][0].startswith(
        "notifications[10].appliances[0].rated_kw"
    )
    assert statuses[11] == "replayed"  # repeat inside the batch
    assert statuses[12] in ("replayed", "conflict")  # depends on whether SVC-IDEM rev 1 content matches
    assert statuses[13] == "conflict"
    assert body["counts"]["decided"] == 10
    assert [x["index"] for x in body["results"]] == list(range(len(items)))
    again = client.post("/v1/assess/batch", json={"notifications": ok}).json()
    assert again["counts"] == {"replayed": 10}
    assert [x["decision"] for x in again["results"]] == [x["decision"] for x in body["results"][:10]]


def test_batch_body_errors(client):
    assert client.post("/v1/assess/batch", json={"items": []}).status_code == 422
    assert client.post("/v1/assess/batch", json={"notifications": [1, "x"]}).status_code == 422
    assert client.post("/v1/assess/batch", json={"notifications": []}).json() == {"results": [], "counts": {}}


def test_policy_and_openapi(client):
    policy = client.get("/v1/policy").json()
    assert policy["id"] == "powercheck-default" and "unbalance_max_percent" in policy["assumptions"]
    assert policy["params"]["selectivity_ratio_min"]["tag"] == "S"
    assert policy["grid_model_version"].startswith("grid-")
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"Notification", "Decision", "CheckResult", "Appliance", "BatchRequest"} <= set(components)
    assert "metering_point_id" in components["Notification"]["properties"]
    items = components["BatchRequest"]["properties"]["notifications"]["items"]
    assert items == {"$ref": "#/components/schemas/Notification"}
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_tokens_parsing():
    assert parse_tokens("workflow:aaaaaaaaaaaaaaaa, engineer:bbbbbbbbbbbbbbbb # comment\n", "x") == {
        "aaaaaaaaaaaaaaaa": "workflow",
        "bbbbbbbbbbbbbbbb": "engineer",
    }
    with pytest.raises(ValueError, match="must have 16 to 512 characters"):
        parse_tokens("workflow:short", "x")
    with pytest.raises(ValueError, match="used twice"):
        parse_tokens("a:aaaaaaaaaaaaaaaa,b:aaaaaaaaaaaaaaaa", "x")


# ---------------------------------------------------------------------------------- crash safety


def _assert_ledger_matches_decisions(db):
    """Every decision that records a request has it in the ledger, with the status of its outcome, and no
    request exists without its decision: decisions and reservations were committed together."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        decisions = {  # a completion notice records no request of its own (it marks its request built)
            (nid, rev): d["outcome"] if d.get("stage", "pre_notification") != "completion" else "completion"
            for nid, rev, d in (
                (nid, rev, json.loads(js))
                for nid, rev, js in con.execute("SELECT notification_id, revision, decision_json FROM decisions")
            )
        }
        requests = {(nid, rev): status for nid, rev, status in con.execute(
            "SELECT notification_id, revision, status FROM requests")}  # fmt: skip
    finally:
        con.close()
    expected = {
        "auto_approve": "approved",
        "approved_with_conditions": "approved_with_conditions",
        "escalate": "pending",
    }
    assert requests, "no request was recorded"
    for key, outcome in decisions.items():
        if outcome == "completion":  # its key may be its request's (marked built), or no request at all
            continue
        if outcome in expected:
            assert requests.get(key) == expected[outcome], key
        else:
            assert key not in requests, key
    assert set(requests) <= set(decisions)


def _rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT notification_id, revision, input_hash, decision_json FROM decisions").fetchall()
    finally:
        con.close()


def test_kill_mid_batch_loses_no_committed_decision(tmp_path, cache_dir, demo_region, valid_notifications):
    db = tmp_path / "crash.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir, chunk_size=64)
    notes = [
        valid_notifications[i % len(valid_notifications)].model_copy(update={"notification_id": f"CR-{i}"})
        for i in range(8000)
    ]
    hashes = {(n.notification_id, n.revision): n.input_hash() for n in notes}
    body = {"notifications": [payload(n) for n in notes]}
    outcome: dict = {}

    def send():
        try:
            with srv.client(timeout=300) as c:
                outcome["response"] = c.post("/v1/assess/batch", json=body)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 120
    seen = 0
    while time.monotonic() < deadline:
        try:
            seen = len(_rows(db))
        except sqlite3.Error:
            seen = 0
        if seen >= 128:
            break
        time.sleep(0.01)
    srv.kill()  # SIGKILL mid-batch
    thread.join(timeout=60)
    assert seen >= 128, "the batch never started committing"
    assert "response" not in outcome, "the batch finished before the kill; make it larger"

    rows = _rows(db)
    assert len(rows) >= seen  # everything observed as committed is still there
    assert len(rows) < len(notes)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    _assert_ledger_matches_decisions(db)
    stored = {}
    for nid, rev, h, js in rows:
        d = Decision.model_validate_json(js)  # complete, parseable decisions only
        assert (d.notification_id, d.revision) == (nid, rev) and h == hashes[(nid, rev)] == d.input_hash
        stored[(nid, rev)] = js

    # restart on the same store and retry the whole batch: committed ones replay unchanged
    srv2 = start_server(db, TOKEN, cache_dir=cache_dir, chunk_size=512)
    try:
        with srv2.client(timeout=300) as c:
            r = c.post("/v1/assess/batch", json=body)
        assert r.status_code == 200
        results = r.json()["results"]
        assert r.json()["counts"] == {"replayed": len(stored), "decided": len(notes) - len(stored)}
        for item in results:
            key = (item["notification_id"], item["revision"])
            if key in stored:
                assert item["status"] == "replayed"
                assert item["decision"] == json.loads(stored[key])
        assert len(_rows(db)) == len(notes)
    finally:
        srv2.stop()


def test_every_answered_request_survives_a_kill(tmp_path, cache_dir, demo_region, valid_notifications):
    db = tmp_path / "answered.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir)
    answered = {}
    with srv.client() as c:
        for i, n in enumerate(valid_notifications[:40]):
            r = c.post("/v1/assess", json=payload(n, notification_id=f"ANS-{i}"))
            assert r.status_code == 200
            answered[(f"ANS-{i}", 1)] = r.content
    srv.kill()  # immediately after the last answer
    rows = {(nid, rev): js for nid, rev, _, js in _rows(db)}
    assert set(rows) == set(answered)
    for key, content in answered.items():
        assert json.loads(rows[key]) == json.loads(content)


def test_ledger_endpoints_and_status_transitions(tmp_path, cache_dir, demo_region, valid_notifications):
    srv = start_server(tmp_path / "ledger.sqlite", TOKEN, cache_dir=cache_dir)
    try:
        with srv.client() as c:
            decided = {}
            for i, n in enumerate(valid_notifications[:60]):
                r = c.post("/v1/assess", json=payload(n, notification_id=f"LED-{i}"))
                assert r.status_code == 200
                decided[f"LED-{i}"] = r.json()
            approved = [k for k, d in decided.items() if d["outcome"] == "auto_approve"]
            pending = [k for k, d in decided.items() if d["outcome"] == "escalate"]
            assert approved and pending
            for k, d in decided.items():
                expected = {
                    "auto_approve": "approved",
                    "approved_with_conditions": "approved_with_conditions",
                    "escalate": "pending",
                }.get(d["outcome"])
                assert d["ledger_status"] == expected, k
            nid = approved[0]
            r = c.get(f"/v1/requests/{nid}")
            assert r.status_code == 200 and r.json()["status"] == "approved"
            assert r.json()["reservation"]["load"] or r.json()["reservation"]["export"]
            # completion notice: built
            r = c.post(f"/v1/requests/{nid}/status", json={"status": "built", "note": "ferdigmelding 2026-12-01"})
            assert r.status_code == 200 and r.json()["status"] == "built"
            assert [h["to_status"] for h in r.json()["history"]] == ["approved", "built"]
            # an illegal transition names both states
            r = c.post(f"/v1/requests/{nid}/status", json={"status": "approved"})
            assert r.status_code == 409
            assert "from built to approved" in r.json()["detail"]
            assert c.post("/v1/requests/NO-SUCH-ID/status", json={"status": "built"}).status_code == 404
            assert c.get("/v1/requests/NO-SUCH-ID").status_code == 404
            assert c.post(f"/v1/requests/{nid}/status", json={"status": "bogus"}).status_code == 422
            # a case handler approves a pending request: it reserves capacity from now on
            r = c.post(f"/v1/requests/{pending[0]}/status", json={"status": "approved"})
            assert r.status_code == 200
            network = decided[nid]["network_id"]
            r = c.get("/v1/ledger", params={"network": network})
            assert r.status_code == 200 and {x["network_id"] for x in r.json()} == {network}
            r = c.get("/v1/ledger", params={"status": "built"})
            assert [x["notification_id"] for x in r.json()] == [nid]
    finally:
        srv.stop()
    _assert_ledger_matches_decisions_after_handler(tmp_path / "ledger.sqlite")


def _assert_ledger_matches_decisions_after_handler(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = con.execute("SELECT COUNT(*) FROM request_events WHERE actor = 'tester'").fetchone()[0]
    finally:
        con.close()
    assert events >= 2  # the status changes are kept with who made them (the client named by its token)


def test_accept_language_gives_norwegian_reasons_and_measures(client, valid_notifications):
    """The same stored decision in English and in bokmal: reasons and measures translated, numbers equal."""
    escalating = None
    for i, n in enumerate(valid_notifications[:80]):
        r = client.post("/v1/assess", json=payload(n, notification_id=f"LANG-{i}"))
        if r.json()["outcome"] == "escalate" and r.json()["measures"]:
            escalating = (f"LANG-{i}", r.json())
            break
    assert escalating is not None
    nid, en = escalating
    nb = client.get(f"/v1/decisions/{nid}", headers={"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"})
    assert nb.status_code == 200 and nb.headers["content-language"] == "nb"
    body = nb.json()
    assert body["language"] == "nb" and body["outcome"] == en["outcome"] and body["checks"] == en["checks"]
    assert [m["id"] for m in body["measures"]] == [m["id"] for m in en["measures"]]
    assert body["measures"][0]["effect"] != en["measures"][0]["effect"]
    assert client.get(f"/v1/decisions/{nid}").json()["language"] == "en"


def test_report_page_of_a_stored_decision(client, server, valid_notifications):
    """GET /v1/decisions/{id}/report: the stored decision as a page, in the language asked for."""
    n = valid_notifications[3]
    decided = client.post("/v1/assess", json=payload(n, notification_id="REPORT-1")).json()
    en = client.get("/v1/decisions/REPORT-1/report")
    assert en.status_code == 200 and en.headers["content-type"].startswith("text/html")
    assert en.headers["content-language"] == "en" and "REPORT-1" in en.text and 'lang="en"' in en.text
    for check in decided["checks"]:
        assert check["rule_id"] in en.text
    nb = client.get("/v1/decisions/REPORT-1/report", headers={"Accept-Language": "nb-NO"})
    assert nb.headers["content-language"] == "nb" and 'lang="nb"' in nb.text
    assert client.get("/v1/decisions/REPORT-1/report?lang=nb").headers["content-language"] == "nb"
    missing = client.get("/v1/decisions/NOPE/report")
    assert missing.status_code == 404 and missing.json()["detail"] == "no stored decision"
    assert client.get("/v1/decisions/REPORT-1/report?lang=de").status_code == 422
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/decisions/REPORT-1/report").status_code == 401
