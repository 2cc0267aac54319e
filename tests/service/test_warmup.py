"""The service's warm-up (issue 13): the engine's kernels are loaded before the service reports ready, and the
warm-up leaves nothing in the decision store or the capacity ledger."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import textwrap

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.rules.engine import Assessor
from powercheck.service.testing import start_server
from powercheck.service.warmup import WARMUP_ID_PREFIX, warm_up, warmup_notifications

TOKEN = "warmup-token-0123456789abcdef"

# In a fresh interpreter (this process has run other tests' kernels already): warm up, then decide every demo
# notification in groups of 7 on the service's kind of assessor (a ledger), as the coalescer does, and report
# the kernels' loaded signatures before and after.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from powercheck.demo import demo_notifications_path, demo_region_dir
    from powercheck.grid.region import GridRegion
    from powercheck.io import read_notifications
    from powercheck.ledger import CapacityState
    from powercheck.rules.engine import Assessor
    from powercheck.rules.policy import load_policy
    from powercheck.service.warmup import loaded_kernels, warm_up

    region = GridRegion.load(demo_region_dir(), cache_dir=Path(sys.argv[1]))
    assessor = Assessor(region, load_policy(), ledger=CapacityState.of(region, []))
    before_warm_up = loaded_kernels()
    warm_up(assessor)
    after_warm_up = loaded_kernels()
    requests_after_warm_up = len(assessor.ledger.requests)
    notifications = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    decided = 0
    for i in range(0, len(notifications), 7):
        for d in assessor.assess_isolated(notifications[i : i + 7]).decisions:
            d.model_dump_json()
            decided += 1
    print(json.dumps({"before": before_warm_up, "warm": after_warm_up, "after": loaded_kernels(),
                      "requests_after_warm_up": requests_after_warm_up, "decided": decided,
                      "recorded": len(assessor.ledger.requests)}))
    """
)


def test_warm_up_loads_every_kernel_the_demo_decisions_use(cache_dir, demo_region):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cache_dir)], capture_output=True, text=True, timeout=600, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    before, warm, after = report["before"], report["warm"], report["after"]
    assert sum(before.values()) == 0  # nothing was loaded before the warm-up in that interpreter
    loaded = {name for name, count in warm.items() if count}
    assert len(loaded) >= 10, loaded
    assert report["requests_after_warm_up"] == 0  # the service's ledger is untouched
    # deciding all 224 demo notifications afterwards loads no kernel and no signature the warm-up had not loaded
    assert report["decided"] == 224 and report["recorded"] > 0
    grown = {name: (warm.get(name, 0), count) for name, count in after.items() if count != warm.get(name, 0)}
    assert grown == {}


def test_warm_up_decides_one_of_each_kind_per_network_and_records_nothing(demo_region, policy):
    ledger = CapacityState.of(demo_region, [])
    assessor = Assessor(demo_region, policy, ledger=ledger)
    notifications = warmup_notifications(assessor)
    # per network: 8 appliance kinds, a single-phase charger, an inverter with its own spectrum, a fuse change and
    # a new single-phase connection
    assert len(notifications) == 12 * len(demo_region.networks)
    assert all(n.notification_id.startswith(WARMUP_ID_PREFIX) for n in notifications)
    assert warm_up(assessor) > 0
    assert ledger.requests == {} and ledger.applied == {}


def test_a_failing_warm_up_is_logged_and_does_not_stop_the_service(demo_region, policy, monkeypatch, caplog):
    def broken(self, notifications):
        raise RuntimeError("kernel trouble")

    monkeypatch.setattr(Assessor, "assess_isolated", broken)
    with caplog.at_level(logging.WARNING, logger="powercheck.service"):
        warm_up(Assessor(demo_region, policy, ledger=CapacityState.of(demo_region, [])))
    assert "warm-up failed" in caplog.text and "kernel trouble" in caplog.text


def test_the_server_warms_up_before_it_is_ready_and_stores_nothing(tmp_path, cache_dir, demo_region):
    db = tmp_path / "decisions.sqlite"
    server = start_server(db, TOKEN, cache_dir=cache_dir)
    try:
        with server.client() as c:
            status = c.get("/v1/status").json()
            assert status["decisions_stored"] == 0
            assert c.get("/v1/ledger").json() == []
            with sqlite3.connect(db) as con:
                for table in ("decisions", "requests", "request_events"):
                    assert con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
            n = next(r.notification for r in read_notifications(demo_notifications_path()) if r.ok)
            r = c.post("/v1/assess", json=n.model_dump(mode="json", exclude_none=True))
            assert r.status_code == 200 and r.json()["notification_id"] == n.notification_id
            assert c.get("/v1/status").json()["decisions_stored"] == 1
    finally:
        server.stop()
    assert "warm-up" in server.log()
