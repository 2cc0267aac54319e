"""Issue 12, items 4 and 5: region files are untrusted input -- ids, paths and pandapower JSON are checked."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

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
    text = (
        (region / "region.toml").read_text().replace(f'customer_points = "{cp}"', 'customer_points = "sub/cp.parquet"')
    )
    (region / "region.toml").write_text(text)
    assert len(GridRegion.load(region, cache_dir=cache_dir).customers) == 1


# ----------------------------------------------------------------------------------- item 5: pandapower JSON


def _tamper(path, table: str, obj) -> None:
    """Replace one table of a pandapower JSON file with ``obj``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["_object"][table] = obj
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture()
def side_effect_module(tmp_path, monkeypatch):
    """An importable module whose import writes a marker file (what a hostile file could trigger)."""
    pkg = tmp_path / "modules"
    pkg.mkdir()
    marker = tmp_path / "imported.marker"
    (pkg / "pc_hostile_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\nclass Payload:\n"
        "    def __init__(self, *a, **k):\n        pass\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    yield "pc_hostile_module", marker
    sys.modules.pop("pc_hostile_module", None)


@pytest.mark.parametrize(
    "obj",
    [
        {"_module": "{module}", "_class": "Payload", "_object": "{{}}"},
        {"_module": "{module}", "_class": "function", "_object": "Payload"},
        {"_module": "subprocess", "_class": "Popen", "_object": ["touch", "{marker}"]},
    ],
)
def test_network_json_naming_other_types_is_refused_before_anything_is_imported(
    tmp_path, cache_dir, side_effect_module, obj, capsys
):
    module, marker = side_effect_module
    region = tmp_path / "region"
    _region(region)
    filled = json.loads(json.dumps(obj).replace("{module}", module).replace("{marker}", str(marker)))
    _tamper(region / "net.json", "controller", filled)
    cache = tmp_path / "cache"  # a fresh cache: nothing of an earlier run is reused
    with pytest.raises(GridModelError, match=r"net\.json.*\$\._object\.controller is a .* object; .* refused"):
        GridRegion.load(region, cache_dir=cache)
    assert not marker.exists(), "the hostile module was imported (or the command ran)"
    assert main(["region", "--grid", str(region), "--cache-dir", str(cache), "-q"]) == 1
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_a_hostile_type_inside_a_table_is_found_too(tmp_path, cache_dir, side_effect_module):
    """pandapower decodes a DataFrame's _object string again: objects in there are checked as well."""
    module, marker = side_effect_module
    region = tmp_path / "region"
    _region(region)
    data = json.loads((region / "net.json").read_text(encoding="utf-8"))
    frame = json.loads(data["_object"]["bus"]["_object"])
    frame["data"][0][0] = {"_module": module, "_class": "Payload", "_object": "{}"}
    data["_object"]["bus"]["_object"] = json.dumps(frame)
    (region / "net.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GridModelError, match=r"\$\._object\.bus\._object\.data\[0\]\[0\] is a pc_hostile_module"):
        GridRegion.load(region, cache_dir=tmp_path / "cache")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", "not a pandapower network"),
        (b'{"a": 1}', "not a pandapower network"),
        (b"[" * 100_000 + b"]" * 100_000, "not readable JSON"),
        (b"\xff\xfe{", "not UTF-8"),
        (b"{", "not JSON"),
    ],
)
def test_unreadable_network_files_are_one_clear_error(tmp_path, cache_dir, content, message):
    region = tmp_path / "region"
    _region(region)
    (region / "net.json").write_bytes(content)
    with pytest.raises(GridModelError, match=rf"network source 'net.json' .*net\.json\): {message}"):
        GridRegion.load(region, cache_dir=cache_dir)


def test_an_old_pandapower_is_refused_for_network_files(tmp_path, cache_dir, monkeypatch):
    import pandapower as pp

    from powercheck.grid import safe_json

    region = tmp_path / "region"
    _region(region)
    assert safe_json.MIN_PANDAPOWER == (3, 5, 4)
    monkeypatch.setattr(pp, "__version__", "3.4.0")
    with pytest.raises(GridModelError, match=r"pandapower 3\.4\.0 reads network files unsafely.*pandapower>=3\.5\.4"):
        GridRegion.load(region, cache_dir=cache_dir, use_cache=False)


def test_the_allow_list_takes_every_network_pandapower_writes(tmp_path):
    """The demo networks and pandapower's own LV networks pass the check (nothing legitimate is refused)."""
    import warnings

    import pandapower as pp

    from powercheck.demo import demo_region_dir
    from powercheck.grid.networks import PANDAPOWER_NETWORKS
    from powercheck.grid.safe_json import check_network_objects, read_network_json

    for path in sorted((demo_region_dir() / "networks").glob("*.json")):
        net = read_network_json(path, str(path))
        assert len(net.bus) > 10
    for name, factory in PANDAPOWER_NETWORKS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = pp.to_json(factory())
        check_network_objects(json.loads(text), name)


# ----------------------------------------------------------------------- fuzz: region manifests (items 4, 6, 9)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from powercheck.grid.networks import load_grid_defaults  # noqa: E402
from powercheck.grid.region import parse_manifest  # noqa: E402
from tests.helpers.toml_write import toml_tables  # noqa: E402

TOML_SCALAR = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["../x.json", "/etc/passwd", "pandapower:kerber_dorfnetz", "auto", "TN_400", "net.json", ""]),
)
TOML_VALUE = st.recursive(
    TOML_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
    max_leaves=8,
)
MANIFEST_PATHS = [
    ("region", "name"),
    ("region", "description"),
    ("region", "customer_points"),
    ("region", "colour"),
    ("network", 0, "id"),
    ("network", 0, "system"),
    ("network", 0, "source"),
    ("network", 0, "lv_kv"),
    ("network", 0, "kwargs"),
    ("network", 0, "extra"),
    ("defaults", "low_load_scaling", "value"),
    ("defaults", "ext_grid_s_sc_max_mva", "value"),
    ("defaults", "low_load_scaling", "tag"),
    ("defaults", "nonsense", "value"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(MANIFEST_PATHS), value=TOML_VALUE)
def test_fuzzed_manifests_are_refused_naming_the_key_or_accepted(tmp_path, where, value):
    """A manifest with any value at any key is refused with a GridModelError naming the file, or it parses and
    its defaults check out -- never another exception."""
    import tempfile

    manifest = {
        "region": {"name": "fuzz", "customer_points": "auto"},
        "network": [{"id": "a", "system": "TN_400", "source": "net.json"}],
        "defaults": {"low_load_scaling": {"value": 0.1, "tag": "R", "source": "recall"}},
    }
    node = manifest
    for key in where[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    if where[0] == "defaults" and where[1] not in manifest["defaults"]:
        node.update({"tag": "P", "source": "grid owner"})
    node[where[-1]] = value
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        path = Path(root) / "region.toml"
        text = toml_tables({k: v for k, v in manifest.items()})
        path.write_text(text, encoding="utf-8")
        (Path(root) / "net.json").write_text("{}", encoding="utf-8")
        try:
            parsed = parse_manifest(root)
            load_grid_defaults(parsed.default_overrides, origin=str(parsed.path))
        except GridModelError as exc:
            assert str(path) in str(exc), str(exc)
