"""Monte Carlo what-if studies of EV and PV uptake on LV feeders.

For every feeder, EV share, PV share and sample, a random set of customer points gets
an EV charger and/or a PV system (the draw depends only on the study seed and the
scenario, so results do not depend on chunking or on which worker runs them). Each
scenario is solved for all studied time steps at once with the per-phase batch power
flow (:func:`powercheck.powerflow.run_batch_3ph`); a chunk of scenarios is one
batch ``[scenarios, steps]``.

Devices follow :class:`powercheck.whatif.assumptions.Assumptions` (packaged defaults in
``assumptions.toml``, or the analyst's own file): the EV charger mix (1- and 3-phase, 16/32 A),
smart charging (a current limit for a share of the EVs), PV sizes and the share of
single-phase systems, PV reactive power (cos phi(P) or Q(U)), heat pumps, batteries at PV
owners (self-consumption), base-load unbalance and own per-customer profiles. Single-phase
devices go on a random phase (TN, L-N) or phase pair (IT, L-L); at a customer point connected
to one phase only, on that phase.

Per scenario the result row holds the extreme values over all studied steps, LV buses
and phases (voltage min/max -- line-to-line in IT grids --, unbalance, line and
transformer loading), each with the element where it occurs (``*_element``: pandapower
bus, line or transformer index) and the step when (``*_step``: index into the year-long
15-min profile), the binding limit (the one whose worst value uses most of its limit, see
:func:`limit_utilisation`), the number of steps violating each limit of the policy,
``violation`` (any of them, or a step that did not converge), and the LV buses and steps
with a violation (``violating_buses``, ``violating_steps``).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from powercheck.powerflow import run_batch_3ph
from powercheck.whatif.assumptions import (
    Assumptions,
    cos_phi_p,
    heat_pump_duty,
    load_assumptions,
    q_of_u,
    read_profiles,
)
from powercheck.whatif.feeders import Feeder, FeederSpec, bus_power, load_feeder
from powercheck.whatif.ledger import LedgerLoad, ledger_bus_power
from powercheck.whatif.profiles import STEP_H, STEPS_PER_DAY, ev_profiles, select_days

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class StudyConfig:
    """What to vary, how devices behave (``assumptions``) and the limits."""

    ev_shares: tuple[float, ...] = (0.0, 0.5, 1.0)
    pv_shares: tuple[float, ...] = (0.0,)
    samples: int = 10
    days: int | str = 4
    seed: int = 2026
    assumptions: Assumptions = field(default_factory=load_assumptions)
    v_min_pu: float = 0.90
    v_max_pu: float = 1.10
    unbalance_max_percent: float = 2.0
    line_loading_max_percent: float = 100.0
    trafo_loading_max_percent: float = 100.0
    chunk: int = 8
    ledger: tuple[LedgerLoad, ...] = ()
    """Reserved components of the capacity ledger's active requests (see :mod:`powercheck.whatif.ledger`)"""

    def __post_init__(self) -> None:
        for name in ("ev_shares", "pv_shares"):
            values = getattr(self, name)
            if not values or any(not (0.0 <= v <= 1.0) for v in values):
                raise ValueError(f"{name}: shares must be between 0 and 1, got {values}")
        if self.samples < 1:
            raise ValueError(f"samples: must be at least 1, got {self.samples}")
        if self.chunk < 1:
            raise ValueError(f"chunk: must be at least 1, got {self.chunk}")

    @classmethod
    def from_policy(cls, policy: Any, **kwargs: Any) -> StudyConfig:
        """Limits taken from a powercheck policy."""
        from powercheck.rules.policy import PolicyKey

        return cls(
            v_min_pu=policy.number(PolicyKey.VOLTAGE_MIN_PU),
            v_max_pu=policy.number(PolicyKey.VOLTAGE_MAX_PU),
            unbalance_max_percent=policy.number(PolicyKey.UNBALANCE_MAX_PERCENT),
            line_loading_max_percent=policy.number(PolicyKey.LINE_LOADING_MAX_PERCENT),
            trafo_loading_max_percent=policy.number(PolicyKey.TRANSFORMER_LOADING_MAX_PERCENT),
            **kwargs,
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["assumptions"] = self.assumptions.to_dict()
        d["ledger"] = [asdict(x) for x in self.ledger]
        return d


@dataclass(frozen=True)
class Scenario:
    feeder: str
    ev_share: float
    pv_share: float
    sample: int


def scenarios_for(feeder: FeederSpec, config: StudyConfig) -> list[Scenario]:
    return [
        Scenario(feeder.name, float(ev), float(pv), s)
        for ev in config.ev_shares
        for pv in config.pv_shares
        for s in range(config.samples)
    ]


def scenario_rng(config: StudyConfig, scenario: Scenario) -> np.random.Generator:
    """A generator that depends only on the study seed and the scenario."""
    key = f"{scenario.feeder}|{scenario.ev_share:.9f}|{scenario.pv_share:.9f}|{scenario.sample}"
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([config.seed, digest]))


