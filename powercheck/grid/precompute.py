"""Per-bus quantities computed once per network and cached.

For every LV bus of a network this computes, with pandapower:

* the Thevenin impedance for the maximum and the minimum short-circuit case
  (``calc_sc`` 3-phase ``rk_ohm/xk_ohm``, and for TN the zero-sequence
  ``rk0_ohm/xk0_ohm`` from a 1-phase minimum calculation);
* the base-case load flow at peak load and at low load with full generation
  (voltages, line and transformer currents; per phase and with the unbalance
  factor when the network has asymmetric loads);
* the radial path from the bus to its transformer (lines on the path in CSR
  form), the service line into the bus and the first line of the feeder.

The result is a :class:`NetworkArrays` of plain numpy arrays that the rule
kernels index directly. Nothing here is specific to a notification.
"""

from __future__ import annotations

import json
import warnings
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc

from powercheck.grid.networks import GridModelError, prepared_copy
from powercheck.params import Param

PRECOMPUTE_VERSION = 5
"""Bump when the meaning or layout of the arrays changes (invalidates caches)."""


@dataclass
class NetworkArrays:
    """Precomputed per-bus, per-line and per-transformer arrays of one network."""

    network_id: str
    system: str
    applied_defaults: list[str]
    meshed: bool
    # per LV bus (row order = bus_ids)
    bus_ids: np.ndarray
    u_ll_v: np.ndarray
    rk1_max: np.ndarray
    xk1_max: np.ndarray
    rk1_min: np.ndarray
    xk1_min: np.ndarray
    rk0_min: np.ndarray
    xk0_min: np.ndarray
    vm_peak_pu: np.ndarray
    vm_low_pu: np.ndarray
    unbalance_base_percent: np.ndarray
    trafo_row: np.ndarray
    bus_meshed: np.ndarray
    service_line_row: np.ndarray
    feeder_line_row: np.ndarray
    path_indptr: np.ndarray
    path_lines: np.ndarray
    path_length_km: np.ndarray
    # per line
    line_ids: np.ndarray
    line_i_max_a: np.ndarray
    line_i_peak_a: np.ndarray
    line_i_low_a: np.ndarray
    # per transformer
    trafo_ids: np.ndarray
    trafo_i_rated_a: np.ndarray
    trafo_i_peak_a: np.ndarray
    trafo_i_low_a: np.ndarray
    extra: dict = field(default_factory=dict)

    _META = ("network_id", "system", "applied_defaults", "meshed", "extra")

    @property
    def n_bus(self) -> int:
        return int(self.bus_ids.shape[0])

    def save(self, path: Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._META}
        meta = {name: getattr(self, name) for name in self._META}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NetworkArrays:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
        return cls(**meta, **arrays)


