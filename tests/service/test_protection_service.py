"""The HTTP service with a breaker as main protection: validated fields, the KV checks, the device in the ledger."""

from __future__ import annotations

import json

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.service.testing import start_server

TOKEN = "test-token-protection-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory, cache_dir, demo_region):
    srv = start_server(tmp_path_factory.mktemp("svc-prot") / "decisions.sqlite", TOKEN, cache_dir=cache_dir)
    yield srv
    srv.stop()


def _demo(notification_id: str) -> dict:
    for line in demo_notifications_path().read_text(encoding="utf-8").splitlines():
        if f'"{notification_id}"' in line:
            return json.loads(line)
    raise KeyError(notification_id)


def test_breaker_notification_over_http(server):
    data = _demo("ELS-2026-PROT-01")  # C 40 A MCB behind a 100 A KV, no datasheet let-through
    with server.client() as c:
        r = c.post("/v1/assess", json=data)
        assert r.status_code == 200, r.text
        d = r.json()
        kv = [x for x in d["checks"] if x["rule_id"] == "PROT.KV_SELECTIVITY"]
        # time-current: the 100 A KV's I_min(0.1 s) 820 A against the C breaker's 10 x 40 = 400 A; then I2t
        assert (kv[0]["value"], kv[0]["limit"], kv[0]["status"]) == (820.0, 400.0, "pass")
        assert kv[1]["value"] == 21200.0 and kv[1]["status"] == "fail" and d["outcome"] == "escalate"
        fault = next(x for x in d["checks"] if x["rule_id"] == "PROT.FAULT_CURRENT")
        assert fault["limit"] == 400.0 and fault["limit_key"] == "mcb_magnetic_trip_multiples"
        view = c.get(f"/v1/requests/{data['notification_id']}").json()
        assert view["device_after"] == {"rating_a": 40.0, "type": "mcb", "characteristic": "C"}
        bad = dict(data, notification_id="PROT-BAD", main_device_after={"type": "mcb"})
        r = c.post("/v1/assess", json=bad)
        assert r.status_code == 422
        assert any(e.startswith("main_device_after: ") and "characteristic" in e for e in r.json()["errors"])
