"""``POST /v1/assess`` answered without FastAPI's routing (issue 13): the fast path gives the route's answers, and
every request it does not take (invalid JSON or fields, limits, a query, another JSON content type) gets the route's
own answer and errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.io import read_notifications
from powercheck.models import Decision, Notification
from powercheck.service.app import ServiceConfig, create_app
from powercheck.service.limits import ServiceLimits

TOKEN = "fastpath-token-0123456789"


@pytest.fixture(scope="module")
def notifications() -> list[Notification]:
    return [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]


@pytest.fixture()
def app_client(tmp_path, cache_dir, demo_region):
    config = ServiceConfig(grid=demo_region_dir(), db=tmp_path / "d.sqlite", tokens={TOKEN: "tester"},
                           cache_dir=cache_dir, limits=ServiceLimits(max_appliances=3))  # fmt: skip
    app = create_app(config)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c, app.state.service


def _body(n: Notification, **update) -> dict:
    return dict(n.model_dump(mode="json", exclude_none=True), **update)


def test_fast_path_answers_as_the_route(app_client, notifications):
    client, st = app_client
    first, second = notifications[0], notifications[1]
    fast = client.post("/v1/assess", json=_body(first))
    assert fast.status_code == 200 and st.fast_answers == 1
    assert fast.headers["x-powercheck-replay"] == "false" and fast.headers["content-language"] == "en"
    stored = st.store.get(first.notification_id, first.revision)
    assert fast.content == stored.decision_json.encode()  # the stored JSON, sent as stored
    assert Decision.model_validate_json(fast.content).input_hash == first.input_hash()

    routed = client.post("/v1/assess?screening=false", json=_body(second))  # a query: the route answers
    assert routed.status_code == 200 and st.fast_answers == 1
    assert routed.headers["x-powercheck-replay"] == "false"
    assert routed.content == st.store.get(second.notification_id, second.revision).decision_json.encode()

    # a replay and a conflict on the fast path, as the route answers them
    again = client.post("/v1/assess", json=_body(first))
    assert again.status_code == 200 and again.headers["x-powercheck-replay"] == "true"
    assert again.content == fast.content and st.fast_answers == 2
    conflict = client.post("/v1/assess", json=_body(first, installer_id="INST-999"))
    routed_conflict = client.post("/v1/assess?screening=false", json=_body(first, installer_id="INST-999"))
    assert conflict.status_code == routed_conflict.status_code == 409
    assert conflict.json() == routed_conflict.json()

    # Norwegian on the fast path: the stored decision localised, as the route does it
    nb = client.post("/v1/assess", json=_body(first), headers={"Accept-Language": "nb"})
    nb_routed = client.post("/v1/assess?screening=false", json=_body(first), headers={"Accept-Language": "nb"})
    assert nb.headers["content-language"] == nb_routed.headers["content-language"] == "nb"
    assert nb.content == nb_routed.content != fast.content


@pytest.mark.parametrize(
    ("raw", "content_type", "error"),
    [
        ('{"notification_id": "X-1", "revision": 0}', "application/json", "revision"),
        ('{"notification_id": "X-1",\n "revision": }', "application/json", "not valid JSON"),
        ("[1, 2]", "application/json", "(body)"),
        ("", "application/json", "(body)"),
        ("[" * 5000 + "]" * 5000, "application/json", "(body)"),  # json.loads raises RecursionError
    ],
)
def test_requests_the_fast_path_does_not_take_get_the_routes_errors(app_client, raw, content_type, error):
    client, st = app_client
    r = client.post("/v1/assess", content=raw.encode(), headers={"Content-Type": content_type})
    assert r.status_code == 422, r.text
    assert any(error in e for e in r.json()["errors"]), r.json()
    assert st.fast_answers == 0


def test_limits_and_other_json_types_go_to_the_route(app_client, notifications):
    client, st = app_client
    n = next(n for n in notifications if n.appliances)
    many = _body(n, appliances=[n.appliances[0].model_dump(mode="json", exclude_none=True)] * 4)
    r = client.post("/v1/assess", json=many)
    assert r.status_code == 422 and "limit max_appliances" in r.json()["errors"][0]
    other = client.post(
        "/v1/assess", content=json.dumps(_body(n)).encode(), headers={"Content-Type": "application/x-pc+json"}
    )
    assert other.status_code == 200 and other.headers["x-powercheck-replay"] == "false"
    assert st.fast_answers == 0


def test_fastapi_telemetry_is_off_unless_asked_for(tmp_path):
    tokens = {"telemetry-token-0123456789": "tester"}
    off = create_app(ServiceConfig(grid=demo_region_dir(), db=tmp_path / "a.sqlite", tokens=tokens))
    on = create_app(ServiceConfig(grid=demo_region_dir(), db=tmp_path / "b.sqlite", tokens=tokens, telemetry=True))
    assert not off._native_telemetry.enabled()  # no provider lookup per request
    assert [off._telemetry[k] for k in ("tracing", "metrics", "logs")] == [False, False, False]
    assert [on._telemetry[k] for k in ("tracing", "metrics", "logs")] == [True, True, True]  # FastAPI's defaults
