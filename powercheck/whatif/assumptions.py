"""Device assumptions of a what-if study, read from TOML (defaults: ``assumptions.toml`` in this package).

Every key is checked: unknown keys, wrong types and numbers outside their range (:data:`RANGES`)
are errors naming the key (and the file). Own profiles (``[profiles] file``) are a Parquet file
of per-customer time series, resolved relative to the TOML file and required to stay inside
its directory; see :func:`read_profiles`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from powercheck.params import Range


class AssumptionsError(ValueError):
    """A bad assumptions file or own-profile file (the message names the file and key)."""


RANGES: dict[str, Range] = {
    "ev.energy_kwh": Range(0.0, 200.0, lo_open=True),
    "ev.arrival_mean_h": Range(0.0, 24.0),
    "ev.arrival_sd_h": Range(0.0, 12.0),
    "ev.chargers.current_a": Range(0.0, 63.0, lo_open=True),
    "ev.chargers.phases": Range(1, 3),
    "ev.chargers.probability": Range(0.0, 1.0),
    "ev.smart_charging.share": Range(0.0, 1.0),
    "ev.smart_charging.current_limit_a": Range(6.0, 63.0),  # IEC 61851-1: 6 A is the lowest PWM current
    "pv.kwp": Range(0.0, 1000.0, lo_open=True),
    "pv.single_phase_share": Range(0.0, 1.0),
    "pv.single_phase_kwp": Range(0.0, 20.0, lo_open=True),
    "pv.cosphi_p.p_start": Range(0.0, 1.0, hi_open=True),
    "pv.cosphi_p.cos_phi_min": Range(0.8, 1.0),
    "pv.q_u.v1": Range(0.8, 1.2),
    "pv.q_u.v2": Range(0.8, 1.2),
    "pv.q_u.v3": Range(0.8, 1.2),
    "pv.q_u.v4": Range(0.8, 1.2),
    "pv.q_u.q_max": Range(0.0, 1.0),
    "pv.q_u.iterations": Range(1, 100),
    "heat_pump.share": Range(0.0, 1.0),
    "heat_pump.kw": Range(0.0, 50.0, lo_open=True),
    "heat_pump.winter_duty": Range(0.0, 1.0),
    "heat_pump.summer_duty": Range(0.0, 1.0),
    "battery.share": Range(0.0, 1.0),
    "battery.kwh": Range(0.0, 200.0, lo_open=True),
    "battery.kw_per_kwh": Range(0.05, 5.0),
    "base_load.unbalance": Range(0.0, 1.0),
}
"""Allowed range of every number (lists: of each element; ``ev.chargers.*``: of each charger)."""

PV_CONTROLS = ("none", "cosphi_p", "q_u")
PROFILE_LIMIT_KW = Range(-1000.0, 1000.0)
"""Allowed range of own-profile values [kW]."""


@dataclass(frozen=True)
class Charger:
    label: str
    current_a: float
    phases: int
    probability: float


@dataclass(frozen=True)
class Assumptions:
    """Validated device assumptions (see ``assumptions.toml`` for the meaning of every field)."""

    ev_energy_kwh: tuple[float, float] = (4.0, 16.0)
    ev_arrival_mean_h: float = 18.0
    ev_arrival_sd_h: float = 2.0
    ev_chargers: tuple[Charger, ...] = (
        Charger("1ph-16A", 16.0, 1, 0.2),
        Charger("1ph-32A", 32.0, 1, 0.2),
        Charger("3ph-16A", 16.0, 3, 0.45),
        Charger("3ph-32A", 32.0, 3, 0.15),
    )
    smart_share: float = 0.0
    smart_current_limit_a: float = 10.0
    pv_kwp: tuple[float, float] = (4.0, 10.0)
    pv_single_phase_share: float = 0.3
    pv_single_phase_kwp: tuple[float, float] = (1.5, 3.6)
    pv_control: str = "cosphi_p"
    cosphi_p_start: float = 0.5
    cosphi_min: float = 0.9
    q_u: tuple[float, float, float, float] = (0.93, 0.97, 1.03, 1.07)
    q_u_max: float = 0.436
    q_u_iterations: int = 20
    hp_share: float = 0.0
    hp_kw: tuple[float, float] = (2.0, 6.0)
    hp_winter_duty: float = 0.8
    hp_summer_duty: float = 0.05
    battery_share: float = 0.0
    battery_kwh: tuple[float, float] = (5.0, 10.0)
    battery_kw_per_kwh: float = 0.5
    base_unbalance: float = 0.0
    profiles_file: str = ""
    source: str = "packaged defaults"
    text: str = field(default="", compare=False, repr=False)

    def recalled_in_use(self) -> list[str]:
        """The assumptions tagged [R] (recalled, not verified) that this study uses, by name."""
        out = []
        if self.pv_control == "cosphi_p":
            out.append(
                f"pv.cosphi_p (cos phi(P): 1 up to {self.cosphi_p_start:g} x rated, {self.cosphi_min:g} at rated)"
            )
        if self.pv_control == "q_u":
            out.append(f"pv.q_u (Q(U) at {', '.join(f'{v:g}' for v in self.q_u)} pu, q_max {self.q_u_max:g})")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("text")
        return d


def _num(where: str, key: str, value: Any, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssumptionsError(f"{where}{key}: expected a number, got {value!r}")
    if integer and value != int(value):
        raise AssumptionsError(f"{where}{key}: expected a whole number, got {value!r}")
    rng = RANGES[_range_key(key)]
    if not rng.contains(float(value)):
        raise AssumptionsError(f"{where}{key}: {value!r} outside the allowed range {rng}")
    return int(value) if integer else float(value)


def _range_key(key: str) -> str:
    return key.split("[")[0] + key.split("]", 1)[1] if "[" in key else key


def _pair(where: str, key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise AssumptionsError(f"{where}{key}: expected [low, high], got {value!r}")
    lo, hi = (_num(where, key, v) for v in value)
    if lo > hi:
        raise AssumptionsError(f"{where}{key}: low {lo:g} above high {hi:g}")
    return lo, hi


def _table(where: str, data: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise AssumptionsError(f"{where}{name}: expected a table")
    for key in table:
        if key not in allowed:
            raise AssumptionsError(f"{where}{name}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return table


def parse_assumptions(text: str, where: str = "", base_dir: Path | None = None) -> Assumptions:
    """Assumptions from TOML text; missing keys take the packaged defaults."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AssumptionsError(f"{where}not valid TOML: {exc}") from None
    allowed_top = {"ev", "pv", "heat_pump", "battery", "base_load", "profiles"}
    for key in data:
        if key not in allowed_top:
            raise AssumptionsError(f"{where}{key}: unknown table (allowed: {', '.join(sorted(allowed_top))})")
    d = _defaults_dict()
    ev = _table(where, data, "ev", {"energy_kwh", "arrival_mean_h", "arrival_sd_h", "chargers", "smart_charging"})
    if "energy_kwh" in ev:
        d["ev_energy_kwh"] = _pair(where, "ev.energy_kwh", ev["energy_kwh"])
    for k in ("arrival_mean_h", "arrival_sd_h"):
        if k in ev:
            d[f"ev_{k}"] = _num(where, f"ev.{k}", ev[k])
    if "chargers" in ev:
        chargers = ev["chargers"]
        if not isinstance(chargers, list) or not chargers:
            raise AssumptionsError(f"{where}ev.chargers: expected a non-empty array of tables")
        out = []
        for i, c in enumerate(chargers):
            key = f"ev.chargers[{i}]"
            if not isinstance(c, dict):
                raise AssumptionsError(f"{where}{key}: expected a table")
            extra = set(c) - {"label", "current_a", "phases", "probability"}
            missing = {"current_a", "phases", "probability"} - set(c)
            if extra or missing:
                bad = sorted(extra)[0] if extra else sorted(missing)[0]
                raise AssumptionsError(f"{where}{key}.{bad}: {'unknown key' if extra else 'missing'}")
            phases = _num(where, f"{key}.phases", c["phases"], integer=True)
            if phases not in (1, 3):
                raise AssumptionsError(f"{where}{key}.phases: 1 or 3, got {phases}")
            out.append(
                Charger(
                    str(c.get("label", f"{phases}ph-{c['current_a']}A")),
                    _num(where, f"{key}.current_a", c["current_a"]),
                    int(phases),
                    _num(where, f"{key}.probability", c["probability"]),
                )
            )
        total = sum(c.probability for c in out)
        if abs(total - 1.0) > 1e-6:
            raise AssumptionsError(f"{where}ev.chargers.probability: the probabilities add up to {total:g}, not 1")
        d["ev_chargers"] = tuple(out)
    smart = _table(where, ev, "smart_charging", {"share", "current_limit_a"}) if "smart_charging" in ev else {}
    if "share" in smart:
        d["smart_share"] = _num(where, "ev.smart_charging.share", smart["share"])
    if "current_limit_a" in smart:
        d["smart_current_limit_a"] = _num(where, "ev.smart_charging.current_limit_a", smart["current_limit_a"])

    pv = _table(where, data, "pv", {"kwp", "single_phase_share", "single_phase_kwp", "control", "cosphi_p", "q_u"})
    if "kwp" in pv:
        d["pv_kwp"] = _pair(where, "pv.kwp", pv["kwp"])
    if "single_phase_share" in pv:
        d["pv_single_phase_share"] = _num(where, "pv.single_phase_share", pv["single_phase_share"])
    if "single_phase_kwp" in pv:
        d["pv_single_phase_kwp"] = _pair(where, "pv.single_phase_kwp", pv["single_phase_kwp"])
    if "control" in pv:
        if pv["control"] not in PV_CONTROLS:
            raise AssumptionsError(f"{where}pv.control: {pv['control']!r} is not one of {', '.join(PV_CONTROLS)}")
        d["pv_control"] = pv["control"]
    cp = _table(where, pv, "cosphi_p", {"p_start", "cos_phi_min"}) if "cosphi_p" in pv else {}
    if "p_start" in cp:
        d["cosphi_p_start"] = _num(where, "pv.cosphi_p.p_start", cp["p_start"])
    if "cos_phi_min" in cp:
        d["cosphi_min"] = _num(where, "pv.cosphi_p.cos_phi_min", cp["cos_phi_min"])
    qu = _table(where, pv, "q_u", {"v1", "v2", "v3", "v4", "q_max", "iterations"}) if "q_u" in pv else {}
    vs = list(d["q_u"])
    for i, k in enumerate(("v1", "v2", "v3", "v4")):
        if k in qu:
            vs[i] = _num(where, f"pv.q_u.{k}", qu[k])
    if not vs[0] < vs[1] <= vs[2] < vs[3]:
        raise AssumptionsError(f"{where}pv.q_u: expected v1 < v2 <= v3 < v4, got {vs}")
    d["q_u"] = tuple(vs)
    if "q_max" in qu:
        d["q_u_max"] = _num(where, "pv.q_u.q_max", qu["q_max"])
    if "iterations" in qu:
        d["q_u_iterations"] = int(_num(where, "pv.q_u.iterations", qu["iterations"], integer=True))

    hp = _table(where, data, "heat_pump", {"share", "kw", "winter_duty", "summer_duty"})
    if "share" in hp:
        d["hp_share"] = _num(where, "heat_pump.share", hp["share"])
    if "kw" in hp:
        d["hp_kw"] = _pair(where, "heat_pump.kw", hp["kw"])
    for k in ("winter_duty", "summer_duty"):
        if k in hp:
            d[f"hp_{k}"] = _num(where, f"heat_pump.{k}", hp[k])
    bat = _table(where, data, "battery", {"share", "kwh", "kw_per_kwh"})
    if "share" in bat:
        d["battery_share"] = _num(where, "battery.share", bat["share"])
    if "kwh" in bat:
        d["battery_kwh"] = _pair(where, "battery.kwh", bat["kwh"])
    if "kw_per_kwh" in bat:
        d["battery_kw_per_kwh"] = _num(where, "battery.kw_per_kwh", bat["kw_per_kwh"])
    base = _table(where, data, "base_load", {"unbalance"})
    if "unbalance" in base:
        d["base_unbalance"] = _num(where, "base_load.unbalance", base["unbalance"])
    prof = _table(where, data, "profiles", {"file"})
    if prof.get("file"):
        name = prof["file"]
        if not isinstance(name, str):
            raise AssumptionsError(f"{where}profiles.file: expected a path, got {name!r}")
        if base_dir is None:
            raise AssumptionsError(f"{where}profiles.file: own profiles need an assumptions file to be relative to")
        root = base_dir.resolve()
        path = (root / name).resolve()
        if root not in path.parents:
            raise AssumptionsError(f"{where}profiles.file: {name} is outside the directory of the assumptions file")
        if not path.is_file():
            raise AssumptionsError(f"{where}profiles.file: {path} not found")
        d["profiles_file"] = str(path)
    else:
        d["profiles_file"] = ""
    return Assumptions(**d, text=text)


