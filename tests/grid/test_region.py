"""Region loading, per-bus precomputation and the cache, checked against pandapower directly."""

import warnings

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pandas as pd
import pytest

from powercheck.grid import precompute as precompute_mod
from powercheck.grid import region as region_mod
from powercheck.grid.networks import (
    PANDAPOWER_NETWORKS,
    GridModelError,
    complete_network,
    load_grid_defaults,
    load_source,
)
from powercheck.grid.region import GridRegion
from powercheck.gs1 import validate_gsrn
from tests.helpers.grids import bus_named, feeder, to_json


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _row(region, network_id, bus):
    arrays = region.networks[network_id]
    start = sum(region.networks[n].n_bus for n in region.network_order[: region.network_order.index(network_id)])
    return start + int(np.flatnonzero(arrays.bus_ids == bus)[0])


@pytest.mark.parametrize(("nid", "vn"), [("tn", 0.4), ("it", 0.23)])
def test_thevenin_and_base_case_match_pandapower(mini_region, nid, vn):
    net = feeder(vn, s_sc_mva=1e6, load_kw=5.0)
    bus = bus_named(net, "house_3")
    row = _row(mini_region, nid, bus)
    a = mini_region.arrays
    for case in ("max", "min"):
        _quiet(sc.calc_sc, net, case=case, fault="3ph")
        assert a.__dict__[f"rk1_{case}"][row] == pytest.approx(net.res_bus_sc.rk_ohm[bus], rel=1e-9)
        assert a.__dict__[f"xk1_{case}"][row] == pytest.approx(net.res_bus_sc.xk_ohm[bus], rel=1e-9)
    # the min case has warmer conductors: higher resistance
    assert a.rk1_min[row] > a.rk1_max[row]
    if nid == "tn":
        _quiet(sc.calc_sc, net, case="min", fault="1ph")
        assert a.rk0_min[row] == pytest.approx(net.res_bus_sc.rk0_ohm[bus], rel=1e-9)
    else:
        assert np.isnan(a.rk0_min[row])
    _quiet(pp.runpp, net)
    assert a.vm_peak_pu[row] == pytest.approx(net.res_bus.vm_pu[bus], abs=1e-9)
    line = int(net.line.index[net.line.name == "main_1"][0])
    net_no = mini_region.network_order.index(nid)
    line_row = int(np.flatnonzero((a.line_ids == line) & (a.line_network == net_no))[0])
    assert a.line_i_peak_a[line_row] == pytest.approx(1000 * net.res_line.i_ka[line], rel=1e-9)
    net.load["scaling"] = 0.1  # grid default low_load_scaling
    _quiet(pp.runpp, net)
    assert a.vm_low_pu[row] == pytest.approx(net.res_bus.vm_pu[bus], abs=1e-9)
    assert a.u_ll_v[row] == pytest.approx(vn * 1000)


def test_radial_path_service_and_feeder_lines(mini_region):
    net = feeder(0.4, load_kw=5.0)
    bus = bus_named(net, "house_3")
    row = _row(mini_region, "tn", bus)
    a = mini_region.arrays
    path = a.path_lines[a.path_indptr[row] : a.path_indptr[row + 1]]
    names = dict(zip(net.line.index, net.line.name))
    assert [names[int(a.line_ids[r])] for r in path] == ["branch_3", "main_3", "main_2", "main_1"]
    assert names[int(a.line_ids[a.service_line_row[row]])] == "branch_3"
    assert names[int(a.line_ids[a.feeder_line_row[row]])] == "main_1"
    assert a.path_length_km[row] == pytest.approx(0.33)
    busbar = _row(mini_region, "tn", bus_named(net, "busbar"))
    assert a.path_indptr[busbar] == a.path_indptr[busbar + 1]
    assert a.service_line_row[busbar] == -1
    assert a.trafo_i_rated_a[a.trafo_row[row]] == pytest.approx(315e3 / (np.sqrt(3) * 400))


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
    net = _quiet(load_source, "pandapower:kerber_landnetz_kabel_1")
    assert len(region.customers) == net.load.bus.nunique()
    for mp in region.customers.metering_point_id:
        validate_gsrn(mp)
    assert set(region.arrays.u_ll_v) == {230.0}
    assert region.customers.existing_peak_kw.sum() == pytest.approx(1000 * net.load.p_mw.sum())
    assert region.locate([region.customers.metering_point_id[2], "000"]).tolist() == [2, -1]


def test_completion_fills_only_missing_data():
    net = _quiet(load_source, "pandapower:kerber_dorfnetz")
    r1 = net.line.r_ohm_per_km.copy()
    used = complete_network(net, load_grid_defaults())
    assert "line_r0_r1_ratio" in used and "ext_grid_s_sc_max_mva" in used
    assert (net.trafo.vector_group == "Dyn").all()  # was Dyn5
    np.testing.assert_allclose(net.line.r0_ohm_per_km, 4 * r1)
    # the IEEE feeder carries its own zero-sequence and source data
    ieee = _quiet(load_source, "pandapower:ieee_european_lv_asymmetric")
    r0 = ieee.line.r0_ohm_per_km.copy()
    used = complete_network(ieee, load_grid_defaults())
    assert "line_r0_r1_ratio" not in used and "ext_grid_s_sc_max_mva" not in used
    np.testing.assert_array_equal(ieee.line.r0_ohm_per_km, r0)


