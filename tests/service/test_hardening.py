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


# ------------------------------------------------------------------------------------- item 7: input


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory, cache_dir, demo_region):
    db = tmp_path_factory.mktemp("svc-hard") / "decisions.sqlite"
    srv = start_server(db, TOKEN, cache_dir=cache_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def demo_payload() -> dict:
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications

    n = next(r.notification for r in read_notifications(demo_notifications_path()) if r.ok)
    return n.model_dump(mode="json", exclude_none=True)


def _errors(r) -> list[str]:
    assert r.status_code == 422, (r.status_code, r.text)
    return r.json()["errors"]


@pytest.mark.parametrize("revision", [str(2**70), str(-(2**70)), "0", "10001", "true", "1.5", "1e3"])
def test_out_of_range_revision_queries_are_422_and_the_connection_survives(demo_server, demo_payload, revision):
    with demo_server.client() as c:
        c.post("/v1/assess", json={**demo_payload, "notification_id": "REV-Q"})
        errors = _errors(c.get("/v1/decisions/REV-Q", params={"revision": revision}))
        assert any(e.startswith("query.revision:") for e in errors), errors
        assert _errors(c.get("/v1/decisions/REV-Q/report", params={"revision": revision}))
        assert c.get("/v1/decisions/REV-Q", params={"revision": 1}).status_code == 200  # same connection, still fine


@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", ".hidden", "a b", "x" * 65, "é"])
def test_ids_that_could_never_be_fetched_are_refused(demo_server, demo_payload, bad_id):
    with demo_server.client() as c:
        errors = _errors(c.post("/v1/assess", json={**demo_payload, "notification_id": bad_id}))
        assert any(e.startswith("notification_id:") for e in errors), errors
        batch = c.post("/v1/assess/batch", json={"notifications": [{**demo_payload, "notification_id": bad_id}]})
        assert batch.status_code == 200 and batch.json()["counts"] == {"invalid": 1}
    # every id the service accepts can be fetched back by its URL
    good = "ELS-2026.x_1:rev-A"
    with demo_server.client() as c:
        assert c.post("/v1/assess", json={**demo_payload, "notification_id": good}).status_code == 200
        assert c.get(f"/v1/decisions/{good}").json()["notification_id"] == good


def test_full_width_digits_fail_the_gs1_check(demo_server, demo_payload):
    wide = "".join(chr(0xFF10 + int(d)) for d in demo_payload["metering_point_id"])
    with demo_server.client() as c:
        errors = _errors(
            c.post("/v1/assess", json={**demo_payload, "notification_id": "WIDE", "metering_point_id": wide})
        )
    assert any(e.startswith("metering_point_id:") and "ASCII 0-9" in e for e in errors), errors


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"revision": True}, "revision"),
        ({"main_fuse_after_a": True}, "main_fuse_after_a"),
        ({"appliances": [{"kind": "ev_charger", "rated_kw": True, "connection": "3ph"}]}, "appliances[0].rated_kw"),
        (
            {"appliances": [{"kind": "ev_charger", "rated_kw": 7, "connection": "3ph", "quantity": True}]},
            "appliances[0].quantity",
        ),  # fmt: skip
        ({"power_budget": {"max_demand_kw": False}}, "power_budget.max_demand_kw"),
    ],
)
def test_booleans_are_not_numbers(demo_server, demo_payload, update, field):
    with demo_server.client() as c:
        errors = _errors(c.post("/v1/assess", json={**demo_payload, "notification_id": "BOOL", **update}))
    assert any(e.startswith(f"{field}:") and "boolean" in e for e in errors), errors


def test_malformed_json_says_line_and_column(demo_server):
    body = b'{\n  "notification_id": "J",\n  "revision": ,\n}'
    with demo_server.client() as c:
        errors = _errors(c.post("/v1/assess", content=body, headers={"content-type": "application/json"}))
    assert errors == ["(body): not valid JSON: Expecting value at line 3 column 15"], errors


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_named_as_such(demo_server, demo_payload, content_type):
    import json

    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["content-type"] = content_type
    import httpx

    r = httpx.post(f"{demo_server.url}/v1/assess", content=json.dumps(demo_payload).encode(), headers=headers)
    errors = _errors(r)
    assert "content-type: application/json" in errors[0] and "valid dictionary" not in errors[0], errors


