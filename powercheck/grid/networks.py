"""Getting pandapower LV networks and completing them for short-circuit work.

Sources
-------
A network comes from a pandapower JSON file or from one of pandapower's own LV
networks, named ``pandapower:<name>``:

========================================  ==========================================
name                                      pandapower function
========================================  ==========================================
kerber_landnetz_freileitung_1/2           ``create_kerber_landnetz_freileitung_1/2``
kerber_landnetz_kabel_1/2                 ``create_kerber_landnetz_kabel_1/2`` (seeded, see below)
kerber_dorfnetz                           ``create_kerber_dorfnetz`` (seeded)
kerber_vorstadtnetz_kabel_1/2             ``create_kerber_vorstadtnetz_kabel_1/2`` (seeded)
dickert_lv_network                        ``create_dickert_lv_network``
lv_schutterwald                           the packaged JSON (pandapower's loader fails on
                                          its missing trafo vector_group column)
ieee_european_lv_asymmetric               ``ieee_european_lv_asymmetric``
========================================  ==========================================

The Kerber generators with branch-out lines draw the branch cable types from Python's
``random``; they run with ``random.seed(seed)`` (kwarg ``seed``, default 0) so a
``pandapower:`` source always gives the same network -- its cache key is only its name
and arguments, so an unseeded network would not match its cached arrays.

Completion
----------
pandapower's short-circuit and unbalanced solvers need data the example networks
lack (MV source short-circuit power, zero-sequence impedances, conductor end
temperature, a vector group without clock number). :func:`complete_network`
fills exactly the missing items from the grid defaults (``grid_defaults.toml``)
and returns the keys it used, so decisions can name them.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
import re
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from powercheck.lazy import installed_version, lazy_module
from powercheck.params import Param, Range

pp = lazy_module("pandapower")
pn = lazy_module("pandapower.networks")
pd = lazy_module("pandas")

PANDAPOWER_PREFIX = "pandapower:"
OPENDSS_PREFIX = "opendss:"
"""``opendss:<master .dss file>``: an OpenDSS model (:mod:`powercheck.grid.opendss`)."""

SYSTEMS = ("IT_230", "TN_400")
"""Network systems: 230 V IT (3-wire, single-phase loads line-to-line) and 400 V TN."""


class GridModelError(ValueError):
    """A network or customer index cannot be used; the message names the item."""


@dataclass(frozen=True)
class NetworkSpec:
    """One ``[[network]]`` of a region manifest.

    Attributes
    ----------
    id : str
        Network id, unique in the region (used by the customer index).
    system : str
        One of :data:`SYSTEMS`.
    source : str
        Path of a pandapower JSON file (relative to the region directory) or
        ``pandapower:<name>`` (:data:`PANDAPOWER_NETWORKS`).
    lv_kv : float or None
        Move the LV side to this voltage [kV] first (:func:`rescale_lv_voltage`).
    kwargs : dict or None
        Arguments of a ``pandapower:`` source.
    """

    id: str
    system: str
    source: str
    lv_kv: float | None = None
    kwargs: dict[str, Any] | None = None
    slack_from_source: bool = False
    """CGMES: without a slack, make the model's single source the slack (:mod:`powercheck.grid.cgmes`)."""
    allow_unsupplied: bool = False
    """CGMES: load a model with unsupplied buses (reported as islanded) instead of refusing it."""


def _schutterwald(**kwargs: Any) -> pp.pandapowerNet:
    net = pp.from_json(os.path.join(pp.pp_dir, "networks", "lv_schutterwald.json"))
    if not kwargs.get("include_heat_pumps", False):
        net.load = net.load[net.load["type"] != "HP"]
    return net


def _factory(name: str) -> Callable[..., pp.pandapowerNet]:
    """``pandapower.networks.<name>``, looked up when called (pandapower is imported then)."""

    def build(**kwargs: Any) -> pp.pandapowerNet:
        return getattr(pn, name)(**kwargs)

    build.__name__ = name
    return build


def _seeded(fn: Callable[..., pp.pandapowerNet]) -> Callable[..., pp.pandapowerNet]:
    def build(seed: int = 0, **kwargs: Any) -> pp.pandapowerNet:
        state = random.getstate()
        random.seed(seed)
        try:
            return fn(**kwargs)
        finally:
            random.setstate(state)

    return build


