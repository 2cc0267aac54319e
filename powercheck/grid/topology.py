"""Topology of LV networks: switch semantics, bridges and meshes, radial trees and paths.

This is the one place that decides which buses a network's branches connect. Both the
screening precomputation (:mod:`powercheck.grid.precompute`: the path from every LV bus to
its transformer) and the batched radial power flow (:mod:`powercheck.powerflow.build`: the
tree the sweep runs on) use it.

Switch semantics (pandapower's)
-------------------------------
* A closed bus-bus switch (``et == "b"``) connects its two buses. With ``z_ohm == 0`` the
  two buses are one electrical node (*fused*); with ``z_ohm > 0`` the switch is a series
  impedance between them. An open bus-bus switch connects nothing.
* An open line switch (``et == "l"``) or transformer switch (``et == "t"``) opens the end of
  that branch at the switch's bus. A branch open at one end connects nothing (the power
  flow still charges it from its closed end).
* An out-of-service bus acts like an open end at every branch connected to it; an
  out-of-service branch connects nothing.

Graph algorithms
----------------
:func:`bridges`
    Which edges of an undirected multigraph lie on no cycle (iterative Tarjan). Parallel
    edges are on a cycle.
:func:`radial_paths`
    Breadth-first paths from every LV bus to the transformer that feeds it, as CSR arrays
    of line rows (service line first, feeder line last), and which buses sit behind a mesh.
:func:`radial_tree`
    The breadth-first tree of the slack's component for the power flow; a branch that
    closes a loop is an error naming it, parallel branches between the same two nodes are
    allowed (the solver sums their two-ports).

The functions below the adaptors (:func:`network_switches`, :func:`lv_paths`) take plain
arrays and edge lists; only the adaptors read pandapower tables.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from powercheck.grid.networks import GridModelError
from powercheck.lazy import lazy_module

pd = lazy_module("pandas")

__all__ = [
    "EDGE_SWITCH",
    "MeshError",
    "RadialPaths",
    "RadialTree",
    "Switches",
    "UnionFind",
    "branch_end_closed",
    "bridges",
    "fuse",
    "lv_paths",
    "network_switches",
    "radial_paths",
    "radial_tree",
    "switch_states",
]

EDGE_SWITCH = -1
"""``edge_line`` code of a path-graph edge that is a closed bus-bus switch (no line on the path)."""


class MeshError(GridModelError):
    """A branch closes a loop in a network that must be radial; the message names the branch."""

    def __init__(self, message: str, branch: int) -> None:
        super().__init__(message)
        self.branch = branch


# --------------------------------------------------------------------------------------------
# switches
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Switches:
    """The switch table of a network by the switch semantics of the module docstring.

    Attributes
    ----------
    bus_bus : ndarray of int64
        Positions (rows of the switch table, table order) of the closed bus-bus switches.
    bus_bus_a, bus_bus_b : ndarray of int64
        Their two buses (pandapower bus indices: ``bus`` and ``element``).
    bus_bus_z_ohm : ndarray of float
        Their impedance [ohm]; 0 = ideal (the buses are fused).
    open_ends : dict
        ``(kind, element) -> frozenset of bus indices``: branch ends opened by an open switch,
        ``kind`` "line" or "trafo", ``element`` the pandapower line/trafo index.
    """

    bus_bus: np.ndarray
    bus_bus_a: np.ndarray
    bus_bus_b: np.ndarray
    bus_bus_z_ohm: np.ndarray
    open_ends: dict[tuple[str, int], frozenset[int]] = field(default_factory=dict)

    @property
    def fused(self) -> np.ndarray:
        """Mask over :attr:`bus_bus`: ideal switches, whose two buses are one node."""
        return ~(self.bus_bus_z_ohm > 0)

    def end_open(self, kind: str, element: int, bus: int) -> bool:
        """Whether an open switch opens branch ``(kind, element)`` at ``bus``."""
        return int(bus) in self.open_ends.get((kind, int(element)), ())


def switch_states(bus: Any, element: Any, et: Any, closed: Any, z_ohm: Any = None) -> Switches:
    """Read a switch table (arrays in table order) into :class:`Switches`.

    Parameters
    ----------
    bus, element : array_like of int
        The switch's bus and the element it switches (a bus, line or trafo index).
    et : array_like of str
        Element type: "b" (bus-bus), "l" (line), "t" (trafo); other types are ignored.
    closed : array_like of bool
        Switch position.
    z_ohm : array_like of float, optional
        Impedance of closed bus-bus switches [ohm]; NaN or missing = 0 (ideal).
    """
    bus = np.asarray(bus)
    element = np.asarray(element)
    n = bus.shape[0]
    z = np.zeros(n) if z_ohm is None else np.nan_to_num(np.asarray(z_ohm, dtype=float), nan=0.0)
    bb: list[int] = []
    open_ends: dict[tuple[str, int], set[int]] = {}
    for k in range(n):
        if et[k] == "b" and closed[k]:
            bb.append(k)
        elif et[k] in ("l", "t") and not closed[k]:
            key = ("line" if et[k] == "l" else "trafo", int(element[k]))
            open_ends.setdefault(key, set()).add(int(bus[k]))
    pos = np.asarray(bb, dtype=np.int64)
    return Switches(
        bus_bus=pos,
        bus_bus_a=bus[pos].astype(np.int64) if n else np.zeros(0, np.int64),
        bus_bus_b=element[pos].astype(np.int64) if n else np.zeros(0, np.int64),
        bus_bus_z_ohm=z[pos],
        open_ends={key: frozenset(buses) for key, buses in open_ends.items()},
    )


def network_switches(net: Any) -> Switches:
    """:func:`switch_states` of ``net.switch`` (missing ``closed`` = True, ``et`` = "b", ``z_ohm`` = 0)."""
    sw = net.switch if "switch" in net else None
    if sw is None or len(sw) == 0:
        return switch_states(np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])
    closed = sw["closed"].fillna(True).astype(bool).to_numpy() if "closed" in sw.columns else np.ones(len(sw), bool)
    et = sw["et"].to_numpy() if "et" in sw.columns else np.full(len(sw), "b")
    z = pd.to_numeric(sw["z_ohm"], errors="coerce").to_numpy(dtype=float) if "z_ohm" in sw.columns else None
    return switch_states(sw["bus"].to_numpy(), sw["element"].to_numpy(), et, closed, z)


def branch_end_closed(
    switches: Switches,
    kind: str | Sequence[str],
    element: Sequence[int],
    bus: Sequence[int],
    bus_in_service: Sequence[bool],
) -> np.ndarray:
    """Which branch ends connect: the bus is in service and no open switch opens the end there.

    Parameters
    ----------
    switches : Switches
    kind : str or sequence of str
        Branch kind ("line", "trafo"; "switch" for impedance bus-bus switches, which have no
        switches of their own), one for all branches or one per branch.
    element, bus : sequence of int
        Per branch: its pandapower index and the bus at this end.
    bus_in_service : sequence of bool
        Per branch: whether that bus is in service.

    Returns
    -------
    ndarray of bool, shape (len(element),)
    """
    kinds = [kind] * len(element) if isinstance(kind, str) else kind
    return np.array(
        [bool(ok) and not switches.end_open(k, e, b) for k, e, b, ok in zip(kinds, element, bus, bus_in_service)],
        dtype=bool,
    )


# --------------------------------------------------------------------------------------------
# graph algorithms
# --------------------------------------------------------------------------------------------


class UnionFind:
    """Disjoint sets over ``0 .. n-1``; every set is represented by its smallest member."""

    def __init__(self, n: int) -> None:
        self.p = np.arange(n)

    def find(self, a: int) -> int:
        p = self.p
        root = a
        while p[root] != root:
            root = p[root]
        while p[a] != root:
            p[a], a = root, p[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def fuse(n_nodes: int, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Representative (smallest member) of every node after joining the ``pairs``; int64[n_nodes]."""
    uf = UnionFind(n_nodes)
    for a, b in pairs:
        uf.union(int(a), int(b))
    return np.array([uf.find(i) for i in range(n_nodes)], dtype=np.int64)