_DEFAULT_TEXT: str | None = None


def default_text() -> str:
    global _DEFAULT_TEXT
    if _DEFAULT_TEXT is None:
        _DEFAULT_TEXT = resources.files("powercheck.whatif").joinpath("assumptions.toml").read_text(encoding="utf-8")
    return _DEFAULT_TEXT


def _defaults_dict() -> dict[str, Any]:
    base = Assumptions()
    return {f.name: getattr(base, f.name) for f in fields(base) if f.name not in ("text", "source")}


def load_assumptions(path: str | Path | None = None) -> Assumptions:
    """The packaged defaults (``path`` None) or a TOML file on top of them."""
    if path is None:
        return replace(parse_assumptions(default_text()), source="packaged defaults")
    p = Path(path)
    if not p.is_file():
        raise AssumptionsError(f"--assumptions: {p} not found")
    text = p.read_text(encoding="utf-8")
    return replace(parse_assumptions(text, f"{p}: ", p.parent), source=str(p))


def read_profiles(
    path: str, feeder: str, cust_ids: list[str], n_steps: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Own profiles of the customers of ``feeder``: ``{customer position: (p_mw, q_mvar)}``, each (n_steps,).

    The Parquet file has one row per customer and time: ``feeder`` (as on the command line),
    ``customer`` (``load:<index>`` or ``asymmetric_load:<index>``, as in the study's results),
    ``step`` (15-min step of the year, 0-based) or ``hour`` (hour of the year; the value holds for its
    four 15-min steps), ``p_kw`` and optionally ``q_kvar``. Steps a customer has no value for keep
    its standard profile; every value must lie in :data:`PROFILE_LIMIT_KW`.
    """
    import pandas as pd

    where = f"{path}: "
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one error line
        raise AssumptionsError(f"{where}not a readable Parquet file ({exc})") from None
    for col in ("feeder", "customer", "p_kw"):
        if col not in df.columns:
            raise AssumptionsError(f"{where}column {col!r} missing")
    if ("step" in df.columns) == ("hour" in df.columns):
        raise AssumptionsError(f"{where}exactly one of the columns 'step' or 'hour' is required")
    df = df[df.feeder.astype(str) == feeder]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if not len(df):
        return out
    pos = {c: i for i, c in enumerate(cust_ids)}
    tcol = "step" if "step" in df.columns else "hour"
    per_step = 1 if tcol == "step" else 4
    for col in ("p_kw", "q_kvar", tcol):
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if col in ("p_kw", "q_kvar"):
            bad |= (values < PROFILE_LIMIT_KW.lo) | (values > PROFILE_LIMIT_KW.hi)
        else:
            bad |= (values < 0) | (values * per_step >= n_steps) | (values != np.floor(values))
        if bad.any():
            row = int(df.index[np.argmax(bad)])
            allowed = str(PROFILE_LIMIT_KW) if col != tcol else f"whole numbers in [0, {n_steps // per_step})"
            value = df[col].iloc[np.argmax(bad)]
            value = value.item() if hasattr(value, "item") else value
            raise AssumptionsError(f"{where}row {row}, column {col}: {value!r} not in {allowed}")
    for customer, part in df.groupby("customer", sort=False):
        if customer not in pos:
            row = int(part.index[0])
            raise AssumptionsError(f"{where}row {row}, column customer: {customer!r} is not a customer of {feeder}")
        t = part[tcol].to_numpy(dtype=np.int64)
        steps = (t[:, None] * per_step + np.arange(per_step)[None, :]).ravel()
        p = np.full(n_steps, np.nan)
        q = np.full(n_steps, np.nan)
        p[steps] = np.repeat(part.p_kw.to_numpy(dtype=float), per_step) / 1000.0
        q[steps] = np.repeat(part.q_kvar.to_numpy(dtype=float), per_step) / 1000.0 if "q_kvar" in part else 0.0
        out[pos[customer]] = (p, q)
    return out


def cos_phi_p(p_rel: np.ndarray, p_start: float, cos_min: float) -> np.ndarray:
    """cos phi(P) characteristic: 1 up to ``p_start``, linear to ``cos_min`` at P = rated (``p_rel`` = P / rated)."""
    x = np.clip((np.asarray(p_rel, dtype=float) - p_start) / (1.0 - p_start), 0.0, 1.0)
    return 1.0 - x * (1.0 - cos_min)


def q_of_u(v: np.ndarray, vs: tuple[float, float, float, float], q_max: float) -> np.ndarray:
    """Q(U) characteristic [pu of rated]: +q_max (injecting, supports voltage) at and below v1, 0 from v2 to v3,
    -q_max (absorbing) at and above v4, linear between; positive = generated reactive power."""
    v1, v2, v3, v4 = vs
    return np.interp(v, [v1, v2, v3, v4], [q_max, 0.0, 0.0, -q_max])


def heat_pump_duty(day_of_year: np.ndarray, winter: float, summer: float) -> np.ndarray:
    """Duty of a heat pump by day of the year: ``winter`` on 15 January, ``summer`` half a year later (cosine)."""
    c = np.cos(2.0 * math.pi * (np.asarray(day_of_year, dtype=float) - 15.0) / 365.0)
    return summer + (winter - summer) * (1.0 + c) / 2.0
