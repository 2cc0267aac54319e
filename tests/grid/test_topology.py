"""Topology on small hand-made graphs (expected bridges, paths and trees written out) and on pandapower feeders."""

import numpy as np
import pandapower as pp
import pytest

from powercheck.grid.topology import (
    EDGE_SWITCH,
    MeshError,
    branch_end_closed,
    bridges,
    fuse,
    lv_paths,
    network_switches,
    radial_paths,
    radial_tree,
    switch_states,
)
from powercheck.powerflow import build_radial_model
from tests.helpers.grids import bus_named, feeder

# --------------------------------------------------------------------------------------------
# bridges
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_nodes", "edges", "expected"),
    [
        # triangle 0-1-2 with a pendant 2-3: only the pendant edge is a bridge
        (4, [(0, 1), (1, 2), (2, 0), (2, 3)], [False, False, False, True]),
        # two parallel edges 0-1 are a cycle; 1-2 is a bridge
        (3, [(0, 1), (0, 1), (1, 2)], [False, False, True]),
        # a path: every edge is a bridge
        (4, [(0, 1), (1, 2), (2, 3)], [True, True, True]),
        # two components: a bridge 0-1 and a triangle 2-3-4
        (5, [(0, 1), (2, 3), (3, 4), (4, 2)], [True, False, False, False]),
        (3, [], []),
    ],
)
def test_bridges(n_nodes, edges, expected):
    assert bridges(n_nodes, edges).tolist() == expected


# --------------------------------------------------------------------------------------------
# radial paths
# --------------------------------------------------------------------------------------------

LENGTH_KM = np.array([0.1, 0.2, 0.3, 0.4])


def test_radial_paths_of_a_tree_with_a_switch():
    # transformer row 5 feeds node 0; 0 -line 0- 1 -line 1- 2; 1 -switch- 3 -line 2- 4
    edges = [(0, 1), (1, 2), (1, 3), (3, 4)]
    p = radial_paths(5, edges, [0, 1, EDGE_SWITCH, 2], [(0, 5)], LENGTH_KM)
    assert p.trafo_row.tolist() == [5, 5, 5, 5, 5]
    # paths bus end first: 0: -, 1: [0], 2: [1, 0], 3: [0] (the switch is no line), 4: [2, 0]
    assert p.path_indptr.tolist() == [0, 0, 1, 3, 4, 6]
    assert p.path_lines.tolist() == [0, 1, 0, 0, 2, 0]
    assert p.service_line_row.tolist() == [-1, 0, 1, 0, 2]
    assert p.feeder_line_row.tolist() == [-1, 0, 0, 0, 0]
    np.testing.assert_allclose(p.path_length_km, [0.0, 0.1, 0.3, 0.1, 0.4])
    assert p.bus_meshed.tolist() == [False] * 5
    assert p.bus_parent.tolist() == [-1, 0, 1, 1, 3]  # the switch joins 3 to 1
    for name, arr in p.as_dict().items():
        assert arr.dtype == (bool if name == "bus_meshed" else float if name == "path_length_km" else np.int64)


def test_radial_paths_flag_the_buses_behind_a_loop():
    # as above plus line 3 from 2 to 4: the loop 1-2-4-3-1; 0-1 stays a bridge
    edges = [(0, 1), (1, 2), (1, 3), (3, 4), (2, 4)]
    p = radial_paths(5, edges, [0, 1, EDGE_SWITCH, 2, 3], [(0, 5)], LENGTH_KM)
    # breadth first in edge order: 4 is reached from 2 over line 3 (before 3's line 2)
    assert p.path_indptr.tolist() == [0, 0, 1, 3, 4, 7]
    assert p.path_lines.tolist() == [0, 1, 0, 0, 3, 1, 0]
    assert p.bus_meshed.tolist() == [False, False, True, True, True]
    assert p.path_length_km[4] == pytest.approx(0.7)
    assert p.bus_parent.tolist() == [-1, 0, 1, 1, 2]


def test_radial_paths_two_transformers_and_an_unfed_bus():
    # transformers 0 and 1 feed both ends of 0 -line 0- 1 -line 1- 2: every bus is meshed
    p = radial_paths(3, [(0, 1), (1, 2)], [0, 1], [(0, 0), (2, 1)], LENGTH_KM)
    assert p.trafo_row.tolist() == [0, 0, 1]  # 1 is reached first from transformer 0
    assert p.path_lines.tolist() == [0]
    assert p.bus_meshed.tolist() == [True, True, True]
    # node 2 connects to nothing: no transformer, no path
    p = radial_paths(3, [(0, 1)], [0], [(0, 0)], LENGTH_KM)
    assert p.trafo_row.tolist() == [0, 0, -1]
    assert p.path_indptr.tolist() == [0, 0, 1, 1]
    assert p.service_line_row.tolist() == [-1, 0, -1]
    assert p.bus_meshed.tolist() == [False, False, False]


# --------------------------------------------------------------------------------------------
# radial tree (power flow)
# --------------------------------------------------------------------------------------------


