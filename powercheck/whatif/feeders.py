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
    """A feeder ready for batch power flows."""

    spec: FeederSpec
    net: Any
    model: RadialModel
    load_index: np.ndarray
    load_bus_pos: np.ndarray
    lv_bus_mask: np.ndarray
    base_p_mw: np.ndarray
    base_q_mvar: np.ndarray
    sgen_p_mw: np.ndarray
    pv_norm: np.ndarray
    u_ll_v: float
    base_load_factor: float = 1.0
    assumptions: list[str] = field(default_factory=list)

    @property
    def n_customers(self) -> int:
        return int(self.load_index.shape[0])


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


def load_feeder(spec: FeederSpec, cache_dir: Path | None = None) -> Feeder:
    """Load, complete and model one feeder with its base profiles (full year, 15 min)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    defaults = load_grid_defaults()
    assumptions: list[str] = []
    if spec.kind == "simbench":
        net, data = _simbench_cache(spec.ref, cache)
        table = data["table"]
        if spec.system == "IT_230":
            rescale_lv_voltage(net, 0.23)
        used = complete_network(net, defaults)
        base_p = _element_profiles(table, "load", "p_mw", net.load.index)
        base_q = _element_profiles(table, "load", "q_mvar", net.load.index)
        sgen_p = _element_profiles(table, "sgen", "p_mw", net.sgen.index)
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
        h0 = table["h0_norm"].to_numpy(dtype=float)
        pv_norm = table["pv_norm"].to_numpy(dtype=float)
        p_static = (net.load.p_mw * net.load.scaling).to_numpy(dtype=float)
        q_static = (net.load.q_mvar * net.load.scaling).to_numpy(dtype=float)
        base_p = h0[:, None] * p_static[None, :]
        base_q = h0[:, None] * q_static[None, :]
        sg = (net.sgen.p_mw * net.sgen.scaling).to_numpy(dtype=float) if len(net.sgen) else np.zeros(0)
        sgen_p = pv_norm[:, None] * sg[None, :]
        assumptions.append("whatif: region loads follow SimBench H0-A, PV the SimBench PV profile")
    net.load["type"] = "delta" if spec.system == "IT_230" else "wye"
    factor = 1.0
    if spec.system == "IT_230" and spec.kind == "simbench":
        peak = int(np.argmax(base_p.sum(axis=1)))
        factor = healthy_load_factor(net, base_p[peak], base_q[peak])
        base_p = base_p * factor
        base_q = base_q * factor
        assumptions.append(f"whatif: SimBench loads scaled by {factor:g} for a healthy 230 V IT base case")
    assumptions.extend(f"grid:{k}" for k in used if defaults[k].is_assumption)
    model = build_radial_model(net, three_phase=True)
    bus_pos = {int(b): i for i, b in enumerate(model.bus_index)}
    load_index = np.asarray(model.load_index, dtype=np.int64)
    load_bus_pos = np.array([bus_pos[int(net.load.bus.at[i])] for i in load_index], dtype=np.int64)
    order = [net.load.index.get_loc(i) for i in load_index]
    sgen_order = [net.sgen.index.get_loc(i) for i in model.sgen_index] if len(model.sgen_index) else []
    lv_mask = net.bus.vn_kv.reindex(model.bus_index).to_numpy(dtype=float) < 1.0
    u_ll = float(np.median(net.bus.vn_kv.reindex(model.bus_index).to_numpy(dtype=float)[lv_mask]) * 1000.0)
    return Feeder(
        spec=spec,
        net=net,
        model=model,
        load_index=load_index,
        load_bus_pos=load_bus_pos,
        lv_bus_mask=lv_mask,
        base_p_mw=base_p[:, order],
        base_q_mvar=base_q[:, order],
        sgen_p_mw=sgen_p[:, sgen_order] if sgen_order else np.zeros((base_p.shape[0], 0)),
        pv_norm=pv_norm,
        u_ll_v=u_ll,
        base_load_factor=factor,
        assumptions=assumptions,
    )
