"""A region: several LV networks plus the customer-point index that maps metering points to buses.

On disk a region is a directory with a manifest ``region.toml`` (:func:`parse_manifest`)::

    [region]
    name = "demo"
    description = "..."                            # optional
    customer_points = "customer_points.parquet"   # or "auto" to derive one point per load
    ams = "ams.parquet"                            # optional: smart-meter series (needs a customer_points file)
    cim_map = "cim_map.csv"                        # optional: metering_point_id,network_id,mrid -> bus (CGMES)

    [[network]]
    id = "tn-dorf"                  # unique, used in the customer index
    system = "TN_400"               # or "IT_230"
    source = "networks/tn_dorf.json"    # or "pandapower:kerber_dorfnetz", or CGMES: "networks/x.zip" or a
                                        # directory of EQ/SSH/TP/SV .xml files (powercheck.grid.cgmes)
                                        # or OpenDSS: "opendss:networks/x/Master.dss" (powercheck.grid.opendss)
    slack_from_source = false       # optional, CGMES: make the single source the slack when none is set
    allow_unsupplied = false        # optional, CGMES: load unsupplied buses (reported) instead of refusing
    lv_kv = 0.23                    # optional: move the LV side to this voltage first
    kwargs = { seed = 1 }           # optional: arguments of a pandapower: source

    [defaults.low_load_scaling]     # optional overrides of grid_defaults.toml
    value = 0.2
    tag = "P"
    source = "own AMS analysis 2025"

A network id is 1-64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit
(:data:`NETWORK_ID_PATTERN`: it names cache files). ``source`` and ``customer_points`` are
paths relative to the manifest's directory and must resolve inside it (no absolute paths,
no ``..`` or symbolic link out of it) unless the region is loaded with ``allow_outside=True``
(``--allow-outside-region``).

The customer index (Parquet) has one row per metering point; its columns, units and
allowed ranges are declared in :data:`powercheck.grid.customers.CUSTOMER_SCHEMA` (see
:mod:`powercheck.grid.customers`).

Load basis
----------
Each customer's existing peak (the demand already in the base case) and export come from, in
this order: its AMS series (``ams``: the measured import and export peaks,
:mod:`powercheck.grid.ams`), the customer index (``existing_peak_kw``), or Velander's
``k1 W + k2 sqrt(W)`` from ``annual_energy_kwh`` with the constants of its ``customer_category``
(grid defaults ``velander_<category>_k1/k2``). The column ``peak_basis`` says which
(``ams`` / ``customer_index`` / ``velander``), and each decision names it. A network with
metered points has its base-case load flows at the metered coincident-peak hour and at the
low-load / high-export hour (:class:`~powercheck.grid.precompute.MeasuredBaseCase`).

Per-network arrays (:mod:`powercheck.grid.precompute`) are cached on disk, keyed by a
hash of the network's content, its completion defaults and the pandapower version, so a
region loads in milliseconds after the first time. :class:`RegionArrays` concatenates
them with global row numbers for the rule engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.ipc  # noqa: F401

from powercheck.grid.ams import AmsSummary, read_ams, velander_kw
from powercheck.grid.customers import normalise_customer_points, read_customer_points, synthesize_customer_points
from powercheck.grid.networks import (
    OPENDSS_PREFIX,
    PANDAPOWER_PREFIX,
    SYSTEMS,
    GridModelError,
    NetworkSpec,
    build_network,
    load_grid_defaults,
    source_fingerprint,
    velander_constants,
)
from powercheck.grid.precompute import (
    PRECOMPUTE_VERSION,
    BusProblem,
    MeasuredBaseCase,
    NetworkArrays,
    precompute_network,
)
from powercheck.grid.safe_json import READER_VERSION
from powercheck.lazy import installed_version, lazy_module
from powercheck.params import Param

pp = lazy_module("pandapower")
pd = lazy_module("pandas")

__all__ = [
    "GridRegion",
    "NetworkSpec",
    "RegionArrays",
    "RegionManifest",
    "default_cache_dir",
    "parse_manifest",
]

_NETWORK_KEYS = ("id", "system", "source", "lv_kv", "kwargs", "slack_from_source", "allow_unsupplied")

NETWORK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Allowed network ids (they name cache files): no path separators, no leading dot."""


def region_path(manifest: Path, where: str, value: str, allow_outside: bool = False) -> Path:
    """A path of a manifest, relative to its directory; refused when it leads outside it (unless allowed).

    Raises
    ------
    GridModelError
        An absolute path, or one that resolves (``..``, symbolic links) outside the manifest's
        directory, naming the file and the key.
    """
    base = manifest.parent
    path = Path(value)
    full = path if path.is_absolute() else base / path
    if allow_outside:
        return full
    hint = "paths must stay inside the region directory (or load it with --allow-outside-region)"
    if path.is_absolute():
        raise GridModelError(f"{manifest}: {where} {value!r} is an absolute path; {hint}")
    if not full.resolve().is_relative_to(base.resolve()):
        raise GridModelError(f"{manifest}: {where} {value!r} leads outside {base}; {hint}")
    return full