def _bridges(n_nodes: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Which edges are bridges (on no cycle) of an undirected multigraph; iterative Tarjan.

    Parallel edges between the same nodes are on a cycle (neither is a bridge).
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


def _radial_paths(net: pp.pandapowerNet, lv_bus_ids: np.ndarray) -> dict:
    """Paths from every LV bus to its transformer, and which buses sit behind a mesh.

    A BFS from every in-service transformer's LV bus over in-service lines and closed
    bus-bus switches gives each bus one path (the line rows in CSR form). A bus is
    *meshed* when an edge of its path lies on a cycle (loops inside the LV grid, or
    two transformers feeding one LV grid): there the added current splits and a
    path-based thermal check does not hold.
    """
    bus_in_service = set(net.bus.index[net.bus.in_service.astype(bool)])
    node_of = {int(b): i for i, b in enumerate(lv_bus_ids)}
    n = lv_bus_ids.shape[0]
    source = n  # a virtual node behind all transformers
    edges: list[tuple[int, int]] = []
    edge_line: list[int] = []
    open_line_sw: set[int] = set()
    open_trafo_sw: set[int] = set()
    if len(net.switch):
        for bus, element, et, closed in zip(net.switch.bus, net.switch.element, net.switch.et, net.switch.closed):
            if et == "b" and closed:
                a, b = int(bus), int(element)
                if a in node_of and b in node_of:
                    edges.append((node_of[a], node_of[b]))
                    edge_line.append(-1)
            elif et == "l" and not closed:
                open_line_sw.add(int(element))
            elif et == "t" and not closed:
                open_trafo_sw.add(int(element))
    line_ids = net.line.index.to_numpy()
    for row, (lid, fb, tb, ins) in enumerate(zip(line_ids, net.line.from_bus, net.line.to_bus, net.line.in_service)):
        lid, fb, tb = int(lid), int(fb), int(tb)
        if not ins or lid in open_line_sw or fb not in bus_in_service or tb not in bus_in_service:
            continue
        if fb in node_of and tb in node_of:
            edges.append((node_of[fb], node_of[tb]))
            edge_line.append(row)
    root_trafo: dict[int, int] = {}
    for t_row, (tid, lvb, ins) in enumerate(zip(net.trafo.index, net.trafo.lv_bus, net.trafo.in_service)):
        if ins and int(tid) not in open_trafo_sw and int(lvb) in node_of:
            node = node_of[int(lvb)]
            edges.append((source, node))
            edge_line.append(-2)
            root_trafo.setdefault(node, t_row)
    bridge = _bridges(n + 1, edges)

    adj: list[list[tuple[int, int]]] = [[] for _ in range(n + 1)]
    for e, (u, v) in enumerate(edges):
        adj[u].append((v, e))
        adj[v].append((u, e))
    parent_edge = np.full(n + 1, -1, dtype=np.int64)
    parent = np.full(n + 1, -1, dtype=np.int64)
    trafo_of = np.full(n + 1, -1, dtype=np.int64)
    root_of = np.full(n + 1, -1, dtype=np.int64)
    root_meshed = np.zeros(n + 1, dtype=bool)
    for e, (_, v) in enumerate(edges):
        if edge_line[e] == -2 and not bridge[e]:
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
    lengths = net.line.length_km.to_numpy(dtype=float)
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
                if edge_line[e] >= 0:
                    path.append(edge_line[e])
                cur = parent[cur]
            bus_meshed[i] = meshed
            if path:
                service[i] = path[0]
                feeder[i] = path[-1]
                path_len[i] = float(lengths[path].sum())
            lines.extend(path)
        indptr[i + 1] = len(lines)
    return {
        "trafo_row": trafo_of[:n].copy(),
        "service_line_row": service,
        "feeder_line_row": feeder,
        "path_indptr": indptr,
        "path_lines": np.asarray(lines, dtype=np.int64),
        "path_length_km": path_len,
        "bus_meshed": bus_meshed,
    }


def _run_sc(net: pp.pandapowerNet, lv_bus_ids: np.ndarray, system: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in ("max", "min"):
            sc.calc_sc(net, case=case, fault="3ph")
            res = net.res_bus_sc.reindex(lv_bus_ids)
            out[f"rk1_{case}"] = res.rk_ohm.to_numpy(dtype=float)
            out[f"xk1_{case}"] = res.xk_ohm.to_numpy(dtype=float)
        if system == "TN_400":
            sc.calc_sc(net, case="min", fault="1ph")
            res = net.res_bus_sc.reindex(lv_bus_ids)
            out["rk0_min"] = res.rk0_ohm.to_numpy(dtype=float)
            out["xk0_min"] = res.xk0_ohm.to_numpy(dtype=float)
        else:
            out["rk0_min"] = np.full(lv_bus_ids.shape[0], np.nan)
            out["xk0_min"] = np.full(lv_bus_ids.shape[0], np.nan)
    return out


def _run_case(
    net: pp.pandapowerNet, network_id: str, load_scaling: float, gen_scaling: float, lv_bus_ids: np.ndarray, worst: str
) -> dict[str, np.ndarray]:
    """One base-case load flow. ``worst`` is 'min' (peak: lowest phase voltage) or 'max' (low load)."""
    case = prepared_copy(net)
    for table in ("load", "asymmetric_load"):
        if table in case and len(case[table]):
            case[table]["scaling"] = case[table]["scaling"].astype(float) * load_scaling
    for table in ("sgen", "asymmetric_sgen"):
        if table in case and len(case[table]):
            case[table]["scaling"] = case[table]["scaling"].astype(float) * gen_scaling
    has_asym = any(
        t in case and len(case[t]) and case[t].in_service.any() for t in ("asymmetric_load", "asymmetric_sgen")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if has_asym:
            try:
                pp.runpp_3ph(case)
            except Exception as exc:
                raise GridModelError(f"network {network_id}: unbalanced base-case load flow failed ({exc})") from None
            res = case.res_bus_3ph.reindex(lv_bus_ids)
            vm = res[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy(dtype=float)
            if np.isnan(vm).all():
                raise GridModelError(f"network {network_id}: unbalanced base-case load flow returned NaN (diverged)")
            vm_worst = vm.min(axis=1) if worst == "min" else vm.max(axis=1)
            unb = res.unbalance_percent.to_numpy(dtype=float)
            rl = case.res_line_3ph
            i_line = 1000.0 * rl[["i_a_ka", "i_b_ka", "i_c_ka"]].max(axis=1).reindex(case.line.index).to_numpy(
                dtype=float
            )
            rt = case.res_trafo_3ph
            i_trafo = 1000.0 * rt[["i_a_lv_ka", "i_b_lv_ka", "i_c_lv_ka"]].max(axis=1).reindex(
                case.trafo.index
            ).to_numpy(dtype=float)
        else:
            try:
                pp.runpp(case)
            except Exception as exc:
                raise GridModelError(f"network {network_id}: base-case load flow failed ({exc})") from None
            vm_worst = case.res_bus.vm_pu.reindex(lv_bus_ids).to_numpy(dtype=float)
            unb = np.full(lv_bus_ids.shape[0], np.nan)
            i_line = 1000.0 * case.res_line.i_ka.reindex(case.line.index).to_numpy(dtype=float)
            i_trafo = 1000.0 * case.res_trafo.i_lv_ka.reindex(case.trafo.index).to_numpy(dtype=float)
    return {"vm": vm_worst, "unbalance": unb, "i_line": np.nan_to_num(i_line), "i_trafo": np.nan_to_num(i_trafo)}


def precompute_network(
    network_id: str,
    system: str,
    net: pp.pandapowerNet,
    defaults: dict[str, Param],
    applied_defaults: list[str],
) -> NetworkArrays:
    """Compute the per-bus arrays of one (completed) network."""
    lv_mask = (net.bus.vn_kv < 1.0) & net.bus.in_service.astype(bool)
    lv_bus_ids = net.bus.index[lv_mask].to_numpy(dtype=np.int64)
    if lv_bus_ids.size == 0:
        raise GridModelError(f"network {network_id}: has no in-service LV bus (vn_kv < 1)")
    u_ll_v = 1000.0 * net.bus.vn_kv.reindex(lv_bus_ids).to_numpy(dtype=float)
    expected = 230.0 if system == "IT_230" else 400.0
    nominal = np.median(u_ll_v)
    if abs(nominal - expected) / expected > 0.1:
        raise GridModelError(
            f"network {network_id}: system {system} expects about {expected:.0f} V "
            f"but the LV buses are at {nominal:.0f} V"
        )

    sc_arrays = _run_sc(net, lv_bus_ids, system)
    peak = _run_case(net, network_id, float(defaults["peak_load_scaling"].value), 1.0, lv_bus_ids, worst="min")
    low = _run_case(
        net,
        network_id,
        float(defaults["low_load_scaling"].value),
        float(defaults["low_gen_scaling"].value),
        lv_bus_ids,
        worst="max",
    )
    paths = _radial_paths(net, lv_bus_ids)

    line = net.line
    df = line["df"].to_numpy(dtype=float) if "df" in line else np.ones(len(line))
    parallel = line["parallel"].to_numpy(dtype=float) if "parallel" in line else np.ones(len(line))
    line_i_max = 1000.0 * line.max_i_ka.to_numpy(dtype=float) * df * parallel
    trafo = net.trafo
    if len(trafo):
        t_par = trafo["parallel"].to_numpy(dtype=float) if "parallel" in trafo else np.ones(len(trafo))
        trafo_i_rated = (
            trafo.sn_mva.to_numpy(dtype=float) * 1e6 * t_par / (np.sqrt(3) * trafo.vn_lv_kv.to_numpy(dtype=float) * 1e3)
        )
    else:
        trafo_i_rated = np.zeros(0)

    return NetworkArrays(
        network_id=network_id,
        system=system,
        applied_defaults=list(applied_defaults),
        meshed=bool(paths["bus_meshed"].any()),
        bus_ids=lv_bus_ids,
        u_ll_v=u_ll_v,
        rk1_max=sc_arrays["rk1_max"],
        xk1_max=sc_arrays["xk1_max"],
        rk1_min=sc_arrays["rk1_min"],
        xk1_min=sc_arrays["xk1_min"],
        rk0_min=sc_arrays["rk0_min"],
        xk0_min=sc_arrays["xk0_min"],
        vm_peak_pu=peak["vm"],
        vm_low_pu=low["vm"],
        unbalance_base_percent=peak["unbalance"],
        line_ids=line.index.to_numpy(dtype=np.int64),
        line_i_max_a=line_i_max,
        line_i_peak_a=peak["i_line"],
        line_i_low_a=low["i_line"],
        trafo_ids=trafo.index.to_numpy(dtype=np.int64),
        trafo_i_rated_a=trafo_i_rated,
        trafo_i_peak_a=peak["i_trafo"],
        trafo_i_low_a=low["i_trafo"],
        **paths,
    )
