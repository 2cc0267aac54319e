"""A region whose networks have grid-data problems next to a healthy one (issue 12).

* ``good``: the plain test feeder;
* ``isl``: the feeder plus a bus with a house and no line to it (islanded);
* ``notr``: the feeder without its transformer;
* ``oos``: the feeder with its transformer out of service;
* ``zero``: the feeder with a house branch of zero length (pandapower cannot compute the network).

Metering points (``BAD_POINTS``): one per (network, bus name); the healthy ones are ``good/house_*``
and ``isl/house_1``.
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp
import pandas as pd

from powercheck.gs1 import make_gsrn
from tests.helpers.grids import bus_named, feeder, to_json

BAD_POINTS = [
    ("good", "house_1"),
    ("good", "house_2"),
    ("good", "house_3"),
    ("isl", "house_1"),
    ("isl", "island"),
    ("notr", "house_1"),
    ("oos", "house_2"),
    ("zero", "house_3"),
]

EXPECTED_PROBLEM = {
    "isl": "islanded",
    "notr": "no_transformer",
    "oos": "transformer_out_of_service",
    "zero": "network",
}
"""The problem of the unusable buses of each network (``isl``: only the island bus)."""


def bad_mp(network: str, bus_name: str) -> str:
    return make_gsrn(f"70705750088{BAD_POINTS.index((network, bus_name)) + 1:06d}")


def bad_networks() -> dict[str, pp.pandapowerNet]:
    nets = {name: feeder(0.4, load_kw=5.0) for name in ("good", "isl", "notr", "oos", "zero")}
    island = pp.create_bus(nets["isl"], 0.4, name="island")
    pp.create_load(nets["isl"], island, p_mw=0.005, q_mvar=0.0, name="island_load")
    nets["notr"].trafo.drop(nets["notr"].trafo.index, inplace=True)
    nets["oos"].trafo["in_service"] = False
    zero = nets["zero"]
    zero.line.loc[zero.line.index[zero.line.name == "branch_3"], "length_km"] = 0.0
    return nets


def build_bad_region(root: Path) -> Path:
    """Write the region to ``root`` and return it."""
    (root / "networks").mkdir(parents=True, exist_ok=True)
    nets = bad_networks()
    manifest = '[region]\nname = "bad"\ncustomer_points = "customer_points.parquet"\n'
    for name, net in nets.items():
        to_json(net, root / "networks" / f"{name}.json")
        manifest += f'[[network]]\nid = "{name}"\nsystem = "TN_400"\nsource = "networks/{name}.json"\n'
    (root / "region.toml").write_text(manifest, encoding="utf-8")
    rows = [
        {
            "metering_point_id": bad_mp(nid, bus_name),
            "network_id": nid,
            "bus": bus_named(nets[nid], bus_name),
            "existing_peak_kw": 5.0,
            "existing_export_kw": 0.0,
            "main_fuse_a": 25.0,
        }
        for nid, bus_name in BAD_POINTS
    ]
    pd.DataFrame(rows).to_parquet(root / "customer_points.parquet", index=False)
    return root


def ev_notification(network: str, bus_name: str, notification_id: str, kw: float = 3.7) -> dict:
    """A small single-phase EV charger at a metering point of the region (JSON form)."""
    return {
        "notification_id": notification_id,
        "job_type": "ev_charger",
        "metering_point_id": bad_mp(network, bus_name),
        "network_system": "TN_400",
        "main_fuse_before_a": 25,
        "main_fuse_after_a": 25,
        "appliances": [{"kind": "ev_charger", "rated_kw": kw, "connection": "3ph"}],
    }
