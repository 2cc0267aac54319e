"""Per-bus quantities computed once per network and cached.

For every LV bus of a network this computes, with pandapower:

* the Thevenin impedance for the maximum and the minimum short-circuit case
  (``calc_sc`` 3-phase ``rk_ohm/xk_ohm``, and for TN the zero-sequence
  ``rk0_ohm/xk0_ohm`` from a 1-phase minimum calculation);
* the base-case load flow at peak load and at low load with full generation
  (voltages, line and transformer currents; per phase and with the unbalance
  factor when the network has asymmetric loads);
* the radial path from the bus to its transformer (lines on the path in CSR
  form), the service line into the bus and the first line of the feeder
  (:func:`powercheck.grid.topology.lv_paths`).

The result is a :class:`NetworkArrays` of plain numpy arrays that the rule
kernels index directly. Nothing here is specific to a notification.

Grid-data problems
------------------
A bad element never stops a region from loading. Every LV bus gets a :class:`BusProblem` code
(:attr:`NetworkArrays.bus_problem`, 0 = none): a bus no in-service transformer feeds (the
network has none, they are all out of service, or the bus is islanded) or whose short-circuit
or load-flow result is not finite cannot be assessed; when an element makes the whole network
impossible to compute (a line of zero impedance, missing cable data, a load flow that fails)
every bus of the network carries :attr:`BusProblem.NETWORK` and the reason is in
:attr:`NetworkArrays.network_problem`. Notifications at such buses are escalated naming the
problem (``GRID.DATA``); ``powercheck region`` lists them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, fields
from enum import IntEnum
from pathlib import Path

import numpy as np

from powercheck.grid.networks import GridModelError, element_problems, prepared_copy
from powercheck.grid.topology import lv_paths
from powercheck.lazy import lazy_module
from powercheck.params import Param

pp = lazy_module("pandapower")
sc = lazy_module("pandapower.shortcircuit")
pd = lazy_module("pandas")

PRECOMPUTE_VERSION = 11
"""Bump when the meaning or layout of the arrays changes (invalidates caches)."""


class BusProblem(IntEnum):
    """Why an LV bus cannot be assessed (:attr:`NetworkArrays.bus_problem`)."""

    NONE = 0
    NO_TRANSFORMER = 1
    """The network has no transformer."""
    TRANSFORMER_OUT_OF_SERVICE = 2
    """The network's transformers are all out of service (or switched off)."""
    ISLANDED = 3
    """No in-service transformer feeds the bus (no connection to one)."""
    NO_RESULT = 4
    """The short-circuit or load-flow result at the bus is not finite."""
    NETWORK = 5
    """The network as a whole cannot be computed (:attr:`NetworkArrays.network_problem`)."""

    def describe(self, network_problem: str = "") -> str:
        """The problem in words (for the region summary and the decisions)."""
        if self is BusProblem.NETWORK:
            return f"the network cannot be computed: {network_problem}"
        return _PROBLEM_TEXT[self]


_PROBLEM_TEXT = {
    BusProblem.NONE: "",
    BusProblem.NO_TRANSFORMER: "the network has no transformer",
    BusProblem.TRANSFORMER_OUT_OF_SERVICE: "the network's transformers are out of service",
    BusProblem.ISLANDED: "islanded: not connected to an in-service transformer",
    BusProblem.NO_RESULT: "no finite short-circuit or load-flow result at the bus",
}


