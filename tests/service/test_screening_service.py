"""The HTTP service and screening studies: decisions carry their workflow stage; ``?screening=true`` (appliance
defaults, named) is refused unless the server runs with ``--allow-screening``, and even then a screening decision
is neither stored nor recorded in the ledger. Real server processes (``powercheck serve``)."""

from __future__ import annotations

import json

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.service.testing import start_server

TOKEN = "test-token-screening-0123456789"


def _demo(notification_id: str) -> dict:
    for line in demo_notifications_path().read_text(encoding="utf-8").splitlines():
        if f'"{notification_id}"' in line:
            return json.loads(line)
    raise KeyError(notification_id)


# a 9 kW heat pump without its start-current data: request_info in production
HEAT_PUMP = "ELS-2026-100063"


@pytest.fixture(scope="module")
def production(tmp_path_factory, cache_dir, demo_region):
    srv = start_server(tmp_path_factory.mktemp("svc-prod") / "decisions.sqlite", TOKEN, cache_dir=cache_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def study(tmp_path_factory, cache_dir, demo_region):
    srv = start_server(
        tmp_path_factory.mktemp("svc-study") / "decisions.sqlite",
        TOKEN,
        cache_dir=cache_dir,
        extra_args=["--allow-screening"],
    )
    yield srv
    srv.stop()


def test_production_refuses_screening_and_decisions_carry_the_stage(production):
    data = _demo(HEAT_PUMP)
    with production.client() as c:
        for path, body in (("/v1/assess", data), ("/v1/assess/batch", {"notifications": [data]})):
            r = c.post(f"{path}?screening=true", json=body)
            assert r.status_code == 403, r.text
            assert "--allow-screening" in r.json()["errors"][0]
        assert c.get(f"/v1/decisions/{HEAT_PUMP}").status_code == 404  # a refused study decides nothing
        r = c.post("/v1/assess", json=data)
        d = r.json()
        assert r.status_code == 200 and d["outcome"] == "request_info" and d["stage"] == "pre_notification"
        assert not any(a.startswith("SCREENING") for a in d["reasons"])
        done = dict(data, notification_id="ELS-SCR-DONE", stage="completion")
        item = c.post("/v1/assess/batch", json={"notifications": [done]}).json()["results"][0]
        assert item["decision"]["stage"] == "completion"


def test_screening_allowed_uses_named_defaults_and_stores_nothing(study):
    data = _demo(HEAT_PUMP)
    with study.client() as c:
        r = c.post("/v1/assess?screening=true", json=data)
        assert r.status_code == 200, r.text
        assert r.headers["X-Powercheck-Screening"] == "true"
        d = r.json()
        assert d["outcome"] != "request_info" and d["stage"] == "pre_notification"
        named = [x for x in d["reasons"] if x.startswith("SCREENING: appliance defaults used for appliances[0]")]
        assert named and "heat_pump" in named[0], d["reasons"]
        assert d["checks"], "the grid checks ran on the defaults"
        # a study: neither stored nor recorded in the ledger
        assert c.get(f"/v1/decisions/{HEAT_PUMP}").status_code == 404
        assert c.get(f"/v1/requests/{HEAT_PUMP}").status_code == 404
        batch = c.post("/v1/assess/batch?screening=true", json={"notifications": [data, {"bad": 1}]}).json()
        assert batch["counts"] == {"decided": 1, "invalid": 1}
        assert batch["results"][0]["decision"]["outcome"] == d["outcome"]
        # without the flag the same server decides for production: request_info, stored
        r = c.post("/v1/assess", json=data)
        assert r.json()["outcome"] == "request_info" and "X-Powercheck-Screening" not in r.headers
        assert c.get(f"/v1/decisions/{HEAT_PUMP}").status_code == 200
