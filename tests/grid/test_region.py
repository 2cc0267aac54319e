"""Region loading: manifest, cache, automatic customer points and the concatenated region arrays."""

import numpy as np
import pandas as pd
import pytest

from powercheck.grid import precompute as precompute_mod
from powercheck.grid import region as region_mod
from powercheck.grid.networks import GridModelError, NetworkSpec, load_source
from powercheck.grid.precompute import NetworkArrays
from powercheck.grid.region import GridRegion, RegionArrays, parse_manifest
from powercheck.gs1 import make_gsrn, validate_gsrn
from powercheck.params import Param
from tests.helpers.grids import quiet


def test_cache_is_used_and_invalidated(mini_region_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = GridRegion.load(mini_region_dir, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2

    def boom(*args, **kwargs):
        raise AssertionError("precompute must not run with a warm cache")

    monkeypatch.setattr(region_mod, "precompute_network", boom)
    second = GridRegion.load(mini_region_dir, cache_dir=cache)
    np.testing.assert_array_equal(first.arrays.rk1_min, second.arrays.rk1_min)
    assert first.version == second.version
    # changing a grid default changes the key: the cache is not used
    manifest = (mini_region_dir / "region.toml").read_text()
    other = tmp_path / "other"
    other.mkdir()
    for f in mini_region_dir.iterdir():
        if f.is_dir():
            (other / f.name).mkdir()
            for g in f.iterdir():
                (other / f.name / g.name).write_bytes(g.read_bytes())
        else:
            (other / f.name).write_bytes(f.read_bytes())
    (other / "region.toml").write_text(
        manifest + '\n[defaults.low_load_scaling]\nvalue = 0.2\ntag = "P"\nsource = "AMS study"\n'
    )
    with pytest.raises(AssertionError, match="warm cache"):
        GridRegion.load(other, cache_dir=cache)


def test_auto_customer_points_and_it_rescaling(tmp_path, cache_dir):
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "auto"\ncustomer_points = "auto"\n'
        '[[network]]\nid = "land"\nsystem = "IT_230"\nsource = "pandapower:kerber_landnetz_kabel_1"\nlv_kv = 0.23\n'
    )
    region = GridRegion.load(tmp_path, cache_dir=cache_dir)
    net = quiet(load_source, "pandapower:kerber_landnetz_kabel_1")
    assert len(region.customers) == net.load.bus.nunique()
    for mp in region.customers.metering_point_id:
        validate_gsrn(mp)
    assert set(region.arrays.u_ll_v) == {230.0}
    assert region.customers.existing_peak_kw.sum() == pytest.approx(1000 * net.load.p_mw.sum())
    assert region.locate([region.customers.metering_point_id[2], "000"]).tolist() == [2, -1]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsource="pandapower:kerber_dorfnetz"\n',
            r"network\[0\]\.system is required",
        ),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="TT"\nsource="pandapower:kerber_dorfnetz"\n',
            r"network\[0\]\.system must be one of",
        ),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="TN_400"\nsource="pandapower:nope"\n',
            r"unknown pandapower network",
        ),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="IT_230"\nsource="pandapower:kerber_dorfnetz"\n',
            r"IT_230 expects about 230 V but the LV buses are at 400 V",
        ),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="TN_400"\nsource="missing.json"\n',
            r"file .*missing.json not found",
        ),
        ('[region]\nname="x"\n', r"at least one \[\[network\]\]"),
        (
            '[region]\nname="x"\n[defaults.nonsense]\nvalue=1\ntag="P"\nsource="abc"\n[[network]]\nid="a"\nsystem="TN_400"\nsource="pandapower:kerber_dorfnetz"\n',
            r"defaults\.nonsense: unknown grid default",
        ),
    ],
)
def test_manifest_errors_are_named(tmp_path, cache_dir, manifest, message):
    (tmp_path / "region.toml").write_text(manifest)
    with pytest.raises(GridModelError, match=message):
        GridRegion.load(tmp_path, cache_dir=cache_dir)