@dataclass
class NetworkArrays:
    """Precomputed per-bus, per-line and per-transformer arrays of one network.

    Bus arrays have one entry per in-service LV bus (row order = ``bus_ids``), line arrays
    one per row of ``net.line`` (order = ``line_ids``), transformer arrays one per row of
    ``net.trafo`` (order = ``trafo_ids``). Line and transformer references (``*_row``,
    ``path_lines``) are those row numbers; -1 = none. The field names are the cache file's
    array names (:meth:`save`): renaming one needs a new :data:`PRECOMPUTE_VERSION`.

    Attributes
    ----------
    network_id, system : str
        The network's id and system (``IT_230`` / ``TN_400``).
    applied_defaults : list of str
        Grid-default keys used to complete the network.
    meshed : bool
        Some bus is meshed (``bus_meshed.any()``).
    bus_ids : int64
        pandapower bus index.
    u_ll_v : float
        Nominal line-to-line voltage [V].
    rk1_max, xk1_max, rk1_min, xk1_min : float
        Positive-sequence Thevenin resistance and reactance [ohm], maximum and minimum
        short-circuit case (``calc_sc`` 3-phase).
    rk0_min, xk0_min : float
        Zero-sequence Thevenin resistance and reactance [ohm], minimum case (TN; NaN in IT).
    vm_peak_pu : float
        Base-case voltage at peak load [pu] (lowest phase when unbalanced).
    vm_low_pu : float
        Base-case voltage at low load with full generation [pu] (highest phase).
    unbalance_base_percent : float
        Base-case voltage unbalance at peak [%] (NaN for balanced networks).
    trafo_row : int64
        Transformer feeding the bus.
    bus_meshed : bool
        A branch of the bus's path lies on a cycle (:class:`~powercheck.grid.topology.RadialPaths`).
    bus_parent : int64
        Next bus row towards the transformer in the radial tree (-1 at the transformer busbar).
    service_line_row, feeder_line_row : int64
        Line into the bus; feeder cable at the transformer.
    path_indptr : int64, shape (n_bus + 1,)
        CSR pointers into ``path_lines``.
    path_lines : int64
        Line rows of every bus's path to its transformer, bus end first.
    path_length_km : float
        Length of the path [km].
    line_ids : int64
        pandapower line index.
    line_i_max_a : float
        Line ampacity ``max_i_ka * df * parallel`` [A].
    line_i_peak_a, line_i_low_a : float
        Base-case line current at peak / low load [A] (highest phase).
    trafo_ids : int64
        pandapower trafo index.
    trafo_i_rated_a : float
        Rated LV current ``sn_mva * parallel / (sqrt(3) vn_lv_kv)`` [A].
    trafo_i_peak_a, trafo_i_low_a : float
        Base-case LV current at peak / low load [A] (highest phase).
    extra : dict
        JSON-serialisable additions, saved with the metadata.
    """

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
    bus_parent: np.ndarray
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
    bus_problem: np.ndarray = None  # type: ignore[assignment]
    network_problem: str = ""
    extra: dict = field(default_factory=dict)

    _META = ("network_id", "system", "applied_defaults", "meshed", "network_problem", "extra")

    def __post_init__(self) -> None:
        if self.bus_problem is None:
            self.bus_problem = np.zeros(self.bus_ids.shape[0], dtype=np.int8)

    def problems(self) -> list[tuple[int, BusProblem, str]]:
        """``(pandapower bus, problem, why)`` of every bus that cannot be assessed."""
        return [
            (int(bus), BusProblem(int(code)), BusProblem(int(code)).describe(self.network_problem))
            for bus, code in zip(self.bus_ids, self.bus_problem)
            if code
        ]

    @property
    def n_bus(self) -> int:
        """Number of LV buses."""
        return int(self.bus_ids.shape[0])

    def save(self, path: Path) -> None:
        """Write the arrays to an ``.npz`` cache file (atomically: a temporary file, then rename)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._META}
        meta = {name: getattr(self, name) for name in self._META}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> NetworkArrays:
        """Read a cache file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
        return cls(**meta, **arrays)


def _run_sc(net: pp.pandapowerNet, lv_bus_ids: np.ndarray, system: str) -> dict[str, np.ndarray]:
    """Thevenin impedances [ohm] per LV bus from ``calc_sc``: 3-phase max/min; 1-phase min for TN."""
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


@dataclass(frozen=True)
class MeasuredBaseCase:
    """Metered (AMS) loads of a network's base cases: per bus, the hourly import and export [kW] of its
    metered points at the network's coincident-peak hour and at its low-load / high-export hour.

    At these buses the base-case load flows use the metered values (not scaled) instead of the grid
    model's loads and static generators; every other bus keeps the model's loads and generators with
    the scalings of the grid defaults. Reactive power at a metered bus keeps the q/p ratio of the
    model's loads there (0 where it has none).
    """

    buses: np.ndarray
    """int64: pandapower bus ids with metered points."""
    peak_import_kw: np.ndarray
    peak_export_kw: np.ndarray
    low_import_kw: np.ndarray
    low_export_kw: np.ndarray
    peak_hour: str
    """The coincident-peak hour (ISO 8601 UTC)."""
    low_hour: str
    """The low-load / high-export hour (ISO 8601 UTC)."""

    def fingerprint(self) -> str:
        """A content hash for cache keys."""
        import hashlib

        h = hashlib.sha256(f"{self.peak_hour}|{self.low_hour}".encode())
        for arr in (self.buses, self.peak_import_kw, self.peak_export_kw, self.low_import_kw, self.low_export_kw):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


