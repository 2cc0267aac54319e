"""Monte Carlo what-if studies of EV and PV uptake on LV feeders.

For every feeder, EV share, PV share and sample, a random set of customer points gets
an EV charger and/or a PV system (the draw depends only on the study seed and the
scenario, so results do not depend on chunking or on which worker runs them). Each
scenario is solved for all studied time steps at once with the per-phase batch power
flow (:func:`powercheck.powerflow.run_batch_3ph`); a chunk of scenarios is one
batch ``[scenarios, steps]``.

Devices (defaults, all in :class:`StudyConfig`):

* EV chargers: 1-phase 16 A (20 %), 1-phase 32 A (30 %), 3-phase 16 A (50 %); rated
  power from the system voltage (1-phase: 230 V L-N in TN, L-L in IT); single-phase
  chargers on a random phase (TN) or phase pair (IT); charging profiles from
  :func:`powercheck.whatif.profiles.ev_profiles`.
* PV: U(4, 10) kWp, single-phase up to 3.6 kW, cos phi 1, the feeder's PV profile.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from powercheck.powerflow import run_batch_3ph
from powercheck.whatif.feeders import Feeder, FeederSpec, bus_power, load_feeder
from powercheck.whatif.profiles import STEPS_PER_DAY, ev_profiles, select_days

SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class StudyConfig:
    """What to vary and how devices behave."""

    ev_shares: tuple[float, ...] = (0.0, 0.5, 1.0)
    pv_shares: tuple[float, ...] = (0.0,)
    samples: int = 10
    days: int | str = 4
    seed: int = 2026
    ev_options: tuple[tuple[str, float, int, float], ...] = (
        ("1ph-16A", 16.0, 1, 0.2),
        ("1ph-32A", 32.0, 1, 0.3),
        ("3ph-16A", 16.0, 3, 0.5),
    )
    """(label, current [A], phases, probability)"""
    ev_energy_kwh: tuple[float, float] = (4.0, 16.0)
    ev_arrival_mean_h: float = 18.0
    ev_arrival_sd_h: float = 2.0
    pv_kwp: tuple[float, float] = (4.0, 10.0)
    pv_single_phase_max_kw: float = 3.6
    v_min_pu: float = 0.90
    v_max_pu: float = 1.10
    unbalance_max_percent: float = 2.0
    line_loading_max_percent: float = 100.0
    trafo_loading_max_percent: float = 100.0
    chunk: int = 8

    def __post_init__(self) -> None:
        for name in ("ev_shares", "pv_shares"):
            values = getattr(self, name)
            if not values or any(not (0.0 <= v <= 1.0) for v in values):
                raise ValueError(f"{name}: shares must be between 0 and 1, got {values}")
        if self.samples < 1:
            raise ValueError(f"samples: must be at least 1, got {self.samples}")
        if self.chunk < 1:
            raise ValueError(f"chunk: must be at least 1, got {self.chunk}")
        if abs(sum(o[3] for o in self.ev_options) - 1.0) > 1e-9:
            raise ValueError("ev_options: probabilities must add up to 1")

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
        return asdict(self)


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
    """Added power of one scenario per step, bus and phase (consumption positive) [MW]."""

    wye_p: np.ndarray  # (T, n_bus, 3) phase-to-neutral
    delta_p: np.ndarray  # (T, n_bus, 3) phase-to-phase ab, bc, ca
    n_ev: int
    n_pv: int
    ev_kw: float
    pv_kwp: float
    detail: dict[str, int] = field(default_factory=dict)

    def at(self, t: int | slice) -> Placement:
        """The same placement on one step (or a slice of steps)."""
        sl = slice(t, t + 1) if isinstance(t, int) else t
        return Placement(self.wye_p[sl], self.delta_p[sl], self.n_ev, self.n_pv, self.ev_kw, self.pv_kwp, self.detail)


def place(feeder: Feeder, scenario: Scenario, config: StudyConfig, steps: np.ndarray) -> Placement:
    """Draw EV and PV placements for a scenario and build the per-phase additions."""
    rng = scenario_rng(config, scenario)
    n_cust = feeder.n_customers
    n_bus = feeder.model.bus_index.shape[0]
    t = steps.shape[0]
    it = feeder.spec.system == "IT_230"
    u_ll = feeder.u_ll_v
    u_1ph = u_ll if it else u_ll / SQRT3
    wye = np.zeros((t, n_bus, 3))
    delta = np.zeros((t, n_bus, 3))
    single = delta if it else wye

    n_ev = int(round(scenario.ev_share * n_cust))
    ev_customers = rng.choice(n_cust, size=n_ev, replace=False)
    probs = np.array([o[3] for o in config.ev_options])
    kinds = rng.choice(len(config.ev_options), size=n_ev, p=probs)
    amps = np.array([config.ev_options[k][1] for k in kinds])
    phases = np.array([config.ev_options[k][2] for k in kinds])
    rated = np.where(phases == 3, SQRT3 * u_ll * amps, u_1ph * amps) / 1000.0
    phase_of = rng.integers(0, 3, size=n_ev)
    # a customer point connected to one phase only takes every device on that phase (a 3-phase
    # charger there charges single-phase at the same current)
    fixed = feeder.cust_phase[ev_customers] if n_ev else np.zeros(0, dtype=np.int64)
    phase_of = np.where(fixed >= 0, fixed, phase_of)
    downgraded = (fixed >= 0) & (phases == 3)
    phases = np.where(downgraded, 1, phases)
    step_of_day = steps % STEPS_PER_DAY
    day_id = steps // STEPS_PER_DAY
    ev_kw = ev_profiles(
        rated,
        step_of_day,
        day_id,
        rng,
        arrival_mean_h=config.ev_arrival_mean_h,
        arrival_sd_h=config.ev_arrival_sd_h,
        energy_kwh=config.ev_energy_kwh,
    )
    for e in range(n_ev):
        bus = feeder.load_bus_pos[ev_customers[e]]
        p = ev_kw[:, e] / 1000.0
        if phases[e] == 3:
            (delta if it else wye)[:, bus, :] += p[:, None] / 3.0
        else:
            single[:, bus, phase_of[e]] += p

    n_pv = int(round(scenario.pv_share * n_cust))
    pv_customers = rng.choice(n_cust, size=n_pv, replace=False)
    kwp = rng.uniform(config.pv_kwp[0], config.pv_kwp[1], size=n_pv)
    pv_phase = rng.integers(0, 3, size=n_pv)
    pv_fixed = feeder.cust_phase[pv_customers] if n_pv else np.zeros(0, dtype=np.int64)
    pv_phase = np.where(pv_fixed >= 0, pv_fixed, pv_phase)
    pv_shape = feeder.pv_norm[steps]
    for k in range(n_pv):
        bus = feeder.load_bus_pos[pv_customers[k]]
        p = -kwp[k] * pv_shape / 1000.0
        if kwp[k] <= config.pv_single_phase_max_kw or pv_fixed[k] >= 0:
            single[:, bus, pv_phase[k]] += p
        else:
            (delta if it else wye)[:, bus, :] += p[:, None] / 3.0
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
            "pv_1ph": int(((kwp <= config.pv_single_phase_max_kw) | (pv_fixed >= 0)).sum()),
        },
    )


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
    wye = np.stack([p.wye_p for p in placements])
    delta = np.stack([p.delta_p for p in placements])
    q = np.broadcast_to(base_q, (n_s,) + base_q.shape)
    if feeder.spec.system == "IT_230":
        delta += base_p
        kwargs: dict[str, Any] = {"bus_p_mw": wye, "bus_delta_p_mw": delta, "bus_delta_q_mvar": q}
    else:
        wye += base_p
        kwargs = {"bus_p_mw": wye, "bus_delta_p_mw": delta, "bus_q_mvar": q}
    res = run_batch_3ph(feeder.model, errors="mask", **kwargs)
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


def cached_feeder(spec: FeederSpec, cache_dir: str | Path | None) -> Feeder:
    """The loaded feeder of ``spec`` from a per-process cache (a Dask worker loads each feeder once).

    Parameters
    ----------
    spec : FeederSpec
        The feeder.
    cache_dir : str, Path or None
        Cache directory of the SimBench grids (None: the default powercheck cache).
    """
    key = (repr(spec), str(cache_dir))
    if key not in _FEEDERS:
        _FEEDERS[key] = load_feeder(spec, Path(cache_dir) if cache_dir else None)
    return _FEEDERS[key]


def run_task(spec: FeederSpec, scenarios: list[Scenario], config: StudyConfig, cache_dir: str | None) -> pd.DataFrame:
    """One unit of work: a chunk of scenarios of one feeder (the Dask task)."""
    return solve_scenarios(cached_feeder(spec, cache_dir), scenarios, config)


def plan(feeders: Sequence[FeederSpec], config: StudyConfig) -> list[tuple[FeederSpec, list[Scenario]]]:
    tasks = []
    for spec in feeders:
        scen = scenarios_for(spec, config)
        for start in range(0, len(scen), config.chunk):
            tasks.append((spec, scen[start : start + config.chunk]))
    return tasks


def run_study(
    feeders: Sequence[FeederSpec],
    config: StudyConfig,
    *,
    scheduler: str | Any | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run every scenario of every feeder; returns one row per scenario.

    Parameters
    ----------
    scheduler : None, "local", an address like "tcp://host:8786", or a dask Client
        None runs in this process. "local" starts a dask LocalCluster with one worker per
        core for the run; an address connects to a running dask.distributed scheduler.
    """
    cache = str(cache_dir) if cache_dir is not None else None
    for spec in feeders:  # load (and cache) every feeder once up front: early errors, warm cache
        cached_feeder(spec, cache)
    tasks = plan(feeders, config)
    total = len(tasks)
    frames: list[pd.DataFrame] = []
    if scheduler is None:
        for i, (spec, chunk) in enumerate(tasks, start=1):
            frames.append(run_task(spec, chunk, config, cache))
            if progress:
                progress(i, total)
    else:
        from dask.distributed import Client, LocalCluster, as_completed

        owned: list[Any] = []
        if isinstance(scheduler, str):
            if scheduler == "local":
                cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1)
                owned.append(cluster)
                client = Client(cluster)
            else:
                client = Client(scheduler)
            owned.insert(0, client)
        else:
            client = scheduler
        try:
            futures = [client.submit(run_task, spec, chunk, config, cache, pure=False) for spec, chunk in tasks]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[pd.DataFrame | None] = [None] * total
            for done, future in enumerate(as_completed(futures), start=1):
                results[index[future.key]] = future.result()
                if progress:
                    progress(done, total)
            frames = [r for r in results if r is not None]
        finally:
            for obj in owned:
                obj.close()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