def test_meshed_network_is_flagged(tmp_path, cache_dir):
    net = feeder(0.4, load_kw=5.0)
    pp.create_line_from_parameters(
        net,
        bus_named(net, "house_1"),
        bus_named(net, "house_3"),
        length_km=0.05,
        r_ohm_per_km=0.642,
        x_ohm_per_km=0.083,
        c_nf_per_km=0,
        max_i_ka=0.142,
        r0_ohm_per_km=2.568,
        x0_ohm_per_km=0.332,
        c0_nf_per_km=0,
        endtemp_degree=80,
    )
    to_json(net, tmp_path / "m.json")
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "m"\n[[network]]\nid = "m"\nsystem = "TN_400"\nsource = "m.json"\n'
    )
    region = GridRegion.load(tmp_path, cache_dir=cache_dir)
    arrays = region.networks["m"]
    assert arrays.meshed
    flags = {net.bus.name[int(b)]: bool(f) for b, f in zip(arrays.bus_ids, arrays.bus_meshed)}
    # the loop is house_1 - cabinet_1 - cabinet_2 - cabinet_3 - house_3 - house_1; cabinet_1 and the
    # busbar reach the transformer over main_1 alone (a bridge), everything else through the loop
    assert flags == {
        "busbar": False,
        "cabinet_1": False,
        "house_1": True,
        "cabinet_2": True,
        "house_2": True,
        "cabinet_3": True,
        "house_3": True,
    }
    # a notification behind the mesh cannot be approved on a path-based thermal check
    from powercheck.models import Notification
    from powercheck.rules.engine import Assessor
    from powercheck.rules.policy import load_policy

    mp = region.customers.metering_point_id[region.customers.bus == bus_named(net, "house_3")].iloc[0]
    n = Notification.model_validate(
        {
            "notification_id": "M",
            "job_type": "heat_pump",
            "metering_point_id": mp,
            "network_system": "TN_400",
            "appliances": [{"kind": "heat_pump", "rated_kw": 5, "connection": "3ph"}],
        }
    )
    d = Assessor(region, load_policy()).assess(n)
    assert d.check("THERMAL.LINE_PEAK").status.value == "not_evaluated"
    assert d.outcome.value == "escalate"


@pytest.mark.parametrize("name", sorted(PANDAPOWER_NETWORKS))
def test_every_pandapower_lv_network_loads(tmp_path, cache_dir, name):
    system = "TN_400"
    (tmp_path / "region.toml").write_text(
        f'[region]\nname = "{name}"\n[[network]]\nid = "n"\nsystem = "{system}"\nsource = "pandapower:{name}"\n'
    )
    region = GridRegion.load(tmp_path, cache_dir=cache_dir)
    a = region.arrays
    rows = region.customers.bus_row.to_numpy()
    assert len(rows) > 0
    for arr in (a.rk1_min, a.xk1_min, a.rk1_max, a.rk0_min, a.vm_peak_pu, a.vm_low_pu):
        assert np.isfinite(arr[rows]).all()
    assert (a.rk1_min[rows] >= a.rk1_max[rows]).all()
    assert (a.trafo_row[rows] >= 0).all()


def test_asymmetric_base_case_uses_runpp_3ph(demo_region):
    net = _quiet(load_source, "pandapower:ieee_european_lv_asymmetric")
    complete_network(net, load_grid_defaults())
    _quiet(pp.runpp_3ph, net)
    bus = int(demo_region.customers[demo_region.customers.network_id == "tn-ieee-eu"].bus.iloc[10])
    row = _row(demo_region, "tn-ieee-eu", bus)
    res = net.res_bus_3ph.loc[bus]
    assert demo_region.arrays.vm_peak_pu[row] == pytest.approx(min(res.vm_a_pu, res.vm_b_pu, res.vm_c_pu), abs=1e-9)
    assert demo_region.arrays.unbalance_base_percent[row] == pytest.approx(res.unbalance_percent, abs=1e-9)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda df: df.assign(metering_point_id=["707057500000000011"] + list(df.metering_point_id[1:])),
            r"row 0 metering_point_id: .*check digit",
        ),
        (lambda df: df.assign(network_id=["nowhere"] + list(df.network_id[1:])), r"row 0 network_id: 'nowhere'"),
        (lambda df: df.assign(bus=[0] + list(df.bus[1:])), r"row 0 bus: 0 is not an in-service LV bus"),
        (lambda df: df.assign(existing_peak_kw=[-1.0] + list(df.existing_peak_kw[1:])), r"row 0 existing_peak_kw"),
        (lambda df: pd.concat([df, df.iloc[[1]]], ignore_index=True), r"metering_point_id: duplicated"),
        (lambda df: df.drop(columns=["bus"]), r"column 'bus' is missing"),
    ],
)
def test_customer_index_errors_name_row_and_column(mini_region_dir, tmp_path, cache_dir, mutate, message):
    for f in ("region.toml",):
        (tmp_path / f).write_text((mini_region_dir / f).read_text())
    (tmp_path / "networks").mkdir()
    for g in (mini_region_dir / "networks").iterdir():
        (tmp_path / "networks" / g.name).write_bytes(g.read_bytes())
    df = pd.read_parquet(mini_region_dir / "customer_points.parquet")
    mutate(df).to_parquet(tmp_path / "customer_points.parquet", index=False)
    with pytest.raises(GridModelError, match=message):
        GridRegion.load(tmp_path, cache_dir=cache_dir)


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


@pytest.mark.parametrize(
    "name",
    [
        "kerber_landnetz_kabel_1",
        "kerber_landnetz_kabel_2",
        "kerber_dorfnetz",
        "kerber_vorstadtnetz_kabel_1",
        "kerber_vorstadtnetz_kabel_2",
    ],
)
def test_randomised_kerber_generators_are_reproducible(name):
    # these generators pick branch-out cable types with random.random(): a pandapower: source must
    # still give the same network every time, since its cache key is only its name and arguments
    first = _quiet(load_source, f"pandapower:{name}")
    for _ in range(3):
        again = _quiet(load_source, f"pandapower:{name}")
        assert again.line.std_type.tolist() == first.line.std_type.tolist()
