"""The region the rule cases (tests/data/rules/) are decided on: four small, fully specified feeders.

* ``tn``      -- TN 400 V: 315 kVA Dyn, 3 x 100 m NAYY 4x150 with a 30 m NAYY 4x50 house branch each, 5 kW per house;
* ``it``      -- the same cables at 230 V IT, 5 kW per house;
* ``it_weak`` -- 230 V IT with 12 x 100 m NAYY 4x150 (1.2 km), 1 kW per house: a weak rural feeder;
* ``tn_mesh`` -- ``tn`` with an extra 100 m NAYY 4x150 between house_1 and house_3 (a loop), and a bus
  ``island`` that no line connects (the grid model cannot be computed there).

Every number of the networks is written in :mod:`tests.helpers.grids`.
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp
import pandas as pd

from powercheck.gs1 import make_gsrn
from powercheck.ledger.model import LedgerRequest, RequestStatus, Reservation
from powercheck.ledger.state import CapacityState
from tests.helpers.grids import MAIN, add_line, bus_named, feeder, to_json

CASE_NETWORKS = {
    "tn": ("TN_400", 0.4, 5.0, 3),
    "it": ("IT_230", 0.23, 5.0, 3),
    "it_weak": ("IT_230", 0.23, 1.0, 12),
    "tn_mesh": ("TN_400", 0.4, 5.0, 3),
}
"""network id -> (system, vn_kv, load per house [kW], number of main-cable sections)."""

# key -> (network, bus name, existing kW, main fuse, service cable ampacity, upstream fuse)
CASE_POINTS = {
    "TN_END": ("tn", "house_3", 5.0, 25.0, None, None),
    "TN_MID": ("tn", "house_2", 5.0, 25.0, None, 100.0),
    "TN_NEAR": ("tn", "house_1", 5.0, 25.0, 63.0, 160.0),
    "TN_BUSBAR": ("tn", "busbar", 0.0, 250.0, None, 630.0),
    "IT_END": ("it", "house_3", 5.0, 40.0, None, None),
    "IT_NEAR": ("it", "house_1", 5.0, 40.0, None, 160.0),
    "WEAK_END": ("it_weak", "house_12", 1.0, 25.0, None, None),
    "WEAK_MID": ("it_weak", "house_6", 1.0, 25.0, None, None),
    "MESH": ("tn_mesh", "house_2", 5.0, 25.0, None, None),
    "ISLAND": ("tn_mesh", "island", 5.0, 25.0, None, None),
    # points with a KV (short-circuit protection before the meter) on record, see CASE_KV
    "TN_END_KV": ("tn", "house_3", 5.0, 25.0, None, None),
    "TN_MID_KV": ("tn", "house_2", 5.0, 25.0, None, 250.0),
    "TN_NEAR_KV": ("tn", "house_1", 5.0, 25.0, None, None),
    "WEAK_END_KV": ("it_weak", "house_12", 1.0, 25.0, None, None),
}

CASE_KV = {"TN_END_KV": 100.0, "TN_MID_KV": 100.0, "TN_NEAR_KV": 224.0, "WEAK_END_KV": 125.0}
"""key -> KV (gG fuse) on record [A]; 224 A is an NH size the policy has no gG data for."""


def case_mp(key: str) -> str:
    """The GS1 id of a case-region metering point."""
    return make_gsrn(f"7070575001{list(CASE_POINTS).index(key) + 1:07d}")


def case_network(network_id: str) -> pp.pandapowerNet:
    """One network of the case region, built from scratch."""
    _, vn_kv, load_kw, n_main = CASE_NETWORKS[network_id]
    net = feeder(vn_kv, s_sc_mva=1e6, load_kw=load_kw, n_main=n_main)
    if network_id == "tn_mesh":
        add_line(net, bus_named(net, "house_1"), bus_named(net, "house_3"), 0.100, MAIN, "loop")
        pp.create_bus(net, vn_kv, name="island")
    return net


def build_case_region(root: Path) -> Path:
    """Write the case region (networks, manifest, customer index) under ``root``."""
    (root / "networks").mkdir(parents=True, exist_ok=True)
    manifest = ['[region]\nname = "rule-cases"\ncustomer_points = "customer_points.parquet"\n']
    nets = {}
    for nid, (system, *_rest) in CASE_NETWORKS.items():
        nets[nid] = case_network(nid)
        to_json(nets[nid], root / "networks" / f"{nid}.json")
        manifest.append(f'[[network]]\nid = "{nid}"\nsystem = "{system}"\nsource = "networks/{nid}.json"\n')
    (root / "region.toml").write_text("\n".join(manifest), encoding="utf-8")
    rows = [
        {
            "metering_point_id": case_mp(key),
            "network_id": nid,
            "bus": bus_named(nets[nid], bus),
            "existing_peak_kw": kw,
            "existing_export_kw": 0.0,
            "main_fuse_a": fuse,
            "service_cable_ampacity_a": amp,
            "upstream_fuse_a": up,
            "kv_fuse_a": CASE_KV.get(key),
        }
        for key, (nid, bus, kw, fuse, amp, up) in CASE_POINTS.items()
    ]
    pd.DataFrame(rows).to_parquet(root / "customer_points.parquet", index=False)
    return root


def case_ledger_state(region, ledger: list[dict]) -> CapacityState:
    """A fresh capacity ledger holding a rule case's earlier requests (``expected["ledger"]``)."""
    state = CapacityState.empty(region)
    for r in ledger:
        state.put(
            LedgerRequest(
                notification_id=r["notification_id"],
                revision=r["revision"],
                metering_point_id=case_mp(r["point"]),
                network_id=None,
                bus=None,
                status=RequestStatus(r["status"]),
                job_type=r.get("job_type"),
                installer_id=r.get("installer_id"),
                fuse_after_a=r.get("fuse_after_a"),
                device_after=r.get("device_after"),
                kv_after_a=r.get("kv_after_a"),
                reservation=Reservation(
                    supply_phases=r.get("supply_phases"),
                    appliances=tuple((k, float(kw), c, int(q)) for k, kw, c, q in r.get("appliances", ())),
                ),
            )
        )
    return state
