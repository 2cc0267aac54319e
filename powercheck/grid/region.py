"""A region: several LV networks plus the customer-point index that maps metering points to buses.

On disk a region is a directory with a manifest ``region.toml``::

    [region]
    name = "demo"
    customer_points = "customer_points.parquet"   # or "auto" to derive one point per load

    [[network]]
    id = "tn-dorf"                  # unique, used in the customer index
    system = "TN_400"               # or "IT_230"
    source = "networks/tn_dorf.json"    # or "pandapower:kerber_dorfnetz"
    lv_kv = 0.23                    # optional: move the LV side to this voltage first
    kwargs = { seed = 1 }           # optional: arguments of a pandapower: source

    [defaults.low_load_scaling]     # optional overrides of grid_defaults.toml
    value = 0.2
    tag = "P"
    source = "own AMS analysis 2025"

The customer index (Parquet) has one row per metering point:

========================  =======  =================================================
column                    type     meaning
========================  =======  =================================================
metering_point_id         string   18-digit GS1 id (check digit validated)
network_id                string   a ``[[network]].id``
bus                       int64    pandapower bus index in that network (LV bus)
existing_peak_kw          float64  the customer's demand already in the base case [kW]
existing_export_kw        float64  optional: generation already in the base case [kW]
main_fuse_a               float64  optional: main fuse (OV) on record [A]
service_cable_ampacity_a  float64  optional: overrides the grid model's service line
upstream_fuse_a           float64  optional: the fuse upstream of the main fuse [A]
========================  =======  =================================================

Per-network arrays (:mod:`powercheck.grid.precompute`) are cached on disk,
keyed by a hash of the network's content, its completion defaults and the
pandapower version, so a region loads in milliseconds after the first time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from powercheck.grid.networks import (
    GridModelError,
    complete_network,
    load_grid_defaults,
    load_source,
    rescale_lv_voltage,
    source_fingerprint,
)
from powercheck.grid.precompute import PRECOMPUTE_VERSION, NetworkArrays, precompute_network
from powercheck.gs1 import make_gsrn, validate_gsrn
from powercheck.params import Param

SYSTEMS = ("IT_230", "TN_400")

CUSTOMER_COLUMNS: dict[str, str] = {
    "metering_point_id": "string",
    "network_id": "string",
    "bus": "int64",
    "existing_peak_kw": "float64",
    "existing_export_kw": "float64",
    "main_fuse_a": "float64",
    "service_cable_ampacity_a": "float64",
    "upstream_fuse_a": "float64",
}
REQUIRED_CUSTOMER_COLUMNS = ("metering_point_id", "network_id", "bus", "existing_peak_kw")


@dataclass(frozen=True)
class NetworkSpec:
    id: str
    system: str
    source: str
    lv_kv: float | None = None
    kwargs: dict[str, Any] | None = None


def default_cache_dir() -> Path:
    env = os.environ.get("POWERCHECK_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "powercheck"


def _parse_manifest(path: Path) -> tuple[dict[str, Any], list[NetworkSpec], dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridModelError(f"region manifest {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise GridModelError(f"region manifest {path}: malformed TOML ({exc})") from None
    region = data.get("region")
    if not isinstance(region, dict) or "name" not in region:
        raise GridModelError(f"{path}: [region] table with a name is required")
    specs = []
    seen = set()
    for i, raw in enumerate(data.get("network", [])):
        for key in ("id", "system", "source"):
            if key not in raw:
                raise GridModelError(f"{path}: network[{i}].{key} is required")
        unknown = set(raw) - {"id", "system", "source", "lv_kv", "kwargs"}
        if unknown:
            raise GridModelError(f"{path}: network[{i}].{sorted(unknown)[0]} is not a known key")
        if raw["system"] not in SYSTEMS:
            raise GridModelError(f"{path}: network[{i}].system must be one of {SYSTEMS}, got {raw['system']!r}")
        if raw["id"] in seen:
            raise GridModelError(f"{path}: network[{i}].id {raw['id']!r} is used twice")
        seen.add(raw["id"])
        specs.append(
            NetworkSpec(
                id=str(raw["id"]),
                system=raw["system"],
                source=str(raw["source"]),
                lv_kv=float(raw["lv_kv"]) if "lv_kv" in raw else None,
                kwargs=dict(raw.get("kwargs", {})),
            )
        )
    if not specs:
        raise GridModelError(f"{path}: at least one [[network]] is required")
    return region, specs, data.get("defaults", {})


def build_network(
    spec: NetworkSpec, base_dir: Path | None, defaults: dict[str, Param]
) -> tuple[pp.pandapowerNet, list[str]]:
    """Load and complete one network; returns it with the defaults used."""
    net = load_source(spec.source, base_dir, spec.kwargs)
    if spec.lv_kv is not None:
        rescale_lv_voltage(net, spec.lv_kv)
    used = complete_network(net, defaults)
    return net, used


def _cache_key(spec: NetworkSpec, base_dir: Path | None, defaults: dict[str, Param]) -> str:
    payload = {
        "fingerprint": source_fingerprint(spec.source, base_dir, spec.kwargs or {}),
        "system": spec.system,
        "lv_kv": spec.lv_kv,
        "defaults": {k: p.value for k, p in sorted(defaults.items())},
        "precompute": PRECOMPUTE_VERSION,
        "pandapower": pp.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def synthesize_customer_points(network_id: str, network_no: int, net: pp.pandapowerNet) -> pd.DataFrame:
    """One metering point per in-service load bus, with deterministic GS1 ids.

    The id is ``707057500`` (a Norwegian GS1 company prefix) + 2-digit network number
    + 6-digit sequence + check digit.
    """
    rows = []
    loads = []
    for table in ("load", "asymmetric_load"):
        if table in net and len(net[table]):
            df = net[table][net[table].in_service.astype(bool)]
            if table == "load":
                p = df.p_mw * df.scaling
            else:
                p = (df.p_a_mw + df.p_b_mw + df.p_c_mw) * df.scaling
            loads.append(pd.DataFrame({"bus": df.bus.astype(int), "p_kw": 1000.0 * p}))
    if not loads:
        raise GridModelError(f"network {network_id}: no loads to derive customer points from")
    per_bus = pd.concat(loads).groupby("bus", sort=True).p_kw.sum()
    exports = pd.Series(0.0, index=per_bus.index)
    if "sgen" in net and len(net.sgen):
        sg = net.sgen[net.sgen.in_service.astype(bool)]
        exports = exports.add((1000.0 * sg.p_mw * sg.scaling).groupby(sg.bus).sum(), fill_value=0.0)
    for seq, (bus, p_kw) in enumerate(per_bus.items(), start=1):
        data17 = f"707057500{network_no:02d}{seq:06d}"
        rows.append(
            {
                "metering_point_id": make_gsrn(data17),
                "network_id": network_id,
                "bus": int(bus),
                "existing_peak_kw": float(p_kw),
                "existing_export_kw": float(exports.get(bus, 0.0)),
            }
        )
    return pd.DataFrame(rows)


def read_customer_points(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise GridModelError(f"customer index {path} not found") from None
    except pa.ArrowInvalid as exc:
        raise GridModelError(f"customer index {path}: not a Parquet file ({exc})") from None
    return table.to_pandas()


def normalise_customer_points(df: pd.DataFrame, networks: dict[str, NetworkArrays], origin: str) -> pd.DataFrame:
    """Validate the index against the networks; return it with a global ``bus_row`` column.

    Raises GridModelError naming the first bad rows (row number and column).
    """
    for col in REQUIRED_CUSTOMER_COLUMNS:
        if col not in df.columns:
            raise GridModelError(f"{origin}: column {col!r} is missing")
    df = df.copy()
    for col, dtype in CUSTOMER_COLUMNS.items():
        if col not in df.columns:
            df[col] = np.nan if dtype == "float64" else None
        try:
            df[col] = df[col].astype(dtype)
        except (ValueError, TypeError) as exc:
            raise GridModelError(f"{origin}: column {col!r} cannot be read as {dtype} ({exc})") from None
    problems: list[str] = []
    for row, mp in enumerate(df.metering_point_id):
        try:
            validate_gsrn(str(mp))
        except ValueError as exc:
            problems.append(f"row {row} metering_point_id: {exc}")
    dup = df.metering_point_id.duplicated(keep=False)
    if dup.any():
        problems.append(f"rows {list(np.flatnonzero(dup.to_numpy())[:5])} metering_point_id: duplicated")
    offsets = {}
    offset = 0
    for nid, arrays in networks.items():
        offsets[nid] = (offset, {int(b): i for i, b in enumerate(arrays.bus_ids)})
        offset += arrays.n_bus
    bus_row = np.full(len(df), -1, dtype=np.int64)
    for row, (nid, bus) in enumerate(zip(df.network_id, df.bus)):
        if nid not in offsets:
            problems.append(f"row {row} network_id: {nid!r} is not a network of the region")
            continue
        start, lookup = offsets[nid]
        local = lookup.get(int(bus))
        if local is None:
            problems.append(f"row {row} bus: {bus} is not an in-service LV bus of network {nid!r}")
            continue
        bus_row[row] = start + local
    for col in ("existing_peak_kw",):
        bad = df[col].isna() | (df[col] < 0)
        for row in np.flatnonzero(bad.to_numpy())[:5]:
            problems.append(f"row {row} {col}: must be a non-negative number")
    if problems:
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise GridModelError(f"{origin}: " + "; ".join(problems[:10]) + more)
    df["existing_export_kw"] = df["existing_export_kw"].fillna(0.0)
    df["bus_row"] = bus_row
    return df.reset_index(drop=True)


def _auto_points(
    spec: NetworkSpec,
    network_no: int,
    base_dir: Path | None,
    defaults: dict[str, Param],
    net: pp.pandapowerNet | None,
    cache: Path,
    key: str,
    use_cache: bool,
) -> pd.DataFrame:
    """Synthesised customer points of a network, cached next to its arrays."""
    cache_file = cache / f"{spec.id}-{key[:20]}-points{network_no}.parquet"
    if use_cache and cache_file.is_file():
        return pd.read_parquet(cache_file)
    if net is None:
        net, _ = build_network(spec, base_dir, defaults)
    points = synthesize_customer_points(spec.id, network_no, net)
    if use_cache:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            points.to_parquet(cache_file, index=False)
        except OSError:
            pass
    return points


class RegionArrays:
    """All networks' arrays concatenated, with global row numbers for buses, lines and transformers."""

    def __init__(self, networks: list[NetworkArrays]):
        bus_fields = (
            "u_ll_v rk1_max xk1_max rk1_min xk1_min rk0_min xk0_min vm_peak_pu vm_low_pu "
            "unbalance_base_percent path_length_km"
        ).split()
        for name in bus_fields:
            setattr(self, name, np.concatenate([getattr(n, name) for n in networks]).astype(float))
        self.bus_ids = np.concatenate([n.bus_ids for n in networks]).astype(np.int64)
        self.network_index = np.concatenate([np.full(n.n_bus, i, dtype=np.int64) for i, n in enumerate(networks)])
        self.system_tn = np.concatenate([np.full(n.n_bus, n.system == "TN_400") for n in networks])
        self.meshed = np.concatenate([n.bus_meshed for n in networks]).astype(bool)
        line_off = np.cumsum([0] + [n.line_ids.shape[0] for n in networks])
        trafo_off = np.cumsum([0] + [n.trafo_ids.shape[0] for n in networks])
        path_off = np.cumsum([0] + [n.path_lines.shape[0] for n in networks])

        def shift(arr: np.ndarray, off: int) -> np.ndarray:
            return np.where(arr >= 0, arr + off, -1)

        self.trafo_row = np.concatenate([shift(n.trafo_row, trafo_off[i]) for i, n in enumerate(networks)])
        self.service_line_row = np.concatenate([shift(n.service_line_row, line_off[i]) for i, n in enumerate(networks)])
        self.feeder_line_row = np.concatenate([shift(n.feeder_line_row, line_off[i]) for i, n in enumerate(networks)])
        self.path_lines = np.concatenate([n.path_lines + line_off[i] for i, n in enumerate(networks)]).astype(np.int64)
        self.path_indptr = np.concatenate(
            [np.array([0], dtype=np.int64)] + [n.path_indptr[1:] + path_off[i] for i, n in enumerate(networks)]
        ).astype(np.int64)
        self.line_network = np.concatenate([np.full(n.line_ids.shape[0], i) for i, n in enumerate(networks)])
        self.line_ids = np.concatenate([n.line_ids for n in networks]).astype(np.int64)
        for name in ("line_i_max_a", "line_i_peak_a", "line_i_low_a"):
            setattr(self, name, np.concatenate([getattr(n, name) for n in networks]).astype(float))
        self.trafo_ids = np.concatenate([n.trafo_ids for n in networks]).astype(np.int64)
        for name in ("trafo_i_rated_a", "trafo_i_peak_a", "trafo_i_low_a"):
            setattr(self, name, np.concatenate([getattr(n, name) for n in networks]).astype(float))


