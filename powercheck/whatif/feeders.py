"""Feeders for what-if studies: SimBench LV grids (offline) and networks of a powercheck region.

Feeder names on the command line:

==============================  =============================================================
``1-LV-rural1--0-sw``           a SimBench code (400 V TN), with its year-long 15-min profiles
``1-LV-rural1--0-sw@IT``        the same grid moved to 230 V IT (LV buses at 0.23 kV, loads
                                scaled down until the base case is healthy, see below)
``simbench:lv``                 the six SimBench LV grids (rural1-3, semiurb4-5, urban6),
                                scenario 0, with switches
``demo`` / ``demo:<network>``   the networks of the embedded demo region
``region:<dir>[#<network>]``    the networks of another region directory
==============================  =============================================================

Region networks have no profiles: their loads follow SimBench's standard household profile
(H0-A, normalised to its maximum, times the load's own ``p_mw``), PV follows SimBench's PV
profile. SimBench grids are read once and cached (pandapower JSON + Parquet profiles) in
the powercheck cache directory, since reading the SimBench CSVs takes 10-20 s per grid.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd

from powercheck.grid.networks import (
    GridModelError,
    build_network,
    complete_network,
    element_problems,
    healthy_load_factor,
    load_grid_defaults,
    rescale_lv_voltage,
)
from powercheck.grid.region import default_cache_dir, parse_manifest
from powercheck.powerflow import RadialModel, build_radial_model

SIMBENCH_LV = [
    "1-LV-rural1--0-sw",
    "1-LV-rural2--0-sw",
    "1-LV-rural3--0-sw",
    "1-LV-semiurb4--0-sw",
    "1-LV-semiurb5--0-sw",
    "1-LV-urban6--0-sw",
]
STANDARD_PROFILE_GRID = "1-LV-rural1--0-sw"
CACHE_VERSION = 1


@dataclass(frozen=True)
class FeederSpec:
    """Where a feeder comes from."""

    name: str
    kind: str  # "simbench" or "region"
    ref: str  # SimBench code or region directory
    network_id: str | None = None
    system: str = "TN_400"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ref": self.ref,
            "network_id": self.network_id,
            "system": self.system,
        }


def parse_feeders(items: list[str]) -> list[FeederSpec]:
    """Feeder specs from command-line names (see the module docstring)."""
    from powercheck.demo import demo_region_dir

    specs: list[FeederSpec] = []
    for item in items:
        if item == "simbench:lv":
            specs.extend(FeederSpec(code, "simbench", code) for code in SIMBENCH_LV)
        elif item == "demo" or item.startswith("demo:") or item.startswith("region:"):
            if item.startswith("region:"):
                ref, _, nid = item[len("region:") :].partition("#")
                directory = Path(ref)
                prefix = f"region:{ref}#"
            else:
                directory = demo_region_dir()
                nid = item.partition(":")[2]
                prefix = "demo:"
            networks = parse_manifest(directory).networks
            chosen = [n for n in networks if not nid or n.id == nid]
            if not chosen:
                raise ValueError(f"feeders: {item!r}: no network {nid!r} in {directory}")
            specs.extend(FeederSpec(f"{prefix}{n.id}", "region", str(directory), n.id, n.system) for n in chosen)
        else:
            code, _, suffix = item.partition("@")
            if suffix not in ("", "IT", "TN"):
                raise ValueError(f"feeders: {item!r}: suffix must be @IT or @TN")
            if "-LV-" not in code:
                raise ValueError(f"feeders: {item!r} is not a SimBench LV code, demo[:network] or region:<dir>")
            specs.append(FeederSpec(item, "simbench", code, None, "IT_230" if suffix == "IT" else "TN_400"))
    if not specs:
        raise ValueError("feeders: at least one feeder is required")
    return specs


@dataclass
class Feeder:
    """A feeder ready for batch power flows.

    Customer points are the rows of every load table of the network (``load`` and
    ``asymmetric_load``), in that order; existing generation the rows of ``sgen`` and
    ``asymmetric_sgen``. Both are applied per bus and phase (``bus_p_mw`` arrays of the
    per-phase solver); the model itself is built with their static powers set to zero.
    """

    spec: FeederSpec
    net: Any
    model: RadialModel
    cust_ids: list[str]
    """``"<table>:<index>"`` of every customer point"""
    cust_bus: np.ndarray
    """pandapower bus of every customer point"""
    load_bus_pos: np.ndarray
    """model bus position of every customer point"""
    cust_phase: np.ndarray
    """-1: three-phase customer; 0/1/2: connected to one phase (TN) or phase pair (IT) only"""
    lv_bus_mask: np.ndarray
    base_p_mw: np.ndarray
    """(n_steps_year, n_customers) total active power of each customer point [MW]"""
    base_q_mvar: np.ndarray
    base_split: np.ndarray
    """(n_customers, 3) share of each customer's base load per phase (TN) or phase pair (IT)"""
    gen_bus_pos: np.ndarray
    gen_p_mw: np.ndarray
    """(n_steps_year, n_gen) existing generation [MW], positive"""
    gen_split: np.ndarray
    pv_norm: np.ndarray
    u_ll_v: float
    base_load_factor: float = 1.0
    assumptions: list[str] = field(default_factory=list)
    load_shape: np.ndarray | None = None
    """(n_steps_year,) base-load shape, peak 1 (region feeders: SimBench H0-A; SimBench: the feeder's total)"""

    @property
    def n_customers(self) -> int:
        return int(self.load_bus_pos.shape[0])