def _apply_measured(case: pp.pandapowerNet, measured: MeasuredBaseCase, which: str) -> None:
    """Replace the model's loads and generators at metered buses by the metered values of one hour."""
    buses = pd.Index(measured.buses)
    imp = measured.peak_import_kw if which == "peak" else measured.low_import_kw
    exp = measured.peak_export_kw if which == "peak" else measured.low_export_kw
    q_ratio = np.zeros(len(buses))
    if "load" in case and len(case.load):
        load = case.load[case.load.in_service.astype(bool)]
        p = load.p_mw.groupby(load.bus).sum().reindex(buses).to_numpy(dtype=float)
        q = load.q_mvar.groupby(load.bus).sum().reindex(buses).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            q_ratio = np.nan_to_num(np.where(p > 0, q / p, 0.0))
    for table in ("load", "asymmetric_load", "sgen", "asymmetric_sgen"):
        if table in case and len(case[table]):
            at = case[table].bus.isin(buses)
            case[table].loc[at, "scaling"] = 0.0
    for k, bus in enumerate(measured.buses):
        if imp[k] > 0:
            pp.create_load(case, int(bus), p_mw=imp[k] / 1000.0, q_mvar=q_ratio[k] * imp[k] / 1000.0, name="AMS")
        if exp[k] > 0:
            pp.create_sgen(case, int(bus), p_mw=exp[k] / 1000.0, q_mvar=0.0, sn_mva=exp[k] / 1000.0, name="AMS")


def _run_case(
    net: pp.pandapowerNet,
    network_id: str,
    load_scaling: float,
    gen_scaling: float,
    lv_bus_ids: np.ndarray,
    worst: str,
    measured: MeasuredBaseCase | None = None,
) -> dict[str, np.ndarray]:
    """One base-case load flow. ``worst`` is 'min' (peak: lowest phase voltage) or 'max' (low load).

    With ``measured``, the metered buses take the values of the peak hour ('min') or of the low
    hour ('max') (:class:`MeasuredBaseCase`).

    Returns ``vm`` [pu] and ``unbalance`` [%] per LV bus, ``i_line`` and ``i_trafo`` (LV side) [A]
    per line and transformer row (highest phase when unbalanced, 0 where not supplied).
    """
    case = prepared_copy(net)
    for table in ("load", "asymmetric_load"):
        if table in case and len(case[table]):
            case[table]["scaling"] = case[table]["scaling"].astype(float) * load_scaling
    for table in ("sgen", "asymmetric_sgen"):
        if table in case and len(case[table]):
            case[table]["scaling"] = case[table]["scaling"].astype(float) * gen_scaling
    if measured is not None and len(measured.buses):
        _apply_measured(case, measured, "peak" if worst == "min" else "low")
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
    measured: MeasuredBaseCase | None = None,
) -> NetworkArrays:
    """Compute the per-bus arrays of one (completed) network.

    Parameters
    ----------
    network_id, system : str
        The network's id and system (``IT_230`` / ``TN_400``); the LV buses' nominal voltage
        must be within 10 % of the system's (230 / 400 V).
    net : pandapowerNet
        The completed network (:func:`powercheck.grid.networks.complete_network`).
    defaults : dict of Param
        Grid defaults (``peak_load_scaling``, ``low_load_scaling``, ``low_gen_scaling``).
    applied_defaults : list of str
        Grid-default keys used in the completion (kept in the result).
    measured : MeasuredBaseCase, optional
        Metered loads of the base cases (AMS).
    """
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

    n_bus = lv_bus_ids.shape[0]
    nan = np.full(n_bus, np.nan)
    problem = ""
    bad = element_problems(net)
    if bad:
        problem = "; ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
    else:
        try:
            sc_arrays = _run_sc(net, lv_bus_ids, system)
            peak = _run_case(
                net, network_id, float(defaults["peak_load_scaling"].value), 1.0, lv_bus_ids, "min", measured
            )
            low = _run_case(
                net,
                network_id,
                float(defaults["low_load_scaling"].value),
                float(defaults["low_gen_scaling"].value),
                lv_bus_ids,
                worst="max",
                measured=measured,
            )
        except GridModelError as exc:
            problem = str(exc).removeprefix(f"network {network_id}: ")
        except Exception as exc:  # pandapower's own errors (a singular matrix, a division by zero, ...)
            problem = f"short-circuit or load-flow calculation failed ({type(exc).__name__}: {exc})"
    line = net.line
    trafo = net.trafo
    if problem:
        # nothing of this network can be assessed; every bus says why, the rest of the region is unaffected
        sc_arrays = {k: nan for k in ("rk1_max", "xk1_max", "rk1_min", "xk1_min", "rk0_min", "xk0_min")}
        no_flow = {"vm": nan, "unbalance": nan, "i_line": np.zeros(len(line)), "i_trafo": np.zeros(len(trafo))}
        peak = low = no_flow
        unfed = np.full(n_bus, -1, dtype=np.int64)
        paths = {
            "trafo_row": unfed,
            "service_line_row": unfed,
            "feeder_line_row": unfed,
            "path_indptr": np.zeros(n_bus + 1, dtype=np.int64),
            "path_lines": np.zeros(0, dtype=np.int64),
            "path_length_km": np.zeros(n_bus),
            "bus_meshed": np.zeros(n_bus, dtype=bool),
            "bus_parent": unfed,
        }
        bus_problem = np.full(n_bus, BusProblem.NETWORK, dtype=np.int8)
    else:
        paths = lv_paths(net, lv_bus_ids).as_dict()
        finite = [sc_arrays[k] for k in ("rk1_max", "xk1_max", "rk1_min", "xk1_min")] + [peak["vm"], low["vm"]]
        if system == "TN_400":
            finite += [sc_arrays["rk0_min"], sc_arrays["xk0_min"]]
        bus_problem = bus_problems(
            paths["trafo_row"],
            np.logical_and.reduce([np.isfinite(a) for a in finite]),
            n_trafo=len(trafo),
            trafo_in_service=bool(len(trafo) and trafo.in_service.astype(bool).any()),
        )

    df = _numbers(line, "df", 1.0)
    parallel = _numbers(line, "parallel", 1.0)
    line_i_max = 1000.0 * _numbers(line, "max_i_ka", np.nan) * df * parallel
    if len(trafo):
        t_par = _numbers(trafo, "parallel", 1.0)
        trafo_i_rated = (
            _numbers(trafo, "sn_mva", np.nan) * 1e6 * t_par / (np.sqrt(3) * _numbers(trafo, "vn_lv_kv", np.nan) * 1e3)
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
        bus_problem=bus_problem,
        network_problem=problem,
        extra={"upstream_fuse_a": upstream_fuses(net, lv_bus_ids), "notes": list(net.get("powercheck_notes", []))},
        **paths,
    )