class GridRegion:
    """Networks, per-bus arrays and the customer index of one region."""

    def __init__(
        self,
        name: str,
        networks: list[NetworkArrays],
        specs: list[NetworkSpec],
        customers: pd.DataFrame,
        defaults: dict[str, Param],
        version: str,
        base_dir: Path | None = None,
        description: str = "",
    ):
        self.name = name
        self.description = description
        self.networks = {n.network_id: n for n in networks}
        self.network_order = [n.network_id for n in networks]
        self.specs = {s.id: s for s in specs}
        self.defaults = defaults
        self.version = version
        self.base_dir = base_dir
        self.arrays = RegionArrays(networks)
        self.customers = normalise_customer_points(customers, self.networks, f"region {name} customer index")
        self._mp_index = pd.Index(self.customers.metering_point_id.astype(str))

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> GridRegion:
        """Load a region directory (or its ``region.toml``)."""
        path = Path(path)
        manifest = path / "region.toml" if path.is_dir() else path
        base_dir = manifest.parent
        region, specs, overrides = _parse_manifest(manifest)
        defaults = load_grid_defaults(overrides)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        arrays: list[NetworkArrays] = []
        auto_points: list[pd.DataFrame] = []
        cp = region.get("customer_points", "auto")
        keys = [_cache_key(spec, base_dir, defaults) for spec in specs]
        for i, (spec, key) in enumerate(zip(specs, keys)):
            cache_file = cache / f"{spec.id}-{key[:20]}.npz"
            net = None
            cached = None
            if use_cache and cache_file.is_file():
                try:
                    cached = NetworkArrays.load(cache_file)
                    if progress:
                        progress(f"{spec.id}: cached")
                except Exception:
                    cache_file.unlink(missing_ok=True)
            if cached is not None:
                arrays.append(cached)
            else:
                if progress:
                    progress(f"{spec.id}: short-circuit and base-case load flow")
                net, used = build_network(spec, base_dir, defaults)
                computed = precompute_network(spec.id, spec.system, net, defaults, used)
                arrays.append(computed)
                if use_cache:
                    try:
                        cache.mkdir(parents=True, exist_ok=True)
                        computed.save(cache_file)
                    except OSError:
                        pass  # a read-only cache is not an error; we just recompute next time
            if cp == "auto":
                auto_points.append(_auto_points(spec, i + 1, base_dir, defaults, net, cache, key, use_cache))
        if cp == "auto":
            customers = pd.concat(auto_points, ignore_index=True)
            cp_hash = "auto"
        else:
            cp_path = Path(cp) if Path(cp).is_absolute() else base_dir / cp
            customers = read_customer_points(cp_path)
            cp_hash = hashlib.sha256(cp_path.read_bytes()).hexdigest()
        version_payload = {
            "manifest": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "networks": keys,
            "customer_points": cp_hash,
        }
        version = "grid-" + hashlib.sha256(json.dumps(version_payload, sort_keys=True).encode()).hexdigest()[:12]
        return cls(
            name=str(region["name"]),
            networks=arrays,
            specs=specs,
            customers=customers,
            defaults=defaults,
            version=version,
            base_dir=base_dir,
            description=str(region.get("description", "")),
        )

    # ------------------------------------------------------------------ queries
    def locate(self, metering_point_ids: list[str] | np.ndarray) -> np.ndarray:
        """Customer-index rows for the ids (-1 where unknown)."""
        return self._mp_index.get_indexer(pd.Index([str(m) for m in metering_point_ids]))

    def network_net(self, network_id: str) -> pp.pandapowerNet:
        """The completed pandapower network (loaded fresh from its source)."""
        spec = self.specs[network_id]
        net, _ = build_network(spec, self.base_dir, self.defaults)
        return net

    def assumptions_for_network(self, network_id: str) -> list[str]:
        """The [R] grid defaults that were applied to this network, as 'grid:<key>'."""
        arrays = self.networks[network_id]
        keys = set(arrays.applied_defaults) | {"low_load_scaling"}
        return sorted(f"grid:{k}" for k in keys if k in self.defaults and self.defaults[k].is_assumption)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "networks": [
                {
                    "id": nid,
                    "system": self.networks[nid].system,
                    "buses": self.networks[nid].n_bus,
                    "lines": int(self.networks[nid].line_ids.shape[0]),
                    "meshed": self.networks[nid].meshed,
                    "meshed_buses": int(self.networks[nid].bus_meshed.sum()),
                    "source": self.specs[nid].source,
                    "applied_defaults": self.networks[nid].applied_defaults,
                }
                for nid in self.network_order
            ],
            "customer_points": int(len(self.customers)),
        }
