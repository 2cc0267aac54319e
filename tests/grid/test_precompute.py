"""Per-bus precomputation (Thevenin impedances, base-case load flows, radial paths) against pandapower."""

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pytest

from powercheck.grid.networks import PANDAPOWER_NETWORKS, complete_network, load_grid_defaults, load_source
from powercheck.grid.precompute import NetworkArrays
from powercheck.grid.region import GridRegion
from tests.helpers.grids import bus_named, feeder, quiet, region_row, to_json


@pytest.mark.parametrize(("nid", "vn"), [("tn", 0.4), ("it", 0.23)])
def test_thevenin_and_base_case_match_pandapower(mini_region, nid, vn):
    net = feeder(vn, s_sc_mva=1e6, load_kw=5.0)
    bus = bus_named(net, "house_3")
    row = region_row(mini_region, nid, bus)
    a = mini_region.arrays
    for case in ("max", "min"):
        quiet(sc.calc_sc, net, case=case, fault="3ph")
        assert a.__dict__[f"rk1_{case}"][row] == pytest.approx(net.res_bus_sc.rk_ohm[bus], rel=1e-9)
        assert a.__dict__[f"xk1_{case}"][row] == pytest.approx(net.res_bus_sc.xk_ohm[bus], rel=1e-9)
    # the min case has warmer conductors: higher resistance
    assert a.rk1_min[row] > a.rk1_max[row]
    if nid == "tn":
        quiet(sc.calc_sc, net, case="min", fault="1ph")
        assert a.rk0_min[row] == pytest.approx(net.res_bus_sc.rk0_ohm[bus], rel=1e-9)
    else:
        assert np.isnan(a.rk0_min[row])
    quiet(pp.runpp, net)
    assert a.vm_peak_pu[row] == pytest.approx(net.res_bus.vm_pu[bus], abs=1e-9)
    line = int(net.line.index[net.line.name == "main_1"][0])
    net_no = mini_region.network_order.index(nid)
    line_row = int(np.flatnonzero((a.line_ids == line) & (a.line_network == net_no))[0])
    assert a.line_i_peak_a[line_row] == pytest.approx(1000 * net.res_line.i_ka[line], rel=1e-9)
    net.load["scaling"] = 0.1  # grid default low_load_scaling
    quiet(pp.runpp, net)
    assert a.vm_low_pu[row] == pytest.approx(net.res_bus.vm_pu[bus], abs=1e-9)
    assert a.u_ll_v[row] == pytest.approx(vn * 1000)


def test_radial_path_service_and_feeder_lines(mini_region):
    net = feeder(0.4, load_kw=5.0)
    bus = bus_named(net, "house_3")
    row = region_row(mini_region, "tn", bus)
    a = mini_region.arrays
    path = a.path_lines[a.path_indptr[row] : a.path_indptr[row + 1]]
    names = dict(zip(net.line.index, net.line.name))
    assert [names[int(a.line_ids[r])] for r in path] == ["branch_3", "main_3", "main_2", "main_1"]
    assert names[int(a.line_ids[a.service_line_row[row]])] == "branch_3"
    assert names[int(a.line_ids[a.feeder_line_row[row]])] == "main_1"
    assert a.path_length_km[row] == pytest.approx(0.33)
    busbar = region_row(mini_region, "tn", bus_named(net, "busbar"))
    assert a.path_indptr[busbar] == a.path_indptr[busbar + 1]
    assert a.service_line_row[busbar] == -1
    assert a.trafo_i_rated_a[a.trafo_row[row]] == pytest.approx(315e3 / (np.sqrt(3) * 400))


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
            "appliances": [
                {
                    "kind": "heat_pump",
                    "rated_kw": 5,
                    "connection": "3ph",
                    "start_current_ratio": 3,
                    "starts_per_hour": 3,
                }
            ],
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


def test_asymmetric_base_case_uses_runpp_3ph(tmp_path, cache_dir):
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "ieee"\n[[network]]\nid = "tn-ieee-eu"\nsystem = "TN_400"\n'
        'source = "pandapower:ieee_european_lv_asymmetric"\n'
    )
    region = GridRegion.load(tmp_path, cache_dir=cache_dir)
    net = quiet(load_source, "pandapower:ieee_european_lv_asymmetric")
    complete_network(net, load_grid_defaults())
    quiet(pp.runpp_3ph, net)
    bus = int(region.customers.bus.iloc[10])
    row = region_row(region, "tn-ieee-eu", bus)
    res = net.res_bus_3ph.loc[bus]
    assert region.arrays.vm_peak_pu[row] == pytest.approx(min(res.vm_a_pu, res.vm_b_pu, res.vm_c_pu), abs=1e-9)
    assert region.arrays.unbalance_base_percent[row] == pytest.approx(res.unbalance_percent, abs=1e-9)


def test_metered_base_case_of_an_unbalanced_network_matches_runpp_3ph(demo_region):
    """The demo's tn-ieee-eu has AMS data: at metered buses the coincident-peak hour's import, balanced,
    replaces the asymmetric loads; the others keep theirs (pandapower runpp_3ph on the same network)."""
    m = demo_region.measured["tn-ieee-eu"]
    net = quiet(load_source, "pandapower:ieee_european_lv_asymmetric")
    complete_network(net, load_grid_defaults())
    net.asymmetric_load.loc[net.asymmetric_load.bus.isin(m.buses), "scaling"] = 0.0
    for bus, kw in zip(m.buses, m.peak_import_kw):
        pp.create_load(net, int(bus), p_mw=kw / 1000.0, q_mvar=0.0)  # the model has no balanced loads: q/p = 0
    quiet(pp.runpp_3ph, net)
    customers = demo_region.customers[demo_region.customers.network_id == "tn-ieee-eu"]
    for bus in customers.bus.iloc[::7]:
        row = region_row(demo_region, "tn-ieee-eu", int(bus))
        res = net.res_bus_3ph.loc[int(bus)]
        assert demo_region.arrays.vm_peak_pu[row] == pytest.approx(min(res.vm_a_pu, res.vm_b_pu, res.vm_c_pu), abs=1e-9)
        assert demo_region.arrays.unbalance_base_percent[row] == pytest.approx(res.unbalance_percent, abs=1e-9)


def test_network_arrays_round_trip_through_the_cache_file(mini_region, tmp_path):
    arrays = mini_region.networks["tn"]
    arrays.save(tmp_path / "tn.npz")
    again = NetworkArrays.load(tmp_path / "tn.npz")
    for name in arrays.__dataclass_fields__:
        a, b = getattr(arrays, name), getattr(again, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name
    assert not list(tmp_path.glob("*.tmp.npz"))  # written through a temporary file
