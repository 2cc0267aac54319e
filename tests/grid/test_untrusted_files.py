"""Issue 12, items 4 and 5: region files are untrusted input -- ids, paths and pandapower JSON are checked."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from powercheck.cli import main
from powercheck.grid.networks import GridModelError
from powercheck.grid.region import GridRegion
from tests.helpers.grids import bus_named, feeder, to_json


def _region(root, *, network_id="a", source="net.json", customer_points="auto", net_dir=None):
    """A one-network region at ``root``; the network file is written to ``net_dir`` (default: ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    net = feeder(0.4, load_kw=5.0)
    to_json(net, (net_dir or root) / "net.json")
    (root / "region.toml").write_text(
        f'[region]\nname = "r"\ncustomer_points = "{customer_points}"\n'
        f'[[network]]\nid = "{network_id}"\nsystem = "TN_400"\nsource = "{source}"\n',
        encoding="utf-8",
    )
    return net


def _points(path, network_id, net):
    from powercheck.gs1 import make_gsrn

    pd.DataFrame(
        {
            "metering_point_id": [make_gsrn("70705750077000001")],
            "network_id": [network_id],
            "bus": [bus_named(net, "house_1")],
            "existing_peak_kw": [5.0],
        }
    ).to_parquet(path, index=False)


@pytest.mark.parametrize("bad_id", ["../escaped", "a/b", ".hidden", "x" * 65, "a b", "..", ""])
def test_network_ids_are_safe_names_and_no_cache_file_leaves_the_cache(tmp_path, bad_id):
    region, cache = tmp_path / "region", tmp_path / "deep" / "cache"
    _region(region, network_id=bad_id)
    with pytest.raises(GridModelError, match=r"network\[0\]\.id .* is not a valid id"):
        GridRegion.load(region, cache_dir=cache)
    written = [p for p in tmp_path.rglob("*") if p.suffix in (".npz", ".parquet")]
    assert written == [], written


def test_a_numeric_network_id_is_refused(tmp_path):
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "r"\n[[network]]\nid = 7\nsystem = "TN_400"\nsource = "pandapower:kerber_dorfnetz"\n'
    )
    with pytest.raises(GridModelError, match=r"network\[0\]\.id 7 is not a valid id"):
        GridRegion.load(tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_network_source_stays_inside_the_region_directory(tmp_path, cache_dir, where, capsys):
    region, outside = tmp_path / "region", tmp_path / "elsewhere"
    outside.mkdir()
    source = {"dotdot": "../elsewhere/net.json", "absolute": str(outside / "net.json"), "symlink": "link.json"}[where]
    _region(region, source=source, net_dir=outside)
    if where == "symlink":
        os.symlink(outside / "net.json", region / "link.json")
    with pytest.raises(GridModelError, match=r"network\[0\]\.source .*(absolute path|leads outside)"):
        GridRegion.load(region, cache_dir=cache_dir)
    # the CLI: one line naming the file and the key, before any work
    assert main(["region", "--grid", str(region), "--cache-dir", str(cache_dir), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "network[0].source" in err and "region.toml" in err
    # an explicit option allows it
    loaded = GridRegion.load(region, cache_dir=cache_dir, allow_outside=True)
    assert loaded.network_order == ["a"]
    assert main(["region", "--grid", str(region), "--cache-dir", str(cache_dir), "-q", "--allow-outside-region"]) == 0


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink"])
def test_customer_index_stays_inside_the_region_directory(tmp_path, cache_dir, where):
    region, outside = tmp_path / "region", tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "cp.parquet"
    cp = {"dotdot": "../elsewhere/cp.parquet", "absolute": str(target), "symlink": "cp.parquet"}[where]
    net = _region(region, customer_points=cp)
    _points(target, "a", net)
    if where == "symlink":
        os.symlink(target, region / "cp.parquet")
    with pytest.raises(GridModelError, match=r"region\.customer_points .*(absolute path|leads outside)"):
        GridRegion.load(region, cache_dir=cache_dir)
    assert len(GridRegion.load(region, cache_dir=cache_dir, allow_outside=True).customers) == 1
    # inside the directory (a subfolder) is fine
    shutil.copy(target, region / "inside.parquet")
    (region / "sub").mkdir()
    shutil.copy(target, region / "sub" / "cp.parquet")
    text = (region / "region.toml").read_text().replace(f'customer_points = "{cp}"', 'customer_points = "sub/cp.parquet"')
    (region / "region.toml").write_text(text)
    assert len(GridRegion.load(region, cache_dir=cache_dir).customers) == 1