def default_cache_dir() -> Path:
    """``$POWERCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/powercheck``, else ``~/.cache/powercheck``."""
    env = os.environ.get("POWERCHECK_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "powercheck"


@dataclass(frozen=True)
class RegionManifest:
    """A parsed ``region.toml`` (see the module docstring).

    Attributes
    ----------
    path : Path
        The manifest file.
    name : str
        ``[region].name``.
    description : str
        ``[region].description`` ("" if absent).
    customer_points : str
        ``[region].customer_points``: a Parquet path relative to the manifest's directory,
        or "auto" (the default).
    networks : list of NetworkSpec
        The ``[[network]]`` entries in order.
    default_overrides : dict
        The raw ``[defaults.<key>]`` tables (validated by
        :func:`powercheck.grid.networks.load_grid_defaults`).
    """

    path: Path
    name: str
    description: str
    customer_points: str
    networks: list[NetworkSpec]
    default_overrides: dict[str, Any] = field(default_factory=dict)
    ams: str | None = None
    """``[region].ams``: a Parquet or CSV file of smart-meter series (None: no meter data)."""
    cim_map: str | None = None
    """``[region].cim_map``: a CSV mapping table metering_point_id,network_id,mrid (CIM ConnectivityNode or
    EnergyConsumer mRIDs of CGMES networks) that gives the customer index's ``bus``."""

    @property
    def base_dir(self) -> Path:
        """The directory that relative sources and the customer index are resolved against."""
        return self.path.parent


LV_KV_RANGE = (0.1, 1.0)
"""Allowed ``lv_kv`` [kV] (an LV network)."""

_REGION_KEYS = ("name", "description", "customer_points", "ams", "cim_map")
_TOP_KEYS = ("region", "network", "defaults")
MAX_KWARG_INT = 1_000_000_000


def _kwargs(where: str, value: Any) -> dict[str, Any]:
    """The ``kwargs`` of a pandapower source: a table of scalar values (bounded numbers, short strings)."""
    if not isinstance(value, dict):
        raise GridModelError(f"{where}: expected a table of arguments, e.g. {{ seed = 1 }}, got {type(value).__name__}")
    for name, arg in value.items():
        ok = (
            isinstance(arg, bool)
            or (isinstance(arg, int) and abs(arg) <= MAX_KWARG_INT)
            or (isinstance(arg, float) and math.isfinite(arg) and abs(arg) <= MAX_KWARG_INT)
            or (isinstance(arg, str) and len(arg) <= 100)
        )
        if not ok:
            raise GridModelError(
                f"{where}.{name}: {arg!r} is not an argument value (a boolean, a number up to 1e9 or a short string)"
            )
    return dict(value)


def parse_manifest(path: str | Path, *, allow_outside: bool = False) -> RegionManifest:
    """Read and check a region manifest (a ``region.toml`` file or a region directory).

    Every key has its type and range: ``[region]`` name (a string of 1-100 characters),
    description and customer_points (strings); ``[[network]]`` id (:data:`NETWORK_ID_PATTERN`),
    system (:data:`SYSTEMS`), source (a path inside the region directory unless
    ``allow_outside``, or ``pandapower:<name>``), lv_kv (a number in :data:`LV_KV_RANGE` kV),
    kwargs (a table of scalar arguments, for ``pandapower:`` sources only); ``[defaults.<key>]``
    tables (checked by :func:`~powercheck.grid.networks.load_grid_defaults`). Unknown keys and
    tables are refused.

    Raises
    ------
    GridModelError
        The first problem, naming the file and the key (``network[2].lv_kv``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "region.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GridModelError(f"region manifest {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridModelError(f"region manifest {path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise GridModelError(f"region manifest {path}: malformed TOML ({exc})") from None
    region = data.get("region")
    if not isinstance(region, dict) or "name" not in region:
        raise GridModelError(f"{path}: [region] table with a name is required")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise GridModelError(f"{path}: {unknown[0]} is not a known table (expected [region], [[network]], [defaults])")
    unknown = sorted(set(region) - set(_REGION_KEYS))
    if unknown:
        raise GridModelError(f"{path}: region.{unknown[0]} is not a known key ({', '.join(_REGION_KEYS)})")
    name = region["name"]
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise GridModelError(f"{path}: region.name must be a string of 1-100 characters, got {name!r:.60}")
    for key in ("description", "customer_points", "ams", "cim_map"):
        if key in region and not isinstance(region[key], str):
            raise GridModelError(f"{path}: region.{key} must be a string, got {type(region[key]).__name__}")
    networks = data.get("network", [])
    if not isinstance(networks, list):
        raise GridModelError(f"{path}: network must be [[network]] tables, got {type(networks).__name__}")
    specs = []
    seen = set()
    for i, raw in enumerate(networks):
        if not isinstance(raw, dict):
            raise GridModelError(f"{path}: network[{i}] must be a table")
        for key in ("id", "system", "source"):
            if key not in raw:
                raise GridModelError(f"{path}: network[{i}].{key} is required")
        unknown = set(raw) - set(_NETWORK_KEYS)
        if unknown:
            raise GridModelError(f"{path}: network[{i}].{sorted(unknown)[0]} is not a known key")
        if not isinstance(raw["id"], str) or not NETWORK_ID_PATTERN.fullmatch(raw["id"]):
            raise GridModelError(
                f"{path}: network[{i}].id {raw['id']!r} is not a valid id "
                "(1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"
            )
        source = raw["source"]
        if not isinstance(source, str) or not source:
            raise GridModelError(f"{path}: network[{i}].source must be a file path or pandapower:<name>")
        from_pandapower = source.startswith(PANDAPOWER_PREFIX)
        if not from_pandapower:
            region_path(path, f"network[{i}].source", source.removeprefix(OPENDSS_PREFIX), allow_outside)
        if not isinstance(raw["system"], str) or raw["system"] not in SYSTEMS:
            raise GridModelError(f"{path}: network[{i}].system must be one of {SYSTEMS}, got {raw['system']!r}")
        if raw["id"] in seen:
            raise GridModelError(f"{path}: network[{i}].id {raw['id']!r} is used twice")
        seen.add(raw["id"])
        lv_kv = raw.get("lv_kv")
        if lv_kv is not None:
            lo, hi = LV_KV_RANGE
            if isinstance(lv_kv, bool) or not isinstance(lv_kv, int | float):
                raise GridModelError(f"{path}: network[{i}].lv_kv must be a number [kV], got {lv_kv!r}")
            if not lo <= lv_kv <= hi:
                raise GridModelError(
                    f"{path}: network[{i}].lv_kv {lv_kv!r} is outside the allowed range [{lo}, {hi}] kV"
                )
        flags = {}
        for key in ("slack_from_source", "allow_unsupplied"):
            value = raw.get(key, False)
            if not isinstance(value, bool):
                raise GridModelError(f"{path}: network[{i}].{key} must be true or false, got {value!r}")
            if value and (from_pandapower or not (source.endswith(".zip") or "." not in Path(source).name)):
                raise GridModelError(f"{path}: network[{i}].{key} applies to CGMES sources (.zip or a directory)")
            flags[key] = value
        kwargs = _kwargs(f"{path}: network[{i}].kwargs", raw.get("kwargs", {}))
        if kwargs and not from_pandapower:
            raise GridModelError(f"{path}: network[{i}].kwargs are arguments of a pandapower: source only")
        specs.append(
            NetworkSpec(
                id=raw["id"],
                system=raw["system"],
                source=source,
                lv_kv=float(lv_kv) if lv_kv is not None else None,
                kwargs=kwargs,
                **flags,
            )
        )
    if not specs:
        raise GridModelError(f"{path}: at least one [[network]] is required")
    customer_points = region.get("customer_points", "auto")
    if customer_points != "auto":
        region_path(path, "region.customer_points", customer_points, allow_outside)
    cim_map = region.get("cim_map")
    if cim_map is not None:
        if customer_points == "auto":
            raise GridModelError(f"{path}: region.cim_map needs region.customer_points to be a customer index file")
        region_path(path, "region.cim_map", cim_map, allow_outside)
    ams = region.get("ams")
    if ams is not None:
        if customer_points == "auto":
            raise GridModelError(f"{path}: region.ams needs region.customer_points to be a customer index file")
        region_path(path, "region.ams", ams, allow_outside)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise GridModelError(f"{path}: defaults must be [defaults.<key>] tables")
    return RegionManifest(
        path=path,
        name=name,
        description=region.get("description", ""),
        customer_points=customer_points,
        networks=specs,
        default_overrides=dict(defaults),
        ams=ams,
        cim_map=cim_map,
    )


def _cache_key(
    spec: NetworkSpec, base_dir: Path | None, defaults: dict[str, Param], measured: str | None = None
) -> str:
    """The network's cache key; ``measured`` stands for its measured base cases (a hash of their sources)."""
    payload = {
        "measured": measured,
        "fingerprint": source_fingerprint(spec.source, base_dir, spec.kwargs or {}),
        "system": spec.system,
        "lv_kv": spec.lv_kv,
        "cgmes": [spec.slack_from_source, spec.allow_unsupplied],
        "defaults": {k: p.value for k, p in sorted(defaults.items())},
        "precompute": PRECOMPUTE_VERSION,
        "pandapower": installed_version("pandapower"),
        "reader": READER_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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


CUSTOMER_CACHE_VERSION = 2
"""Bump when the cached customer index (an Arrow IPC file next to the network arrays) changes form.

2: the load-basis columns (peak_basis, peak_assumptions, ams_*), upstream_fuse_source, and the measured
base cases in the schema metadata (``powercheck.measured``)."""

MEASURED_META_KEY = b"powercheck.measured"


def _with_measured(table: pa.Table, measured: dict[str, MeasuredBaseCase]) -> pa.Table:
    """The customer index with the measured base cases in its schema metadata (JSON)."""
    payload = {
        nid: {
            "buses": m.buses.astype(np.int64).tolist(),
            "peak_import_kw": np.asarray(m.peak_import_kw, dtype=float).tolist(),
            "peak_export_kw": np.asarray(m.peak_export_kw, dtype=float).tolist(),
            "low_import_kw": np.asarray(m.low_import_kw, dtype=float).tolist(),
            "low_export_kw": np.asarray(m.low_export_kw, dtype=float).tolist(),
            "peak_hour": m.peak_hour,
            "low_hour": m.low_hour,
        }
        for nid, m in measured.items()
    }
    meta = dict(table.schema.metadata or {})
    meta[MEASURED_META_KEY] = json.dumps(payload).encode()
    return table.replace_schema_metadata(meta)


def _measured_from_table(table: pa.Table) -> dict[str, MeasuredBaseCase]:
    """The measured base cases kept by :func:`_with_measured` (a file without them is not a valid cache)."""
    meta = table.schema.metadata or {}
    payload = json.loads(meta[MEASURED_META_KEY].decode())
    return {
        nid: MeasuredBaseCase(
            buses=np.array(m["buses"], dtype=np.int64),
            peak_import_kw=np.array(m["peak_import_kw"], dtype=float),
            peak_export_kw=np.array(m["peak_export_kw"], dtype=float),
            low_import_kw=np.array(m["low_import_kw"], dtype=float),
            low_export_kw=np.array(m["low_export_kw"], dtype=float),
            peak_hour=str(m["peak_hour"]),
            low_hour=str(m["low_hour"]),
        )
        for nid, m in payload.items()
    }


def _file_hash(path: Path, what: str) -> str:
    """SHA-256 of a file's bytes, read in blocks (GridModelError naming the file if it cannot be read)."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise GridModelError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    return h.hexdigest()


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _write_arrow(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)


def _arrow_numbers(array: pa.Array) -> np.ndarray:
    """A null-free numeric Arrow array as NumPy, read from its buffer (``Array.to_numpy`` imports pandas)."""
    kinds = {pa.int64(): np.int64, pa.int32(): np.int32, pa.float64(): np.float64, pa.float32(): np.float32}
    dtype = kinds.get(array.type)
    if dtype is None:
        return np.array(array.to_pylist())
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * np.dtype(dtype).itemsize
    ).copy()


def _concat(arrays: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype)


def _shift(arr: np.ndarray, off: int) -> np.ndarray:
    """Row references moved by ``off``; -1 (none) stays -1."""
    return np.where(arr >= 0, arr + off, -1)


@dataclass(frozen=True)
class RegionArrays:
    """All networks' arrays concatenated, with global row numbers for buses, lines and transformers.

    Networks follow each other in region order. A *bus row* indexes the bus arrays, a
    *line row* the line arrays, a *trafo row* the transformer arrays; references between
    them are global rows (-1 = none). Build with :meth:`from_networks`. The per-network
    meaning of every array is in :class:`~powercheck.grid.precompute.NetworkArrays`.

    Attributes
    ----------
    u_ll_v : float64[n_bus]
        Nominal line-to-line voltage [V].
    rk1_max, xk1_max, rk1_min, xk1_min : float64[n_bus]
        Positive-sequence Thevenin resistance / reactance [ohm], max and min short-circuit case.
    rk0_min, xk0_min : float64[n_bus]
        Zero-sequence Thevenin resistance / reactance [ohm], min case (NaN in IT networks).
    vm_peak_pu, vm_low_pu : float64[n_bus]
        Base-case voltage at peak load / at low load with full generation [pu].
    unbalance_base_percent : float64[n_bus]
        Base-case voltage unbalance at peak [%] (NaN for balanced networks).
    path_length_km : float64[n_bus]
        Line length from the bus to its transformer [km].
    bus_ids : int64[n_bus]
        pandapower bus index within its network.
    network_index : int64[n_bus]
        Position of the bus's network in the region order.
    system_tn : bool[n_bus]
        The bus is in a TN (400 V) network; False = IT (230 V).
    meshed : bool[n_bus]
        The bus's path to its transformer is not radial (path-based checks do not hold).
    trafo_row : int64[n_bus]
        Transformer row feeding the bus.
    bus_parent_row : int64[n_bus]
        Next bus row towards the transformer in the radial tree (-1 at a transformer's busbar).
    service_line_row, feeder_line_row : int64[n_bus]
        Line row into the bus; line row of the feeder cable at the transformer.
    path_indptr : int64[n_bus + 1]
        CSR pointers: bus ``b``'s path is ``path_lines[path_indptr[b]:path_indptr[b + 1]]``.
    path_lines : int64[n_path]
        Line rows of every path, bus end first.
    line_network : int64[n_line]
        Position of the line's network in the region order.
    line_ids : int64[n_line]
        pandapower line index within its network.
    line_i_max_a : float64[n_line]
        Line ampacity [A].
    line_i_peak_a, line_i_low_a : float64[n_line]
        Base-case line current at peak / low load [A].
    trafo_ids : int64[n_trafo]
        pandapower trafo index within its network.
    trafo_i_rated_a : float64[n_trafo]
        Rated LV current [A].
    trafo_i_peak_a, trafo_i_low_a : float64[n_trafo]
        Base-case LV current at peak / low load [A].
    bus_problem : int8[n_bus]
        Why the bus cannot be assessed (:class:`~powercheck.grid.precompute.BusProblem`; 0: it can).
    """

    # per bus
    u_ll_v: npt.NDArray[np.float64]
    rk1_max: npt.NDArray[np.float64]
    xk1_max: npt.NDArray[np.float64]
    rk1_min: npt.NDArray[np.float64]
    xk1_min: npt.NDArray[np.float64]
    rk0_min: npt.NDArray[np.float64]
    xk0_min: npt.NDArray[np.float64]
    vm_peak_pu: npt.NDArray[np.float64]
    vm_low_pu: npt.NDArray[np.float64]
    unbalance_base_percent: npt.NDArray[np.float64]
    path_length_km: npt.NDArray[np.float64]
    bus_ids: npt.NDArray[np.int64]
    network_index: npt.NDArray[np.int64]
    system_tn: npt.NDArray[np.bool_]
    meshed: npt.NDArray[np.bool_]
    trafo_row: npt.NDArray[np.int64]
    bus_parent_row: npt.NDArray[np.int64]
    service_line_row: npt.NDArray[np.int64]
    feeder_line_row: npt.NDArray[np.int64]
    path_indptr: npt.NDArray[np.int64]
    path_lines: npt.NDArray[np.int64]
    # per line
    line_network: npt.NDArray[np.int64]
    line_ids: npt.NDArray[np.int64]
    line_i_max_a: npt.NDArray[np.float64]
    line_i_peak_a: npt.NDArray[np.float64]
    line_i_low_a: npt.NDArray[np.float64]
    # per transformer
    trafo_ids: npt.NDArray[np.int64]
    trafo_i_rated_a: npt.NDArray[np.float64]
    trafo_i_peak_a: npt.NDArray[np.float64]
    trafo_i_low_a: npt.NDArray[np.float64]
    bus_problem: npt.NDArray[np.int8]

    @classmethod
    def from_networks(cls, networks: Sequence[NetworkArrays]) -> RegionArrays:
        """Concatenate the networks' arrays (region order), shifting line/trafo/path references."""
        nets = list(networks)
        line_off = np.cumsum([0] + [n.line_ids.shape[0] for n in nets])
        bus_off = np.cumsum([0] + [n.n_bus for n in nets])
        trafo_off = np.cumsum([0] + [n.trafo_ids.shape[0] for n in nets])
        path_off = np.cumsum([0] + [n.path_lines.shape[0] for n in nets])
        return cls(
            u_ll_v=_concat([n.u_ll_v for n in nets], float),
            rk1_max=_concat([n.rk1_max for n in nets], float),
            xk1_max=_concat([n.xk1_max for n in nets], float),
            rk1_min=_concat([n.rk1_min for n in nets], float),
            xk1_min=_concat([n.xk1_min for n in nets], float),
            rk0_min=_concat([n.rk0_min for n in nets], float),
            xk0_min=_concat([n.xk0_min for n in nets], float),
            vm_peak_pu=_concat([n.vm_peak_pu for n in nets], float),
            vm_low_pu=_concat([n.vm_low_pu for n in nets], float),
            unbalance_base_percent=_concat([n.unbalance_base_percent for n in nets], float),
            path_length_km=_concat([n.path_length_km for n in nets], float),
            bus_ids=_concat([n.bus_ids for n in nets], np.int64),
            network_index=np.concatenate([np.full(n.n_bus, i, dtype=np.int64) for i, n in enumerate(nets)]),
            system_tn=np.concatenate([np.full(n.n_bus, n.system == "TN_400") for n in nets]),
            meshed=_concat([n.bus_meshed for n in nets], bool),
            trafo_row=np.concatenate([_shift(n.trafo_row, trafo_off[i]) for i, n in enumerate(nets)]),
            bus_parent_row=np.concatenate([_shift(n.bus_parent, bus_off[i]) for i, n in enumerate(nets)]),
            service_line_row=np.concatenate([_shift(n.service_line_row, line_off[i]) for i, n in enumerate(nets)]),
            feeder_line_row=np.concatenate([_shift(n.feeder_line_row, line_off[i]) for i, n in enumerate(nets)]),
            path_indptr=_concat(
                [np.array([0], dtype=np.int64)] + [n.path_indptr[1:] + path_off[i] for i, n in enumerate(nets)],
                np.int64,
            ),
            path_lines=_concat([n.path_lines + line_off[i] for i, n in enumerate(nets)], np.int64),
            line_network=np.concatenate([np.full(n.line_ids.shape[0], i) for i, n in enumerate(nets)]),
            line_ids=_concat([n.line_ids for n in nets], np.int64),
            line_i_max_a=_concat([n.line_i_max_a for n in nets], float),
            line_i_peak_a=_concat([n.line_i_peak_a for n in nets], float),
            line_i_low_a=_concat([n.line_i_low_a for n in nets], float),
            trafo_ids=_concat([n.trafo_ids for n in nets], np.int64),
            trafo_i_rated_a=_concat([n.trafo_i_rated_a for n in nets], float),
            trafo_i_peak_a=_concat([n.trafo_i_peak_a for n in nets], float),
            trafo_i_low_a=_concat([n.trafo_i_low_a for n in nets], float),
            bus_problem=_concat([n.bus_problem for n in nets], np.int8),
        )

    @property
    def n_bus(self) -> int:
        """Number of buses of all networks."""
        return int(self.bus_ids.shape[0])


class GridRegion:
    """Networks, per-bus arrays and the customer index of one region.

    Attributes
    ----------
    name, description : str
        From the manifest.
    networks : dict of str to NetworkArrays
        Per-network arrays by network id, in region order.
    network_order : list of str
        Network ids in region order.
    specs : dict of str to NetworkSpec
        The manifest's network entries by id.
    defaults : dict of str to Param
        Grid defaults with the region's overrides.
    version : str
        Grid-model version: a hash of the manifest, the networks' cache keys and the customer index.
    base_dir : Path or None
        Directory of the manifest.
    arrays : RegionArrays
        All networks' arrays concatenated.
    customers : DataFrame
        The validated customer index (:data:`~powercheck.grid.customers.CUSTOMER_SCHEMA`
        columns, any extra columns of the file, and ``bus_row``: the customer's row in
        :attr:`arrays`).
    """

    def __init__(
        self,
        name: str,
        networks: list[NetworkArrays],
        specs: list[NetworkSpec],
        customers: pd.DataFrame | None,
        defaults: dict[str, Param],
        version: str,
        base_dir: Path | None = None,
        description: str = "",
        customers_origin: str | None = None,
        ams: AmsSummary | None = None,
        measured: dict[str, MeasuredBaseCase] | None = None,
        customers_table: pa.Table | None = None,
    ):
        self.name = name
        self.description = description
        self.networks = {n.network_id: n for n in networks}
        self.network_order = [n.network_id for n in networks]
        self.specs = {s.id: s for s in specs}
        self.defaults = defaults
        self.version = version
        self.base_dir = base_dir
        self.arrays = RegionArrays.from_networks(networks)
        if customers_table is None:
            origin = f"region {name} customer index" + (f" {customers_origin}" if customers_origin else "")
            customers = normalise_customer_points(customers, self.networks, origin)
            customers = apply_load_basis(customers, defaults, ams, origin)
            customers = _grid_model_fuses(customers, self.networks)
            customers_table = pa.Table.from_pandas(customers, preserve_index=False)
        self._customers_df = customers
        self.customers_table = customers_table
        """The validated customer index as an Arrow table (what :attr:`customers` holds, without pandas)."""
        ids = customers_table.column("metering_point_id").to_pylist()
        self._mp_index = {str(m): i for i, m in enumerate(ids)}
        self.ams = ams
        """The region's AMS summary when the customer index was built in this load (None from the cache)."""
        self.measured = dict(measured or {})
        self._point_counts: dict[str, tuple[int, int]] | None = None
        """Per network with metered points: its measured base cases (also kept in the cached index)."""

    @property
    def customers(self) -> pd.DataFrame:
        """The validated customer index as a DataFrame (built from :attr:`customers_table` on first use)."""
        if self._customers_df is None:
            self._customers_df = self.customers_table.to_pandas()
        return self._customers_df

    def customer_column(self, name: str, dtype: Any = None) -> np.ndarray:
        """One column of the customer index as a NumPy array (no pandas)."""
        column = self.customers_table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = np.array(column.to_pylist(), dtype=object)
        else:
            array = column.combine_chunks()
            if array.null_count:
                if not pa.types.is_floating(array.type):
                    raise ValueError(f"customer index column {name}: {array.null_count} missing values")
                values = np.array([math.nan if v is None else v for v in array.to_pylist()], dtype=float)
            else:
                values = _arrow_numbers(array)
        if dtype is float:
            return np.asarray(values, dtype=float)
        return values if dtype is None else values.astype(dtype)

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: Callable[[str], None] | None = None,
        allow_outside: bool = False,
    ) -> GridRegion:
        """Load a region directory (or its ``region.toml``).

        ``allow_outside``: the manifest may name network files and a customer index outside its
        directory (absolute paths, ``..``); refused by default.
        """
        manifest = parse_manifest(path, allow_outside=allow_outside)
        base_dir = manifest.base_dir
        specs = manifest.networks
        defaults = load_grid_defaults(manifest.default_overrides, origin=str(manifest.path))
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        arrays: list[NetworkArrays] = []
        cp = manifest.customer_points
        map_path = (
            region_path(manifest.path, "region.cim_map", manifest.cim_map, allow_outside)
            if manifest.cim_map is not None
            else None
        )
        ams_path = region_path(manifest.path, "region.ams", manifest.ams, allow_outside) if manifest.ams else None
        if cp == "auto":
            cp_hash = "auto"
            cp_origin = "(derived from the networks' loads)"
            cp_path = None
        else:
            cp_path = region_path(manifest.path, "region.customer_points", cp, allow_outside)
            try:
                cp_hash = hashlib.sha256(cp_path.read_bytes()).hexdigest()
            except OSError:
                read_customer_points(cp_path)  # raises naming the file and why
                raise
            cp_origin = str(cp_path)
        cim_hash = _file_hash(map_path, "CIM map") if map_path is not None else None
        ams_hash = _file_hash(ams_path, "AMS file") if ams_path is not None else None
        # the measured base cases follow from the AMS file, the customer index and the CIM map: their hashes
        # stand for them in the networks' cache keys, so a warm load need not read the AMS file
        measured_token = (
            hashlib.sha256(json.dumps([ams_hash, cp_hash, cim_hash, [s.id for s in specs]]).encode()).hexdigest()
            if ams_hash is not None
            else None
        )
        keys = [_cache_key(spec, base_dir, defaults, measured_token) for spec in specs]
        version_payload = {
            "cim_map": cim_hash,
            "manifest": hashlib.sha256(manifest.path.read_bytes()).hexdigest(),
            "networks": keys,
            "customer_points": cp_hash,
            "ams": ams_hash,
        }
        version = "grid-" + hashlib.sha256(json.dumps(version_payload, sort_keys=True).encode()).hexdigest()[:12]
        sources: dict[str, Any] = {}

        def read_sources() -> tuple[pd.DataFrame | None, AmsSummary | None, dict[str, MeasuredBaseCase]]:
            """The customer index file (with the CIM map's buses), the AMS summary and the measured base cases."""
            if not sources:
                bus_of = None
                if map_path is not None:
                    bus_of = cim_bus_join(map_path, {s.id: s for s in specs}, base_dir, defaults, cache, use_cache)
                customers = read_customer_points(cp_path, bus_of) if cp_path is not None else None
                ams = None
                measured: dict[str, MeasuredBaseCase] = {}
                if ams_path is not None:
                    if progress:
                        progress(f"AMS series {manifest.ams}")
                    ams = read_region_ams(ams_path, customers, [s.id for s in specs])
                    measured = measured_base_cases(ams, customers)
                sources.update(customers=customers, ams=ams, measured=measured)
            return sources["customers"], sources["ams"], sources["measured"]

        nets: list[pp.pandapowerNet | None] = []
        for spec, key in zip(specs, keys):
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
                measured = read_sources()[2]
                computed = precompute_network(spec.id, spec.system, net, defaults, used, measured.get(spec.id))
                arrays.append(computed)
                if use_cache:
                    try:
                        cache.mkdir(parents=True, exist_ok=True)
                        computed.save(cache_file)
                    except OSError:
                        pass  # a read-only cache is not an error; we just recompute next time
            nets.append(net)
        common = dict(name=manifest.name, networks=arrays, specs=specs, defaults=defaults, version=version,
                      base_dir=base_dir, description=manifest.description, customers_origin=cp_origin)  # fmt: skip
        # the validated customer index, cached under the grid-model version (a warm load reads no pandas)
        index_file = cache / f"customers-{manifest.name}-{version}-{CUSTOMER_CACHE_VERSION}.arrow"
        if use_cache and index_file.is_file():
            try:
                table = _read_arrow(index_file)
                return cls(customers=None, customers_table=table, measured=_measured_from_table(table), **common)
            except Exception:
                index_file.unlink(missing_ok=True)
        if cp_path is None:
            customers = pd.concat(
                [_auto_points(spec, i + 1, base_dir, defaults, nets[i], cache, key, use_cache)
                 for i, (spec, key) in enumerate(zip(specs, keys))],
                ignore_index=True,
            )  # fmt: skip
        else:
            customers = read_sources()[0]
        _, ams, measured = read_sources() if cp_path is not None else (None, None, {})
        region = cls(customers=customers, ams=ams, measured=measured, **common)
        if use_cache:
            try:
                cache.mkdir(parents=True, exist_ok=True)
                _write_arrow(_with_measured(region.customers_table, region.measured), index_file)
            except OSError:
                pass
        return region

    # ------------------------------------------------------------------ queries
    def locate(self, metering_point_ids: list[str] | np.ndarray) -> np.ndarray:
        """Customer-index rows for the ids (-1 where unknown)."""
        index = self._mp_index
        return np.fromiter((index.get(str(m), -1) for m in metering_point_ids), dtype=np.int64,
                           count=len(metering_point_ids))  # fmt: skip

    def network_net(self, network_id: str) -> pp.pandapowerNet:
        """The completed pandapower network (loaded fresh from its source)."""
        spec = self.specs[network_id]
        net, _ = build_network(spec, self.base_dir, self.defaults)
        return net

    def base_case_basis(self, network_id: str) -> str:
        """What the network's base-case load flows stand on, in words."""
        m = self.measured.get(network_id)
        if m is None:
            scaling = self.defaults["peak_load_scaling"].value
            return f"grid model loads x peak_load_scaling {scaling:g}"
        if self._point_counts is None:
            nets = self.customer_column("network_id").astype(str)
            ams = self.customer_column("peak_basis").astype(str) == "ams"
            self._point_counts = {
                nid: (int((nets == nid).sum()), int((ams & (nets == nid)).sum())) for nid in self.networks
            }
        points, metered = self._point_counts.get(network_id, (0, 0))
        return (
            f"ams: coincident peak {m.peak_hour}, low load/high export {m.low_hour} "
            f"({metered} of {points} points metered; the others from the grid model)"
        )

    def customer_assumptions(self, cp_row: int) -> list[str]:
        """The [R] values behind a customer's existing peak (Velander constants), as 'grid:<key>'."""
        text = self.customers_table.column("peak_assumptions")[cp_row].as_py()
        return text.split(",") if text else []

    def assumptions_for_network(self, network_id: str) -> list[str]:
        """The [R] grid defaults that were applied to this network, as 'grid:<key>'."""
        arrays = self.networks[network_id]
        keys = set(arrays.applied_defaults) | {"low_load_scaling"}
        return sorted(f"grid:{k}" for k in keys if k in self.defaults and self.defaults[k].is_assumption)

    def grid_problems(self) -> list[dict[str, Any]]:
        """Every bus that cannot be assessed: ``{"network", "bus", "problem", "why", "customer_points"}``.

        ``customer_points`` counts the metering points at the bus: every notification there is
        escalated naming the problem (``GRID.DATA``).
        """
        found = [
            (nid, bus, problem, why)
            for nid in self.network_order
            for bus, problem, why in self.networks[nid].problems()
        ]
        if not found:
            return []
        points: dict[tuple[str, int], int] = {}
        for nid, bus in zip(self.customer_column("network_id"), self.customer_column("bus")):
            points[(str(nid), int(bus))] = points.get((str(nid), int(bus)), 0) + 1
        return [
            {
                "network": nid,
                "bus": bus,
                "problem": problem.name.lower(),
                "why": why,
                "customer_points": int(points.get((nid, bus), 0)),
            }
            for nid, bus, problem, why in found
        ]

    def bus_problem(self, bus_row: int) -> str | None:
        """Why the bus at a row of :attr:`arrays` cannot be assessed (None: it can)."""
        code = int(self.arrays.bus_problem[bus_row])
        if not code:
            return None
        nid = self.network_order[int(self.arrays.network_index[bus_row])]
        return BusProblem(code).describe(self.networks[nid].network_problem)

    def summary(self) -> dict[str, Any]:
        """Name, version, per-network counts and flags, grid-data problems, number of customer points (JSON-ready)."""
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
                    "problem_buses": int((self.networks[nid].bus_problem != 0).sum()),
                    "network_problem": self.networks[nid].network_problem or None,
                    "import_notes": self.networks[nid].extra.get("notes", []),
                }
                for nid in self.network_order
            ],
            "customer_points": int(self.customers_table.num_rows),
            "grid_problems": self.grid_problems(),
        }