def upstream_fuses(net: pp.pandapowerNet, lv_bus_ids: np.ndarray) -> dict[str, float]:
    """Per LV bus (str of the pandapower index): the rating [A] of the nearest fuse between it and its
    transformer -- a closed bus-bus switch of ``type`` "fuse" with ``in_ka`` (a CGMES Fuse,
    :mod:`powercheck.grid.cgmes`). Buses with no fuse on the way are left out."""
    sw = net.switch
    if not len(sw) or "type" not in sw:
        return {}
    fuse = (sw.et == "b") & sw.closed.astype(bool) & (sw.type.astype(str) == "fuse")
    if not fuse.any():
        return {}
    adjacency: dict[int, list[tuple[int, float]]] = {}

    def link(a: int, b: int, rating: float) -> None:
        adjacency.setdefault(a, []).append((b, rating))
        adjacency.setdefault(b, []).append((a, rating))

    for _, ln in net.line[net.line.in_service.astype(bool)].iterrows():
        link(int(ln.from_bus), int(ln.to_bus), np.nan)
    for idx, s in sw[(sw.et == "b") & sw.closed.astype(bool)].iterrows():
        rating = 1000.0 * float(s.in_ka) if fuse[idx] and pd.notna(s.get("in_ka")) else np.nan
        link(int(s.bus), int(s.element), rating if fuse[idx] else np.nan)
    start = [int(b) for b in net.trafo[net.trafo.in_service.astype(bool)].lv_bus]
    seen: dict[int, float] = {b: np.nan for b in start}
    queue = list(start)
    while queue:
        bus = queue.pop()
        for nxt, rating in adjacency.get(bus, ()):
            if nxt in seen:
                continue
            seen[nxt] = rating if np.isfinite(rating) else seen[bus]
            queue.append(nxt)
    return {str(int(b)): float(seen[int(b)]) for b in lv_bus_ids if np.isfinite(seen.get(int(b), np.nan))}


def _numbers(df, column: str, missing: float) -> np.ndarray:
    """A table column as floats (``missing`` where the column is absent)."""
    if column not in df:
        return np.full(len(df), missing)
    return df[column].to_numpy(dtype=float)


def bus_problems(trafo_row: np.ndarray, finite: np.ndarray, *, n_trafo: int, trafo_in_service: bool) -> np.ndarray:
    """:class:`BusProblem` code of every LV bus of a network that could be computed.

    Parameters
    ----------
    trafo_row : int64[n_bus]
        Transformer feeding the bus (-1: none, :func:`~powercheck.grid.topology.lv_paths`).
    finite : bool[n_bus]
        Every short-circuit and load-flow result of the bus is finite.
    n_trafo : int
        Transformers in the network.
    trafo_in_service : bool
        Some transformer is in service.
    """
    unfed = (
        BusProblem.NO_TRANSFORMER
        if n_trafo == 0
        else (BusProblem.ISLANDED if trafo_in_service else BusProblem.TRANSFORMER_OUT_OF_SERVICE)
    )
    return np.where(trafo_row < 0, unfed, np.where(finite, BusProblem.NONE, BusProblem.NO_RESULT)).astype(np.int8)