@pytest.mark.parametrize(
    "text",
    [
        "workflow:0123456789abcdef#ghij",  # was cut at '#' to a valid 16-character token
        "workflow:0123456789abcdef,0123456789abcdefgh",  # was two tokens, the second one a client of its own
        "workflow:0123456789abcdef:0123456789abcdef",  # was cut at the last ':'
        "0123456789abcdef0123",  # no client name
        "work flow:0123456789abcdef0123",
        "workflow:0123456789abcdef01 23",
    ],
)
def test_malformed_token_files_are_refused(tmp_path, text, capsys):
    from powercheck.cli import main
    from powercheck.service import parse_tokens

    with pytest.raises(ValueError, match=r"tokens line 1: "):
        parse_tokens(text + "\n", "tokens")
    path = tmp_path / "tokens.txt"
    path.write_text("# the workflow system\nengineer:abcdefghijklmnop-._~+/==\n" + text + "\n", encoding="utf-8")
    assert main(["serve", "--tokens-file", str(path), "--db", str(tmp_path / "db.sqlite")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path} line 3" in err


def test_well_formed_token_files_are_read():
    from powercheck.service import parse_tokens

    text = "# comment\nworkflow:0123456789abcdef  # the workflow\n\nengineer:ABCDEFGHIJKLMNOP-._~+/==, ops:x" + "y" * 20
    assert parse_tokens(text, "t") == {
        "0123456789abcdef": "workflow",
        "ABCDEFGHIJKLMNOP-._~+/==": "engineer",
        "x" + "y" * 20: "ops",
    }


# ------------------------------------------------------------------------------- item 8: resource limits


@pytest.fixture(scope="module", params=["httptools", "h11"])
def tight_server(request, tmp_path_factory, cache_dir, demo_region):
    """A server with small limits, so that the tests reach them quickly; with each HTTP parser the service can use
    (httptools by default, h11 where httptools is not installed)."""
    db = tmp_path_factory.mktemp("svc-limits") / "decisions.sqlite"
    args = ["--max-body-mb", "1", "--max-batch", "50", "--max-appliances", "10",
            "--header-timeout", "2", "--body-timeout", "2", "--http", request.param]  # fmt: skip
    srv = start_server(db, TOKEN, cache_dir=cache_dir, extra_args=args)
    yield srv
    srv.stop()


def _rss_mb(pid: int) -> float:
    from tests.service.test_soak import rss_mb

    return rss_mb(pid)


def _healthz_seconds(url: str) -> float:
    import time

    import httpx

    start = time.perf_counter()
    assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    return time.perf_counter() - start


def test_bodies_above_the_limit_are_413_naming_it_and_do_not_stall_healthz(tight_server):
    import socket
    import threading

    import httpx

    url = tight_server.url
    host, port = url.removeprefix("http://").split(":")
    rss_before = _rss_mb(tight_server.proc.pid)
    # declared too large: refused at once, before the body is read
    r = httpx.post(f"{url}/v1/assess", content=b"x" * (2 * 2**20), headers={
        "Authorization": f"Bearer {TOKEN}", "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413
    assert "larger than 1048576 bytes (limit max_body_bytes)" in r.json()["detail"]

    # streamed without a length (chunked): refused once the limit is passed; four at a time, healthz stays quick
    def chunked(results: list) -> None:
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(
                f"POST /v1/assess HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            piece = b"[" * 65536
            try:
                for _ in range(64):  # 4 MiB offered
                    s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            except OSError:
                pass  # the server answered and closed
            results.append(s.recv(4096))

    results: list = []
    threads = [threading.Thread(target=chunked, args=(results,)) for _ in range(4)]
    for t in threads:
        t.start()
    slowest = max(_healthz_seconds(url) for _ in range(5))
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and all(b" 413 " in r.split(b"\r\n")[0] for r in results), results
    assert slowest < 1.0, slowest
    assert _rss_mb(tight_server.proc.pid) - rss_before < 100  # nothing like the 4 x 200 MB held before


def test_batch_and_appliance_limits_are_422_naming_them(tight_server, demo_payload):
    with tight_server.client() as c:
        items = [{**demo_payload, "notification_id": f"LIM-{i}"} for i in range(51)]
        errors = _errors(c.post("/v1/assess/batch", json={"notifications": items}))
        assert errors == ["notifications: 51 notifications; at most 50 per batch (limit max_batch)"]
        many = [{"kind": "heat_pump", "rated_kw": 1.0, "connection": "3ph"}] * 11
        errors = _errors(c.post("/v1/assess", json={**demo_payload, "notification_id": "APPL", "appliances": many}))
        assert errors == ["appliances: 11 appliance rows; at most 10 per notification (limit max_appliances)"]
        batch = c.post(
            "/v1/assess/batch",
            json={"notifications": [{**demo_payload, "notification_id": "APPL-1", "appliances": many},
                                    {**demo_payload, "notification_id": "APPL-2"}]},
        ).json()  # fmt: skip
        assert [x["status"] for x in batch["results"]] == ["invalid", "decided"]
        assert "limit max_appliances" in batch["results"][0]["errors"][0]
        assert c.get("/v1/status").json()["limits"]["max_appliances"] == 10


def test_half_open_connections_are_closed_after_the_header_timeout(tight_server):
    import socket
    import time

    host, port = tight_server.url.removeprefix("http://").split(":")
    socks = []
    for i in range(200):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"POST /v1/ass")  # headers never finished
        socks.append(s)
    assert _healthz_seconds(tight_server.url) < 1.0  # the others are still served
    time.sleep(3.0)  # past the 2 s header timeout
    closed = 0
    for s in socks:
        try:
            s.settimeout(2)
            closed += s.recv(1) == b""
        except (ConnectionResetError, TimeoutError, OSError):
            closed += 1
        finally:
            s.close()
    assert closed == 200


def test_a_body_that_never_arrives_is_408(tight_server):
    import socket

    host, port = tight_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"POST /v1/assess HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a"'.encode()
        )
        answer = b""
        while chunk := s.recv(4096):  # until the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"limit body_timeout_s" in answer


def test_the_default_limits_keep_a_1000_by_200_appliance_batch_short(demo_server, demo_payload):
    """The batch that took 46 s before: every item has more appliance rows than the default limit (50)."""
    import time

    rows = [{"kind": "heat_pump", "rated_kw": 1.0, "connection": "3ph"}] * 200
    items = [{**demo_payload, "notification_id": f"BIG-{i}", "appliances": rows} for i in range(1000)]
    with demo_server.client() as c:
        start = time.perf_counter()
        r = c.post("/v1/assess/batch", json={"notifications": items})
        seconds = time.perf_counter() - start
    assert r.status_code == 200 and r.json()["counts"] == {"invalid": 1000}
    assert "at most 50 per notification (limit max_appliances)" in r.json()["results"][0]["errors"][0]
    assert seconds < 20, seconds


def test_pipelined_requests_are_answered_and_an_idle_kept_alive_connection_is_closed(tight_server):
    import socket
    import time

    host, port = tight_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)  # three requests in one packet
        data = b""
        while data.count(b'{"status":"ok"}') < 3:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 3
        time.sleep(3.0)  # past the 2 s header timeout: no next request's headers came
        s.settimeout(2)
        try:
            assert s.recv(1) == b""
        except (ConnectionResetError, OSError):
            pass


def test_the_default_http_parser_is_httptools_when_installed():
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from powercheck.service.limits import guarded_protocol, http_implementation

    assert http_implementation() == "httptools"  # a dependency of the package
    assert issubclass(guarded_protocol(2.0), HttpToolsProtocol)
    assert issubclass(guarded_protocol(2.0, "h11"), H11Protocol)
    assert guarded_protocol(2.0).header_timeout_s == 2.0
    with pytest.raises(ValueError, match="http: 'h2'"):
        http_implementation("h2")