# ---------------------------------------------------------------------------------------------- load basis


def read_region_ams(path: Path, customers: pd.DataFrame, network_ids: Sequence[str]) -> AmsSummary:
    """Read a region's AMS file: ids must be in the customer index; groups are the networks."""
    known = customers.metering_point_id.astype(str).tolist()
    order = {nid: i for i, nid in enumerate(network_ids)}
    groups = np.array([order.get(str(n), -1) for n in customers.network_id], dtype=np.int64)
    return read_ams(path, known=known, groups=groups, group_names=list(network_ids), origin=f"AMS file {path}")


def measured_base_cases(ams: AmsSummary, customers: pd.DataFrame) -> dict[str, MeasuredBaseCase]:
    """Per network with metered points: their hourly import and export at its peak and low hours, per bus."""
    rows = pd.Index(customers.metering_point_id.astype(str)).get_indexer(ams.metering_point_id.astype(str))
    frame = pd.DataFrame(
        {
            "group": ams.group,
            "bus": customers.bus.to_numpy()[rows].astype(np.int64),
            "pi": ams.at_peak_import_kw,
            "pe": ams.at_peak_export_kw,
            "li": ams.at_low_import_kw,
            "le": ams.at_low_export_kw,
        }
    )
    out: dict[str, MeasuredBaseCase] = {}
    for g, part in frame[frame.group >= 0].groupby("group", sort=True):
        if ams.peak_hour[g] < 0:
            continue
        per_bus = part.groupby("bus", sort=True)[["pi", "pe", "li", "le"]].sum()
        out[ams.group_names[g]] = MeasuredBaseCase(
            buses=per_bus.index.to_numpy(dtype=np.int64),
            peak_import_kw=per_bus["pi"].to_numpy(dtype=float),
            peak_export_kw=per_bus["pe"].to_numpy(dtype=float),
            low_import_kw=per_bus["li"].to_numpy(dtype=float),
            low_export_kw=per_bus["le"].to_numpy(dtype=float),
            peak_hour=AmsSummary.hour_text(int(ams.peak_hour[g])),
            low_hour=AmsSummary.hour_text(int(ams.low_hour[g])),
        )
    return out