def test_precompute_version_is_part_of_cache_key(mini_region_dir, tmp_path, monkeypatch):
    GridRegion.load(mini_region_dir, cache_dir=tmp_path)
    monkeypatch.setattr(region_mod, "PRECOMPUTE_VERSION", precompute_mod.PRECOMPUTE_VERSION + 1)
    GridRegion.load(mini_region_dir, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 4


def test_parse_manifest_reads_every_key(tmp_path):
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "r"\ndescription = "two feeders"\ncustomer_points = "cp.parquet"\n'
        '[[network]]\nid = "a"\nsystem = "TN_400"\nsource = "pandapower:kerber_dorfnetz"\nkwargs = { seed = 3 }\n'
        '[[network]]\nid = "b"\nsystem = "IT_230"\nsource = "nets/b.json"\nlv_kv = 0.23\n'
        '[defaults.low_load_scaling]\nvalue = 0.2\ntag = "P"\nsource = "AMS study"\n'
    )
    for path in (tmp_path, tmp_path / "region.toml"):  # the directory or the file
        m = parse_manifest(path)
        assert m.path == tmp_path / "region.toml" and m.base_dir == tmp_path
        assert (m.name, m.description, m.customer_points) == ("r", "two feeders", "cp.parquet")
        assert m.networks == [
            NetworkSpec("a", "TN_400", "pandapower:kerber_dorfnetz", None, {"seed": 3}),
            NetworkSpec("b", "IT_230", "nets/b.json", 0.23, {}),
        ]
        assert m.default_overrides == {"low_load_scaling": {"value": 0.2, "tag": "P", "source": "AMS study"}}
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "r"\n[[network]]\nid = "a"\nsystem = "TN_400"\nsource = "x.json"\n'
    )
    assert parse_manifest(tmp_path).customer_points == "auto"
    assert parse_manifest(tmp_path).description == ""


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, r"region manifest .*region.toml not found"),
        ("[region\n", r"malformed TOML"),
        ('[other]\nname = "x"\n', r"\[region\] table with a name is required"),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="TN_400"\nsource="s"\ncolour="red"\n',
            r"network\[0\]\.colour",
        ),
        (
            '[region]\nname="x"\n[[network]]\nid="a"\nsystem="TN_400"\nsource="s"\n'
            '[[network]]\nid="a"\nsystem="TN_400"\nsource="t"\n',
            r"network\[1\]\.id 'a' is used twice",
        ),
    ],
)
def test_parse_manifest_errors_name_the_key(tmp_path, manifest, message):
    if manifest is not None:
        (tmp_path / "region.toml").write_text(manifest)
    with pytest.raises(GridModelError, match=message):
        parse_manifest(tmp_path)


def _network(network_id, system, bus_ids, line_ids, trafo_ids, trafo_row, service, feeder, paths, value, parent):
    """Hand-made NetworkArrays: every per-bus/line/trafo float is ``value`` + position / 10."""
    n_bus, n_line, n_trafo = len(bus_ids), len(line_ids), len(trafo_ids)
    indptr = np.cumsum([0] + [len(p) for p in paths]).astype(np.int64)
    floats = {
        name: value + np.arange(n_bus) / 10
        for name in (
            "u_ll_v rk1_max xk1_max rk1_min xk1_min rk0_min xk0_min vm_peak_pu vm_low_pu unbalance_base_percent "
            "path_length_km"
        ).split()
    }
    return NetworkArrays(
        network_id=network_id,
        system=system,
        applied_defaults=[],
        meshed=False,
        bus_ids=np.array(bus_ids, dtype=np.int64),
        trafo_row=np.array(trafo_row, dtype=np.int64),
        bus_parent=np.array(parent, dtype=np.int64),
        bus_meshed=np.array([False] * (n_bus - 1) + [True]),
        service_line_row=np.array(service, dtype=np.int64),
        feeder_line_row=np.array(feeder, dtype=np.int64),
        path_indptr=indptr,
        path_lines=np.array([r for p in paths for r in p], dtype=np.int64),
        line_ids=np.array(line_ids, dtype=np.int64),
        line_i_max_a=value + np.arange(n_line) / 10,
        line_i_peak_a=value + np.arange(n_line) / 10,
        line_i_low_a=value + np.arange(n_line) / 10,
        trafo_ids=np.array(trafo_ids, dtype=np.int64),
        trafo_i_rated_a=value + np.arange(n_trafo) / 10,
        trafo_i_peak_a=value + np.arange(n_trafo) / 10,
        trafo_i_low_a=value + np.arange(n_trafo) / 10,
        **floats,
    )