def test_radial_tree_sums_parallel_branches_and_skips_fused_ones():
    # branches: 0: 0-1, 1: 1-2, 2: 2-1 (parallel to 1), 3: 1-3, 4: 3-3 (both ends fused onto one node)
    f = np.array([0, 1, 2, 1, 3])
    t = np.array([1, 2, 1, 3, 3])
    tree = radial_tree(5, f, t, np.ones(5, bool), 0)
    assert tree.parent.tolist() == [-1, 0, 1, 1]
    assert tree.node.tolist() == [0, 1, 2, 3]
    assert tree.pos.tolist() == [0, 1, 2, 3, -1]  # node 4 is not supplied
    assert tree.edge_branches == [[], [0], [1, 2], [3]]


def test_radial_tree_names_the_branch_that_closes_a_loop():
    f = np.array([0, 1, 1, 2])
    t = np.array([1, 2, 3, 3])
    names = ["line 7", "line 8", "trafo 2", "line 9"]
    with pytest.raises(MeshError, match=r"^line 9 closes a loop: buses 12 and 13 are already connected") as err:
        radial_tree(4, f, t, np.ones(4, bool), 0, names, [10, 11, 12, 13])
    assert err.value.branch == 3
    # the same branch inactive (an open end): radial again
    assert radial_tree(4, f, t, np.array([True, True, True, False]), 0).parent.tolist() == [-1, 0, 1, 1]
    # a loop outside the slack's component is not supplied and not an error
    f2 = np.array([0, 2, 3, 4])
    t2 = np.array([1, 3, 4, 2])
    tree = radial_tree(5, f2, t2, np.ones(4, bool), 0)
    assert tree.pos.tolist() == [0, 1, -1, -1, -1]


# --------------------------------------------------------------------------------------------
# switch semantics
# --------------------------------------------------------------------------------------------


def test_switch_states_and_branch_ends():
    sw = switch_states(
        bus=[1, 2, 3, 4, 5],
        element=[2, 7, 8, 6, 9],
        et=["b", "l", "t", "b", "l"],
        closed=[True, False, False, True, True],
        z_ohm=[0.0, np.nan, np.nan, 0.05, np.nan],
    )
    assert sw.bus_bus.tolist() == [0, 3]
    assert sw.bus_bus_a.tolist() == [1, 4] and sw.bus_bus_b.tolist() == [2, 6]
    assert sw.fused.tolist() == [True, False]  # 0.05 ohm: an impedance, not fused
    assert sw.open_ends == {("line", 7): frozenset({2}), ("trafo", 8): frozenset({3})}
    # an open switch opens its end only; an out-of-service bus opens every end at it
    ok = branch_end_closed(
        sw, ["line", "line", "trafo", "switch"], [7, 7, 8, 3], [2, 5, 3, 4], [True, True, True, False]
    )
    assert ok.tolist() == [False, True, False, False]
    assert branch_end_closed(sw, "line", [7, 9], [5, 5], [True, True]).tolist() == [True, True]
    assert fuse(5, [(1, 2), (4, 3), (2, 4)]).tolist() == [0, 1, 1, 1, 1]
    assert network_switches(pp.create_empty_network()).bus_bus.size == 0


def _switched_feeder(open_trafo: bool = False):
    """The test feeder with house_2 switched off at its end and house_3b hanging on house_3 by a switch."""
    net = feeder(0.4, load_kw=5.0)
    branch_2 = int(net.line.index[net.line.name == "branch_2"][0])
    pp.create_switch(net, bus_named(net, "house_2"), branch_2, et="l", closed=False)
    extra = pp.create_bus(net, 0.4, name="house_3b")
    pp.create_switch(net, bus_named(net, "house_3"), extra, et="b", closed=True)
    pp.create_load(net, extra, p_mw=0.002)
    pp.create_bus(net, 0.4, name="oos", in_service=False)
    if open_trafo:
        pp.create_switch(net, bus_named(net, "busbar"), net.trafo.index[0], et="t", closed=False)
    return net


def _lv_buses(net):
    return net.bus.index[(net.bus.vn_kv < 1.0) & net.bus.in_service.astype(bool)].to_numpy(dtype=np.int64)


def test_lv_paths_on_a_switched_feeder():
    net = _switched_feeder()
    lv = _lv_buses(net)
    p = lv_paths(net, lv)
    names = dict(zip(net.line.index, net.line.name))
    row = {str(net.bus.name[b]): i for i, b in enumerate(lv)}
    assert "oos" not in row

    def path(bus):
        i = row[bus]
        return [names[int(net.line.index[r])] for r in p.path_lines[p.path_indptr[i] : p.path_indptr[i + 1]]]

    assert path("house_3b") == path("house_3") == ["branch_3", "main_3", "main_2", "main_1"]
    assert p.path_length_km[row["house_3b"]] == pytest.approx(0.33)
    assert p.trafo_row[row["house_2"]] == -1 and path("house_2") == []  # its line is open at its end
    assert p.trafo_row[row["cabinet_2"]] == 0 and not p.bus_meshed.any()


@pytest.mark.parametrize("open_trafo", [False, True])
def test_screening_paths_and_power_flow_tree_agree_on_supplied_buses(open_trafo):
    net = _switched_feeder(open_trafo)
    lv = _lv_buses(net)
    fed = lv_paths(net, lv).trafo_row >= 0
    model = build_radial_model(net, three_phase=False)
    supplied = model.bus_pos[net.bus.index.get_indexer(lv)] >= 0
    np.testing.assert_array_equal(fed, supplied)
    assert fed.sum() == (0 if open_trafo else len(lv) - 1)