PEAK_BASES = ("ams", "customer_index", "velander")
"""Where a customer's existing peak comes from (column ``peak_basis``)."""


def apply_load_basis(
    customers: pd.DataFrame, defaults: dict[str, Param], ams: AmsSummary | None, origin: str
) -> pd.DataFrame:
    """Fill each customer's existing peak and export from AMS, the index or Velander (module docstring).

    Adds ``peak_basis`` (:data:`PEAK_BASES`), ``peak_assumptions`` (comma-separated [R] keys behind
    the peak, as 'grid:<key>'), and, for metered points, ``ams_peak_import_kw``, ``ams_tariff_kw``,
    ``ams_peak_export_kw``.

    Raises
    ------
    GridModelError
        A customer without meter data or a typed-in peak whose category has no Velander constants,
        or whose Velander peak is out of range (names the row and the column).
    """
    df = customers.copy()
    n = len(df)
    basis = np.where(df.existing_peak_kw.isna().to_numpy(), "velander", "customer_index").astype(object)
    assumptions = np.full(n, "", dtype=object)
    peak = df.existing_peak_kw.to_numpy(dtype=float).copy()
    export = df.existing_export_kw.to_numpy(dtype=float).copy()
    for col in ("ams_peak_import_kw", "ams_tariff_kw", "ams_peak_export_kw"):
        df[col] = np.nan
    metered = np.zeros(n, dtype=bool)
    if ams is not None and len(ams):
        rows = pd.Index(df.metering_point_id.astype(str)).get_indexer(ams.metering_point_id.astype(str))
        ok = rows >= 0
        rows, imp, exp_, tar = rows[ok], ams.peak_import_kw[ok], ams.peak_export_kw[ok], ams.tariff_kw[ok]
        df.loc[df.index[rows], "ams_peak_import_kw"] = imp
        df.loc[df.index[rows], "ams_tariff_kw"] = tar
        df.loc[df.index[rows], "ams_peak_export_kw"] = exp_
        has_import = np.isfinite(imp)
        peak[rows[has_import]] = imp[has_import]
        basis[rows[has_import]] = "ams"
        export[rows] = exp_
        metered[rows[has_import]] = True
    problems: list[str] = []
    need = np.flatnonzero((basis == "velander") & ~metered)
    for row in need:
        category = df.customer_category.iat[row]
        if pd.isna(category):
            problems.append(
                f"row {row} customer_category: missing; needed for Velander's peak (no existing_peak_kw, no AMS data)"
            )
            continue
        constants = velander_constants(defaults, str(category))
        if constants is None:
            problems.append(
                f"row {row} customer_category: {category!r} has no Velander constants "
                f"(grid defaults velander_{category}_k1 and _k2)"
            )
            continue
        k1, k2 = constants
        value = float(velander_kw(float(df.annual_energy_kwh.iat[row]), float(k1.value), float(k2.value)))
        if not 0.0 <= value <= 2000.0:
            problems.append(f"row {row} annual_energy_kwh: Velander's peak {value:g} kW is out of range [0, 2000] kW")
            continue
        peak[row] = value
        keys = [f"velander_{category}_{k}" for k, p in (("k1", k1), ("k2", k2)) if p.is_assumption]
        assumptions[row] = ",".join(f"grid:{k}" for k in keys)
    if problems:
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise GridModelError(f"{origin}: " + "; ".join(problems[:10]) + more)
    df["existing_peak_kw"] = peak
    df["existing_export_kw"] = export
    df["peak_basis"] = basis.astype(str)
    df["peak_assumptions"] = assumptions.astype(str)
    return df