def test_region_arrays_of_two_networks_shift_rows_by_the_offsets():
    # network A (TN): busbar 10 - line 0 - bus 11 - line 1 - bus 12, one transformer
    a = _network(
        "A", "TN_400", [10, 11, 12], [0, 1], [0], [0, 0, 0], [-1, 0, 1], [-1, 0, 0], [[], [0], [1, 0]], 1.0, [-1, 0, 1]
    )
    # network B (IT): two transformers (the second one feeds), busbar 5 - line 7 - bus 6
    b = _network("B", "IT_230", [5, 6], [7], [3, 4], [1, 1], [-1, 0], [-1, 0], [[], [0]], 2.0, [-1, 0])
    arr = RegionArrays.from_networks([a, b])
    # buses 0-2 are A's, 3-4 B's; lines 0-1 A's, 2 B's; transformers 0 A's, 1-2 B's
    np.testing.assert_array_equal(arr.bus_ids, [10, 11, 12, 5, 6])
    np.testing.assert_array_equal(arr.network_index, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(arr.system_tn, [True, True, True, False, False])
    np.testing.assert_array_equal(arr.meshed, [False, False, True, False, True])
    np.testing.assert_array_equal(arr.trafo_row, [0, 0, 0, 2, 2])  # B's trafo 1 -> 1 + 1
    np.testing.assert_array_equal(arr.service_line_row, [-1, 0, 1, -1, 2])  # -1 stays -1
    np.testing.assert_array_equal(arr.feeder_line_row, [-1, 0, 0, -1, 2])
    np.testing.assert_array_equal(arr.bus_parent_row, [-1, 0, 1, -1, 3])  # B's bus 6 -> its busbar, row 3
    np.testing.assert_array_equal(arr.path_indptr, [0, 0, 1, 3, 3, 4])
    np.testing.assert_array_equal(arr.path_lines, [0, 1, 0, 2])
    np.testing.assert_array_equal(arr.line_network, [0, 0, 1])
    np.testing.assert_array_equal(arr.line_ids, [0, 1, 7])
    np.testing.assert_array_equal(arr.trafo_ids, [0, 3, 4])
    np.testing.assert_allclose(arr.rk1_min, [1.0, 1.1, 1.2, 2.0, 2.1])
    np.testing.assert_allclose(arr.line_i_peak_a, [1.0, 1.1, 2.0])
    np.testing.assert_allclose(arr.trafo_i_rated_a, [1.0, 2.0, 2.1])
    assert arr.n_bus == 5
    for name in ("trafo_row", "service_line_row", "feeder_line_row", "path_indptr", "path_lines", "bus_ids"):
        assert getattr(arr, name).dtype == np.int64, name
    assert arr.u_ll_v.dtype == np.float64 and arr.meshed.dtype == bool and arr.system_tn.dtype == bool
    with pytest.raises(AttributeError):
        arr.rk1_min = arr.rk1_max  # frozen
    # a region of the two: customer rows point into the concatenated bus arrays
    customers = pd.DataFrame(
        {
            "metering_point_id": [make_gsrn(f"70705750099{i:06d}") for i in range(3)],
            "network_id": ["B", "A", "B"],
            "bus": [6, 12, 5],
            "existing_peak_kw": [1.0, 2.0, 3.0],
        }
    )
    specs = [NetworkSpec("A", "TN_400", "a.json"), NetworkSpec("B", "IT_230", "b.json")]
    defaults = {"low_load_scaling": Param(value=0.1, tag="R", source="test")}
    region = GridRegion("two", [a, b], specs, customers, defaults, "grid-test")
    assert region.customers.bus_row.tolist() == [4, 2, 3]
    assert region.network_order == ["A", "B"]
    assert region.locate([customers.metering_point_id[2], "x"]).tolist() == [2, -1]
    assert region.summary()["networks"][1] == {
        "id": "B",
        "system": "IT_230",
        "buses": 2,
        "lines": 1,
        "meshed": False,
        "meshed_buses": 1,
        "source": "b.json",
        "applied_defaults": [],
        "problem_buses": 0,
        "network_problem": None,
        "import_notes": [],
    }
    assert region.summary()["grid_problems"] == [] and region.bus_problem(4) is None
    assert region.assumptions_for_network("A") == ["grid:low_load_scaling"]