@dataclass
class Placement:
    """Added power of one scenario per step, bus and phase (consumption positive) [MW], [Mvar].

    ``wye_*`` are phase-to-neutral (TN), ``delta_*`` phase-to-phase on ab, bc, ca (IT and
    three-phase devices in IT). ``pv_*`` describe the PV systems for voltage-dependent
    reactive power (Q(U)): bus position, phase or pair (-1: three-phase), active power
    generated per step [MW] and rated power [MW].
    """

    wye_p: np.ndarray  # (T, n_bus, 3)
    delta_p: np.ndarray  # (T, n_bus, 3)
    n_ev: int
    n_pv: int
    ev_kw: float
    pv_kwp: float
    detail: dict[str, Any] = field(default_factory=dict)
    wye_q: np.ndarray | None = None
    delta_q: np.ndarray | None = None
    pv_bus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pv_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pv_p: np.ndarray | None = None  # (T, n_pv)
    pv_rated: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def at(self, t: Any) -> Placement:
        """The same placement on one step, a slice or an index array of steps."""
        sl = slice(t, t + 1) if isinstance(t, (int, np.integer)) else t

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[sl]

        return Placement(
            self.wye_p[sl],
            self.delta_p[sl],
            self.n_ev,
            self.n_pv,
            self.ev_kw,
            self.pv_kwp,
            self.detail,
            cut(self.wye_q),
            cut(self.delta_q),
            self.pv_bus,
            self.pv_phase,
            cut(self.pv_p),
            self.pv_rated,
        )


def _spread(target: np.ndarray, bus: int, phase: int, power: np.ndarray) -> None:
    """Add ``power`` (T,) at ``bus``: on one phase (or pair), or a third on each when ``phase`` is -1."""
    if phase < 0:
        target[:, bus, :] += power[:, None] / 3.0
    else:
        target[:, bus, phase] += power