def _simbench_cache(code: str, cache_dir: Path) -> tuple[Any, dict[str, pd.DataFrame]]:
    """A SimBench grid and its absolute profiles, read from SimBench once and cached."""
    folder = cache_dir / "simbench"
    net_file = folder / f"{code}.v{CACHE_VERSION}.json"
    prof_file = folder / f"{code}.v{CACHE_VERSION}.profiles.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if net_file.is_file() and prof_file.is_file():
            net = pp.from_json(str(net_file))
            table = pd.read_parquet(prof_file)
        else:
            try:
                import simbench as sb
            except ImportError as exc:  # pragma: no cover - simbench is in the whatif extra
                raise GridModelError(
                    "SimBench feeders need the 'simbench' package (pip install powercheck[whatif])"
                ) from exc
            try:
                net = sb.get_simbench_net(code)
            except Exception as exc:
                raise GridModelError(f"feeder {code}: not a SimBench grid ({exc})") from None
            absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
            renew = net.profiles.get("renewables")
            pv_cols = [c for c in (renew.columns if renew is not None else []) if str(c).startswith("PV")]
            pv = (
                renew[pv_cols].to_numpy(dtype=float).mean(axis=1)
                if pv_cols
                else np.zeros(len(absolute[("load", "p_mw")]))
            )
            household = net.profiles["load"]
            h0 = household["H0-A_pload"].to_numpy(dtype=float) if "H0-A_pload" in household else None
            columns = {}
            for (element, quantity), frame in absolute.items():
                if element in ("load", "sgen") and quantity in ("p_mw", "q_mvar"):
                    for col in frame.columns:
                        columns[f"{element}|{quantity}|{col}"] = frame[col].to_numpy(dtype=float)
            columns["pv_norm"] = pv / pv.max() if pv.max() > 0 else pv
            if h0 is not None:
                columns["h0_norm"] = h0 / h0.max()
            table = pd.DataFrame(columns)
            net.profiles = {}
            folder.mkdir(parents=True, exist_ok=True)
            pp.to_json(net, str(net_file))
            table.to_parquet(prof_file, index=False)
    return net, {"table": table}


def _element_profiles(table: pd.DataFrame, element: str, quantity: str, index: pd.Index) -> np.ndarray:
    cols = [f"{element}|{quantity}|{i}" for i in index]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise GridModelError(f"profiles lack {missing[0]}")
    return table[cols].to_numpy(dtype=float) if cols else np.zeros((len(table), 0))


def _phase_powers(df: pd.DataFrame, asym: bool, quantity: str) -> np.ndarray:
    """(n, 3) static power per phase of a load/sgen table (balanced tables: a third on each phase)."""
    scaling = df.scaling.to_numpy(dtype=float) if "scaling" in df else np.ones(len(df))
    if asym:
        cols = [f"{quantity}_{ph}_{'mw' if quantity == 'p' else 'mvar'}" for ph in "abc"]
        return df[cols].to_numpy(dtype=float) * scaling[:, None]
    total = df[f"{quantity}_{'mw' if quantity == 'p' else 'mvar'}"].to_numpy(dtype=float) * scaling
    return np.repeat(total[:, None] / 3.0, 3, axis=1)