def bridges(n_nodes: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Which edges are bridges (on no cycle) of an undirected multigraph; iterative Tarjan.

    Parallel edges between the same nodes are on a cycle (neither is a bridge).

    Returns
    -------
    ndarray of bool, shape (len(edges),)
    """
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n_nodes)]
    for e, (u, v) in enumerate(edges):
        adj[u].append((v, e))
        adj[v].append((u, e))
    disc = np.full(n_nodes, -1, dtype=np.int64)
    low = np.zeros(n_nodes, dtype=np.int64)
    is_bridge = np.zeros(len(edges), dtype=bool)
    timer = 0
    for start in range(n_nodes):
        if disc[start] >= 0:
            continue
        disc[start] = low[start] = timer
        timer += 1
        stack = [(start, -1, iter(adj[start]))]
        while stack:
            node, parent_edge, it = stack[-1]
            advanced = False
            for nb, e in it:
                if e == parent_edge:
                    continue
                if disc[nb] < 0:
                    disc[nb] = low[nb] = timer
                    timer += 1
                    stack.append((nb, e, iter(adj[nb])))
                    advanced = True
                    break
                low[node] = min(low[node], disc[nb])
            if not advanced:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > disc[parent]:
                        is_bridge[parent_edge] = True
    return is_bridge


@dataclass(frozen=True)
class RadialPaths:
    """Paths from every bus to its transformer (:func:`radial_paths`), per bus unless noted.

    Attributes
    ----------
    trafo_row : ndarray of int64
        Row of the feeding transformer; -1 = not fed.
    service_line_row : ndarray of int64
        First line of the path (the line into the bus); -1 = none (e.g. the busbar).
    feeder_line_row : ndarray of int64
        Last line of the path (the feeder cable at the transformer); -1 = none.
    path_indptr : ndarray of int64, shape (n_bus + 1,)
        CSR pointers: the path of bus ``i`` is ``path_lines[path_indptr[i]:path_indptr[i + 1]]``.
    path_lines : ndarray of int64
        Line rows of all paths, each from the bus towards the transformer.
    path_length_km : ndarray of float
        Total line length of the path [km].
    bus_meshed : ndarray of bool
        An edge of the path lies on a cycle (a loop in the grid, or several transformers
        feeding one grid): the added current splits, a path-based check does not hold.
    bus_parent : ndarray of int64
        The next bus towards the transformer in the breadth-first tree (-1 at a transformer's
        bus and where not fed). The lowest common ancestor of two buses ends the impedance their
        paths share.
    """

    trafo_row: np.ndarray
    service_line_row: np.ndarray
    feeder_line_row: np.ndarray
    path_indptr: np.ndarray
    path_lines: np.ndarray
    path_length_km: np.ndarray
    bus_meshed: np.ndarray
    bus_parent: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """The arrays by field name (the :class:`~powercheck.grid.precompute.NetworkArrays` fields)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def radial_paths(
    n_nodes: int,
    edges: Sequence[tuple[int, int]],
    edge_line: Sequence[int],
    feeds: Sequence[tuple[int, int]],
    line_length_km: np.ndarray,
) -> RadialPaths:
    """Breadth-first paths from every node to the transformer that feeds it.

    The transformers are joined in a virtual source node behind them; a breadth-first
    search from the transformers' nodes (in ``feeds`` order) over ``edges`` (in order)
    gives every reachable node one path. A node is meshed when an edge of its path, or its
    transformer's feed edge, lies on a cycle (:func:`bridges`).

    Parameters
    ----------
    n_nodes : int
        Number of nodes (the LV buses), ``0 .. n_nodes-1``.
    edges : sequence of (int, int)
        Connections between nodes (lines and closed bus-bus switches).
    edge_line : sequence of int
        Per edge: the line row, or :data:`EDGE_SWITCH` for a switch (not a line of the path).
    feeds : sequence of (int, int)
        ``(node, trafo_row)`` per in-service transformer feeding a node, in transformer order.
        A node fed by several transformers takes the first as its transformer.
    line_length_km : ndarray of float
        Length of every line row [km].

    Returns
    -------
    RadialPaths
    """
    n = n_nodes
    source = n  # a virtual node behind all transformers
    all_edges = list(edges) + [(source, node) for node, _ in feeds]
    is_feed = np.r_[np.zeros(len(edges), dtype=bool), np.ones(len(feeds), dtype=bool)]
    line_of = list(edge_line) + [EDGE_SWITCH] * len(feeds)
    root_trafo: dict[int, int] = {}
    for node, t_row in feeds:
        root_trafo.setdefault(node, t_row)
    bridge = bridges(n + 1, all_edges)

    adj: list[list[tuple[int, int]]] = [[] for _ in range(n + 1)]
    for e, (u, v) in enumerate(all_edges):
        adj[u].append((v, e))
        adj[v].append((u, e))
    parent_edge = np.full(n + 1, -1, dtype=np.int64)
    parent = np.full(n + 1, -1, dtype=np.int64)
    trafo_of = np.full(n + 1, -1, dtype=np.int64)
    root_of = np.full(n + 1, -1, dtype=np.int64)
    root_meshed = np.zeros(n + 1, dtype=bool)
    for e, (_, v) in enumerate(all_edges):
        if is_feed[e] and not bridge[e]:
            root_meshed[v] = True
    seen = np.zeros(n + 1, dtype=bool)
    seen[source] = True
    queue: deque[int] = deque()
    for node, t_row in root_trafo.items():
        seen[node] = True
        trafo_of[node] = t_row
        root_of[node] = node
        queue.append(node)
    while queue:
        node = queue.popleft()
        for nb, e in adj[node]:
            if seen[nb]:
                continue
            seen[nb] = True
            parent[nb] = node
            parent_edge[nb] = e
            trafo_of[nb] = trafo_of[node]
            root_of[nb] = root_of[node]
            queue.append(nb)

    service = np.full(n, -1, dtype=np.int64)
    feeder = np.full(n, -1, dtype=np.int64)
    bus_meshed = np.zeros(n, dtype=bool)
    indptr = np.zeros(n + 1, dtype=np.int64)
    lines: list[int] = []
    path_len = np.zeros(n)
    for i in range(n):
        if trafo_of[i] >= 0:
            path: list[int] = []
            cur = i
            # the transformer edge itself is on a cycle when several transformers feed one grid
            meshed = bool(root_meshed[root_of[i]])
            while parent[cur] >= 0:
                e = parent_edge[cur]
                if not bridge[e]:
                    meshed = True
                if line_of[e] >= 0:
                    path.append(line_of[e])
                cur = parent[cur]
            bus_meshed[i] = meshed
            if path:
                service[i] = path[0]
                feeder[i] = path[-1]
                path_len[i] = float(line_length_km[path].sum())
            lines.extend(path)
        indptr[i + 1] = len(lines)
    return RadialPaths(
        trafo_row=trafo_of[:n].copy(),
        service_line_row=service,
        feeder_line_row=feeder,
        path_indptr=indptr,
        path_lines=np.asarray(lines, dtype=np.int64),
        path_length_km=path_len,
        bus_meshed=bus_meshed,
        bus_parent=np.where(parent[:n] < n, parent[:n], -1).astype(np.int64),
    )


@dataclass(frozen=True)
class RadialTree:
    """Breadth-first tree of the slack's component (:func:`radial_tree`).

    Attributes
    ----------
    parent : ndarray of int64, shape (n,)
        Parent position of every tree position; -1 for the root (position 0).
    node : ndarray of int64, shape (n,)
        Graph node at every position (topological order: ``parent[p] < p``).
    pos : ndarray of int64, shape (n_nodes,)
        Position of every graph node; -1 = not in the tree (not supplied).
    edge_branches : list of list of int
        Per position: the branches between the node and its parent (several when parallel).
    """

    parent: np.ndarray
    node: np.ndarray
    pos: np.ndarray
    edge_branches: list[list[int]]


def radial_tree(
    n_nodes: int,
    f: np.ndarray,
    t: np.ndarray,
    active: np.ndarray,
    root: int,
    branch_names: Sequence[str] | None = None,
    node_names: Sequence[Any] | None = None,
) -> RadialTree:
    """Breadth-first tree of ``root``'s component; raises naming the branch that closes a loop.

    Branches are taken in order; the first one whose two nodes are already connected
    through earlier branches (other than parallel ones between the same two nodes) closes
    a loop. Branches with both ends on one node, and branches outside the root's
    component, are not part of the tree.

    Parameters
    ----------
    n_nodes : int
        Number of graph nodes.
    f, t : ndarray of int
        The two nodes of every branch.
    active : ndarray of bool
        Branches that connect (both ends closed, :func:`branch_end_closed`).
    root : int
        The slack's node.
    branch_names, node_names : sequence, optional
        Labels for the error message (default: the branch number, the node number).

    Raises
    ------
    MeshError
        A branch closes a loop.
    """
    comp = UnionFind(n_nodes)
    for i in np.flatnonzero(active):
        comp.union(int(f[i]), int(t[i]))
    root_c = comp.find(root)
    loops = UnionFind(n_nodes)
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(active):
        a, b = int(f[i]), int(t[i])
        if a == b or comp.find(a) != root_c:
            continue  # fused onto one node (a shunt) or not supplied
        key = (min(a, b), max(a, b))
        if key in pairs:  # parallel branch: summed into the same two-port
            pairs[key].append(int(i))
            continue
        if loops.find(a) == loops.find(b):
            name = branch_names[i] if branch_names is not None else f"branch {i}"
            na, nb = (node_names[a], node_names[b]) if node_names is not None else (a, b)
            raise MeshError(
                f"{name} closes a loop: buses {na} and {nb} are already connected through other branches; "
                "only radial networks are supported (open a switch)",
                int(i),
            )
        loops.union(a, b)
        pairs[key] = [int(i)]
    adj: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for a, b in pairs:
        adj.setdefault(a, []).append((b, (a, b)))
        adj.setdefault(b, []).append((a, (a, b)))
    order, parent, edges = [root], [-1], [[]]
    pos = {root: 0}
    head = 0
    while head < len(order):
        for v, key in sorted(adj.get(order[head], ())):
            if v not in pos:
                pos[v] = len(order)
                order.append(v)
                parent.append(head)
                edges.append(pairs[key])
        head += 1
    pos_arr = np.full(n_nodes, -1, dtype=np.int64)
    for v, p in pos.items():
        pos_arr[v] = p
    return RadialTree(np.array(parent, dtype=np.int64), np.array(order, dtype=np.int64), pos_arr, edges)


# --------------------------------------------------------------------------------------------
# pandapower adaptor of the screening paths
# --------------------------------------------------------------------------------------------


def lv_paths(net: Any, lv_bus_ids: np.ndarray) -> RadialPaths:
    """:func:`radial_paths` of the LV part of a pandapower network.

    Nodes are the buses ``lv_bus_ids`` (in-service LV buses, in that order). Edges are the
    closed bus-bus switches between two of them (ideal or not: an edge without a line) and
    the lines between two of them that connect at both ends; every transformer whose both
    ends connect feeds the node of its LV bus. Line and transformer rows are positions in
    ``net.line`` / ``net.trafo``.
    """
    bus_in_service = set(int(b) for b in net.bus.index[net.bus.in_service.astype(bool)])
    node_of = {int(b): i for i, b in enumerate(lv_bus_ids)}
    sw = network_switches(net)
    edges: list[tuple[int, int]] = []
    edge_line: list[int] = []
    for a, b in zip(sw.bus_bus_a, sw.bus_bus_b):
        if int(a) in node_of and int(b) in node_of:
            edges.append((node_of[int(a)], node_of[int(b)]))
            edge_line.append(EDGE_SWITCH)
    line = net.line
    ids = line.index.to_numpy()
    fb = line.from_bus.to_numpy()
    tb = line.to_bus.to_numpy()
    f_ok = branch_end_closed(sw, "line", ids, fb, [int(b) in bus_in_service for b in fb])
    t_ok = branch_end_closed(sw, "line", ids, tb, [int(b) in bus_in_service for b in tb])
    for row, ins in enumerate(line.in_service.to_numpy()):
        if ins and f_ok[row] and t_ok[row] and int(fb[row]) in node_of and int(tb[row]) in node_of:
            edges.append((node_of[int(fb[row])], node_of[int(tb[row])]))
            edge_line.append(row)
    trafo = net.trafo
    tids = trafo.index.to_numpy()
    hv = trafo.hv_bus.to_numpy()
    lv = trafo.lv_bus.to_numpy()
    hv_ok = branch_end_closed(sw, "trafo", tids, hv, [int(b) in bus_in_service for b in hv])
    lv_ok = branch_end_closed(sw, "trafo", tids, lv, [int(b) in bus_in_service for b in lv])
    feeds = [
        (node_of[int(lv[row])], row)
        for row, ins in enumerate(trafo.in_service.to_numpy())
        if ins and hv_ok[row] and lv_ok[row] and int(lv[row]) in node_of
    ]
    return radial_paths(len(lv_bus_ids), edges, edge_line, feeds, line.length_km.to_numpy(dtype=float))