def place(feeder: Feeder, scenario: Scenario, config: StudyConfig, steps: np.ndarray) -> Placement:
    """Draw the devices of a scenario and build the per-phase additions."""
    a = config.assumptions
    rng = scenario_rng(config, scenario)
    n_cust = feeder.n_customers
    n_bus = feeder.model.bus_index.shape[0]
    t = steps.shape[0]
    it = feeder.spec.system == "IT_230"
    u_ll = feeder.u_ll_v
    u_1ph = u_ll if it else u_ll / SQRT3
    wye = np.zeros((t, n_bus, 3))
    delta = np.zeros((t, n_bus, 3))
    wye_q = np.zeros((t, n_bus, 3))
    delta_q = np.zeros((t, n_bus, 3))
    single, single_q = (delta, delta_q) if it else (wye, wye_q)
    three, three_q = (delta, delta_q) if it else (wye, wye_q)

    def add(p: np.ndarray, bus: int, phase: int, q: np.ndarray | None = None) -> None:
        _spread(single if phase >= 0 else three, bus, phase, p)
        if q is not None:
            _spread(single_q if phase >= 0 else three_q, bus, phase, q)

    # EV chargers
    n_ev = int(round(scenario.ev_share * n_cust))
    ev_customers = rng.choice(n_cust, size=n_ev, replace=False)
    chargers = a.ev_chargers
    kinds = rng.choice(len(chargers), size=n_ev, p=np.array([c.probability for c in chargers]))
    amps = np.array([chargers[k].current_a for k in kinds], dtype=float)
    phases = np.array([chargers[k].phases for k in kinds], dtype=np.int64)
    smart = rng.random(n_ev) < a.smart_share
    amps = np.where(smart, np.minimum(amps, a.smart_current_limit_a), amps)
    phase_of = rng.integers(0, 3, size=n_ev)
    # a customer point connected to one phase only takes every device on that phase (a 3-phase
    # charger there charges single-phase at the same current)
    fixed = feeder.cust_phase[ev_customers] if n_ev else np.zeros(0, dtype=np.int64)
    phase_of = np.where(fixed >= 0, fixed, phase_of)
    downgraded = (fixed >= 0) & (phases == 3)
    phases = np.where(downgraded, 1, phases)
    rated = np.where(phases == 3, SQRT3 * u_ll * amps, u_1ph * amps) / 1000.0
    step_of_day = steps % STEPS_PER_DAY
    day_id = steps // STEPS_PER_DAY
    ev_kw = ev_profiles(
        rated,
        step_of_day,
        day_id,
        rng,
        arrival_mean_h=a.ev_arrival_mean_h,
        arrival_sd_h=a.ev_arrival_sd_h,
        energy_kwh=a.ev_energy_kwh,
    )
    for e in range(n_ev):
        add(ev_kw[:, e] / 1000.0, int(feeder.load_bus_pos[ev_customers[e]]), -1 if phases[e] == 3 else int(phase_of[e]))

    # PV, its reactive power and batteries
    n_pv = int(round(scenario.pv_share * n_cust))
    pv_customers = rng.choice(n_cust, size=n_pv, replace=False)
    pv_fixed = feeder.cust_phase[pv_customers] if n_pv else np.zeros(0, dtype=np.int64)
    one_phase = (rng.random(n_pv) < a.pv_single_phase_share) | (pv_fixed >= 0)
    kwp = np.where(one_phase, rng.uniform(*a.pv_single_phase_kwp, size=n_pv), rng.uniform(*a.pv_kwp, size=n_pv))
    pv_phase = np.where(pv_fixed >= 0, pv_fixed, rng.integers(0, 3, size=n_pv))
    pv_phase = np.where(one_phase, pv_phase, -1)
    has_battery = rng.random(n_pv) < a.battery_share
    bat_kwh = rng.uniform(*a.battery_kwh, size=n_pv)
    pv_shape = feeder.pv_norm[steps]
    pv_p = kwp[None, :] * pv_shape[:, None] / 1000.0  # generated [MW]
    bat_p = np.zeros_like(pv_p)  # battery charging (consumption positive) [MW]
    if has_battery.any():
        own = feeder.base_p_mw[steps][:, pv_customers[has_battery]]
        bat_p[:, has_battery] = battery_self_consumption(
            own - pv_p[:, has_battery], bat_kwh[has_battery] / 1000.0, a.battery_kw_per_kwh, day_id
        )
    if a.pv_control == "cosphi_p":
        cos = cos_phi_p(pv_shape[:, None] * np.ones(n_pv)[None, :], a.cosphi_p_start, a.cosphi_min)
        pv_q = pv_p * np.tan(np.arccos(cos))  # absorbed: consumption-positive
    else:
        pv_q = np.zeros_like(pv_p)
    for k in range(n_pv):
        bus = int(feeder.load_bus_pos[pv_customers[k]])
        add(-pv_p[:, k] + bat_p[:, k], bus, int(pv_phase[k]), pv_q[:, k])

    # heat pumps (three-phase; at a single-phase customer point on its phase)
    n_hp = int(round(a.hp_share * n_cust))
    hp_customers = rng.choice(n_cust, size=n_hp, replace=False)
    hp_kw = rng.uniform(*a.hp_kw, size=n_hp)
    duty = heat_pump_duty(steps // STEPS_PER_DAY, a.hp_winter_duty, a.hp_summer_duty)
    for k in range(n_hp):
        c = hp_customers[k]
        add(hp_kw[k] * duty / 1000.0, int(feeder.load_bus_pos[c]), int(feeder.cust_phase[c]))

    # base-load unbalance: a share of each three-phase customer's base load moves to one phase
    if a.base_unbalance > 0:
        main = rng.integers(0, 3, size=n_cust)
        base = feeder.base_p_mw[steps]
        for c in np.flatnonzero(feeder.cust_phase < 0):
            shift = np.eye(3)[main[c]] - feeder.base_split[c]
            target = single
            target[:, feeder.load_bus_pos[c], :] += a.base_unbalance * base[:, c, None] * shift[None, :]

    return Placement(
        wye,
        delta,
        n_ev,
        n_pv,
        float(rated.sum()),
        float(kwp.sum()),
        detail={
            "ev_1ph": int((phases == 1).sum()),
            "ev_3ph": int((phases == 3).sum()),
            "ev_3ph_as_1ph": int(downgraded.sum()),
            "ev_smart": int(smart.sum()),
            "pv_1ph": int(one_phase.sum()),
            "n_battery": int(has_battery.sum()),
            "n_heat_pump": n_hp,
            "heat_pump_kw": float(hp_kw.sum()),
        },
        wye_q=wye_q,
        delta_q=delta_q,
        pv_bus=np.array([feeder.load_bus_pos[c] for c in pv_customers], dtype=np.int64),
        pv_phase=pv_phase.astype(np.int64),
        pv_p=pv_p,
        pv_rated=kwp / 1000.0,
    )


def battery_self_consumption(
    net_mw: np.ndarray, capacity_mwh: np.ndarray, kw_per_kwh: float, day_id: np.ndarray
) -> np.ndarray:
    """Battery power (charging positive) [MW] for self-consumption, shape of ``net_mw`` (T, n).

    Each step the battery takes the customer's surplus (``net_mw`` < 0: PV above own load) and
    covers its deficit, within its power rating ``kw_per_kwh x capacity`` and its state of
    charge; it starts empty on each studied day (days need not be consecutive). Pure numpy.
    """
    t_n, n = net_mw.shape
    p_max = kw_per_kwh * capacity_mwh
    soc = np.zeros(n)
    out = np.zeros((t_n, n))
    for t in range(t_n):
        if t and day_id[t] != day_id[t - 1]:
            soc[:] = 0.0
        want = -net_mw[t]  # surplus to store (positive) or deficit to cover (negative)
        charge = np.clip(want, -p_max, p_max)
        charge = np.minimum(charge, (capacity_mwh - soc) / STEP_H)
        charge = np.maximum(charge, -soc / STEP_H)
        out[t] = charge
        soc += charge * STEP_H
    return out


def study_steps(feeder: Feeder, config: StudyConfig) -> np.ndarray:
    return select_days(feeder.base_p_mw.sum(axis=1), feeder.pv_norm, config.days)


MAX_BATCH_VALUES = 2**23
"""Largest scenarios x steps x buses x phases of one solver call (about 64 MB per float array);
larger chunks are split, which does not change any result (steps are solved independently)."""


def solve_scenarios(
    feeder: Feeder,
    scenarios: Sequence[Scenario],
    config: StudyConfig,
    *,
    steps: np.ndarray | None = None,
    placements: Sequence[Placement] | None = None,
) -> pd.DataFrame:
    """Solve a chunk of scenarios of one feeder; one result row per scenario.

    ``steps`` (default: the study's steps) and ``placements`` (default: drawn for each scenario)
    let a check re-run given placements on given steps.
    """
    steps = study_steps(feeder, config) if steps is None else np.asarray(steps)
    per_scenario = steps.shape[0] * feeder.model.bus_index.shape[0] * 3
    size = max(1, MAX_BATCH_VALUES // per_scenario)
    frames = [
        _solve(
            feeder,
            scenarios[i : i + size],
            config,
            steps,
            None if placements is None else placements[i : i + size],
        )
        for i in range(0, len(scenarios), size)
    ]
    return pd.concat(frames, ignore_index=True)


def base_bus_power(feeder: Feeder, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base loads minus existing generation per step, bus and phase: ``(p, q)``, each (T, n_bus, 3) [MW], [Mvar]."""
    n_bus = feeder.model.bus_index.shape[0]
    p = bus_power(feeder.load_bus_pos, feeder.base_p_mw[steps], feeder.base_split, n_bus)
    q = bus_power(feeder.load_bus_pos, feeder.base_q_mvar[steps], feeder.base_split, n_bus)
    p -= bus_power(feeder.gen_bus_pos, feeder.gen_p_mw[steps], feeder.gen_split, n_bus)
    return p, q


def _solve(
    feeder: Feeder,
    scenarios: Sequence[Scenario],
    config: StudyConfig,
    steps: np.ndarray,
    placements: Sequence[Placement] | None = None,
) -> pd.DataFrame:
    if placements is None:
        placements = [place(feeder, s, config, steps) for s in scenarios]
    n_s = len(scenarios)
    base_p, base_q = base_bus_power(feeder, steps)
    it = feeder.spec.system == "IT_230"
    wye = np.stack([p.wye_p for p in placements])
    delta = np.stack([p.delta_p for p in placements])
    wye_q = np.stack([p.wye_q if p.wye_q is not None else np.zeros_like(p.wye_p) for p in placements])
    delta_q = np.stack([p.delta_q if p.delta_q is not None else np.zeros_like(p.delta_p) for p in placements])
    if it:
        delta += base_p
        delta_q += base_q
    else:
        wye += base_p
        wye_q += base_q
    if config.ledger and feeder.spec.kind == "region":
        shape = feeder.load_shape if feeder.load_shape is not None else np.ones_like(feeder.pv_norm)
        lw, lwq, ld, ldq = ledger_bus_power(
            config.ledger, feeder.spec.network_id, feeder.model.bus_index, shape[steps], feeder.pv_norm[steps], it
        )
        wye += lw
        wye_q += lwq
        delta += ld
        delta_q += ldq
    kwargs: dict[str, Any] = {
        "bus_p_mw": wye,
        "bus_delta_p_mw": delta,
        "bus_q_mvar": wye_q,
        "bus_delta_q_mvar": delta_q,
    }
    res = run_batch_3ph(feeder.model, errors="mask", **kwargs)
    a = config.assumptions
    if a.pv_control == "q_u" and any(p.n_pv for p in placements):
        res = _solve_q_u(feeder, placements, kwargs, res, a)
    lv = feeder.lv_bus_mask
    ok = res.converged  # (S, T)
    v = res.v_pu[..., lv, :]  # (S, T, n_lv, 3)
    if feeder.spec.system == "IT_230":
        # IT: the customer voltage is line-to-line; |Va - Vb| / sqrt(3) in pu of U_LL
        v_mag = np.abs(v - np.roll(v, -1, axis=-1)) / SQRT3
    else:
        v_mag = np.abs(v)
    v_mag = np.where(ok[..., None, None], v_mag, np.nan)
    unb = np.where(ok[..., None], res.unbalance_percent[..., lv], np.nan)
    empty = np.zeros((n_s, len(steps), 0))
    line = res.line_loading_percent if res.line_loading_percent is not None else empty
    trafo = res.trafo_loading_percent if res.trafo_loading_percent is not None else empty
    line = np.where(ok[..., None], line, np.nan)
    trafo = np.where(ok[..., None], trafo, np.nan)
    lv_ids = feeder.model.bus_index[lv]
    line_ids = np.asarray(feeder.model.line_index)
    trafo_ids = np.asarray(feeder.model.trafo_index)
    worst = {
        "v_min": _extreme(v_mag.min(axis=3), "min"),
        "v_max": _extreme(v_mag.max(axis=3), "max"),
        "unbalance": _extreme(unb, "max"),
        "line": _extreme(line, "max"),
        "trafo": _extreme(trafo, "max"),
    }
    ids = {"v_min": lv_ids, "v_max": lv_ids, "unbalance": lv_ids, "line": line_ids, "trafo": trafo_ids}
    with np.errstate(invalid="ignore"):
        bus_low = v_mag.min(axis=3) < config.v_min_pu  # (S, T, n_lv)
        bus_high = v_mag.max(axis=3) > config.v_max_pu
        bus_unb = unb > config.unbalance_max_percent
        step_flags = {
            "v_low": bus_low.any(axis=2),
            "v_high": bus_high.any(axis=2),
            "unbalance": bus_unb.any(axis=2),
            "line": (line > config.line_loading_max_percent).any(axis=2),
            "trafo": (trafo > config.trafo_loading_max_percent).any(axis=2),
        }
    bus_any = (bus_low | bus_high | bus_unb).any(axis=1)  # (S, n_lv)
    step_any = np.logical_or.reduce(list(step_flags.values())) | ~ok
    rows = []
    for i, (sc, pl) in enumerate(zip(scenarios, placements)):
        counts = {f"steps_{k}": int(flag[i].sum()) for k, flag in step_flags.items()}
        counts["steps_not_converged"] = int((~ok[i]).sum())
        row: dict[str, Any] = {
            "feeder": sc.feeder,
            "system": feeder.spec.system,
            "ev_share": sc.ev_share,
            "pv_share": sc.pv_share,
            "sample": sc.sample,
            "n_customers": feeder.n_customers,
            "n_ev": pl.n_ev,
            "n_pv": pl.n_pv,
            "ev_kw": pl.ev_kw,
            "pv_kwp": pl.pv_kwp,
            "n_steps": int(len(steps)),
        }
        for key, column in (
            ("v_min", "v_min_pu"),
            ("v_max", "v_max_pu"),
            ("unbalance", "unbalance_max_percent"),
            ("line", "line_loading_max_percent"),
            ("trafo", "trafo_loading_max_percent"),
        ):
            value, element, t = worst[key][0][i], worst[key][1][i], worst[key][2][i]
            row[column] = float(value)
            row[f"{key}_element"] = int(ids[key][element]) if element >= 0 else -1
            row[f"{key}_step"] = int(steps[t]) if t >= 0 else -1
        util = limit_utilisation(row, config)
        row["binding_limit"] = (
            max(util, key=lambda k: util[k]) if not counts["steps_not_converged"] else "not converged"
        )
        row["binding_utilisation"] = float(max(util.values()))
        row.update(counts)
        row["violation"] = bool(any(counts.values()))
        row["violating_buses"] = [int(b) for b in lv_ids[bus_any[i]]]
        row["violating_steps"] = [int(st) for st in steps[step_any[i]]]
        rows.append(row)
    return pd.DataFrame(rows)


def pv_voltage(v_pu: np.ndarray, bus: np.ndarray, phase: np.ndarray, it: bool) -> np.ndarray:
    """Voltage [pu] each PV system sees, (T, n_pv): its phase (TN) or phase pair / sqrt(3) (IT); three-phase
    systems (``phase`` -1) the mean over the phases. ``v_pu`` is one scenario's (T, n_bus, 3)."""
    v = v_pu[:, bus, :]  # (T, n_pv, 3)
    mag = np.abs(v - np.roll(v, -1, axis=-1)) / SQRT3 if it else np.abs(v)
    one = np.take_along_axis(mag, np.clip(phase, 0, 2)[None, :, None], axis=2)[..., 0]
    return np.where(phase[None, :] >= 0, one, mag.mean(axis=2))


def _solve_q_u(feeder: Feeder, placements: Sequence[Placement], kwargs: dict[str, Any], res: Any, a: Any) -> Any:
    """Q(U) of every PV system by damped fixed-point iteration of the batch power flow.

    Each round sets every system's reactive power to half-way between its current value and the
    Q(U) characteristic at the voltage of the last solution (systems generating no active power
    give none), until the change is below 1e-7 MVA or ``a.q_u_iterations`` rounds are done.
    """
    it = feeder.spec.system == "IT_230"
    q_now = [np.zeros_like(p.pv_p) if p.pv_p is not None else np.zeros((0, 0)) for p in placements]
    base_wye_q = kwargs["bus_q_mvar"].copy()
    base_delta_q = kwargs["bus_delta_q_mvar"].copy()
    for _ in range(a.q_u_iterations):
        change = 0.0
        wye_q = base_wye_q.copy()
        delta_q = base_delta_q.copy()
        for i, pl in enumerate(placements):
            if not pl.n_pv:
                continue
            v = np.nan_to_num(pv_voltage(res.v_pu[i], pl.pv_bus, pl.pv_phase, it), nan=1.0)
            target = -q_of_u(v, a.q_u, a.q_u_max) * pl.pv_rated[None, :] * (pl.pv_p > 0)  # consumption-positive
            new = q_now[i] + 0.5 * (target - q_now[i])
            change = max(change, float(np.abs(new - q_now[i]).max()))
            q_now[i] = new
            for k in range(pl.n_pv):
                target_arr = delta_q if it else wye_q
                _spread(target_arr[i], int(pl.pv_bus[k]), int(pl.pv_phase[k]), new[:, k])
        res = run_batch_3ph(feeder.model, errors="mask", **{**kwargs, "bus_q_mvar": wye_q, "bus_delta_q_mvar": delta_q})
        if change < 1e-7:
            break
    for i, pl in enumerate(placements):
        pl.detail["pv_q_u_mvar_min"] = float(q_now[i].min()) if q_now[i].size else 0.0
    return res


LIMITS = ("v_low", "v_high", "unbalance", "line", "trafo")
"""The limits of a study, in the order of the report: undervoltage, overvoltage, voltage unbalance,
cable (line) loading, transformer loading."""


def limit_utilisation(row: dict[str, Any] | pd.Series, config: StudyConfig) -> dict[str, float]:
    """How far each limit is used by a scenario's worst values: 1 is at the limit, above 1 violated.

    Undervoltage ``(1 - v_min) / (1 - v_min_limit)``, overvoltage ``(v_max - 1) / (v_max_limit - 1)``,
    unbalance, line and transformer loading ``value / limit``. The binding limit is the largest.
    """

    def ratio(num: float, den: float) -> float:
        return float(num / den) if np.isfinite(num) else float("nan")

    return {
        "v_low": ratio(1.0 - row["v_min_pu"], 1.0 - config.v_min_pu),
        "v_high": ratio(row["v_max_pu"] - 1.0, config.v_max_pu - 1.0),
        "unbalance": ratio(row["unbalance_max_percent"], config.unbalance_max_percent),
        "line": ratio(row["line_loading_max_percent"], config.line_loading_max_percent),
        "trafo": ratio(row["trafo_loading_max_percent"], config.trafo_loading_max_percent),
    }


def _extreme(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per scenario the min or max of ``values`` (S, T, n) ignoring NaN, with its element and step position.

    Returns ``(value, element, step)``, each of shape (S,); NaN / -1 where nothing is finite.
    """
    n_s, n_t, n_e = values.shape
    if n_e == 0 or n_t == 0:
        return np.zeros(n_s), np.full(n_s, -1), np.full(n_s, -1)
    flat = values.reshape(n_s, n_t * n_e)
    fill = np.inf if kind == "min" else -np.inf
    filled = np.where(np.isnan(flat), fill, flat)
    pos = filled.argmin(axis=1) if kind == "min" else filled.argmax(axis=1)
    value = flat[np.arange(n_s), pos]
    found = np.isfinite(value)
    return (
        np.where(found, value, np.nan),
        np.where(found, pos % n_e, -1),
        np.where(found, pos // n_e, -1),
    )


_FEEDERS: dict[tuple[str, str], Feeder] = {}


def cached_feeder(spec: FeederSpec, cache_dir: str | Path | None, profiles: str = "") -> Feeder:
    """The loaded feeder of ``spec`` from a per-process cache (a Dask worker loads each feeder once).

    Parameters
    ----------
    spec : FeederSpec
        The feeder.
    cache_dir : str, Path or None
        Cache directory of the SimBench grids (None: the default powercheck cache).
    profiles : str
        Own per-customer profiles (Parquet, see :func:`powercheck.whatif.assumptions.read_profiles`)
        replacing the standard profiles where they have values; "" for none.
    """
    key = (repr(spec), str(cache_dir), profiles)
    if key not in _FEEDERS:
        feeder = load_feeder(spec, Path(cache_dir) if cache_dir else None)
        if profiles:
            apply_profiles(feeder, profiles)
        _FEEDERS[key] = feeder
    return _FEEDERS[key]


def apply_profiles(feeder: Feeder, path: str) -> None:
    """Replace the base profiles of the customers that ``path`` has values for (in place)."""
    own = read_profiles(path, feeder.spec.name, feeder.cust_ids, feeder.base_p_mw.shape[0])
    for pos, (p, q) in own.items():
        have = ~np.isnan(p)
        feeder.base_p_mw[have, pos] = p[have]
        feeder.base_q_mvar[have, pos] = q[have]
    if own:
        feeder.assumptions.append(f"whatif: own profiles of {len(own)} customer points from {path}")


def run_task(spec: FeederSpec, scenarios: list[Scenario], config: StudyConfig, cache_dir: str | None) -> pd.DataFrame:
    """One unit of work: a chunk of scenarios of one feeder (the Dask task)."""
    return solve_scenarios(cached_feeder(spec, cache_dir, config.assumptions.profiles_file), scenarios, config)


def plan(feeders: Sequence[FeederSpec], config: StudyConfig) -> list[tuple[FeederSpec, list[Scenario]]]:
    tasks = []
    for spec in feeders:
        scen = scenarios_for(spec, config)
        for start in range(0, len(scen), config.chunk):
            tasks.append((spec, scen[start : start + config.chunk]))
    return tasks


class SchedulerUnreachable(ValueError):
    """No Dask scheduler answered at the given address (one line, no traceback)."""


def connect_scheduler(scheduler: str | Any, timeout: float = 5.0) -> tuple[Any, list[Any]]:
    """A dask Client for ``scheduler`` ("local", an address or a Client) and the objects to close after the run."""
    import logging

    from dask.distributed import Client, LocalCluster

    if not isinstance(scheduler, str):
        return scheduler, []
    if scheduler == "local":
        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        return client, [client, cluster]
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # the connection errors are reported in one line below
    try:
        client = Client(scheduler, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, CommClosedError ...: all mean "not reachable"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchedulerUnreachable(
            f"--scheduler {scheduler}: no Dask scheduler answered within {timeout:g} s ({reason[:120]})"
        ) from None
    finally:
        logger.setLevel(level)
    return client, [client]


def run_study(
    feeders: Sequence[FeederSpec],
    config: StudyConfig,
    *,
    scheduler: str | Any | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[..., None] | None = None,
    scheduler_timeout: float = 5.0,
) -> pd.DataFrame:
    """Run every scenario of every feeder; returns one row per scenario.

    Parameters
    ----------
    scheduler : None, "local", an address like "tcp://host:8786", or a dask Client
        None runs in this process. "local" starts a dask LocalCluster with one worker per
        core for the run; an address connects to a running dask.distributed scheduler
        (:class:`SchedulerUnreachable` when none answers within ``scheduler_timeout`` seconds).
    progress : callable ``(stage, done, total, label)``, optional
        Called while the feeders load (stage "feeders") and as tasks finish (stage "tasks").
    """
    cache = str(cache_dir) if cache_dir is not None else None
    client, owned = connect_scheduler(scheduler, scheduler_timeout) if scheduler is not None else (None, [])
    try:
        for i, spec in enumerate(feeders):  # load (and cache) every feeder once up front: early errors, warm cache
            if progress:
                progress("feeders", i, len(feeders), spec.name)
            cached_feeder(spec, cache, config.assumptions.profiles_file)
        if progress:
            progress("feeders", len(feeders), len(feeders), "")
        tasks = plan(feeders, config)
        total = len(tasks)
        if progress:
            progress("tasks", 0, total, "")
        frames: list[pd.DataFrame] = []
        if client is None:
            for i, (spec, chunk) in enumerate(tasks, start=1):
                frames.append(run_task(spec, chunk, config, cache))
                if progress:
                    progress("tasks", i, total, "")
        else:
            from dask.distributed import as_completed

            futures = [client.submit(run_task, spec, chunk, config, cache, pure=False) for spec, chunk in tasks]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[pd.DataFrame | None] = [None] * total
            for done, future in enumerate(as_completed(futures), start=1):
                results[index[future.key]] = future.result()
                if progress:
                    progress("tasks", done, total, "")
            frames = [r for r in results if r is not None]
    finally:
        for obj in owned:
            obj.close()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