PANDAPOWER_NETWORKS: dict[str, Callable[..., pp.pandapowerNet]] = {
    "kerber_landnetz_freileitung_1": _factory("create_kerber_landnetz_freileitung_1"),
    "kerber_landnetz_freileitung_2": _factory("create_kerber_landnetz_freileitung_2"),
    "kerber_landnetz_kabel_1": _seeded(_factory("create_kerber_landnetz_kabel_1")),
    "kerber_landnetz_kabel_2": _seeded(_factory("create_kerber_landnetz_kabel_2")),
    "kerber_dorfnetz": _seeded(_factory("create_kerber_dorfnetz")),
    "kerber_vorstadtnetz_kabel_1": _seeded(_factory("create_kerber_vorstadtnetz_kabel_1")),
    "kerber_vorstadtnetz_kabel_2": _seeded(_factory("create_kerber_vorstadtnetz_kabel_2")),
    "dickert_lv_network": _factory("create_dickert_lv_network"),
    "lv_schutterwald": _schutterwald,
    "ieee_european_lv_asymmetric": _factory("ieee_european_lv_asymmetric"),
}


VECTOR_GROUPS = ("Dyn", "Yyn", "YNyn", "Yzn", "YNd", "Dd", "Yy", "Yd", "Dy")
"""Transformer vector groups (without clock number) pandapower's sequence solvers know."""

GRID_DEFAULT_SCHEMA: dict[str, Range | tuple[str, ...]] = {
    "ext_grid_s_sc_max_mva": Range(0, 1e6, lo_open=True),
    "ext_grid_s_sc_min_mva": Range(0, 1e6, lo_open=True),
    "ext_grid_rx": Range(0, 10),
    "ext_grid_x0x": Range(0, 10, lo_open=True),
    "ext_grid_r0x0": Range(0, 10),
    "line_endtemp_degree": Range(20, 250),
    "line_r0_r1_ratio": Range(1, 20),
    "line_x0_x1_ratio": Range(0, 20, lo_open=True),
    "trafo_vk0_ratio": Range(0, 10, lo_open=True),
    "trafo_vector_group": VECTOR_GROUPS,
    "peak_load_scaling": Range(0, 10, lo_open=True),
    "low_load_scaling": Range(0, 1),
    "low_gen_scaling": Range(0, 2),
    "velander_household_k1": Range(0, 0.01),
    "velander_household_k2": Range(0, 1),
}
"""The type and allowed range of every grid default: a number range, or the allowed strings."""


VELANDER_KEY = re.compile(r"velander_([a-z][a-z0-9_]{0,30})_(k1|k2)")
"""Grid-default keys of Velander's constants per customer category; a region may add categories."""


def default_range(key: str) -> Range | tuple[str, ...] | None:
    """The allowed values of a grid-default key (None: not a grid default)."""
    if key in GRID_DEFAULT_SCHEMA:
        return GRID_DEFAULT_SCHEMA[key]
    match = VELANDER_KEY.fullmatch(key)
    if match:
        return GRID_DEFAULT_SCHEMA[f"velander_household_{match.group(2)}"]
    return None


def velander_constants(defaults: dict[str, Param], category: str) -> tuple[Param, Param] | None:
    """Velander's (k1, k2) of a customer category, None when the defaults have none for it."""
    k1, k2 = defaults.get(f"velander_{category}_k1"), defaults.get(f"velander_{category}_k2")
    return (k1, k2) if k1 is not None and k2 is not None else None


def _check_default(where: str, key: str, param: Param) -> None:
    allowed = default_range(key)
    assert allowed is not None
    value = param.value
    if isinstance(allowed, tuple):
        if not isinstance(value, str) or value not in allowed:
            raise GridModelError(f"{where}defaults.{key}.value: {value!r} is not one of {', '.join(allowed)}")
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise GridModelError(f"{where}defaults.{key}.value: expected a number, got {type(value).__name__}")
    if not allowed.contains(float(value)):
        raise GridModelError(f"{where}defaults.{key}.value: {value!r} is outside the allowed range {allowed}")