def _grid_model_fuses(customers: pd.DataFrame, networks: dict[str, NetworkArrays]) -> pd.DataFrame:
    """Fill a missing ``upstream_fuse_a`` from a fuse of the grid model (a CGMES Fuse on the way to the
    transformer); ``upstream_fuse_source`` says where each value comes from (customer_index / grid_model)."""
    df = customers
    source = np.where(df.upstream_fuse_a.isna().to_numpy(), "", "customer_index").astype(object)
    values = df.upstream_fuse_a.to_numpy(dtype=float).copy()
    for row in np.flatnonzero(source == ""):
        fuses = networks[str(df.network_id.iat[row])].extra.get("upstream_fuse_a", {})
        rating = fuses.get(str(int(df.bus.iat[row])))
        if rating is not None:
            values[row] = rating
            source[row] = "grid_model"
    df["upstream_fuse_a"] = values
    df["upstream_fuse_source"] = source.astype(str)
    return df


CIM_MAP_COLUMNS = ("metering_point_id", "network_id", "mrid")
MAX_CIM_MAP_BYTES = 200 * 1024 * 1024


def network_mrids(
    spec: NetworkSpec, base_dir: Path | None, defaults: dict[str, Param], cache: Path, use_cache: bool
) -> dict[str, int]:
    """A CGMES network's ConnectivityNode and EnergyConsumer mRIDs -> pandapower bus (cached by content)."""
    key = hashlib.sha256(
        json.dumps(
            [source_fingerprint(spec.source, base_dir, {}), installed_version("pandapower"), READER_VERSION]
        ).encode()
    ).hexdigest()[:20]
    cache_file = cache / f"{spec.id}-{key}-mrids.json"
    if use_cache and cache_file.is_file():
        try:
            return {str(k): int(v) for k, v in json.loads(cache_file.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError):
            pass
    net, _ = build_network(spec, base_dir, defaults)
    out = {str(o): int(b) for b, o in net.bus.get("origin_id", pd.Series(dtype=object)).items() if isinstance(o, str)}
    if len(net.load) and "origin_id" in net.load:
        out.update({str(o): int(b) for o, b in zip(net.load.origin_id, net.load.bus) if isinstance(o, str)})
    if use_cache:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps(out), encoding="utf-8")
        except OSError:
            pass
    return out