def _split(per_phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase shares (rows sum to 1; equal thirds where the total is 0) and the single phase (-1: several)."""
    total = per_phase.sum(axis=1)
    safe = np.where(total != 0, total, 1.0)
    split = np.where(total[:, None] != 0, per_phase / safe[:, None], 1.0 / 3.0)
    used = np.abs(per_phase) > 0
    phase = np.where(used.sum(axis=1) == 1, np.argmax(used, axis=1), -1)
    return split, phase


def _in_service(df: Any) -> Any:
    return df[df.in_service.astype(bool)] if "in_service" in df else df


def load_feeder(spec: FeederSpec, cache_dir: Path | None = None) -> Feeder:
    """Load, complete and model one feeder with its base profiles (full year, 15 min).

    Raises
    ------
    GridModelError
        The feeder cannot be read or modelled, or it has no customer point (no row in any
        load table), in which case a study of it would be meaningless.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    defaults = load_grid_defaults()
    assumptions: list[str] = []
    if spec.kind == "simbench":
        net, data = _simbench_cache(spec.ref, cache)
        table = data["table"]
        if spec.system == "IT_230":
            rescale_lv_voltage(net, 0.23)
        used = complete_network(net, defaults)
        pv_norm = table["pv_norm"].to_numpy(dtype=float)
    else:
        manifest = parse_manifest(spec.ref)
        net_spec = next(n for n in manifest.networks if n.id == spec.network_id)
        defaults = load_grid_defaults(manifest.default_overrides)
        net, used = build_network(net_spec, manifest.base_dir, defaults)
        bad = element_problems(net)
        if bad:
            raise GridModelError(f"feeder {spec.name}: {bad[0]}" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""))
        _, data = _simbench_cache(STANDARD_PROFILE_GRID, cache)
        table = data["table"]
        pv_norm = table["pv_norm"].to_numpy(dtype=float)
        assumptions.append("whatif: region loads follow SimBench H0-A, PV the SimBench PV profile")
    n_year = len(table)
    # customer points: every row of every load table
    ids: list[str] = []
    buses: list[np.ndarray] = []
    p_cols: list[np.ndarray] = []
    q_cols: list[np.ndarray] = []
    phase_p: list[np.ndarray] = []
    for name, asym in (("load", False), ("asymmetric_load", True)):
        df = _in_service(net[name]) if name in net else pd.DataFrame()
        if not len(df):
            continue
        pp_ = _phase_powers(df, asym, "p")
        qp_ = _phase_powers(df, asym, "q")
        ids.extend(f"{name}:{int(i)}" for i in df.index)
        buses.append(df.bus.to_numpy(dtype=np.int64))
        phase_p.append(pp_)
        if spec.kind == "simbench" and not asym:
            p_cols.append(_element_profiles(table, "load", "p_mw", df.index))
            q_cols.append(_element_profiles(table, "load", "q_mvar", df.index))
        else:
            h0 = table["h0_norm"].to_numpy(dtype=float)
            p_cols.append(h0[:, None] * pp_.sum(axis=1)[None, :])
            q_cols.append(h0[:, None] * qp_.sum(axis=1)[None, :])
    if not ids:
        raise GridModelError(
            f"feeder {spec.name}: no customer points (no row in the load or asymmetric_load tables); nothing to study"
        )
    cust_bus = np.concatenate(buses)
    base_p = np.concatenate(p_cols, axis=1)
    base_q = np.concatenate(q_cols, axis=1)
    base_split, cust_phase = _split(np.concatenate(phase_p, axis=0))
    # existing generation
    g_bus: list[np.ndarray] = []
    g_cols: list[np.ndarray] = []
    g_phase: list[np.ndarray] = []
    for name, asym in (("sgen", False), ("asymmetric_sgen", True)):
        df = _in_service(net[name]) if name in net else pd.DataFrame()
        if not len(df):
            continue
        pp_ = _phase_powers(df, asym, "p")
        g_bus.append(df.bus.to_numpy(dtype=np.int64))
        g_phase.append(pp_)
        if spec.kind == "simbench" and not asym:
            g_cols.append(_element_profiles(table, "sgen", "p_mw", df.index))
        else:
            g_cols.append(pv_norm[:, None] * pp_.sum(axis=1)[None, :])
    gen_bus = np.concatenate(g_bus) if g_bus else np.zeros(0, dtype=np.int64)
    gen_p = np.concatenate(g_cols, axis=1) if g_cols else np.zeros((n_year, 0))
    gen_split = _split(np.concatenate(g_phase, axis=0))[0] if g_phase else np.zeros((0, 3))

    factor = 1.0
    if spec.system == "IT_230" and spec.kind == "simbench":
        peak = int(np.argmax(base_p.sum(axis=1)))
        n_load = len(_in_service(net.load))
        factor = healthy_load_factor(net, base_p[peak, :n_load], base_q[peak, :n_load])
        base_p = base_p * factor
        base_q = base_q * factor
        assumptions.append(f"whatif: SimBench loads scaled by {factor:g} for a healthy 230 V IT base case")
    assumptions.extend(f"grid:{k}" for k in used if defaults[k].is_assumption)
    # the model carries no static power: every load and generator is applied per bus and phase
    zeroed = copy.deepcopy(net)
    for name, cols in (
        ("load", ("p_mw", "q_mvar")),
        ("sgen", ("p_mw", "q_mvar")),
        ("storage", ("p_mw", "q_mvar")),
        ("asymmetric_load", ("p_a_mw", "p_b_mw", "p_c_mw", "q_a_mvar", "q_b_mvar", "q_c_mvar")),
        ("asymmetric_sgen", ("p_a_mw", "p_b_mw", "p_c_mw", "q_a_mvar", "q_b_mvar", "q_c_mvar")),
    ):
        if name in zeroed and len(zeroed[name]):
            for c in cols:
                zeroed[name][c] = 0.0
            if "type" in zeroed[name] and spec.system == "IT_230":
                zeroed[name]["type"] = "delta"
    model = build_radial_model(zeroed, three_phase=True)
    bus_pos = {int(b): i for i, b in enumerate(model.bus_index)}
    lv_mask = net.bus.vn_kv.reindex(model.bus_index).to_numpy(dtype=float) < 1.0
    u_ll = float(np.median(net.bus.vn_kv.reindex(model.bus_index).to_numpy(dtype=float)[lv_mask]) * 1000.0)
    return Feeder(
        spec=spec,
        net=net,
        model=model,
        cust_ids=ids,
        cust_bus=cust_bus,
        load_bus_pos=np.array([bus_pos[int(b)] for b in cust_bus], dtype=np.int64),
        cust_phase=cust_phase.astype(np.int64),
        lv_bus_mask=lv_mask,
        base_p_mw=base_p,
        base_q_mvar=base_q,
        base_split=base_split,
        gen_bus_pos=np.array([bus_pos[int(b)] for b in gen_bus], dtype=np.int64),
        gen_p_mw=gen_p,
        gen_split=gen_split,
        pv_norm=pv_norm,
        u_ll_v=u_ll,
        base_load_factor=factor,
        assumptions=assumptions,
        load_shape=(
            table["h0_norm"].to_numpy(dtype=float)
            if spec.kind == "region"
            else base_p.sum(axis=1) / max(float(base_p.sum(axis=1).max()), 1e-12)
        ),
    )


def bus_power(bus_pos: np.ndarray, p: np.ndarray, split: np.ndarray, n_bus: int) -> np.ndarray:
    """Per-element totals ``p`` (T, n) spread on phases by ``split`` (n, 3) and summed per bus -> (T, n_bus, 3)."""
    out = np.zeros((p.shape[0], n_bus, 3))
    if p.shape[1]:
        np.add.at(out, (slice(None), bus_pos), p[:, :, None] * split[None, :, :])
    return out


def customer_bus_distance_km(feeder: Feeder) -> pd.Series:
    """Distance of every customer bus from the feeding transformer along the cables [km] (index: bus)."""
    import pandapower.topology as top

    start = int(feeder.model.bus_index[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = top.calc_distance_to_bus(feeder.net, start)
    buses = np.unique(feeder.cust_bus)
    return pd.Series(dist.reindex(buses).to_numpy(dtype=float), index=buses, name="distance_km")