def load_grid_defaults(overrides: dict[str, Any] | None = None, origin: str | None = None) -> dict[str, Param]:
    """The packaged grid defaults, with a region's overrides applied.

    Every value is checked against :data:`GRID_DEFAULT_SCHEMA`; a bad override is refused naming
    ``origin`` (the region manifest), the key, the value and the allowed range.
    """
    where = f"{origin}: " if origin else ""
    text = resources.files("powercheck.grid").joinpath("grid_defaults.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    defaults = {key: Param.model_validate(table) for key, table in raw.items()}
    assert set(defaults) == set(GRID_DEFAULT_SCHEMA), "grid_defaults.toml and GRID_DEFAULT_SCHEMA differ"
    if overrides is not None and not isinstance(overrides, dict):
        raise GridModelError(f"{where}defaults: expected tables [defaults.<key>]")
    for key, table in (overrides or {}).items():
        if key not in defaults and not VELANDER_KEY.fullmatch(key):
            raise GridModelError(f"{where}defaults.{key}: unknown grid default (known: {', '.join(sorted(defaults))})")
        if not isinstance(table, dict):
            raise GridModelError(f"{where}defaults.{key}: expected a table with value, tag and source")
        try:
            defaults[key] = Param.model_validate(table)
        except Exception as exc:  # pydantic ValidationError
            first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": (), "msg": str(exc)}
            field = ".".join(str(p) for p in first["loc"])
            raise GridModelError(f"{where}defaults.{key}{'.' + field if field else ''}: {first['msg']}") from None
    for key, param in defaults.items():
        _check_default(where, key, param)
    low, high = defaults["ext_grid_s_sc_min_mva"].value, defaults["ext_grid_s_sc_max_mva"].value
    if low > high:
        given = set(overrides or {})
        if "ext_grid_s_sc_max_mva" in given and "ext_grid_s_sc_min_mva" not in given:
            # name the key the region set, against the packaged value it contradicts
            raise GridModelError(
                f"{where}defaults.ext_grid_s_sc_max_mva.value: {high!r} must not be below "
                f"ext_grid_s_sc_min_mva {low!r} (packaged default; set both)"
            )
        raise GridModelError(
            f"{where}defaults.ext_grid_s_sc_min_mva.value: {low!r} must not exceed ext_grid_s_sc_max_mva {high!r}"
        )
    return defaults


def source_fingerprint(source: str, base_dir: Path | None, kwargs: dict[str, Any]) -> str:
    """A hash that changes when the network's content changes (file bytes, or name+kwargs+pandapower version)."""
    h = hashlib.sha256()
    if source.startswith(OPENDSS_PREFIX):
        from powercheck.grid.opendss import opendss_files

        master = _resolve(source[len(OPENDSS_PREFIX) :], base_dir)
        for f in opendss_files(master, _opendss_base(master, base_dir)):
            h.update(str(f).encode() + b"\0" + f.read_bytes())
    elif source.startswith(PANDAPOWER_PREFIX):
        h.update(f"{source}|{sorted(kwargs.items())!r}|pandapower {installed_version('pandapower')}".encode())
    else:
        path = _resolve(source, base_dir)
        if path.is_dir():
            for f in sorted(path.iterdir()):
                if f.is_file():
                    h.update(f.name.encode() + b"\0" + f.read_bytes())
        else:
            h.update(path.read_bytes())
    return h.hexdigest()


def _opendss_base(master: Path, base_dir: Path | None) -> Path:
    """The directory an OpenDSS model's files must stay inside: the region's, or the master's own when the
    manifest was allowed a source outside the region (``--allow-outside-region``)."""
    if base_dir is not None and master.resolve().is_relative_to(base_dir.resolve()):
        return base_dir
    return master.parent


def _resolve(source: str, base_dir: Path | None) -> Path:
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file() and not path.is_dir():
        raise GridModelError(f"network source {source!r}: file {path} not found")
    return path


def load_source(source: str, base_dir: Path | None = None, kwargs: dict[str, Any] | None = None) -> pp.pandapowerNet:
    """Load a network from a JSON path or a ``pandapower:<name>`` source."""
    kwargs = dict(kwargs or {})
    if source.startswith(PANDAPOWER_PREFIX):
        name = source[len(PANDAPOWER_PREFIX) :]
        try:
            factory = PANDAPOWER_NETWORKS[name]
        except KeyError:
            known = ", ".join(sorted(PANDAPOWER_NETWORKS))
            raise GridModelError(f"network source {source!r}: unknown pandapower network (known: {known})") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return factory(**kwargs)
            except TypeError as exc:
                raise GridModelError(f"network source {source!r}: bad arguments {kwargs}: {exc}") from None
    from powercheck.grid.safe_json import read_network_json

    path = _resolve(source, base_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_network_json(path, f"network source {source!r} ({path})")


def rescale_lv_voltage(net: pp.pandapowerNet, lv_kv: float) -> None:
    """Move every LV bus (< 1 kV) and transformer LV winding to ``lv_kv``, in place.

    Used to turn a 400 V example network into a 230 V IT network with the same
    cables and transformers (the same impedances at a lower voltage, so a weaker
    grid, as Norwegian 230 V IT grids are).
    """
    lv = net.bus.vn_kv < 1.0
    net.bus.loc[lv, "vn_kv"] = lv_kv
    lv_trafo = net.trafo.vn_lv_kv < 1.0
    net.trafo.loc[lv_trafo, "vn_lv_kv"] = lv_kv
    if "std_type" in net.trafo:
        net.trafo.loc[lv_trafo, "std_type"] = None


def _missing(df: Any, column: str) -> np.ndarray:
    if column not in df.columns:
        return np.ones(len(df), dtype=bool)
    values = df[column]
    if values.dtype == object:
        return values.isna().to_numpy() | (values.astype(str).str.strip() == "")
    return values.isna().to_numpy()


def complete_network(net: pp.pandapowerNet, defaults: dict[str, Param]) -> list[str]:
    """Fill data pandapower's short-circuit and 3-phase solvers need, in place.

    Only missing values are filled. Returns the grid-default keys that were used.
    """
    used: set[str] = set()

    def fill(df: Any, column: str, value: Any, key: str | None, scale_from: str | None = None) -> None:
        """Fill the missing entries of ``column`` with ``value`` (or ``value`` x ``scale_from``)."""
        mask = _missing(df, column)
        if not mask.any():
            return
        if column not in df.columns:
            df[column] = np.nan if not isinstance(value, str) else None
        df.loc[mask, column] = df.loc[mask, scale_from] * value if scale_from else value
        if key:
            used.add(key)

    def v(key: str) -> Any:
        return defaults[key].value

    eg = net.ext_grid
    fill(eg, "s_sc_max_mva", v("ext_grid_s_sc_max_mva"), "ext_grid_s_sc_max_mva")
    fill(eg, "s_sc_min_mva", v("ext_grid_s_sc_min_mva"), "ext_grid_s_sc_min_mva")
    for suffix in ("max", "min"):
        fill(eg, f"rx_{suffix}", v("ext_grid_rx"), "ext_grid_rx")
        fill(eg, f"x0x_{suffix}", v("ext_grid_x0x"), "ext_grid_x0x")
        fill(eg, f"r0x0_{suffix}", v("ext_grid_r0x0"), "ext_grid_r0x0")

    line = net.line
    fill(line, "endtemp_degree", v("line_endtemp_degree"), "line_endtemp_degree")
    fill(line, "r0_ohm_per_km", v("line_r0_r1_ratio"), "line_r0_r1_ratio", scale_from="r_ohm_per_km")
    fill(line, "x0_ohm_per_km", v("line_x0_x1_ratio"), "line_x0_x1_ratio", scale_from="x_ohm_per_km")
    fill(line, "c0_nf_per_km", 1.0, None, scale_from="c_nf_per_km")

    trafo = net.trafo
    if len(trafo):
        if "vector_group" not in trafo.columns:
            trafo["vector_group"] = None
        normalised = []
        for g in trafo["vector_group"].astype(object):
            if g is None or (isinstance(g, float) and np.isnan(g)) or str(g).strip() == "":
                normalised.append(v("trafo_vector_group"))
                used.add("trafo_vector_group")
            else:
                stripped = str(g).rstrip("0123456789")
                if stripped != str(g):
                    used.add("trafo_vector_group")
                normalised.append(stripped)
        trafo["vector_group"] = normalised
        fill(trafo, "vk0_percent", v("trafo_vk0_ratio"), "trafo_vk0_ratio", scale_from="vk_percent")
        fill(trafo, "vkr0_percent", v("trafo_vk0_ratio"), "trafo_vk0_ratio", scale_from="vkr_percent")
        for col, value in (("mag0_percent", 100.0), ("mag0_rx", 0.0), ("si0_hv_partial", 0.9)):
            fill(trafo, col, value, None)
    return sorted(used)


def _numbers(df: Any, column: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number)."""
    if column not in df.columns:
        return np.full(len(df), np.nan)
    return np.asarray(pd.to_numeric(df[column], errors="coerce"), dtype=float)


def element_problems(net: pp.pandapowerNet) -> list[str]:
    """Elements with data the short-circuit and load-flow calculations cannot use, each named with why.

    Lines: resistance, reactance, length or ampacity missing, not finite or negative, or a
    series impedance of zero (pandapower divides by it). Transformers: rated power or
    short-circuit voltage missing or not positive, resistive part missing. Empty when every
    element is usable.
    """
    problems: list[str] = []
    line = net.line
    if len(line):
        values = {col: _numbers(line, col) for col in ("r_ohm_per_km", "x_ohm_per_km", "length_km", "max_i_ka")}
        for col, v in values.items():
            for idx in line.index[~(np.isfinite(v) & (v >= 0))]:
                problems.append(f"line {idx}: {col} missing or negative ({line.at[idx, col]!r})")
        length = values["length_km"]
        zero = (np.nan_to_num(values["r_ohm_per_km"]) * length == 0) & (
            np.nan_to_num(values["x_ohm_per_km"]) * length == 0
        )
        for idx in line.index[zero & np.isfinite(length)]:
            problems.append(
                f"line {idx}: zero impedance (length_km = {line.at[idx, 'length_km']:g}, "
                f"r_ohm_per_km = {line.at[idx, 'r_ohm_per_km']:g}, x_ohm_per_km = {line.at[idx, 'x_ohm_per_km']:g})"
            )
    trafo = net.trafo
    if len(trafo):
        for col in ("vk_percent", "sn_mva", "vn_lv_kv", "vn_hv_kv"):
            v = _numbers(trafo, col)
            for idx in trafo.index[~(np.isfinite(v) & (v > 0))]:
                problems.append(f"trafo {idx}: {col} missing or not positive ({trafo.at[idx, col]!r})")
        v = _numbers(trafo, "vkr_percent")
        for idx in trafo.index[~(np.isfinite(v) & (v >= 0))]:
            problems.append(f"trafo {idx}: vkr_percent missing or negative ({trafo.at[idx, 'vkr_percent']!r})")
    return problems


HEALTHY_LOAD_FACTORS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2)


def healthy_load_factor(
    net: pp.pandapowerNet,
    p_mw: Any,
    q_mvar: Any,
    *,
    vm_min: float = 0.94,
    loading_max: float = 75.0,
    decimals: int | None = None,
) -> float:
    """Largest factor of :data:`HEALTHY_LOAD_FACTORS` that keeps a load case healthy.

    The loads are set to ``p_mw``/``q_mvar`` x factor (optionally rounded to ``decimals``)
    with existing generation switched off, on a copy of ``net``; the case is healthy when
    every bus is at or above ``vm_min`` and no line is loaded above ``loading_max`` [%].
    Used where a 400 V example grid is moved to 230 V IT, whose own planning load it
    does not carry (the demo region, what-if feeders).
    """
    test = copy.deepcopy(net)
    test.load["scaling"] = 1.0
    if len(test.sgen):
        test.sgen["in_service"] = False
    p_mw = np.asarray(p_mw, dtype=float)
    q_mvar = np.asarray(q_mvar, dtype=float)
    for factor in HEALTHY_LOAD_FACTORS:
        p, q = p_mw * factor, q_mvar * factor
        if decimals is not None:
            p, q = p.round(decimals), q.round(decimals)
        test.load["p_mw"] = p
        test.load["q_mvar"] = q
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(test)
        if test.res_bus.vm_pu.min() >= vm_min and test.res_line.loading_percent.max() <= loading_max:
            return factor
    raise GridModelError(f"network {net.name}: no load factor gives a healthy base case")


def build_network(
    spec: NetworkSpec, base_dir: Path | None, defaults: dict[str, Param]
) -> tuple[pp.pandapowerNet, list[str]]:
    """Load, rescale and complete one network; returns it with the grid-default keys used."""
    if spec.source.startswith(OPENDSS_PREFIX):
        from powercheck.grid.opendss import load_opendss

        master = _resolve(spec.source[len(OPENDSS_PREFIX) :], base_dir)
        net, notes = load_opendss(master, _opendss_base(master, base_dir))
        net["powercheck_notes"] = notes
        path = None
    else:
        path = None if spec.source.startswith(PANDAPOWER_PREFIX) else _resolve(spec.source, base_dir)
    if spec.source.startswith(OPENDSS_PREFIX):
        pass  # imported above
    elif path is not None and (path.is_dir() or path.suffix.lower() == ".zip"):
        from powercheck.grid.cgmes import import_cgmes

        imported = import_cgmes(
            path,
            origin=f"network {spec.id} source {spec.source!r}",
            slack_from_source=spec.slack_from_source,
            allow_unsupplied=spec.allow_unsupplied,
        )
        net = imported.net
        net["powercheck_notes"] = list(imported.notes) + [
            f"unsupplied bus {name} ({mrid})" for _, name, mrid in imported.unsupplied
        ]
    else:
        net = load_source(spec.source, base_dir, spec.kwargs)
    if spec.lv_kv is not None:
        rescale_lv_voltage(net, spec.lv_kv)
    used = complete_network(net, defaults)
    return net, used


def prepared_copy(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """A deep copy safe to modify (scaling, extra loads)."""
    return copy.deepcopy(net)