def cim_bus_join(
    path: Path,
    specs: dict[str, NetworkSpec],
    base_dir: Path | None,
    defaults: dict[str, Param],
    cache: Path,
    use_cache: bool,
) -> Callable[[pd.DataFrame, str], pd.DataFrame]:
    """The customer index's ``bus`` from a CIM mapping table (CSV metering_point_id,network_id,mrid).

    Each mapped point gets the pandapower bus of its mRID (a ConnectivityNode, or an EnergyConsumer's
    bus) in its CGMES network; a ``bus`` already in the index must agree. Errors name the table's row.
    """
    if path.stat().st_size > MAX_CIM_MAP_BYTES:
        raise GridModelError(f"CIM map {path}: larger than {MAX_CIM_MAP_BYTES} bytes")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise GridModelError(f"CIM map {path}: not a readable CSV file ({exc})") from None
    missing = [c for c in CIM_MAP_COLUMNS if c not in table.columns]
    if missing:
        raise GridModelError(
            f"CIM map {path}: column {missing[0]!r} is missing (columns: {', '.join(CIM_MAP_COLUMNS)})"
        )
    mrids: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    buses: dict[str, int] = {}
    for row, (mp, nid, mrid) in enumerate(zip(table.metering_point_id, table.network_id, table.mrid)):
        spec = specs.get(nid)
        if spec is None:
            problems.append(f"row {row} network_id: {nid!r} is not a network of the region")
            continue
        if nid not in mrids:
            mrids[nid] = network_mrids(spec, base_dir, defaults, cache, use_cache)
        bus = mrids[nid].get(mrid)
        if bus is None:
            problems.append(f"row {row} mrid: {mrid!r} is not a ConnectivityNode or EnergyConsumer of {nid!r}")
            continue
        if mp in buses:
            problems.append(f"row {row} metering_point_id: {mp} is mapped twice")
            continue
        buses[mp] = bus
    if problems:
        raise GridModelError(f"CIM map {path}: " + "; ".join(problems[:10]))

    def join(df: pd.DataFrame, origin: str) -> pd.DataFrame:
        df = df.copy()
        mapped = df.metering_point_id.astype(str).map(buses)
        if "bus" not in df.columns:
            df["bus"] = np.nan
        given = pd.to_numeric(df["bus"], errors="coerce")
        clash = mapped.notna() & given.notna() & (given != mapped)
        if clash.any():
            row = int(np.flatnonzero(clash.to_numpy())[0])
            raise GridModelError(
                f"{origin}: row {row} bus: {int(given.iat[row])} differs from the CIM map's bus {int(mapped.iat[row])}"
            )
        df["bus"] = given.where(given.notna(), mapped)
        return df

    return join
