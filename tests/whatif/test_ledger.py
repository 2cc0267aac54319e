"""What-if studies started from the region with the capacity ledger's approved requests applied."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pandapower as pp
import pyarrow.parquet as pq
import pytest

from powercheck.cli import main
from powercheck.ledger import LedgerRequest, LedgerStore, RequestStatus, Reservation, ReservedComponent
from powercheck.quality.codes import CONN_3PH, CONN_LL
from powercheck.whatif.feeders import load_feeder, parse_feeders
from powercheck.whatif.ledger import ledger_loads, read_ledger
from powercheck.whatif.study import Scenario, StudyConfig, solve_scenarios, study_steps
from tests.helpers.powerflow import pp_3ph

NOW = datetime(2026, 6, 1, tzinfo=UTC)
NETWORK = "it-landnetz-luft"


def _request(nid, status, bus, comps, decided_days_ago=10, network=NETWORK, export=()):
    return LedgerRequest(
        notification_id=nid,
        revision=1,
        metering_point_id="707057500000000018",
        network_id=network,
        bus=bus,
        status=status,
        job_type="ev_charger",
        submitted_at=NOW - timedelta(days=decided_days_ago + 1),
        decided_at=NOW - timedelta(days=decided_days_ago),
        reservation=Reservation(load=tuple(comps), export=tuple(export)),
    )


@pytest.fixture(scope="module")
def feeder(cache_dir):
    return load_feeder(parse_feeders([f"demo:{NETWORK}"])[0], cache_dir)


@pytest.fixture()
def ledger(tmp_path, feeder):
    bus = int(feeder.cust_bus[-1])
    path = tmp_path / "ledger.sqlite"
    store = LedgerStore(path)
    store.put(
        [
            _request("A-3PH", RequestStatus.APPROVED, bus, [ReservedComponent(CONN_3PH, 30.0, 1.0)]),
            _request("B-LL", RequestStatus.BUILT, bus, [ReservedComponent(CONN_LL, 6.0, 0.95)]),
            _request("C-PENDING", RequestStatus.PENDING, bus, [ReservedComponent(CONN_3PH, 500.0, 1.0)]),
            _request("D-CANCELLED", RequestStatus.CANCELLED, bus, [ReservedComponent(CONN_3PH, 500.0, 1.0)]),
            _request("E-OLD", RequestStatus.APPROVED, bus, [ReservedComponent(CONN_3PH, 500.0, 1.0)], 1000),
            _request("F-ELSEWHERE", RequestStatus.APPROVED, 3, [ReservedComponent(CONN_3PH, 500.0, 1.0)], 10, "tn"),
        ]
    )
    store.close()
    return path, bus


def test_only_active_unexpired_requests_are_read(ledger):
    path, bus = ledger
    before = path.read_bytes()
    requests = read_ledger(path, valid_days=365, now=NOW)
    assert sorted(r.notification_id for r in requests) == ["A-3PH", "B-LL", "F-ELSEWHERE"]
    assert path.read_bytes() == before  # read only: nothing expired in the file
    loads = ledger_loads(requests)
    assert [(x.notification_id, x.conn, x.p_kw) for x in loads if x.network_id == NETWORK] == [
        ("A-3PH", CONN_3PH, 30.0),
        ("B-LL", CONN_LL, 6.0),
    ]


def test_ledger_loads_match_pandapower_at_a_step(ledger, feeder):
    path, bus = ledger
    loads = tuple(x for x in ledger_loads(read_ledger(path, 365, NOW)) if x.network_id == NETWORK)
    config = StudyConfig(ev_shares=(0.0,), pv_shares=(0.0,), samples=1, days=1, ledger=loads)
    steps = study_steps(feeder, config)
    t = int(np.argmax(feeder.load_shape[steps]))
    step = steps[t : t + 1]
    scen = Scenario(feeder.spec.name, 0.0, 0.0, 0)
    with_ledger = solve_scenarios(feeder, [scen], config, steps=step).iloc[0]
    without = solve_scenarios(feeder, [scen], dataclasses.replace(config, ledger=()), steps=step).iloc[0]
    assert with_ledger.v_min_pu < without.v_min_pu - 0.005
    # pandapower: the feeder's customer base loads (IT: phase to phase) plus 30 kW three-phase and 6 kW at
    # cos phi 0.95 on the pair ab, each times the base-load shape at this step
    net = copy.deepcopy(feeder.net)
    for table in ("load", "sgen", "asymmetric_load", "asymmetric_sgen"):
        if table in net and len(net[table]):
            net[table] = net[table].iloc[0:0]
    for c, b in enumerate(feeder.cust_bus):
        s = (feeder.base_p_mw[step[0], c] + 1j * feeder.base_q_mvar[step[0], c]) * feeder.base_split[c]
        pp.create_asymmetric_load(
            net, int(b), p_a_mw=s[0].real, p_b_mw=s[1].real, p_c_mw=s[2].real,
            q_a_mvar=s[0].imag, q_b_mvar=s[1].imag, q_c_mvar=s[2].imag, type="delta",
        )  # fmt: skip
    shape = feeder.load_shape[step[0]]
    p3 = 0.030 * shape / 3
    pp.create_asymmetric_load(net, bus, p_a_mw=p3, p_b_mw=p3, p_c_mw=p3, type="delta")
    p1 = 0.006 * shape
    q1 = p1 * np.tan(np.arccos(0.95))
    pp.create_asymmetric_load(net, bus, p_a_mw=p1, q_a_mvar=q1, type="delta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp_3ph(net)
    lv = feeder.model.bus_index[feeder.lv_bus_mask]
    res = net.res_bus_3ph.loc[lv]
    v = np.stack([res[f"vm_{p}_pu"] * np.exp(1j * np.deg2rad(res[f"va_{p}_degree"])) for p in "abc"], axis=1)
    v_ll = np.abs(v - np.roll(v, -1, axis=1)) / np.sqrt(3)
    assert with_ledger.v_min_pu == pytest.approx(v_ll.min(), abs=1e-6)
    assert with_ledger.unbalance_max_percent == pytest.approx(res.unbalance_percent.max(), abs=1e-4)


def test_cli_ledger_option(feeder, tmp_path, cache_dir, capsys):
    path = tmp_path / "ledger.sqlite"
    bus = int(feeder.cust_bus[-1])
    store = LedgerStore(path)
    fresh = datetime.now(UTC) - timedelta(days=1)
    comps = [ReservedComponent(CONN_3PH, 30.0, 1.0)]
    store.put(
        [
            dataclasses.replace(_request("A", RequestStatus.APPROVED, bus, comps), decided_at=fresh),
            dataclasses.replace(_request("B", RequestStatus.APPROVED, 3, comps, network="tn"), decided_at=fresh),
            dataclasses.replace(_request("C", RequestStatus.PENDING, bus, comps), decided_at=fresh),
        ]
    )
    store.close()
    out = tmp_path / "study"
    args = ["whatif", "--feeders", f"demo:{NETWORK}", "--ev-share", "0", "--samples", "1", "--days", "1"]
    args += ["--cache-dir", str(cache_dir), "--out", str(out), "--ledger", str(path)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"ledger {path}: 1 active requests applied on the studied networks (1 on other networks)" in err
    table = pq.read_table(out / "whatif.parquet")
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert str(path) in meta["powercheck.ledger"] and '"notification_id": "A"' in meta["powercheck.config"]
    assert main(args[:-1] + [str(tmp_path / "missing.sqlite")]) == 2
    assert "--ledger: " in capsys.readouterr().err
